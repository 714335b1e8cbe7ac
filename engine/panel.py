"""Pooled OLS, fixed-effects (within) and random-effects (Swamy-Arora GLS) estimators.

They reproduce Stata's ``regress``, ``xtreg, fe`` and ``xtreg, re`` and return the common
:class:`~engine.results.FitResult`. statsmodels fits the OLS model and linearmodels the panel
models (``PanelOLS`` with entity effects, ``RandomEffects``); what Stata prints and they do
not give in Stata's form (sigma_u of the fixed effects, corr(u_i, Xb), theta per panel, the
t degrees of freedom) is computed here.

Stata conventions followed
--------------------------
* ``regress``: t statistics with N - K degrees of freedom (G - 1 with clusters); ``vce(robust)``
  is HC1; the model test is F(K - 1, N - K), a Wald F with robust or clustered errors;
  ``sigma_e`` holds the root MSE; ``r2`` has ``r2`` and ``r2_a``; ``n_params`` = K as in
  Stata's ``estat ic``.
* ``xtreg, fe``: t statistics with N - n - K degrees of freedom; ``_cons`` is the mean-adjusted
  constant; sigma_e = sqrt(SSE / (N - n - K)); sigma_u is the standard deviation of the
  estimated u_i over the observations (as ``predict u, u`` then ``summarize u``);
  corr(u_i, Xb) over the observations; the F test that all u_i = 0 is reported with
  conventional errors only (Stata leaves it out with robust errors).
* ``xtreg, re``: z statistics; Swamy-Arora variance components with the harmonic mean of the
  panel sizes (Stata's default, not the ``sa`` small-sample variant); Wald chi2 of the
  non-constant coefficients; ``corr_u_xb`` is None (Stata prints "0 (assumed)").
* ``vce(robust)`` for xtreg clusters by the panel variable, as Stata does; clusters must
  contain whole panels. Clustered errors use t(G - 1) for regress and xtreg, fe.
* R-squared within / between / overall are Stata's squared correlations; between is over
  panels, one value per panel.
* ``theta_re`` is a float when all panels have the same size; otherwise a dict with
  ``min``, ``p5``, ``median``, ``p95``, ``max`` (what Stata's ``theta`` option prints, over
  panels) and ``mean``.
* ``fitted`` is the linear prediction x_it b + _cons (Stata's ``predict, xb``) and
  ``residuals`` is y - fitted (``predict, ue`` for xtreg), in the order of the rows used.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Optional

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import OLS  # not statsmodels.api, which loads every model family

from engine.errors import UserInputError
from engine.panel_data import (EstimationSample, VceChoice, check_panels_nested, group_codes, prepare_sample,
                               resolve_vce)
from engine.panel_stats import (CONSTANT, coefficient_rows, group_count, joint_test, split_within_collinear,
                                stata_command)
from engine.results import FitResult, Test

OLS_TITLE = "Linear regression"
FE_TITLE = "Fixed-effects (within) regression"
RE_TITLE = "Random-effects GLS regression"


# ----- regress -------------------------------------------------------------------------------
def fit_ols(frame: pd.DataFrame, outcome: str, terms: list[str], constant: bool = True,
            vce: str = "conventional", cluster: Optional[str] = None) -> FitResult:
    """Pooled OLS, as Stata's ``regress``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    outcome : str
        The outcome column (numeric).
    terms : list of str
        Stata-style predictors: ``x``, ``i.x``, ``c.a#c.b``, ``a##b``.
    constant : bool
        Include ``_cons`` (``noconstant`` when False).
    vce : {'conventional', 'robust', 'cluster'}
        Standard errors: OLS, HC1 (``vce(robust)``) or clustered (``vce(cluster <cluster>)``).
    cluster : str, optional
        The cluster column, with ``vce='cluster'``.

    Returns
    -------
    FitResult
        Estimator 'ols', method 'OLS', t statistics (``t_df`` set), the model F test in
        ``wald``, the normal log-likelihood, ``r2`` = {'r2', 'r2_a'} and the root MSE in ``sigma_e``.
    """
    choice = resolve_vce(vce, cluster)
    sample = prepare_sample(frame, outcome, list(terms), constant, (choice.cluster_column,))
    clusters = cluster_codes(sample, choice)
    started = time.perf_counter()
    fit = statsmodels_ols(sample, choice, clusters)
    seconds = time.perf_counter() - started

    names = sample.design.names
    params = np.asarray(fit.params, dtype=float)
    vcov = np.asarray(fit.cov_params(), dtype=float)
    t_df = number_of_groups(clusters) - 1 if choice.clustered else sample.nobs - len(names)
    xb = sample.design.matrix @ params
    options = ["" if constant else "noconstant", choice.stata_option()]
    return FitResult(
        estimator="ols", method="OLS", nobs=sample.nobs, name=OLS_TITLE, depvar=outcome,
        model=stata_command("regress", outcome, list(terms), options),
        fixed=coefficient_rows(names, params, vcov, t_df=t_df),
        wald=joint_test(names, params, vcov, df2=t_df),
        loglik=float(fit.llf), r2={"r2": float(fit.rsquared), "r2_a": float(fit.rsquared_adj)},
        sigma_e=float(np.sqrt(fit.ssr / fit.df_resid)),
        notes=sample.notes + cluster_notes(choice, clusters),
        fit_seconds=seconds, dropped_rows=sample.dropped_rows, n_params=len(names),
        vcov=vcov.tolist(), fitted=xb, residuals=sample.y - xb,
    )


def statsmodels_ols(sample: EstimationSample, choice: VceChoice, clusters: Optional[np.ndarray]):
    """Fit OLS with statsmodels with the covariance Stata's regress uses for ``choice``."""
    model = OLS(sample.y, sample.design.matrix)
    if clusters is not None:
        return model.fit(cov_type="cluster", cov_kwds={"groups": clusters, "use_correction": True,
                                                       "df_correction": True})
    if choice.kind == "robust":
        return model.fit(cov_type="HC1")
    return model.fit()


