"""The units of a variable never change the answer.

A random slope measured in days instead of weeks, or ``ses`` x 100, describes the same model:
the log-likelihood is the same (ML; REML's log|X'V^-1X| shifts by -log c for each fixed column
multiplied by c, in lme4 as here), coefficients, their SEs and the slope's sd scale by 1/c and
correlations do not move.

The lme4 numbers are lme4 1.1 (Debian's r-cran-lme4) with bobyqa run to rhoend = 1e-12, computed
once with R; the tests never need R. With its default settings lme4 itself goes astray at the
larger scales (sleepstudy Days x 1000, REML: logLik -878.79621484, "failed to converge"; hsb ses
x 100: -23328.81934806 against the -23324.80429727 of the tight fit below), which is what the
engine used to do as well (and crashed at x 1e8).
"""

import math

import numpy as np
import pandas as pd
import pytest

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, relative_error


def scaled(frame, column, factor):
    out = frame.copy()
    out[column] = out[column] * factor
    return out


@pytest.fixture(scope="module")
def sleepstudy():
    return pd.read_csv(DATA / "sleepstudy.csv")


@pytest.fixture(scope="module")
def hsb():
    return pd.read_csv(DATA / "hsb.csv")


# (Days factor, REML?, lme4 logLik, Days coef, Days SE, sd(_cons), sd(Days), corr, sd(Residual))
SLEEPSTUDY_LME4 = [
    (1e-3, True, -864.90638070, 10467.28596, 1545.789008, 24.74045465, 5922.133642, 0.06555063102, 25.59181534),
    (1e-3, False, -875.96967223, 10467.28596, 1502.23522, 23.78057045, 5716.826978, 0.08131931094, 25.59181888),
    (1.0, True, -871.81413598, 10.46728596, 1.545788932, 24.74044762, 5.92213326, 0.06555134285, 25.59181589),
    (1.0, False, -875.96967223, 10.46728596, 1.502236793, 23.78056499, 5.71683458, 0.08131997459, 25.59181583),
    (7.0, True, -873.76004613, 1.495326566, 0.2208269713, 24.74045076, 0.8460189481, 0.06555146924, 25.59181583),
    (7.0, False, -875.96967223, 1.495326566, 0.2146052631, 23.78054821, 0.8166906761, 0.08132019939, 25.59181727),
    # At x 1000 even the tight REML fit stops short (-878.72209939 < -871.81413598 - log 1000, with SE(Days)
    # 0.001542506834, sd(_cons) 24.83318855, sd(Days) 0.005906790383, corr 0.06471021187, sigma 25.59026865);
    # the parameters expected here are its x 1 fit's, in the units of x 1000.
    (1e3, True, -878.72209939, 0.01046728596, 0.001545788932, 24.74044762, 0.00592213326, 0.06555134285,
     25.59181589),
    (1e3, False, -875.96967223, 0.01046728596, 0.00150223678, 23.78053522, 0.005716834374, 0.08132054834,
     25.59181854),
]


@pytest.mark.parametrize("factor, reml, loglik, coef, se, sd_cons, sd_days, corr, sigma", SLEEPSTUDY_LME4,
                         ids=[f"{c[0]:g}-{'reml' if c[1] else 'ml'}" for c in SLEEPSTUDY_LME4])
def test_sleepstudy_slope_at_any_scale_matches_lme4(sleepstudy, factor, reml, loglik, coef, se, sd_cons, sd_days,
                                                    corr, sigma):
    model = "Reaction Days || Subject: Days, cov(un)" + (" reml" if reml else "")
    result = fit_mixed(scaled(sleepstudy, "Days", factor), ModelSpec.parse(model))
    assert result.loglik >= loglik - 1e-9 * abs(loglik)
    # The REML optimum at x 1000 is the one at x 1 shifted by -log 1000: there lme4 is short by 2e-4.
    exact = (-871.81413598 - math.log(factor)) if reml else -875.96967223
    assert relative_error(result.loglik, exact) < 1e-9
    assert relative_error(result.coef("Days").coef, coef) < 1e-7
    assert relative_error(result.coef("Days").se, se) < 1e-5
    assert relative_error(result.random_param("Subject", "sd(_cons)").estimate, sd_cons) < 1e-5
    assert relative_error(result.random_param("Subject", "sd(Days)").estimate, sd_days) < 1e-5
    assert result.random_param("Subject", "corr(Days,_cons)").estimate == pytest.approx(corr, abs=1e-5)
    assert relative_error(result.random_param("Residual", "sd(Residual)").estimate, sigma) < 1e-5
    assert result.converged and result.warnings == []


