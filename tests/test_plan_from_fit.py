"""Plan the next study from a fit: the design's sds, counts and effects are the fit's, a simulation
from the design recovers them, and ``montecarlo --from-fit`` runs the pilot's design."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.estimators import EstimatorSpec, run_estimator
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.power.from_fit import design_from_fit, load_fit
from engine.simulate import simulate
from main import main

HSB = pd.read_csv("tests/data/hsb.csv")
HSB_MODEL = "mathach ses sector || school: ses, covariance(unstructured) reml"


@pytest.fixture(scope="module")
def hsb_fit():
    return fit_mixed(HSB, ModelSpec.parse(HSB_MODEL))


def test_design_carries_the_fits_sds_correlation_counts_and_effects(hsb_fit):
    design, model, notes = design_from_fit(hsb_fit, HSB, treatment="sector")
    school = design.level("school")
    assert school.sd == hsb_fit.random_param("school", "sd(_cons)").estimate
    (slope,) = school.slopes
    assert (slope.variable, slope.sd, slope.corr) == (
        "ses", hsb_fit.random_param("school", "sd(ses)").estimate,
        hsb_fit.random_param("school", "corr(ses,_cons)").estimate)
    assert design.residual_sd == hsb_fit.random_param("Residual", "sd(Residual)").estimate
    assert design.intercept == hsb_fit.coef("_cons").coef
    # 160 schools, 7,185 students: 44.9 per school on average, 45 in the design.
    assert school.units.n == 160 and design.occasions.count == 45
    treatment = design.treatment
    assert (treatment.name, treatment.level, treatment.allocation) == ("sector", "school", "fixed")
    assert treatment.effect == hsb_fit.coef("sector").coef
    schools = HSB.groupby("school").sector.first()
    assert treatment.probability == pytest.approx(schools.mean(), abs=1e-6)
    (ses,) = design.covariates
    assert (ses.level, ses.distribution, ses.coef) == ("observation", "normal", hsb_fit.coef("ses").coef)
    assert ses.mean == pytest.approx(HSB.ses.mean()) and ses.sd == pytest.approx(HSB.ses.std())
    assert ModelSpec.parse(model) == ModelSpec.parse(HSB_MODEL)
    assert any("44.91 rows per group" in note for note in notes)
    truth = design.truth()
    for row in hsb_fit.random:
        assert truth.random[f"{row.level}:{row.param}"] == row.estimate


def test_a_simulation_from_the_design_recovers_the_fits_sds(hsb_fit):
    design, model, _ = design_from_fit(hsb_fit, HSB, treatment="sector", units={"school": 600})
    refit = fit_mixed(simulate(design, 3).frame, ModelSpec.parse(model))
    for row in hsb_fit.random:
        again = refit.random_param(row.level, row.param)
        # 600 schools: estimates within 3.5 of their own standard errors of the pilot's values.
        assert abs(again.estimate - row.estimate) < 3.5 * again.se, (row.param, again.estimate, row.estimate)
    for term in ("ses", "sector", "_cons"):
        again = refit.coef(term)
        assert abs(again.coef - hsb_fit.coef(term).coef) < 3.5 * again.se, term


def test_without_data_only_the_treatment_is_kept_and_drops_are_named(hsb_fit):
    design, model, notes = design_from_fit(hsb_fit, treatment="sector", units={"school": 30})
    assert design.covariates == [] and design.treatment.level == "school"
    assert design.treatment.probability == 0.5 and design.level("school").units.n == 30
    assert design.level("school").slopes == []
    assert ModelSpec.parse(model) == ModelSpec.parse("mathach sector || school:, reml")
    assert "fixed effect ses dropped (no data given to learn its distribution)" in notes
    assert "random slope on ses at school dropped: ses is not a variable of the design" in notes


def test_four_level_pilot_with_a_row_level_treatment():
    data = pd.read_csv("tests/data/seed_d5.csv")
    fit = fit_mixed(data, ModelSpec.parse(
        "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"))
    design, model, notes = design_from_fit(fit, data, treatment="tutoring")
    assert [level.units.n for level in design.levels] == [5, 5, 8, 20] and design.occasions.count == 2
    for level in design.levels:
        assert level.sd == fit.random_param(level.name, "sd(_cons)").estimate
    assert design.treatment.level == "observation"
    assert design.treatment.probability == pytest.approx(data.tutoring.mean(), abs=1e-6)


def test_refusals_name_the_problem(hsb_fit):
    ols = run_estimator(EstimatorSpec.parse("ols"), HSB, "mathach", ["ses"])
    with pytest.raises(UserInputError, match="needs a mixed model"):
        design_from_fit(ols)
    with pytest.raises(UserInputError, match="the fit has no fixed effect 'female'"):
        design_from_fit(hsb_fit, treatment="female")
    with pytest.raises(UserInputError, match="a treatment is 0/1"):
        design_from_fit(hsb_fit, HSB, treatment="ses")


def test_montecarlo_from_fit_runs_the_pilots_design(tmp_path, hsb_fit, capsys):
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(hsb_fit.to_json())
    assert load_fit(str(fit_path)).random == hsb_fit.random
    out = tmp_path / "mc.json"
    assert main(["montecarlo", "--from-fit", str(fit_path), "--treatment", "sector", "--units", "school=12",
                 "--reps", "4", "--seed", "1", "--workers", "1", "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "model: mathach sector || school:, reml" in err
    study = json.loads(out.read_text())["study"]
    level = study["design"]["levels"][0]
    assert level["units"]["n"] == 12 and level["sd"] == hsb_fit.random_param("school", "sd(_cons)").estimate
    assert study["models"] == ["mathach sector || school:, reml"]
    assert main(["montecarlo", "--preset", "cluster_trial", "--models", "score || school_id:", "--reps", "2",
                 "--treatment", "x"]) == 2
    assert "apply only with --from-fit" in capsys.readouterr().err