# ----- xtreg, fe -----------------------------------------------------------------------------
def fit_fe(frame: pd.DataFrame, outcome: str, terms: list[str], group: str, constant: bool = True,
           vce: str = "conventional", cluster: Optional[str] = None) -> FitResult:
    """Fixed-effects (within) regression, as Stata's ``xtset group`` then ``xtreg ..., fe``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    outcome : str
        The outcome column (numeric).
    terms : list of str
        Stata-style predictors. Those constant within every panel (or collinear once the
        panel means are removed) are omitted with a note, as Stata does.
    group : str
        The panel variable.
    constant : bool
        Report ``_cons`` (the mean of the fixed effects, as Stata). xtreg, fe has no
        ``noconstant`` option; with False the row is left out and the slopes are unchanged.
    vce : {'conventional', 'robust', 'cluster'}
        'robust' clusters by ``group`` as Stata's xtreg; 'cluster' by ``cluster``, whose
        clusters must contain whole panels.
    cluster : str, optional
        The cluster column, with ``vce='cluster'``.

    Returns
    -------
    FitResult
        Estimator 'fe', method 'within', with sigma_u, sigma_e, rho, corr_u_xb, f_test_u0,
        r2 (within, between, overall), the model F test in ``wald`` and the panel counts.

    Raises
    ------
    UserInputError
        Unknown or non-numeric columns, or no predictor left that varies within panels.
    """
    choice = resolve_vce(vce, cluster, panel=group)
    sample = prepare_sample(frame, outcome, list(terms), True, (group, choice.cluster_column))
    panels, n_panels = group_codes(sample.data[group])
    clusters = panel_cluster_codes(sample, choice, panels, group)
    kept, omitted = within_columns(sample, panels, group, list(terms))
    names = [sample.design.names[j] for j in kept]
    matrix = sample.design.matrix[:, kept]

    started = time.perf_counter()
    fit = linearmodels_fit("fe", sample.y, matrix, names, panels, clusters)
    seconds = time.perf_counter() - started

    params = fit.params[names].to_numpy(dtype=float)
    vcov = fit.cov.loc[names, names].to_numpy(dtype=float)
    slopes = [i for i, name in enumerate(names) if name != CONSTANT]
    df_resid = sample.nobs - n_panels - len(slopes)
    t_df = number_of_groups(clusters) - 1 if choice.clustered else df_resid
    parts = fe_components(sample.y, matrix, names, params, panels)
    sigma_e = float(np.sqrt(parts["e"] @ parts["e"] / df_resid))
    sigma_u = float(np.std(parts["u"], ddof=1))
    wald = joint_test(names, params, vcov, df2=t_df)
    notes = sample.notes + [f"{sample.design.names[j]} omitted because of collinearity" for j in omitted]
    if not constant:
        names, params, vcov = without_constant(names, params, vcov)
        notes.append("_cons not reported: xtreg, fe always estimates it (the mean of the fixed effects)")
    return FitResult(
        estimator="fe", method="within", nobs=sample.nobs, name=FE_TITLE, depvar=outcome,
        model=stata_command("xtreg", outcome, list(terms), ["fe", choice.stata_option()], panel=group),
        fixed=coefficient_rows(names, params, vcov, t_df=t_df), wald=wald,
        groups=[group_count(group, panels)],
        sigma_u=sigma_u, sigma_e=sigma_e, rho=variance_share(sigma_u, sigma_e),
        corr_u_xb=correlation(parts["u"], parts["xb"]),
        f_test_u0=None if choice.clustered else pooled_f_test(fit),
        r2=panel_r2(fit), notes=notes + cluster_notes(choice, clusters),
        fit_seconds=seconds, dropped_rows=sample.dropped_rows, n_params=len(names),
        vcov=vcov.tolist(), fitted=parts["fitted"], residuals=sample.y - parts["fitted"],
    )


