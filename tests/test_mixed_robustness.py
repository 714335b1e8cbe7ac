"""Inputs the engine used to fit silently wrong or crash on: each is now fitted right or refused
with one clear message."""

import math

import numpy as np
import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, relative_error


@pytest.fixture(scope="module")
def slopes():
    return pd.read_csv(DATA / "slopes_unbalanced.csv").dropna().reset_index(drop=True)


def _ols_logliks(frame, outcome, predictors):
    """ML and REML log-likelihoods of the linear model, by hand."""
    y = frame[outcome].to_numpy(float)
    x = np.column_stack([frame[p].to_numpy(float) for p in predictors] + [np.ones(len(frame))])
    n, p = x.shape
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    rss = float(np.sum((y - x @ beta) ** 2))
    ml = -0.5 * n * (1 + math.log(2 * math.pi * rss / n))
    reml = -0.5 * ((n - p) * (1 + math.log(2 * math.pi * rss / (n - p))) + np.linalg.slogdet(x.T @ x)[1])
    return ml, reml


# ----- a level with a single group ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["reml", "ml"])
def test_single_group_level_is_reported_not_identified_and_held_at_zero(slopes, method):
    frame = slopes.assign(region=7)
    option = ", reml" if method == "reml" else ""
    result = fit_mixed(frame, ModelSpec.parse(f"y x || region: || school:{option}"))
    without = fit_mixed(frame, ModelSpec.parse(f"y x || school:{option}"))
    assert any("region has a single group" in w and "not identified" in w for w in result.warnings)
    row = result.random_param("region", "sd(_cons)")
    assert row.estimate == 0.0 and row.se is None
    # The fit is the one without the level (REML used to keep the start value, sd = sigma).
    assert relative_error(result.loglik, without.loglik) < 1e-10
    for param in (("school", "sd(_cons)"), ("Residual", "sd(Residual)")):
        assert relative_error(result.random_param(*param).estimate, without.random_param(*param).estimate) < 1e-6
    assert result.n_params == without.n_params  # the held variance is not a parameter
    assert result.lr_test.df == without.lr_test.df


def test_single_group_as_the_only_level_gives_the_linear_model(slopes):
    frame = slopes.assign(region="north")
    ml, reml = _ols_logliks(frame, "y", ["x"])
    for model, expected in (("y x || region:", ml), ("y x || region:, reml", reml)):
        result = fit_mixed(frame, ModelSpec.parse(model))
        assert relative_error(result.loglik, expected) < 1e-10
        assert any("not identified" in w for w in result.warnings)


def test_compare_with_one_top_unit_carries_the_warning(slopes):
    from engine.compare import compare, format_comparison

    frame = slopes.assign(region=1)
    comparison = compare(frame, "y", ["x"], ["ols", "mixed || region: || school:, reml"])
    mixed = comparison.result("mixed || region: || school:, reml")
    assert any("not identified" in w for w in mixed.warnings)
    assert mixed.random_param("region", "sd(_cons)").estimate == 0.0
    assert "region has a single group" in format_comparison(comparison)


def test_monte_carlo_sweep_down_to_one_unit_runs_and_says_so():
    from engine.montecarlo import Study, Sweep
    from engine.montecarlo.replicate import run_replications
    from engine.montecarlo.study import single_group_notes
    from engine.presets import get_preset

    design = get_preset("tutoring").with_units("school_id", 2).with_units("teach_id", 2)
    model = "perform tutoring || dist_id: || school_id: || student_id:, reml"
    study = Study(design=design, models=[model], reps=1, seed=5, sweep=Sweep.parse("dist_id=1,3")).validate()
    records = run_replications(study, 0, [0])
    assert (records["error"] == "").all()
    top = records[records["param"] == "dist_id:sd(_cons)"].iloc[0]
    assert top["estimate"] == 0.0 and bool(top["at_zero"]) and bool(top["fit_boundary"])
    notes = single_group_notes(study)
    assert len(notes) == 1 and "dist_id = 1" in notes[0] and "not identified" in notes[0]


