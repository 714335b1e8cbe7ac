"""The seed's comparison: OLS, FE, RE and mixed models side by side, against the truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import main
from tests.reference_cases import load_case
from engine.compare import (Comparison, compare, default_estimators, design_model, estimator_to_json,
                            format_comparison)
from engine.design import Truth
from engine.errors import Cancelled, UserInputError
from engine.presets import get_preset
from engine.simulate import simulate

HERE = Path(__file__).parent
ROOT = HERE.parent
PANEL_RTOL = 1e-6
MIXED_RTOL = 1e-4
NESTED = "|| dist_id: || school_id: || teach_id: || student_id:"
SEED_SET = ["ols", "fe student_id", "re student_id", "mixed || student_id:",
            f"mixed {NESTED}, reml", f"mixed {NESTED}, ml"]
REFERENCE_SET = ["ols", "fe student_id", "re student_id", f"mixed {NESTED}, reml"]


@pytest.fixture(scope="module")
def seed() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "seed_d5.csv")


@pytest.fixture(scope="module")
def seed_comparison(seed) -> Comparison:
    return compare(seed, "perform", ["tutoring"], REFERENCE_SET)


@pytest.fixture(scope="module")
def simulated():
    return simulate(get_preset("tutoring"), seed=1)


@pytest.fixture(scope="module")
def simulated_comparison(simulated) -> Comparison:
    outcome, predictors = design_model(simulated.design)
    return compare(simulated.frame, outcome, predictors, default_estimators(simulated.design),
                   truth=simulated.truth)


def assert_fixed(result, expected: dict, rtol: float) -> None:
    for term, values in expected.items():
        row = result.coef("_cons" if term == "(Intercept)" else term)
        assert row.coef == pytest.approx(values["coef"], rel=rtol), term
        assert row.se == pytest.approx(values["se"], rel=rtol), term


# ----- reference numbers ----------------------------------------------------------------------
def test_ols_matches_reference(seed_comparison):
    expected = load_case("seed_d5_ols")
    result = seed_comparison.result("ols")
    assert result.model == expected["stata"]
    assert_fixed(result, expected["fixed"], PANEL_RTOL)
    row = seed_comparison.summary("ols").treatment
    assert row.estimate == pytest.approx(expected["fixed"]["tutoring"]["coef"], rel=PANEL_RTOL)
    assert row.se == pytest.approx(expected["fixed"]["tutoring"]["se"], rel=PANEL_RTOL)


def test_fe_matches_reference(seed_comparison):
    expected = load_case("seed_d5_xtreg_fe")
    assert_fixed(seed_comparison.result("fe student_id"), expected["fixed"], PANEL_RTOL)
    summary = seed_comparison.summary("fe student_id")
    assert summary.component("Residual:sd(Residual)").estimate == pytest.approx(expected["sigma_e"], rel=PANEL_RTOL)
    assert summary.treatment.estimate == pytest.approx(expected["fixed"]["tutoring"]["coef"], rel=PANEL_RTOL)
    entry = estimator_to_json(seed_comparison.result("fe student_id"))
    assert entry["f_test_u0"]["stat"] == pytest.approx(expected["F_u0"]["stat"], rel=PANEL_RTOL)
    assert (entry["f_test_u0"]["df1"], entry["f_test_u0"]["df2"]) == (expected["F_u0"]["df1"], expected["F_u0"]["df2"])


def test_re_and_hausman_match_reference(seed_comparison):
    expected = load_case("seed_d5_xtreg_re")
    assert_fixed(seed_comparison.result("re student_id"), expected["fixed"], PANEL_RTOL)
    summary = seed_comparison.summary("re student_id")
    assert summary.component("student_id:sd(_cons)").estimate == pytest.approx(expected["sigma_u"], rel=PANEL_RTOL)
    assert summary.component("Residual:sd(Residual)").estimate == pytest.approx(expected["sigma_e"], rel=PANEL_RTOL)
    entry = estimator_to_json(seed_comparison.result("re student_id"))
    assert entry["theta"] == pytest.approx(expected["theta"], rel=PANEL_RTOL)
    (pair,) = seed_comparison.hausman
    assert (pair.fe, pair.re, pair.group) == ("fe student_id", "re student_id", "student_id")
    assert pair.stat == pytest.approx(expected["hausman"]["stat"], rel=PANEL_RTOL)
    assert pair.df == expected["hausman"]["df"]
    for name in ("fe student_id", "re student_id"):
        assert seed_comparison.result(name).hausman.stat == pytest.approx(pair.stat, rel=1e-12)


def test_nested_reml_matches_reference(seed_comparison):
    expected = load_case("seed_d5_nested4_reml")
    name = f"mixed {NESTED}, reml"
    result = seed_comparison.result(name)
    assert result.nobs == expected["nobs"] and result.method == "REML"
    assert result.loglik == pytest.approx(expected["loglik"], rel=MIXED_RTOL)
    assert_fixed(result, expected["fixed"], MIXED_RTOL)
    summary = seed_comparison.summary(name)
    for level, values in expected["random"].items():
        key = "Residual:sd(Residual)" if level == "Residual" else f"{level}:sd(_cons)"
        assert summary.component(key).estimate == pytest.approx(values["sd"], rel=MIXED_RTOL), key


def test_components_line_up_with_the_mixed_names(seed_comparison):
    assert seed_comparison.component_keys == ["dist_id:sd(_cons)", "school_id:sd(_cons)", "teach_id:sd(_cons)",
                                              "student_id:sd(_cons)", "Residual:sd(Residual)"]
    assert [row.key for row in seed_comparison.summary("fe student_id").components] == [
        "student_id:sd(_cons)", "Residual:sd(Residual)"]
    assert [row.key for row in seed_comparison.summary("ols").components] == ["Residual:sd(Residual)"]


# ----- truth and coverage ---------------------------------------------------------------------
def test_covers_flags_follow_the_intervals(seed):
    """True effect 2.03: above the FE interval (upper 2.0106), inside the OLS, RE and mixed ones."""
    truth = Truth(fixed={"tutoring": 2.03, "_cons": 0.0}, random={"student_id:sd(_cons)": 5.0})
    comparison = compare(seed, "perform", ["tutoring"], REFERENCE_SET, truth=truth)
    assert [row.treatment.covers for row in comparison.table] == [True, False, True, True]
    assert all(row.treatment.truth == 2.03 for row in comparison.table)
    assert comparison.summary("re student_id").component("student_id:sd(_cons)").truth == 5.0
    assert comparison.summary("re student_id").component("Residual:sd(Residual)").truth is None


def test_without_truth_there_is_no_truth_column(seed_comparison):
    assert seed_comparison.truth is None
    assert all(row.treatment.covers is None and row.treatment.truth is None for row in seed_comparison.table)
    text = format_comparison(seed_comparison)
    assert "Truth" not in text and "covers" not in text


def test_simulated_preset_has_the_truth_column(simulated, simulated_comparison):
    truth = simulated.truth
    assert [row.name for row in simulated_comparison.table] == SEED_SET
    for row, result in zip(simulated_comparison.table, simulated_comparison.estimators):
        assert row.treatment.truth == truth.fixed["tutoring"] == 2.0
        lower, upper = result.coef("tutoring").ci
        assert row.treatment.covers == (lower <= 2.0 <= upper)
        for component in row.components:
            assert component.truth == truth.random[component.key]
    nested = simulated_comparison.summary(f"mixed {NESTED}, reml")
    assert {row.key: row.truth for row in nested.components} == {
        "dist_id:sd(_cons)": 2.0, "school_id:sd(_cons)": 3.0, "teach_id:sd(_cons)": 4.0,
        "student_id:sd(_cons)": 5.0, "Residual:sd(Residual)": 6.0}
    text = format_comparison(simulated_comparison)
    header = next(line for line in text.splitlines() if line.rstrip().endswith("Truth"))
    assert header.split() == ["OLS", "FE", "RE", "Mixed", "ML", "Mixed", "REML", "Mixed", "ML", "Truth"]
    rows = {line[:24].strip(): line[24:].split() for line in text.splitlines()}
    assert rows["tutoring"][-1] == "2.0000"
    assert rows["95% CI covers truth"] == ["yes" if row.treatment.covers else "no"
                                           for row in simulated_comparison.table]
    nested_ml = simulated_comparison.summary(SEED_SET[-1])
    assert rows["dist_id:sd(_cons)"] == [f"{nested.component('dist_id:sd(_cons)').estimate:.4f}",
                                         f"{nested_ml.component('dist_id:sd(_cons)').estimate:.4f}", "2.0000"]
    assert rows["Residual:sd(Residual)"][-1] == "6.0000" and len(rows["Residual:sd(Residual)"]) == 7
    assert text.count("Hausman test (fe student_id vs re student_id)") == 1


def test_default_estimators_of_the_presets():
    assert [spec.text for spec in default_estimators(get_preset("tutoring"))] == SEED_SET
    # One row per student: the bottom level is the school; sector is constant within schools but ses is not.
    assert [spec.text for spec in default_estimators(get_preset("two_level"))] == [
        "ols", "fe school_id", "re school_id", "mixed || school_id:, reml", "mixed || school_id:, ml"]
    # The treatment is given to whole schools: xtreg, fe at school_id would have nothing to estimate.
    assert [spec.text for spec in default_estimators(get_preset("cluster_trial"))] == [
        "ols", "re school_id", "mixed || school_id:, reml", "mixed || school_id:, ml"]
    assert design_model(get_preset("two_level")) == ("score", ["ses", "sector"])


# ----- JSON -----------------------------------------------------------------------------------
def test_json_shape(seed_comparison):
    data = json.loads(seed_comparison.to_json())
    assert {"estimators", "truth", "table"} <= set(data)
    assert data["truth"] is None
    assert [entry["name"] for entry in data["estimators"]] == REFERENCE_SET
    for entry in data["estimators"]:
        assert entry["fixed"][0]["term"] == "tutoring" and {"coef", "se"} <= set(entry["fixed"][0])
    ols, fe, re, mixed = data["estimators"]
    assert ols == seed_comparison.result("ols").to_dict()
    assert mixed == json.loads(json.dumps(seed_comparison.result(REFERENCE_SET[-1]).to_dict()))
    for entry in (fe, re):
        assert "theta_re" not in entry
        assert {"sigma_u", "sigma_e", "rho", "theta", "corr_u_xb", "f_test_u0", "hausman"} <= set(entry)
        assert set(entry["hausman"]) == {"stat", "df", "p"}
    assert set(fe["f_test_u0"]) == {"stat", "df1", "df2", "p"}
    assert fe["theta"] is None and re["f_test_u0"] is None and re["corr_u_xb"] is None
    assert data["table"][1]["name"] == "fe student_id"
    assert data["table"][1]["components"][0] == {
        "key": "student_id:sd(_cons)", "estimate": fe["sigma_u"], "truth": None}


def test_json_round_trip(simulated_comparison):
    data = json.loads(simulated_comparison.to_json())
    again = Comparison.from_dict(data)
    assert again.truth == simulated_comparison.truth
    assert again.table == simulated_comparison.table
    assert again.result("re student_id").theta_re == pytest.approx(
        simulated_comparison.result("re student_id").theta_re, rel=1e-12)
    assert again.result("fe student_id").f_test_u0 == simulated_comparison.result("fe student_id").f_test_u0
    assert json.loads(again.to_json()) == data


# ----- options, notes and errors --------------------------------------------------------------
def within_and_between_frame() -> pd.DataFrame:
    """x varies within groups; z is constant within each group."""
    rng = np.random.default_rng(9)
    group = np.repeat(np.arange(40), 5)
    x = rng.normal(size=group.size)
    z = rng.normal(size=40)[group]
    y = 0.5 * x + 2.0 * z + rng.normal(size=40)[group] + rng.normal(size=group.size)
    return pd.DataFrame({"g": group, "x": x, "z": z, "y": y})


def test_a_treatment_constant_within_fe_groups_is_dropped_with_a_note():
    comparison = compare(within_and_between_frame(), "y", ["z", "x"], ["ols", "fe g", "re g"])
    assert comparison.treatment == "z"
    assert comparison.summary("fe g").treatment is None
    assert comparison.summary("re g").treatment.term == "z"
    text = format_comparison(comparison)
    assert "Note (2): z omitted because of collinearity" in text
    assert "(2) did not estimate z" in text


def test_fe_with_nothing_left_stops_the_comparison_with_a_clear_message():
    with pytest.raises(UserInputError, match=r"^fe g: no predictor varies within g"):
        compare(within_and_between_frame(), "y", ["z"], ["ols", "fe g"])


def test_robust_fits_get_no_hausman_test(seed):
    comparison = compare(seed, "perform", ["tutoring"], ["fe student_id, vce(robust)", "re student_id"])
    assert comparison.hausman == []
    assert comparison.result("re student_id").hausman is None
    assert "FE rob." in format_comparison(comparison)


@pytest.mark.parametrize("estimators, treatment, message", [
    ([], None, "no estimator to compare"),
    (["ols", "ols"], None, "listed more than once"),
    (["ols"], "sector", "treatment 'sector' is not among the predictors"),
    (["xtgee student_id"], None, "unknown estimator 'xtgee student_id'"),
    # A binary model of a continuous outcome is refused, naming the estimator and the outcome.
    (["probit"], None, "^probit: the outcome 'perform' must be 0 or 1"),
])
def test_bad_requests(seed, estimators, treatment, message):
    with pytest.raises(UserInputError, match=message):
        compare(seed, "perform", ["tutoring"], estimators, treatment=treatment)


def test_progress_and_stop(seed):
    calls = []
    compare(seed, "perform", ["tutoring"], ["ols", "re student_id"], progress=lambda *args: calls.append(args))
    assert calls == [(0, 2, "ols"), (1, 2, "re student_id"), (2, 2, "")]
    asked = []

    def stop_after_first() -> bool:
        asked.append(True)
        return len(asked) > 2

    with pytest.raises(Cancelled):
        compare(seed, "perform", ["tutoring"], ["ols", "re student_id"], should_stop=stop_after_first)


# ----- the command line -----------------------------------------------------------------------
def test_cli_prints_the_seed_comparison(capsys, simulated_comparison):
    assert main.main(["compare", "--preset", "tutoring", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "Truth: the parameters the data were simulated from (seed 1)" in out
    for number, name in enumerate(SEED_SET, start=1):
        assert f"({number}) {name}    [" in out
    expected_row = "".join(f"{row.treatment.estimate:>12.4f}" for row in simulated_comparison.table)
    assert f"{'tutoring':<24}{expected_row}{2.0:>12.4f}" in out


def test_cli_json_and_reports(tmp_path, capsys):
    path = tmp_path / "comparison.json"
    code = main.main(["compare", "--preset", "tutoring", "--seed", "2", "--units", "student_id=5",
                      "--model", "perform tutoring", "--estimator", "ols", "--estimator", "fe student_id",
                      "--estimator", "re student_id", "--reports", "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("Number of obs     =      2,000") == 3  # one full report per estimator
    data = json.loads(path.read_text())
    assert [entry["name"] for entry in data["estimators"]] == ["ols", "fe student_id", "re student_id"]
    assert data["truth"]["seed"] == 2 and data["truth"]["fixed"]["tutoring"] == 2.0
    assert set(data["estimators"][1]["hausman"]) == {"stat", "df", "p"}
    assert data["table"][2]["treatment"]["truth"] == 2.0


def test_cli_data_file_with_its_truth_uses_the_design(tmp_path, capsys):
    from engine.data_io import write_data

    data = simulate(get_preset("tutoring").with_units("student_id", 4), seed=3)
    path = tmp_path / "sim.csv"
    write_data(data.frame, path, truth=data.truth)
    assert main.main(["compare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(seed 3)" in out and f"(6) mixed {NESTED}, ml" in out


@pytest.mark.parametrize("argv, message", [
    (["compare", str(HERE / "data" / "seed_d5.csv")], "give the outcome and predictors with --model"),
    (["compare", str(HERE / "data" / "seed_d5.csv"), "--model", "perform tutoring"], "give the estimators"),
    (["compare"], "give a data file (with --model) or --preset NAME"),
    (["compare", "--preset", "tutoring", "--estimator", "fe"], "estimator 'fe': fe needs the panel variable"),
    (["compare", "--preset", "tutoring", "--units", "student_id"], "write LEVEL=N"),
])
def test_cli_errors(capsys, argv, message):
    assert main.main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_subprocess_runs_the_seed_comparison():
    # How long it takes is measured by benchmarks, not asserted here.
    completed = subprocess.run([sys.executable, "main.py", "compare", "--preset", "tutoring", "--seed", "1"],
                               cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    assert "Truth" in completed.stdout and f"(5) mixed {NESTED}, reml" in completed.stdout