def within_columns(sample: EstimationSample, panels: np.ndarray, group: str,
                   terms: list[str]) -> tuple[list[int], list[int]]:
    """Design columns kept and omitted by the within transformation; refuse a model with none left."""
    kept, omitted = split_within_collinear(sample.design.matrix, sample.design.names, panels)
    if omitted and all(sample.design.names[j] == CONSTANT for j in kept):
        dropped = ", ".join(sample.design.names[j] for j in omitted)
        raise UserInputError(
            f"no predictor varies within {group}: {dropped} is constant within every panel, so xtreg, fe "
            f"has nothing to estimate; use a random-effects (xtreg, re) or mixed model for {' '.join(terms)}")
    return kept, omitted


def fe_components(y: np.ndarray, matrix: np.ndarray, names: list[str], params: np.ndarray,
                  panels: np.ndarray) -> dict[str, np.ndarray]:
    """Stata's predictions after xtreg, fe, one value per observation.

    Returns
    -------
    dict
        ``xb`` (x_it b, without _cons), ``u`` (u_i = ybar_i - xbar_i b - _cons), ``e``
        (the idiosyncratic error) and ``fitted`` (x_it b + _cons).
    """
    slopes = [i for i, name in enumerate(names) if name != CONSTANT]
    xb = matrix[:, slopes] @ params[slopes]
    fitted = matrix @ params
    cons = float(params[names.index(CONSTANT)]) if CONSTANT in names else 0.0
    sizes = np.bincount(panels).astype(float)
    u = (np.bincount(panels, weights=y - xb) / sizes)[panels] - cons
    return {"xb": xb, "u": u, "e": y - fitted - u, "fitted": fitted}


def pooled_f_test(fit: Any) -> Test:
    """Stata's "F test that all u_i=0" from linearmodels' pooled F statistic."""
    test = fit.f_pooled
    return Test(stat=float(test.stat), df=float(test.df), df2=float(test.df_denom), p=float(test.pval), kind="F")


