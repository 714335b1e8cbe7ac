"""covariance(exchangeable): equal variances and one common correlation, against nlme's pdCompSymm.

References: R 4.2, nlme 3.1 ``lme(..., random = list(g = pdCompSymm(~ x)))`` with
``lmeControl(tolerance = 1e-12, msTol = 1e-15)``; the numbers are carried here as literals.
nlme's (restricted) log-likelihood equals lme4's on the same model (checked on sleepstudy with
independent effects: -871.8346 REML, -876.0016 ML in both).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LevelTerms, NestedCriterion
from engine.mixed.hierarchy import build_hierarchy
from engine.mixed.prepare import build_work_columns, prepare_model_data
from engine.mixed.variance_derivatives import LinearCovarianceMap
from engine.model_comparison import NotNested, likelihood_ratio_test
from engine.model_spec import ModelSpec
from engine.report import format_fit_report
from tests.reference_cases import relative_error

DATA = "tests/data"

# lme(Reaction ~ Days, random = list(Subject = pdCompSymm(~Days)), data = sleepstudy)
SLEEP = {
    "REML": {"loglik": -878.887153935869, "var": 52.2391637109, "cov": 30.9536299722, "sigma": 27.8347372767,
             "fixed": {"Days": (10.4672859596, 1.85038054243), "_cons": (251.4051048485, 4.21563149231)}},
    "ML": {"loglik": -882.738879227837, "var": 45.0637143893, "cov": 31.4987686680, "sigma": 27.8836741515,
           "fixed": {"Days": (10.4672859596, 1.73985868100), "_cons": (251.4051048485, 4.17435541397)}},
}
# lme(y ~ x1 + x2, random = list(school = pdIdent(~1), class = pdCompSymm(~ x1 + x2)), data = exchangeable_nested)
NESTED = {
    "REML": {"loglik": -3677.97073202347, "var": 1.011147891553, "cov": 0.508214526298, "school_var": 2.92266123623,
             "sigma": 1.95736444814,
             "fixed": {"x1": (1.175515739888, 0.0917323567585), "x2": (-0.539114548785, 0.0926002025708),
                       "_cons": (10.332539117008, 0.2845189739556)}},
    "ML": {"loglik": -3674.6385156421, "var": 1.004993548432, "cov": 0.505718935033, "school_var": 2.84363529873,
           "sigma": 1.95734279251,
           "fixed": {"x1": (1.175487418150, 0.0915469385114), "x2": (-0.539046420307, 0.0924175723955),
                     "_cons": (10.332500328430, 0.2809680644562)}},
}


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return pd.read_csv(f"{DATA}/sleepstudy.csv")


@pytest.fixture(scope="module")
def nested() -> pd.DataFrame:
    return pd.read_csv(f"{DATA}/exchangeable_nested.csv")


def _method_option(method: str) -> str:
    return " reml" if method == "REML" else ""


def _check_fixed(fit, expected):
    for term, (coef, se) in expected.items():
        assert relative_error(fit.coef(term).coef, coef) < 1e-4, term
        assert relative_error(fit.coef(term).se, se) < 1e-4, term


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_sleepstudy_matches_nlme(sleep, method):
    ref = SLEEP[method]
    fit = fit_mixed(sleep, ModelSpec.parse("Reaction Days || Subject: Days, covariance(exchangeable)" + _method_option(method)))
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    sd = fit.random_param("Subject", "sd(Days _cons)").estimate
    corr = fit.random_param("Subject", "corr(Days _cons)").estimate
    assert relative_error(sd, np.sqrt(ref["var"])) < 1e-3
    assert corr == pytest.approx(ref["cov"] / ref["var"], abs=1e-3)
    assert relative_error(fit.random_param("Residual", "sd(Residual)").estimate, ref["sigma"]) < 1e-3
    _check_fixed(fit, ref["fixed"])
    # Variance scale: one variance and the common covariance, as Stata labels them.
    variances = {(r.level, r.param): r.estimate for r in fit.random_variances}
    assert relative_error(variances[("Subject", "var(Days _cons)")], ref["var"]) < 2e-3
    assert relative_error(variances[("Subject", "cov(Days _cons)")], ref["cov"]) < 2e-3
    # Parameters: one sd, one correlation, sigma, two fixed effects.
    assert fit.n_params == 5
    assert not fit.warnings


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_three_effects_nested_under_a_level_match_nlme(nested, method):
    ref = NESTED[method]
    fit = fit_mixed(nested, ModelSpec.parse("y x1 x2 || school: || class: x1 x2, cov(exch)" + _method_option(method)))
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    assert relative_error(fit.random_param("school", "sd(_cons)").estimate, np.sqrt(ref["school_var"])) < 1e-3
    assert relative_error(fit.random_param("class", "sd(x1 x2 _cons)").estimate, np.sqrt(ref["var"])) < 1e-3
    assert fit.random_param("class", "corr(x1 x2 _cons)").estimate == pytest.approx(ref["cov"] / ref["var"], abs=1e-3)
    assert relative_error(fit.random_param("Residual", "sd(Residual)").estimate, ref["sigma"]) < 1e-3
    _check_fixed(fit, ref["fixed"])
    report = format_fit_report(fit)
    assert "class: Exchangeable" in report and "corr(x1 x2 _cons)" in report


def _dense_loglik(frame, slopes, group, beta, variance, rho, sigma):
    """ML log-likelihood of a one-level model computed directly from V = Z Psi Z' + sigma^2 I per group."""
    q = len(slopes) + 1
    psi = variance * ((1 - rho) * np.eye(q) + rho * np.ones((q, q)))
    total = 0.0
    for _, rows in frame.groupby(group):
        z = np.column_stack([rows[s] for s in slopes] + [np.ones(len(rows))])
        x = np.column_stack([rows[s] for s in slopes] + [np.ones(len(rows))])
        v = z @ psi @ z.T + sigma ** 2 * np.eye(len(rows))
        r = rows["y"].to_numpy() - x @ beta
        _, logdet = np.linalg.slogdet(v)
        total += -0.5 * (len(rows) * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(v, r))
    return total


