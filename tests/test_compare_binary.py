"""The comparison of a binary or count design: logit / probit / poisson and their GLMMs against the
truth on the latent scale; linear estimators on such data get no truth cells and no coverage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import main
from engine.compare import (Comparison, compare, crossed_model_text, default_estimators, design_model,
                            format_comparison, nested_and_crossed_models)
from engine.estimators import parse_estimator
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.presets import get_preset
from engine.simulate import simulate

NESTED = "|| dist_id: || school_id: || teach_id: || student_id:"
BINARY_SET = ["logit", "melogit || student_id:", f"melogit {NESTED}"]


@pytest.fixture(scope="module")
def binary():
    return simulate(get_preset("tutoring_binary").with_units("dist_id", 3), seed=1)


@pytest.fixture(scope="module")
def binary_comparison(binary) -> Comparison:
    outcome, predictors = design_model(binary.design)
    return compare(binary.frame, outcome, predictors, default_estimators(binary.design), truth=binary.truth)


def binary_neighbourhoods():
    """The neighbourhoods preset (schools crossed with neighbourhoods) with a pass/fail outcome."""
    design = get_preset("neighbourhoods")
    design.family, design.link, design.intercept = "binomial", "logit", -0.3
    design.covariates[0].coef = 0.5
    design.levels[0].sd, design.levels[1].sd, design.crossed[0].sd = 0.3, 0.5, 0.7
    return design


def poisson_design():
    design = get_preset("two_level")
    design.family, design.link, design.intercept = "poisson", "log", 0.5
    design.covariates[0].coef, design.covariates[1].coef = 0.3, -0.2
    design.levels[0].sd = 0.4
    return design


def cells(line: str, count: int) -> list[str]:
    """The ``count`` 12-wide cells after the 24-wide label of a printed table line."""
    padded = line.ljust(24 + 12 * count)
    return [padded[24 + 12 * k: 24 + 12 * (k + 1)].strip() for k in range(count)]


# ----- the default list ---------------------------------------------------------------------------
def test_a_binary_design_gets_the_glm_and_glmm_counterparts():
    assert [spec.text for spec in default_estimators(get_preset("tutoring_binary"))] == BINARY_SET
    probit = get_preset("tutoring_binary")
    probit.link = "probit"
    assert [spec.text for spec in default_estimators(probit)] == [
        "probit", "meprobit || student_id:", f"meprobit {NESTED}"]
    assert [spec.text for spec in default_estimators(poisson_design())] == ["poisson", "mepoisson || school_id:"]
    for spec in default_estimators(get_preset("tutoring_binary")):
        assert spec.is_glmm and spec.method == "ML"  # no linear estimator, no REML column


def test_crossed_binary_designs_get_the_crossed_glmm():
    moving = get_preset("tutoring_moving")
    moving.family, moving.link = "binomial", "logit"
    assert crossed_model_text(moving) == "melogit || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id"
    assert [spec.text for spec in default_estimators(moving)] == BINARY_SET + [
        "melogit || dist_id: || school_id: || student_id:",
        "melogit || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id"]
    design = binary_neighbourhoods()
    specs = nested_and_crossed_models(design)
    assert [spec.to_stata() for spec in specs] == [
        "melogit score ses || dist_id: || school_id:, intpoints(1)",
        "melogit score ses || dist_id: || _all: R.neigh_id || school_id:, intpoints(1)"]
    assert all(spec.family == "binomial" and spec.method == "ML" for spec in specs)


# ----- the numbers --------------------------------------------------------------------------------
def test_glmm_columns_are_the_direct_fits(binary, binary_comparison):
    assert [row.name for row in binary_comparison.table] == BINARY_SET
    for name, text in [("melogit || student_id:", "melogit pass tutoring || student_id:"),
                       (f"melogit {NESTED}", f"melogit pass tutoring {NESTED}")]:
        direct = fit_mixed(binary.frame, ModelSpec.parse(text), predict=False)
        shown = binary_comparison.result(name)
        assert [row.term for row in shown.fixed] == [row.term for row in direct.fixed]
        for ours, theirs in zip(shown.fixed, direct.fixed):
            assert ours.coef == pytest.approx(theirs.coef, abs=1e-10)
            assert ours.se == pytest.approx(theirs.se, abs=1e-10)
        summary = binary_comparison.summary(name)
        assert summary.treatment.estimate == pytest.approx(direct.coef("tutoring").coef, abs=1e-10)
        for row in direct.random:
            assert summary.component(f"{row.level}:{row.param}").estimate == pytest.approx(row.estimate, abs=1e-10)
        assert summary.truth_note is None
        assert summary.treatment.truth == 0.5
        low, high = summary.treatment.ci
        assert summary.treatment.covers == (low <= 0.5 <= high)
    all_levels = binary_comparison.summary(f"melogit {NESTED}")
    assert all_levels.component("teach_id:sd(_cons)").truth == 0.8
    assert binary_comparison.component_keys == [f"{level}:sd(_cons)" for level in
                                                ("dist_id", "school_id", "teach_id", "student_id")]


@pytest.mark.parametrize("command, model", [("logit", sm.Logit), ("probit", sm.Probit)])
def test_the_pooled_column_is_the_single_level_model(binary, command, model):
    comparison = compare(binary.frame, "pass", ["tutoring"], [command], truth=binary.truth)
    reference = model(binary.frame["pass"].astype(float),
                      sm.add_constant(binary.frame[["tutoring"]].astype(float))).fit(disp=0, tol=1e-12)
    result = comparison.result(command)
    assert result.coef("tutoring").coef == pytest.approx(reference.params["tutoring"], rel=1e-7)
    assert result.coef("_cons").coef == pytest.approx(reference.params["const"], rel=1e-7)
    assert result.coef("tutoring").se == pytest.approx(reference.bse["tutoring"], rel=1e-6)
    assert result.loglik == pytest.approx(reference.llf, rel=1e-10)
    assert result.model == f"{command} pass tutoring"
    # the logit is on the truth's scale; the probit is not (the design's link is logit)
    summary = comparison.summary(command)
    assert (summary.truth_note is None) == (command == "logit")


def test_poisson_columns(tmp_path):
    data = simulate(poisson_design(), seed=4)
    outcome, predictors = design_model(data.design)
    comparison = compare(data.frame, outcome, predictors, default_estimators(data.design), truth=data.truth)
    reference = sm.Poisson(data.frame[outcome].astype(float),
                           sm.add_constant(data.frame[predictors].astype(float))).fit(disp=0, tol=1e-12)
    pooled = comparison.result("poisson")
    for term in predictors:
        assert pooled.coef(term).coef == pytest.approx(reference.params[term], rel=1e-7)
        assert pooled.coef(term).se == pytest.approx(reference.bse[term], rel=1e-6)
    direct = fit_mixed(data.frame, ModelSpec.parse(f"mepoisson {outcome} {' '.join(predictors)} || school_id:"),
                       predict=False)
    summary = comparison.summary("mepoisson || school_id:")
    assert summary.treatment.estimate == pytest.approx(direct.coef(predictors[0]).coef, abs=1e-10)
    assert summary.treatment.truth == 0.3 and summary.truth_note is None


def test_linear_estimators_on_a_binary_outcome_get_no_truth(binary):
    estimators = ["ols", "fe student_id", "re student_id", "mixed || student_id:, reml", "melogit || student_id:"]
    comparison = compare(binary.frame, "pass", ["tutoring"], estimators, truth=binary.truth)
    for summary in comparison.table[:4]:
        assert summary.truth_note.startswith("linear probability model: not comparable with the latent-scale truth")
        assert summary.treatment.truth is None and summary.treatment.covers is None
        assert all(component.truth is None for component in summary.components)
    glmm = comparison.table[4]
    assert glmm.truth_note is None and glmm.treatment.truth == 0.5 and glmm.treatment.covers is not None
    text = format_comparison(comparison)
    coverage = next(line for line in text.splitlines() if line.startswith("  95% CI covers truth"))
    assert cells(coverage, 6) == ["", "", "", "", "yes" if glmm.treatment.covers else "no", ""]
    assert "Note (1): linear probability model: not comparable with the latent-scale truth (binomial, logit link)" in text
    assert not any(line.startswith("Note (5)") and "not comparable" in line for line in text.splitlines())
    round_trip = Comparison.from_dict(json.loads(comparison.to_json()))
    assert [row.truth_note for row in round_trip.table] == [row.truth_note for row in comparison.table]


def test_all_levels_glmm_recovers_the_latent_truth():
    data = simulate(get_preset("tutoring_binary").with_units("dist_id", 6), seed=11)
    outcome, predictors = design_model(data.design)
    comparison = compare(data.frame, outcome, predictors, [f"melogit {NESTED}"], truth=data.truth)
    treatment = comparison.table[0].treatment
    assert abs(treatment.estimate - 0.5) < 3 * treatment.se
    # the pooled logit is attenuated towards 0 (population-averaged), the GLMM is not
    pooled = compare(data.frame, outcome, predictors, ["logit"], truth=data.truth).table[0].treatment
    assert abs(pooled.estimate) < abs(treatment.estimate)


# ----- the command line ---------------------------------------------------------------------------
def test_cli_prints_the_binary_comparison(capsys, binary_comparison):
    assert main.main(["compare", "--preset", "tutoring_binary", "--units", "dist_id=3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "Truth: the parameters the data were simulated from (seed 1, on the latent logit scale)" in out
    for number, name in enumerate(BINARY_SET, start=1):
        assert f"({number}) {name}    [" in out
    lines = out.splitlines()
    heading = next(line for line in lines if line.rstrip().endswith("Truth"))
    assert cells(heading, 4) == ["logit", "melogit", "melogit", "Truth"]
    expected = "".join(f"{row.treatment.estimate:>12.4f}" for row in binary_comparison.table)
    assert f"{'tutoring':<24}{expected}{0.5:>12.4f}" in out
    coverage = next(line for line in lines if line.startswith("  95% CI covers truth"))
    assert cells(coverage, 3) == ["yes" if row.treatment.covers else "no" for row in binary_comparison.table]
    assert "Residual" not in out  # no linear column, no residual sd


def test_cli_dfmethod_leaves_the_glmms_alone(capsys):
    assert main.main(["compare", "--preset", "tutoring_binary", "--units", "dist_id=3", "--seed", "1",
                      "--dfmethod", "kroger"]) == 0
    captured = capsys.readouterr()
    for number, name in enumerate(BINARY_SET, start=1):
        assert f"({number}) {name}    [" in captured.out
    assert "fitted by REML" not in captured.err


# ----- Monte Carlo --------------------------------------------------------------------------------
def test_montecarlo_reads_glmm_estimators_and_stata_text():
    from engine.montecarlo.models import is_estimator_string, load_model

    design = get_preset("tutoring_binary").with_units("dist_id", 2)
    assert is_estimator_string("melogit || student_id:") and is_estimator_string("logit")
    assert not is_estimator_string("melogit pass tutoring || student_id:")
    data = simulate(design, seed=5)
    as_estimator = load_model("melogit || school_id:", design).fit(data.frame)
    as_stata = load_model("melogit pass tutoring || school_id:", design).fit(data.frame)
    assert as_estimator.family == "binomial" and as_estimator.coef("tutoring").coef == pytest.approx(
        as_stata.coef("tutoring").coef, abs=1e-10)
    pooled = load_model("logit", design).fit(data.frame)
    assert pooled.family == "binomial" and not pooled.random


def test_pooled_estimator_parses_to_the_single_level_glmm():
    spec = parse_estimator("probit")
    assert spec.is_pooled and spec.level_names == [] and spec.method == "ML"
    model = spec.model_spec("pass", ["tutoring"])
    assert (model.family, model.link, model.levels) == ("binomial", "probit", [])


def test_xtlogit_re_is_the_one_level_glmm_by_12_point_quadrature(binary):
    comparison = compare(binary.frame, "pass", ["tutoring"],
                         ["xtlogit student_id, re", "melogit || student_id:, intpoints(12)", "melogit || student_id:"],
                         truth=binary.truth)
    xtlogit, quadrature, laplace = comparison.table
    assert xtlogit.treatment.estimate == pytest.approx(quadrature.treatment.estimate, abs=1e-12)
    assert xtlogit.component("student_id:sd(_cons)").estimate == pytest.approx(
        quadrature.component("student_id:sd(_cons)").estimate, abs=1e-12)
    assert comparison.result("xtlogit student_id, re").nagq == 12
    # two rows per student: Laplace puts the student sd well below the quadrature's (and the truth's 1.0)
    assert laplace.component("student_id:sd(_cons)").estimate < 0.9 * xtlogit.component("student_id:sd(_cons)").estimate
    assert "xtlogit RE" in format_comparison(comparison)


def test_count_preset_recovers_its_truth_and_the_pooled_note_fits_a_log_link():
    """The tutoring_absences preset (Poisson, log link): the all-levels mepoisson recovers the
    tutoring effect and each level's sd, and the pooled Poisson's note does not claim attenuation
    (with a log link random intercepts shift only the intercept)."""
    data = simulate(get_preset("tutoring_absences").with_units("dist_id", 10), seed=4)
    assert data.frame["absences"].dtype.kind in "iu" and (data.frame["absences"] >= 0).all()
    outcome, predictors = design_model(data.design)
    estimators = default_estimators(data.design)
    comparison = compare(data.frame, outcome, predictors, estimators, truth=data.truth)
    pooled, *_, nested = comparison.table
    assert abs(nested.treatment.estimate - (-0.3)) < 3 * nested.treatment.se
    for level, sd in {"dist_id": 0.2, "school_id": 0.3, "teach_id": 0.3, "student_id": 0.5}.items():
        component = nested.component(f"{level}:sd(_cons)")
        assert component.truth == sd and abs(component.estimate - sd) < 0.15, level
    # a log link: the pooled slope estimates the same effect, within its (too small) standard error
    assert abs(pooled.treatment.estimate - nested.treatment.estimate) < 3 * nested.treatment.se
    text = format_comparison(comparison)
    assert "treats the rows as independent" in text and "population-averaged" not in text