# ----- xtreg, re -----------------------------------------------------------------------------
def fit_re(frame: pd.DataFrame, outcome: str, terms: list[str], group: str, constant: bool = True,
           vce: str = "conventional", cluster: Optional[str] = None) -> FitResult:
    """Random-effects GLS regression (Swamy-Arora), as Stata's ``xtset group`` then ``xtreg ..., re``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    outcome : str
        The outcome column (numeric).
    terms : list of str
        Stata-style predictors.
    group : str
        The panel variable.
    constant : bool
        Include ``_cons``. Stata's xtreg has no ``noconstant`` option; without the constant
        the model has no Stata equivalent (a note says so).
    vce : {'conventional', 'robust', 'cluster'}
        'robust' clusters by ``group`` as Stata's xtreg; 'cluster' by ``cluster``, whose
        clusters must contain whole panels.
    cluster : str, optional
        The cluster column, with ``vce='cluster'``.

    Returns
    -------
    FitResult
        Estimator 're', method 'GLS', z statistics, sigma_u, sigma_e, rho, theta_re,
        r2 (within, between, overall) and the Wald chi2 test in ``wald``.
    """
    choice = resolve_vce(vce, cluster, panel=group)
    sample = prepare_sample(frame, outcome, list(terms), constant, (group, choice.cluster_column))
    panels, _ = group_codes(sample.data[group])
    clusters = panel_cluster_codes(sample, choice, panels, group)
    names = sample.design.names

    started = time.perf_counter()
    fit = linearmodels_fit("re", sample.y, sample.design.matrix, names, panels, clusters)
    seconds = time.perf_counter() - started

    params = fit.params[names].to_numpy(dtype=float)
    vcov = fit.cov.loc[names, names].to_numpy(dtype=float)
    components = fit.variance_decomposition
    sigma_u = float(np.sqrt(components["Effects"]))
    sigma_e = float(np.sqrt(components["Residual"]))
    fitted = sample.design.matrix @ params
    notes = list(sample.notes)
    if not constant:
        notes.append("no constant: Stata's xtreg has no noconstant option, so this model has no Stata equivalent")
    return FitResult(
        estimator="re", method="GLS", nobs=sample.nobs, name=RE_TITLE, depvar=outcome,
        model=stata_command("xtreg", outcome, list(terms), ["re", "" if constant else "noconstant",
                                                            choice.stata_option()], panel=group),
        fixed=coefficient_rows(names, params, vcov), wald=joint_test(names, params, vcov),
        groups=[group_count(group, panels)],
        sigma_u=sigma_u, sigma_e=sigma_e, rho=variance_share(sigma_u, sigma_e),
        theta_re=summarize_theta(fit.theta["theta"].to_numpy(dtype=float)),
        r2=panel_r2(fit), notes=notes + cluster_notes(choice, clusters),
        fit_seconds=seconds, dropped_rows=sample.dropped_rows, n_params=len(names),
        vcov=vcov.tolist(), fitted=fitted, residuals=sample.y - fitted,
    )


def summarize_theta(theta: np.ndarray) -> Any:
    """theta of the GLS transform: one number when the panels have one size, else its distribution.

    Parameters
    ----------
    theta : numpy.ndarray
        theta_i = 1 - sqrt(sigma_e^2 / (T_i sigma_u^2 + sigma_e^2)), one per panel.

    Returns
    -------
    float or dict
        The common theta, or ``min``, ``p5``, ``median``, ``p95``, ``max`` (Stata's
        percentile definition) and ``mean`` over panels.
    """
    if np.ptp(theta) <= 1e-12 * max(1.0, float(np.abs(theta).max())):
        return float(theta[0])
    p5, median, p95 = np.percentile(theta, [5, 50, 95], method="averaged_inverted_cdf")
    return {"min": float(theta.min()), "p5": float(p5), "median": float(median), "p95": float(p95),
            "max": float(theta.max()), "mean": float(theta.mean())}