def test_negative_common_correlation_is_the_maximum(nested):
    """Data simulated with a negative common correlation: the reported estimates give the reported
    log-likelihood when computed directly, and moving the correlation either way lowers it."""
    rng = np.random.default_rng(5)
    q, rho_true = 3, -0.35
    cov = 1.5 * ((1 - rho_true) * np.eye(q) + rho_true * np.ones((q, q)))
    effects = rng.multivariate_normal(np.zeros(q), cov, size=150)
    g = np.repeat(np.arange(150), 12)
    x1, x2 = rng.normal(size=g.size), rng.normal(size=g.size)
    u = effects[g]
    y = 2 + u[:, 2] + (1 + u[:, 0]) * x1 + (0.5 + u[:, 1]) * x2 + rng.normal(0, 1, g.size)
    frame = pd.DataFrame({"g": g, "x1": x1, "x2": x2, "y": y})
    fit = fit_mixed(frame, ModelSpec.parse("y x1 x2 || g: x1 x2, covariance(exchangeable)"))
    sd = fit.random_param("g", "sd(x1 x2 _cons)").estimate
    rho = fit.random_param("g", "corr(x1 x2 _cons)").estimate
    sigma = fit.random_param("Residual", "sd(Residual)").estimate
    beta = np.array([fit.coef(t).coef for t in ("x1", "x2", "_cons")])
    assert -0.5 < rho < -0.2
    at_estimate = _dense_loglik(frame, ["x1", "x2"], "g", beta, sd ** 2, rho, sigma)
    assert at_estimate == pytest.approx(fit.loglik, abs=1e-6)
    for shifted in (rho - 0.02, rho + 0.02):
        assert _dense_loglik(frame, ["x1", "x2"], "g", beta, sd ** 2, shifted, sigma) < at_estimate - 1e-4
    assert fit.random_param("g", "corr(x1 x2 _cons)").se > 0


