"""regress, xtreg fe, xtreg re and hausman against reference numbers (R plm, Stata conventions)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from tests.reference_cases import load_case
from engine.errors import UserInputError
from engine.hausman import hausman
from engine.panel import fit_fe, fit_ols, fit_re
from engine.results import FitResult

HERE = Path(__file__).parent
COEF_RTOL = 1e-6
STAT_RTOL = 1e-4
PANEL = "student_id"


@pytest.fixture(scope="module")
def seed() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "seed_d5.csv")


@pytest.fixture(scope="module")
def fe(seed) -> FitResult:
    return fit_fe(seed, "perform", ["tutoring"], PANEL)


@pytest.fixture(scope="module")
def re(seed) -> FitResult:
    return fit_re(seed, "perform", ["tutoring"], PANEL)


def assert_coefficients(result: FitResult, expected: dict) -> None:
    for term, values in expected.items():
        row = result.coef(term)
        assert row.coef == pytest.approx(values["coef"], rel=COEF_RTOL), term
        assert row.se == pytest.approx(values["se"], rel=COEF_RTOL), term


# ----- reference numbers ----------------------------------------------------------------------
def test_regress_matches_reference(seed):
    expected = load_case("seed_d5_ols")
    result = fit_ols(seed, "perform", ["tutoring"])
    assert_coefficients(result, expected["fixed"])
    assert result.model == expected["stata"]
    assert [row.term for row in result.fixed] == ["tutoring", "_cons"]
    row = result.coef("tutoring")
    assert row.df == 8000 - 2
    half_width = stats.t.ppf(0.975, 7998) * row.se
    assert row.ci == pytest.approx([row.coef - half_width, row.coef + half_width], rel=1e-12)
    # With one predictor the model F is the square of its t statistic.
    assert result.wald.kind == "F" and (result.wald.df, result.wald.df2) == (1, 7998)
    assert result.wald.stat == pytest.approx(row.z ** 2, rel=1e-10)


def test_regress_loglik_and_r2_are_those_of_the_normal_linear_model(seed):
    result = fit_ols(seed, "perform", ["tutoring"])
    residuals = result.residuals
    n = result.nobs
    loglik = -n / 2 * (math.log(2 * math.pi) + math.log(residuals @ residuals / n) + 1)
    assert result.loglik == pytest.approx(loglik, rel=1e-10)
    centred = seed["perform"] - seed["perform"].mean()
    assert result.r2["r2"] == pytest.approx(1 - residuals @ residuals / (centred @ centred), rel=1e-10)
    assert result.sigma_e == pytest.approx(math.sqrt(residuals @ residuals / (n - 2)), rel=1e-10)


def test_xtreg_fe_matches_reference(fe):
    expected = load_case("seed_d5_xtreg_fe")
    assert_coefficients(fe, expected["fixed"])
    assert fe.sigma_e == pytest.approx(expected["sigma_e"], rel=STAT_RTOL)
    f_u0 = expected["F_u0"]
    assert fe.f_test_u0.kind == "F"
    assert fe.f_test_u0.stat == pytest.approx(f_u0["stat"], rel=STAT_RTOL)
    assert (fe.f_test_u0.df, fe.f_test_u0.df2) == (f_u0["df1"], f_u0["df2"])
    assert fe.coef("tutoring").df == f_u0["df2"]
    assert fe.model == "xtset student_id; xtreg perform tutoring, fe"
    assert fe.groups[0].groups == 4000 and fe.groups[0].min == fe.groups[0].max == 2


def test_xtreg_fe_constant_and_sigma_u_follow_stata(seed, fe):
    """_cons = ybar - xbar b; sigma_u is the sd of u_i over observations; rho from the two sigmas."""
    slope = fe.coef("tutoring").coef
    assert fe.coef("_cons").coef == pytest.approx(seed["perform"].mean() - slope * seed["tutoring"].mean(), rel=1e-10)
    means = seed.groupby(PANEL)[["perform", "tutoring"]].transform("mean")
    u = means["perform"] - slope * means["tutoring"] - fe.coef("_cons").coef
    assert fe.sigma_u == pytest.approx(u.std(ddof=1), rel=1e-10)
    assert fe.rho == pytest.approx(fe.sigma_u ** 2 / (fe.sigma_u ** 2 + fe.sigma_e ** 2), rel=1e-12)
    assert fe.corr_u_xb == pytest.approx(np.corrcoef(u, slope * seed["tutoring"])[0, 1], rel=1e-8)
    within = seed[["perform", "tutoring"]] - means
    assert fe.r2["within"] == pytest.approx(within.corr().iloc[0, 1] ** 2, rel=1e-8)


def test_xtreg_re_matches_reference(re):
    expected = load_case("seed_d5_xtreg_re")
    assert_coefficients(re, expected["fixed"])
    assert re.sigma_u == pytest.approx(expected["sigma_u"], rel=STAT_RTOL)
    assert re.sigma_e == pytest.approx(expected["sigma_e"], rel=STAT_RTOL)
    assert re.theta_re == pytest.approx(expected["theta"], rel=STAT_RTOL)
    assert re.coef("tutoring").df is None  # z statistics
    assert re.wald.kind == "chi2" and re.wald.df == 1
    assert re.wald.stat == pytest.approx(re.coef("tutoring").z ** 2, rel=1e-10)
    assert re.corr_u_xb is None


def test_hausman_matches_reference(seed):
    fe = fit_fe(seed, "perform", ["tutoring"], PANEL)
    re = fit_re(seed, "perform", ["tutoring"], PANEL)
    expected = load_case("seed_d5_xtreg_re")["hausman"]
    test = hausman(fe, re)
    assert test.kind == "chi2"
    assert test.stat == pytest.approx(expected["stat"], rel=STAT_RTOL)
    assert test.df == expected["df"]
    assert test.p == pytest.approx(stats.chi2.sf(expected["stat"], expected["df"]), rel=STAT_RTOL)
    assert fe.hausman == test


def test_hausman_refuses_robust_errors_and_swapped_arguments(seed, fe, re):
    robust = fit_fe(seed, "perform", ["tutoring"], PANEL, vce="robust")
    with pytest.raises(UserInputError, match="conventional standard errors"):
        hausman(robust, re)
    with pytest.raises(UserInputError, match="fixed-effects and a random-effects"):
        hausman(re, fe)


# ----- omitted predictors, unbalanced panels, missing values -----------------------------------
def test_predictor_constant_within_panels_is_omitted_with_a_note(seed):
    data = seed.assign(ever_tutored=seed.groupby(PANEL)["tutoring"].transform("max"))
    result = fit_fe(data, "perform", ["tutoring", "ever_tutored"], PANEL)
    assert "ever_tutored omitted because of collinearity" in result.notes
    assert [row.term for row in result.fixed] == ["tutoring", "_cons"]
    assert_coefficients(result, load_case("seed_d5_xtreg_fe")["fixed"])
    with pytest.raises(UserInputError, match="no predictor varies within student_id"):
        fit_fe(data, "perform", ["ever_tutored"], PANEL)


def test_unbalanced_panels_give_theta_per_panel_size(seed):
    data = seed.copy()
    data.loc[data.index[1:3000:3], "perform"] = np.nan  # some students keep one semester only
    result = fit_re(data, "perform", ["tutoring"], PANEL)
    assert result.dropped_rows == 1000 and result.nobs == 7000
    assert result.notes[0] == "1000 observations dropped because of missing values in perform"
    assert (result.groups[0].min, result.groups[0].max) == (1, 2)

    def theta(size):
        return 1 - math.sqrt(result.sigma_e ** 2 / (size * result.sigma_u ** 2 + result.sigma_e ** 2))

    assert set(result.theta_re) == {"min", "p5", "median", "p95", "max", "mean"}
    assert result.theta_re["min"] == pytest.approx(theta(1), rel=1e-10)
    assert result.theta_re["max"] == pytest.approx(theta(2), rel=1e-10)
    assert result.theta_re["median"] == pytest.approx(theta(2), rel=1e-10)  # 3000 of 4000 panels have two rows
    assert result.theta_re["mean"] == pytest.approx((1000 * theta(1) + 3000 * theta(2)) / 4000, rel=1e-10)
    assert FitResult.from_dict(json.loads(result.to_json())).theta_re == result.theta_re


def test_unbalanced_variance_components_are_swamy_arora_with_harmonic_mean(seed):
    data = seed.drop(index=seed.index[1:3000:3])
    result = fit_re(data, "perform", ["tutoring"], PANEL)
    means = data.groupby(PANEL)[["perform", "tutoring"]].transform("mean")
    within = data[["perform", "tutoring"]] - means
    slope = (within["perform"] @ within["tutoring"]) / (within["tutoring"] @ within["tutoring"])
    residuals = within["perform"] - slope * within["tutoring"]
    panels, sizes = data[PANEL].nunique(), data.groupby(PANEL).size()
    sigma2_e = residuals @ residuals / (len(data) - panels - 1)
    between = data.groupby(PANEL)[["perform", "tutoring"]].mean()
    between_fit = sm.OLS(between["perform"], sm.add_constant(between["tutoring"])).fit()
    harmonic_mean = panels / (1 / sizes).sum()
    sigma2_u = between_fit.ssr / (panels - 2) - sigma2_e / harmonic_mean
    assert result.sigma_e == pytest.approx(math.sqrt(sigma2_e), rel=1e-10)
    assert result.sigma_u == pytest.approx(math.sqrt(sigma2_u), rel=1e-10)


# ----- robust and clustered standard errors ----------------------------------------------------
def test_regress_clustered_errors_equal_statsmodels_cluster_robust(seed):
    result = fit_ols(seed, "perform", ["tutoring"], vce="cluster", cluster="school_id")
    design = sm.add_constant(seed["tutoring"], prepend=False)
    groups = pd.factorize(seed["school_id"])[0]
    expected = sm.OLS(seed["perform"], design).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert [row.se for row in result.fixed] == pytest.approx(list(expected.bse), rel=1e-10)
    assert result.coef("tutoring").df == 24  # 25 schools: t(G - 1), as Stata
    assert result.wald.df2 == 24
    assert result.model == "regress perform tutoring, vce(cluster school_id)"
    assert "Std. err. adjusted for 25 clusters in school_id" in result.notes


def test_xtreg_robust_clusters_by_panel_with_stata_small_sample_factor(seed, fe):
    robust = fit_fe(seed, "perform", ["tutoring"], PANEL, vce="robust")
    clustered = fit_fe(seed, "perform", ["tutoring"], PANEL, vce="cluster", cluster=PANEL)
    assert [r.se for r in robust.fixed] == pytest.approx([r.se for r in clustered.fixed], rel=1e-12)
    # Sandwich of the mean-adjusted within regression, scaled by G/(G-1) (N-1)/(N-K).
    means = seed.groupby(PANEL)[["perform", "tutoring"]].transform("mean")
    x = seed["tutoring"] - means["tutoring"] + seed["tutoring"].mean()
    y = seed["perform"] - means["perform"] + seed["perform"].mean()
    design = np.column_stack([x, np.ones(len(x))])
    errors = y.to_numpy() - design @ np.array([fe.coef("tutoring").coef, fe.coef("_cons").coef])
    codes = pd.factorize(seed[PANEL])[0]
    scores = np.zeros((codes.max() + 1, 2))
    np.add.at(scores, codes, design * errors[:, None])
    bread = np.linalg.inv(design.T @ design)
    groups, n = codes.max() + 1, len(seed)
    vcov = bread @ scores.T @ scores @ bread * groups / (groups - 1) * (n - 1) / (n - 2)
    assert [r.se for r in robust.fixed] == pytest.approx(np.sqrt(np.diag(vcov)), rel=1e-8)
    assert robust.f_test_u0 is None and robust.coef("tutoring").df == groups - 1
    assert robust.model == "xtset student_id; xtreg perform tutoring, fe vce(robust)"


def test_xtreg_refuses_clusters_that_split_panels(seed):
    with pytest.raises(UserInputError, match="panels are not nested within clusters"):
        fit_re(seed, "perform", ["tutoring"], PANEL, vce="cluster", cluster="semester")


# ----- user errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("fit, extra", [(fit_ols, {}), (fit_fe, {"group": PANEL}), (fit_re, {"group": PANEL})])
def test_unknown_column_is_named(seed, fit, extra):
    with pytest.raises(UserInputError, match=r"unknown column 'tutorin'.*did you mean 'tutoring'"):
        fit(seed, "perform", ["tutorin"], **extra)


def test_unknown_group_and_non_numeric_outcome_are_named(seed):
    with pytest.raises(UserInputError, match="unknown column 'pupil'"):
        fit_fe(seed, "perform", ["tutoring"], "pupil")
    labelled = seed.assign(grade=np.where(seed["perform"] > 0, "pass", "fail"))
    with pytest.raises(UserInputError, match="outcome 'grade' is not numeric"):
        fit_ols(labelled, "grade", ["tutoring"])