# ----- shared by the panel estimators ---------------------------------------------------------
def linearmodels_fit(kind: str, y: np.ndarray, matrix: np.ndarray, names: list[str], panels: np.ndarray,
                     clusters: Optional[np.ndarray]) -> Any:
    """Fit ``PanelOLS`` with entity effects (kind 'fe') or ``RandomEffects`` (kind 're').

    Clustered covariances use Stata's small-sample factor (G/(G-1)) (N-1)/(N-K): linearmodels'
    ``debiased`` with ``group_debias``; panels nested in the clusters are not counted in K.
    """
    from linearmodels import PanelOLS, RandomEffects

    index = panel_index(panels)
    dependent = pd.Series(y, index=index, name="y")
    exog = pd.DataFrame(matrix, index=index, columns=names)
    options: dict[str, Any] = {"cov_type": "unadjusted", "debiased": True}
    if clusters is not None:
        options = {"cov_type": "clustered", "debiased": True, "group_debias": True,
                   "clusters": pd.DataFrame({"cluster": clusters}, index=index)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "fe":
                return PanelOLS(dependent, exog, entity_effects=True).fit(**options)
            return RandomEffects(dependent, exog).fit(**options)
    except ValueError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(f"xtreg, {kind} cannot be estimated: {first_line}") from None


def panel_index(panels: np.ndarray) -> pd.MultiIndex:
    """(panel, position within panel) index that linearmodels needs; the order of rows is kept."""
    position = pd.Series(panels).groupby(panels).cumcount().to_numpy()
    return pd.MultiIndex.from_arrays([panels, position], names=["panel", "position"])


def panel_r2(fit: Any) -> dict[str, float]:
    """Stata's R-squared within, between and overall (squared correlations) from linearmodels."""
    return {"within": float(fit.corr_squared_within), "between": float(fit.corr_squared_between),
            "overall": float(fit.corr_squared_overall)}


def panel_cluster_codes(sample: EstimationSample, choice: VceChoice, panels: np.ndarray,
                        group: str) -> Optional[np.ndarray]:
    """Cluster codes for xtreg (panels must be nested in the clusters), or None."""
    clusters = cluster_codes(sample, choice)
    if clusters is not None:
        check_panels_nested(panels, clusters, group, choice.cluster_column)
    return clusters


def cluster_codes(sample: EstimationSample, choice: VceChoice) -> Optional[np.ndarray]:
    """Integer cluster codes of the rows used, or None for unclustered errors."""
    if not choice.clustered:
        return None
    codes, count = group_codes(sample.data[choice.cluster_column])
    if count < 2:
        raise UserInputError(f"vce({choice.kind}) needs at least 2 clusters in {choice.cluster_column}, found {count}")
    return codes


def number_of_groups(codes: Optional[np.ndarray]) -> int:
    """How many distinct codes there are (0 for None)."""
    return 0 if codes is None else int(np.unique(codes).size)


def cluster_notes(choice: VceChoice, clusters: Optional[np.ndarray]) -> list[str]:
    """Stata's line under a clustered table: "Std. err. adjusted for G clusters in x"."""
    if clusters is None:
        return []
    return [f"Std. err. adjusted for {number_of_groups(clusters)} clusters in {choice.cluster_column}"]


def without_constant(names: list[str], params: np.ndarray, vcov: np.ndarray):
    """Drop the ``_cons`` row (and its row and column of the covariance)."""
    keep = [i for i, name in enumerate(names) if name != CONSTANT]
    return [names[i] for i in keep], params[keep], vcov[np.ix_(keep, keep)]


def variance_share(sigma_u: float, sigma_e: float) -> float:
    """rho = sigma_u^2 / (sigma_u^2 + sigma_e^2), the fraction of variance due to u_i."""
    total = sigma_u ** 2 + sigma_e ** 2
    return float(sigma_u ** 2 / total) if total > 0 else float("nan")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either has no variation."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