# ----- bad values ------------------------------------------------------------------------------
def test_infinite_predictor_is_refused_naming_the_column(slopes):
    frame = slopes.copy()
    frame.loc[3, "x"] = np.inf
    for model in ("y x || school:", "y z || school: x"):
        with pytest.raises(UserInputError, match=r"column 'x' has an infinite value \(inf in data row 4\)"):
            fit_mixed(frame, ModelSpec.parse(model))


def test_outcome_constant_within_groups_is_refused_with_a_reason(slopes):
    frame = slopes.copy()
    frame["y"] = frame.groupby("school")["y"].transform("mean")
    with pytest.raises(UserInputError, match="outcome 'y' is constant within every school group"):
        fit_mixed(frame, ModelSpec.parse("y x || school:, reml"))
    with pytest.raises(UserInputError, match="constant within every class group"):
        fit_mixed(frame, ModelSpec.parse("y z || school: || class:"))
    # One row off its school's value: the outcome varies within a group and the fit runs.
    varying = frame.copy()
    varying.loc[0, "y"] += 1.0
    result = fit_mixed(varying, ModelSpec.parse("y x || school:, reml"))
    assert result.converged and result.random_param("Residual", "sd(Residual)").estimate > 0


def test_icc_interval_when_a_level_has_one_row_per_group(slopes):
    from engine.model_comparison import intraclass_correlations

    frame = slopes.assign(row=np.arange(len(slopes)))
    result = fit_mixed(frame, ModelSpec.parse("y x || school: || row:"))
    assert any("one observation per group" in w for w in result.warnings)
    rows = intraclass_correlations(result)
    assert [r.level for r in rows] == ["school", "row"]
    sds = [result.random_param(level, "sd(_cons)").estimate for level in ("school", "row")]
    sigma = result.random_param("Residual", "sd(Residual)").estimate
    total = sum(s ** 2 for s in sds) + sigma ** 2
    assert rows[0].estimate == pytest.approx(sds[0] ** 2 / total, rel=1e-12)
    assert rows[1].estimate == pytest.approx((sds[0] ** 2 + sds[1] ** 2) / total, rel=1e-12)
    for row in rows:
        if row.ci is not None:
            assert 0.0 <= row.ci[0] <= row.estimate <= row.ci[1] <= 1.0


# ----- random slopes that cannot be estimated ---------------------------------------------------
def test_slope_constant_within_its_groups_gets_a_warning(slopes):
    frame = slopes.assign(school_mean_x=slopes.groupby("school")["x"].transform("mean"))
    result = fit_mixed(frame, ModelSpec.parse("y x || school: school_mean_x, reml"))
    assert any("school_mean_x is constant within every school group" in w and "not identified" in w
               for w in result.warnings)
    # A slope that varies within schools gets no such warning.
    plain = fit_mixed(frame, ModelSpec.parse("y x || school: x, reml"))
    assert not any("constant within" in w for w in plain.warnings)


def test_slope_column_duplicating_another_is_refused(slopes):
    frame = slopes.assign(x_copy=slopes["x"])
    for covariance in ("", ", cov(un)"):
        with pytest.raises(UserInputError, match="random slopes 'x' and 'x_copy' at level school have the same values"):
            fit_mixed(frame, ModelSpec.parse(f"y z || school: x x_copy{covariance}"))


def test_slope_columns_linearly_dependent_with_the_intercept_are_refused(slopes):
    frame = slopes.assign(x_shifted=2.0 * slopes["x"] + 1.0)
    with pytest.raises(UserInputError, match=r"random effects at level school \(x, x_shifted, _cons\) are linearly dependent"):
        fit_mixed(frame, ModelSpec.parse("y z || school: x x_shifted, cov(un)"))