def test_parametrisation_round_trips_and_covers_negative_correlations():
    cov = LevelCovariance(3, "exchangeable")
    for variance, rho in [(2.0, 0.4), (0.5, -0.45), (1.0, 0.0)]:
        theta = cov.theta_of_sd_corr(np.full(3, np.sqrt(variance)), np.full((3, 3), rho), sigma=2.0)
        lam = cov.lambda_of(theta)
        psi = 4.0 * lam @ lam.T
        np.testing.assert_allclose(psi, variance * ((1 - rho) * np.eye(3) + rho * np.ones((3, 3))), atol=1e-12)
        np.testing.assert_allclose(cov.theta_of_lambda(lam), theta, atol=1e-12)
        np.testing.assert_allclose(cov.theta_of_covariance(psi / 4.0), theta, atol=1e-12)
    assert cov.n_params == 2 and cov.lower_bounds() == [0.0, 0.0]


def test_linear_covariance_map_for_kenward_roger(nested):
    """tau (variance, covariance) <-> theta, and its Jacobian against central differences."""
    spec = ModelSpec.parse("y x1 x2 || school: || class: x1 x2, cov(exch) reml")
    fit = fit_mixed(nested, spec, predict=False)
    data = prepare_model_data(nested, spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    criterion = NestedCriterion(work.matrix, build_hierarchy(data.frame, spec.level_names), levels,
                                work.x_columns, work.y_column, reml=True)
    mapping = LinearCovarianceMap(criterion)
    theta, s = np.array(fit.theta), fit.random_param("Residual", "sd(Residual)").estimate ** 2
    tau = mapping.tau_of(theta, s)
    # class level: its variance and common covariance on the data scale (nlme: 1.0111, 0.5082); tau
    # holds them for the columns at unit size (a multiple of the data scale's, the same pattern)
    back_to_data = mapping.from_unit[1]
    psi = back_to_data @ mapping.level_matrix(tau, 1) @ back_to_data.T
    assert psi[0, 0] == pytest.approx(NESTED["REML"]["var"], rel=1e-3)
    assert psi[1, 0] == pytest.approx(NESTED["REML"]["cov"], rel=1e-3)
    assert psi[1, 1] == pytest.approx(psi[0, 0], rel=1e-12) and psi[2, 1] == pytest.approx(psi[1, 0], rel=1e-12)
    back, s_back = mapping.theta_s_of(tau)
    np.testing.assert_allclose(back, theta, rtol=1e-10)
    jac = mapping.jacobian(theta, s)
    for k in range(theta.size):
        step = 1e-6
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        np.testing.assert_allclose(jac[:, k], (mapping.tau_of(up, s) - mapping.tau_of(down, s)) / (2 * step),
                                   rtol=1e-6, atol=1e-8)


# Exchangeable effects of the three conditions (one-hot c1..c3, no constant) with a positive common
# covariance are the model (1 | subject) + (1 | subject:cond) of lme4: cov = var(subject),
# var = var(subject) + var(subject:cond). So lmerTest and pbkrtest give df for it (R 4.2, lme4 1.1-31,
# lmerTest 3.1-3, pbkrtest 0.5.2, bobyqa to 1e-12; nlme's pdCompSymm(~ cond - 1) gives the same
# log-likelihood). Both df methods are invariant to how the covariance is parametrised.
CELLS_LOGLIK = -171.977316415911
CELLS_VAR = {"subject": 0.843100261876, "subject:cond": 0.835581786313, "Residual": 0.770644550721}
CELLS_DF = {
    "satterthwaite": {"_cons": (0.402079934518, 23.9919546954), "2.cond": (0.426882178068, 22.0185451390),
                      "3.cond": (0.426705071554, 21.9836132740), "x": (0.107177954686, 78.5700640417)},
    "kroger": {"_cons": (0.402086277249, 23.9808631921), "2.cond": (0.426884610447, 21.9504164893),
               "3.cond": (0.426705071568, 21.9155657193), "x": (0.107911584742, 78.5314825192)},
}


@pytest.mark.parametrize("dfmethod", ["satterthwaite", "kroger"])
def test_small_sample_df_with_an_exchangeable_level_match_lmertest_and_pbkrtest(dfmethod):
    cells = pd.read_csv(f"{DATA}/exchangeable_cells.csv")
    fit = fit_mixed(cells, ModelSpec.parse(
        f"y i.cond x || subject: c1 c2 c3, noconstant covariance(exchangeable) reml dfmethod({dfmethod})"), predict=False)
    assert fit.loglik == pytest.approx(CELLS_LOGLIK, abs=1e-6)
    variance = {(r.level, r.param): r.estimate for r in fit.random_variances}
    assert relative_error(variance[("subject", "cov(c1 c2 c3)")], CELLS_VAR["subject"]) < 1e-3
    assert relative_error(variance[("subject", "var(c1 c2 c3)")], CELLS_VAR["subject"] + CELLS_VAR["subject:cond"]) < 1e-3
    for term, (se, df) in CELLS_DF[dfmethod].items():
        assert relative_error(fit.coef(term).se, se) < 1e-4, term
        assert relative_error(fit.coef(term).df, df) < 1e-3, term


def test_parsing_abbreviations_and_text_forms():
    spec = ModelSpec.parse("y x || g: x, cov(ex)")
    assert spec.levels[0].covariance == "exchangeable"
    assert spec.to_stata() == "mixed y x || g: x, covariance(exchangeable)"
    assert ModelSpec.parse(spec.to_stata()).levels[0].covariance == "exchangeable"
    assert ModelSpec.parse("y || g:, covariance(exchangeable)").levels[0].covariance == "independent"
    assert "pdCompSymm(~ x)" in spec.to_lme4()
    with pytest.raises(UserInputError, match="exchangeable"):
        ModelSpec.parse("y x || g: x, cov(banded)")
    assert ModelSpec.from_dict(spec.to_dict()).levels[0].covariance == "exchangeable"


def test_lrtest_nesting_of_covariance_structures(sleep):
    fits = {kind: fit_mixed(sleep, ModelSpec.parse(f"Reaction Days || Subject: Days, covariance({kind})"), predict=False)
            for kind in ("identity", "exchangeable", "independent", "unstructured")}
    inside = likelihood_ratio_test(fits["identity"], fits["exchangeable"])
    assert inside.df == 1
    assert inside.stat == pytest.approx(2 * (fits["exchangeable"].loglik - fits["identity"].loglik), abs=1e-8)
    assert likelihood_ratio_test(fits["exchangeable"], fits["unstructured"]).df == 1
    with pytest.raises(NotNested):
        likelihood_ratio_test(fits["exchangeable"], fits["independent"])
    with pytest.raises(NotNested):
        likelihood_ratio_test(fits["independent"], fits["exchangeable"])


@pytest.mark.parametrize("reml", [True, False])
def test_criterion_gradient_along_the_exchangeable_basis(nested, reml):
    """The recursion's exact gradient equals central differences of the criterion."""
    spec = ModelSpec.parse("y x1 x2 || school: || class: x1 x2, cov(exch)")
    data = prepare_model_data(nested, spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    criterion = NestedCriterion(work.matrix, build_hierarchy(data.frame, spec.level_names), levels,
                                work.x_columns, work.y_column, reml=reml)
    theta = np.array([0.7, 0.45, 0.9])
    gradient = criterion.evaluate(theta).gradient
    for k in range(theta.size):
        step = 1e-6
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        numeric = (criterion.evaluate(up, gradient=False).deviance - criterion.evaluate(down, gradient=False).deviance) / (2 * step)
        assert gradient[k] == pytest.approx(numeric, rel=1e-5, abs=1e-5)


def test_icc_and_r2_of_an_exchangeable_level_use_its_common_variance():
    # The ICC at covariates = 0 is the intercept's variance over itself plus the residual's; an
    # exchangeable level reports that variance once for all its terms.
    from pathlib import Path

    hsb = pd.read_csv(Path(__file__).parent / "data" / "hsb.csv")
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses || school: ses, covariance(exchangeable) reml"))
    variances = {row.param: row.estimate for row in fit.random_variances}
    tau = variances["var(ses _cons)"]
    assert variances["cov(ses _cons)"] != 0
    assert fit.icc[0].icc == pytest.approx(tau / (tau + variances["var(Residual)"]), rel=1e-10)
    assert fit.r2["conditional"] > fit.r2["marginal"] + 0.05