def test_hsb_ses_times_100_matches_lme4(hsb):
    # lme4 (tight): logLik -23324.80429727; _cons 12.66502309 (0.1898448326), ses 0.02393813417
    # (0.001181210043); sd(_cons) 2.197414451, sd(ses) 0.006425956854, corr -0.1092561703, sigma 6.068786171.
    result = fit_mixed(scaled(hsb, "ses", 100), ModelSpec.parse("mathach ses || school: ses, cov(un) reml"))
    assert relative_error(result.loglik, -23324.80429727) < 1e-9
    assert relative_error(result.coef("ses").coef, 0.02393813417) < 1e-6
    assert relative_error(result.coef("ses").se, 0.001181210043) < 1e-5
    assert relative_error(result.coef("_cons").se, 0.1898448326) < 1e-5
    assert relative_error(result.random_param("school", "sd(_cons)").estimate, 2.197414451) < 1e-5
    assert relative_error(result.random_param("school", "sd(ses)").estimate, 0.006425956854) < 1e-5
    assert result.random_param("school", "corr(ses,_cons)").estimate == pytest.approx(-0.1092561703, abs=1e-5)
    assert relative_error(result.random_param("Residual", "sd(Residual)").estimate, 6.068786171) < 1e-5
    assert result.warnings == []


def test_small_slope_sd_from_large_units_is_not_called_zero(hsb):
    # ses x 1e5: sd(ses) is 6.4e-6, below 1e-5 sigma, yet exactly the x 1 slope sd of 0.64 in other units.
    result = fit_mixed(scaled(hsb, "ses", 1e5), ModelSpec.parse("mathach ses || school: ses, cov(un) reml"))
    row = result.random_param("school", "sd(ses)")
    assert relative_error(row.estimate, 0.6425954472e-5) < 1e-5
    assert row.se is not None and row.se > 0
    assert not any("boundary" in w for w in result.warnings)


def _summary(result, column, factor):
    """Everything a fit reports, each put back into the units of factor 1."""
    out = {"loglik": result.loglik}
    for row in result.fixed:
        power = 1 if row.term == column else 0
        out[f"b:{row.term}"] = row.coef * factor ** power
        out[f"se:{row.term}"] = row.se * factor ** power
    for row in result.random:
        power = 1 if row.param == f"sd({column})" else 0
        out[f"{row.level}:{row.param}"] = row.estimate * factor ** power
        if row.se is not None:
            out[f"se {row.level}:{row.param}"] = row.se * factor ** power
    for effects in result.level_effects:
        for j, term in enumerate(effects.terms):
            power = 1 if term == column else 0
            out[f"blup {effects.level}:{term}"] = effects.estimates[:, j] * factor ** power
            out[f"condsd {effects.level}:{term}"] = effects.std_errors[:, j] * factor ** power
    out["fitted"] = result.fitted
    return out


INVARIANCE = [
    ("sleepstudy.csv", "Reaction Days || Subject: Days, cov(un)", "Days"),
    ("sleepstudy.csv", "Reaction Days || Subject: Days", "Days"),
    ("slopes_unbalanced.csv", "y x z || school: x, cov(un) || class: x, cov(un)", "x"),
]


@pytest.mark.parametrize("data, model, column", INVARIANCE, ids=[c[1] for c in INVARIANCE])
@pytest.mark.parametrize("factor", [1e-3, 7.0, 1e3, 1e8])
def test_rescaling_a_slope_variable_rescales_the_estimates_exactly(data, model, column, factor):
    frame = pd.read_csv(DATA / data)
    spec = ModelSpec.parse(model)
    base = fit_mixed(frame, spec)
    other = fit_mixed(scaled(frame, column, factor), spec)
    expected, got = _summary(base, column, 1.0), _summary(other, column, factor)
    assert set(got) == set(expected)
    assert relative_error(got.pop("loglik"), expected.pop("loglik")) < 1e-10  # ML: no shift
    for key, value in expected.items():
        tolerance = 1e-6 if key.startswith("se ") else 1e-8  # random-effect SEs: a numerical Hessian
        np.testing.assert_allclose(got[key], value, rtol=tolerance, atol=tolerance * np.max(np.abs(value)),
                                   err_msg=key)
    assert other.warnings == base.warnings


def test_reml_log_likelihood_shifts_by_log_of_the_factor_only(sleepstudy):
    # REML's log|X'V^-1X| changes by 2 log c when a fixed column is multiplied by c (lme4 above agrees).
    spec = ModelSpec.parse("Reaction Days || Subject: Days, cov(un) reml")
    base = fit_mixed(sleepstudy, spec).loglik
    for factor in (1e-3, 1e3, 1e8):
        shifted = fit_mixed(scaled(sleepstudy, "Days", factor), spec).loglik
        assert shifted == pytest.approx(base - math.log(factor), rel=1e-11, abs=0)


def test_rescaling_the_outcome_shifts_the_log_likelihood_by_n_log_c(sleepstudy):
    spec = ModelSpec.parse("Reaction Days || Subject: Days, cov(un)")
    base = fit_mixed(sleepstudy, spec)
    for factor in (1e-3, 1e4):
        other = fit_mixed(scaled(sleepstudy, "Reaction", factor), spec)
        assert other.loglik == pytest.approx(base.loglik - base.nobs * math.log(factor), rel=1e-10)
        for row, base_row in zip(other.random, base.random):
            power = 0 if row.param.startswith("corr") else 1
            assert row.estimate == pytest.approx(base_row.estimate * factor ** power, rel=1e-8)


