"""Fit a GLMM (binary or count outcome, nested random intercepts) by maximum likelihood."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd

from engine.errors import UserInputError
from engine.glmm.criterion import GlmmCriterion
from engine.glmm.diagnostics import data_warnings
from engine.glmm.family import Family
from engine.glmm.glm import fit_glm
from engine.glmm.optimize import BOUNDARY_SD, covariance_of_estimates, minimise_glmm
from engine.mixed.hierarchy import build_hierarchy, nesting_notes, structure_warnings
from engine.mixed.inference import Z_975, _log_scale_row, fixed_effect_rows, lr_test_vs_linear, wald_test
from engine.mixed.prepare import prepare_model_data
from engine.mixed.threads import single_threaded_blas
from engine.model_spec import ModelSpec
from engine.results import FitResult, FixedEffect, LevelEffects, LinkCovariance, RandomParam

FAMILY_TITLES = {("binomial", "logit"): "logistic", ("binomial", "probit"): "probit", ("poisson", "log"): "Poisson"}


def fit_glmm(frame: pd.DataFrame, spec: ModelSpec, *, start_theta=None, predict: bool = True,
             should_stop: Callable[[], bool] | None = None,
             on_iteration: Callable[[int, float], None] | None = None) -> FitResult:
    """Fit a multilevel logistic, probit or Poisson model (``spec.family`` not Gaussian).

    Parameters
    ----------
    frame : the data; rows with missing values in the model's variables are dropped.
    spec : the model: nested levels with random intercepts, ``nagq`` integration points
        (1 = Laplace; more = adaptive Gauss-Hermite, one random-intercept level only).
    start_theta : optional starting sds of the levels' random intercepts (latent scale).
    predict : also compute predicted random effects and predicted probabilities / rates.
    should_stop : polled at each likelihood evaluation; returning True raises ``Cancelled``.
    on_iteration : called with (iteration, log-likelihood) as the optimiser proceeds.
    """
    with single_threaded_blas():
        return _fit_glmm(frame, spec, start_theta, predict, should_stop, on_iteration)


def _fit_glmm(frame, spec, start_theta, predict, should_stop, on_iteration) -> FitResult:
    started = time.perf_counter()
    family = Family(spec.family, spec.link)
    for level in spec.levels:
        if level.slopes:
            raise UserInputError(
                f"random slopes ({', '.join(level.slopes)} at level {level.name}) are not supported for binary and "
                f"count outcomes yet: this engine fits random intercepts at any number of nested levels")
    data = prepare_model_data(frame, spec)
    y = data.y
    family.check_outcome(y, spec.outcome)
    offset = _offset(data.frame, spec)
    x = data.design.matrix
    names = data.design.names
    hierarchy = build_hierarchy(data.frame, spec.level_names)
    beta_glm, loglik_glm, glm_converged = fit_glm(family, y, x, offset)
    criterion = GlmmCriterion(hierarchy, family, y, x, offset, spec.nagq)
    theta0 = np.ones(hierarchy.n_levels) if start_theta is None else np.abs(np.asarray(start_theta, dtype=float))
    report = None if on_iteration is None else (lambda i, deviance: on_iteration(i, -0.5 * deviance))
    optimum = minimise_glmm(criterion, np.concatenate([theta0, beta_glm]), should_stop, report)
    theta, beta = criterion.split(optimum.params)
    theta = np.abs(theta)
    loglik = -0.5 * optimum.deviance
    cov_all, free_levels = covariance_of_estimates(criterion, optimum.params)
    n_free = int(free_levels.sum())
    state = criterion.modes.solve(theta, criterion.fixed_part(beta))

    warnings = structure_warnings(hierarchy, data.frame) if hierarchy.n_levels else []
    data_problems, data_notes = data_warnings(family, spec, y, x, names, hierarchy, beta)
    warnings += data_problems
    if cov_all is None:
        warnings.append("The observed information matrix is not positive definite: standard errors are not "
                        "reported (a parameter may be at a boundary or not identified).")
        cov_beta = np.full((len(names), len(names)), np.nan)
    else:
        cov_beta = cov_all[n_free:, n_free:]
    for index, level in enumerate(spec.levels):
        if theta[index] <= BOUNDARY_SD:
            warnings.append(
                f"The variance of the random intercept at level {level.name} is estimated at zero (on the "
                f"boundary): the outcome varies no more between {level.name} groups than the other terms and chance "
                f"explain. "
                f"No standard error is reported for it; the model may be simplified by dropping it.")
    if not optimum.converged:
        warnings.append(f"The optimiser did not converge ({optimum.message}); treat the estimates with caution.")
    if not state.converged:
        warnings.append("The conditional modes (penalised IRLS) did not converge at the estimates; the "
                        "likelihood approximation may be inaccurate.")

    sd_rows, var_rows = _random_rows(spec, theta, free_levels, cov_all)
    fixed = fixed_effect_rows(names, beta, cov_beta)
    result = FitResult(
        estimator="mixed", method="ML", nobs=int(y.size), fixed=fixed, name=spec.to_stata(), model=spec.to_stata(),
        depvar=spec.outcome, loglik=loglik, converged=optimum.converged and state.converged, random=sd_rows,
        groups=hierarchy.group_table(), lr_test=lr_test_vs_linear(loglik, loglik_glm, hierarchy.n_levels),
        wald=wald_test(names, beta, cov_beta) if cov_all is not None else None, warnings=warnings,
        dropped_rows=data.dropped_rows, n_params=len(names) + hierarchy.n_levels,
        iterations=[-0.5 * d for d in optimum.history], theta=[float(t) for t in theta],
        vcov=cov_beta.tolist(), spec=spec, dfmethod="z",
        family=family.name, link=family.link, nagq=spec.nagq, integration=integration_name(spec.nagq),
    )
    result.random_variances = var_rows
    if cov_all is not None:
        labels = [f"{spec.levels[i].name}:sd(_cons)" for i in np.flatnonzero(free_levels)]
        result.link_covariance = LinkCovariance(labels + [f"beta:{name}" for name in names], cov_all.tolist())
    if spec.eform:
        result.fixed_eform = [exponentiated(row) for row in fixed]
    result.icc = latent_iccs(family, spec, theta)
    result.notes += nesting_notes(hierarchy) + data_notes
    if data.dropped_rows:
        result.notes.append(f"{data.dropped_rows} rows with missing values in the model's variables were dropped.")
    if not glm_converged:
        result.notes.append("The single-level model of the LR test did not converge (IRLS); its test is approximate.")
    if predict:
        _attach_predictions(result, family, criterion, state, theta, beta, hierarchy, data, offset)
    result.fit_seconds = time.perf_counter() - started
    return result


def integration_name(nagq: int) -> str:
    if nagq <= 1:
        return "Laplace approximation"
    return f"adaptive Gauss-Hermite quadrature at each group's mode (mcaghermite), {nagq} points"


def _offset(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    if spec.exposure:
        values = frame[spec.exposure].to_numpy(dtype=float)
        if np.any(values <= 0):
            bad = int(np.flatnonzero(values <= 0)[0])
            raise UserInputError(f"exposure({spec.exposure}) must be positive; row {bad + 1} has {values[bad]:g}")
        return np.log(values)
    if spec.offset:
        return frame[spec.offset].to_numpy(dtype=float)
    return np.zeros(len(frame))


def exponentiated(row: FixedEffect) -> FixedEffect:
    """exp(b) with the delta-method SE exp(b) se, the same z and p, and the exponentiated interval (Stata)."""
    value = float(np.exp(row.coef))
    return FixedEffect(row.term, value, value * row.se, row.z, row.p,
                       [float(np.exp(row.ci[0])), float(np.exp(row.ci[1]))])


def _random_rows(spec, theta, free_levels, cov_all):
    sd_rows, var_rows = [], []
    free_index = 0
    for index, level in enumerate(spec.levels):
        se_log = None
        if free_levels[index]:
            if cov_all is not None:
                se_log = float(np.sqrt(cov_all[free_index, free_index]))
            free_index += 1
        sd_rows.append(_log_scale_row(level.name, "sd(_cons)", float(theta[index]), se_log, 1))
        var_rows.append(_log_scale_row(level.name, "var(_cons)", float(theta[index]), se_log, 2))
    return sd_rows, var_rows


def latent_iccs(family: Family, spec: ModelSpec, theta: np.ndarray) -> list[RandomParam]:
    """Stata's `estat icc` on the latent scale: the correlation of two observations sharing the groups of
    a level and all levels above it, sum of those variances / (all variances + pi^2/3 or 1)."""
    residual = family.latent_residual_variance
    if residual is None or not spec.levels:
        return []
    variances = np.asarray(theta, dtype=float) ** 2
    total = float(variances.sum()) + residual
    rows = []
    for index in range(len(spec.levels)):
        label = "|".join(level.name for level in spec.levels[: index + 1])
        rows.append(RandomParam(label, "icc", float(variances[: index + 1].sum() / total)))
    return rows


def _attach_predictions(result, family, criterion, state, theta, beta, hierarchy, data, offset):
    """Predicted random effects (conditional modes) with approximate conditional sds; predicted
    probabilities or rates with the random effects at their modes and at zero."""
    fixed = criterion.fixed_part(beta)
    result.fitted = family.mean(fixed + state.random_part)
    result.fitted_fixed_only = family.mean(fixed)
    result.residuals = data.y - result.fitted
    spec = result.spec
    sds = conditional_sds(criterion, state, theta, beta)
    result.level_effects = [
        LevelEffects(level=spec.levels[i].name, terms=["_cons"], group_ids=hierarchy.group_ids(data.frame, i),
                     estimates=(theta[i] * state.modes[i])[:, None], std_errors=sds[i][:, None])
        for i in range(hierarchy.n_levels)
    ]


def conditional_sds(criterion: GlmmCriterion, state, theta: np.ndarray, beta: np.ndarray) -> list[np.ndarray]:
    """Conditional sds of each group's effect: the diagonal of Lambda H^-1 Lambda' at the modes
    (lme4's condVar), by the top-down pass of engine.mixed.predict on the reweighted problem."""
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.criterion import LevelTerms, NestedCriterion
    from engine.mixed.predict import predict_random_effects

    weights, _ = criterion.family.weights_and_scores(criterion.y, criterion.fixed_part(beta) + state.random_part)
    root = np.sqrt(weights)
    columns = np.column_stack([root, root])  # the response column does not enter the variances
    levels = [LevelTerms([0], LevelCovariance(1, "independent")) for _ in range(criterion.n_theta)]
    nested = NestedCriterion(columns, criterion.hierarchy, levels, [], 1, False)
    evaluation = nested.evaluate(theta, gradient=False, keep=True)
    return [sd[:, 0] for _, sd in predict_random_effects(nested, evaluation, theta, 1.0)]