def test_monte_carlo_at_zero_flag_is_unit_free(hsb):
    from engine.design import Truth
    from engine.montecarlo.replicate import fit_records

    spec = ModelSpec.parse("mathach ses || school: ses, cov(un) reml")
    big_units = fit_mixed(scaled(hsb, "ses", 1e5), spec, predict=False)
    assert big_units.boundary_params == []
    records = fit_records("m", (0.0, 0, 0, 1), big_units, Truth(), 0.1)
    from engine.montecarlo.replicate import RECORD_COLUMNS

    at_zero = list(RECORD_COLUMNS).index("at_zero")
    flags = {row[5]: row[at_zero] for row in records}
    assert flags["school:sd(ses)"] is False and flags["school:sd(_cons)"] is False
    # A slope variable that truly has no between-school variation is flagged at any scale.
    frame = hsb.copy()
    frame["noise"] = np.random.default_rng(2).normal(size=len(frame))
    for factor in (1e-3, 1e3):
        result = fit_mixed(scaled(frame, "noise", factor), ModelSpec.parse("mathach noise || school: noise, reml"),
                           predict=False)
        assert result.boundary_params == ["school:sd(noise)"]


def test_slope_far_from_zero_with_correlated_intercept(sleepstudy):
    # Days + 2000 (a calendar year, say) with an unstructured covariance is the same model as
    # Days: the intercept moves to year 0, so its sd becomes huge and its correlation with the
    # slope close to -1, but the log-likelihood (ML) and the slope sd are unchanged (lme4 at
    # Days: -875.96967223, sd(Days) 5.71683458). The engine used to stop at -880.40, a slope sd
    # of 4.66 and a correlation of -1. The optimiser now searches with the slope centred.
    result = fit_mixed(sleepstudy.assign(Days=sleepstudy["Days"] + 2000),
                       ModelSpec.parse("Reaction Days || Subject: Days, cov(un)"))
    assert relative_error(result.loglik, -875.96967223) < 1e-9
    assert relative_error(result.random_param("Subject", "sd(Days)").estimate, 5.71683458) < 1e-4
    assert relative_error(result.coef("Days").coef, 10.46728596) < 1e-6


def test_search_coordinates_give_the_criterion_and_its_exact_gradient():
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.criterion import LevelTerms, NestedCriterion
    from engine.mixed.hierarchy import build_hierarchy
    from engine.mixed.optimize import SearchSpace
    from engine.mixed.prepare import build_work_columns, prepare_model_data

    frame = pd.read_csv(DATA / "slopes_unbalanced.csv").assign(x=lambda f: 30.0 * f["x"] + 400.0)
    spec = ModelSpec.parse("y x z || school: x z, cov(un) || class: x, cov(ind)")
    data = prepare_model_data(frame, spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    criterion = NestedCriterion(work.matrix, build_hierarchy(data.frame, spec.level_names), levels,
                                work.x_columns, work.y_column, False)
    space = SearchSpace(criterion)
    point = np.array([0.9, 0.2, -0.3, 0.7, 0.1, 0.5, 0.6, 0.4])
    value, gradient = space.evaluate(point)
    theta = space.to_theta(point)
    assert value == pytest.approx(criterion.evaluate(theta, gradient=False).deviance, rel=1e-12)
    np.testing.assert_allclose(space.from_theta(theta), point, rtol=1e-9, atol=1e-12)
    for i in range(point.size):
        step = np.zeros(point.size)
        step[i] = 1e-6
        numeric = (space.evaluate(point + step)[0] - space.evaluate(point - step)[0]) / 2e-6
        assert numeric == pytest.approx(gradient[i], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("factor, loglik, x_coef, sd_x", [
    (1e-3, -902.52058325, 404.654547, 606.8886331),
    (1e3, -916.33609382, 0.0004046547415, 0.0006068881638),
])
def test_unbalanced_slopes_at_other_scales_match_lme4(factor, loglik, x_coef, sd_x):
    # lme4 (tight): y ~ x + z + (1 + x | school) + (1 | school:class), REML, x multiplied by factor;
    # at x 1 the log-likelihood is -909.42833853 (tests/test_mixed_slopes_lme4.py).
    frame = pd.read_csv(DATA / "slopes_unbalanced.csv")
    result = fit_mixed(scaled(frame, "x", factor), ModelSpec.parse("y x z || school: x, cov(un) || class:, reml"))
    assert result.loglik >= loglik - 1e-9 * abs(loglik)
    assert relative_error(result.loglik, loglik) < 1e-9
    assert relative_error(result.coef("x").coef, x_coef) < 1e-5
    assert relative_error(result.random_param("school", "sd(x)").estimate, sd_x) < 1e-4
