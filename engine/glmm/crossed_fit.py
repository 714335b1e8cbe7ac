"""Fit a GLMM (logit, probit, Poisson) whose random factors cross, by the Laplace approximation.

Chosen by engine.glmm.fit when the spec has crossed factors. When they turn out to nest in the
data, the nested path fits the equivalent nested model instead (as the linear crossed fit does).
Theta and beta are optimised jointly, as glmer's default (nAGQ = 1) ends; the standard errors
come from the observed information of the Laplace deviance in (theta, beta), as glmer's vcov.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from engine.errors import UserInputError
from engine.glmm.crossed_criterion import CrossedGlmmCriterion
from engine.glmm.diagnostics import data_warnings
from engine.glmm.family import Family
from engine.glmm.glm import fit_glm
from engine.glmm.optimize import BOUNDARY_SD, HESSIAN_STEP, covariance_in_theta, minimise_glmm, theta_bounds
from engine.mixed.covariance import LevelCovariance
from engine.mixed.crossed.factors import (GroupingFactor, fit_as_nested, group_table, grouping_factors,
                                         nesting_order)
from engine.mixed.inference import fixed_effect_rows
from engine.mixed.prepare import prepare_model_data
from engine.model_spec import ModelSpec
from engine.results import GroupCount, LevelEffects


class FactorGroups:
    """The crossed factors seen through the few methods of Hierarchy the GLMM output uses."""

    def __init__(self, factors: list[GroupingFactor]):
        self.factors = factors
        self.row_codes = [factor.codes for factor in factors]
        self.group_counts = [factor.n_groups for factor in factors]
        self.level_names = [factor.name for factor in factors]

    @property
    def n_levels(self) -> int:
        return len(self.factors)

    def rows_per_group(self, level: int) -> np.ndarray:
        return np.bincount(self.row_codes[level], minlength=self.group_counts[level])

    def group_table(self) -> list[GroupCount]:
        return group_table(self.factors)

    def group_ids(self, frame: pd.DataFrame, level: int) -> pd.DataFrame:
        """The id columns of each group of factor ``level`` (its own id and those it lies within)."""
        codes = self.row_codes[level]
        first_row = np.full(self.group_counts[level], -1, dtype=np.int64)
        first_row[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
        return frame[self.factors[level].columns].iloc[first_row].reset_index(drop=True)


def fit_glmm_crossed(frame: pd.DataFrame, spec: ModelSpec, *, start_theta=None, predict: bool = True,
                     should_stop=None, on_iteration=None):
    """Fit a logistic, probit or Poisson model whose random factors cross (Laplace, as glmer's nAGQ = 1).

    Parameters
    ----------
    frame : the data; rows with missing values in the model's variables are dropped.
    spec : the model (``spec.family`` not Gaussian, some level crossed); ``nagq`` must be 1.
    start_theta : optional starting values of theta (Lambda's parameters, levels in the spec's order).
    predict : also compute the predicted random effects (with conditional sds) and fitted means.
    should_stop : polled at each likelihood evaluation; returning True raises ``Cancelled``.
    on_iteration : called with (iteration, log-likelihood) as the optimiser proceeds.

    Returns
    -------
    FitResult
        As a nested GLMM's: coefficients with SEs from the observed information, sd (and corr) rows
        per factor with ``level`` = the factor's name, LR test against the single-level GLM.
    """
    from engine.glmm.fit import (_convergence_warnings, _fixed_effects_covariance, _offset, _result, _slope_rows,
                                 exponentiated, sample_notes)

    started = time.perf_counter()
    if spec.nagq > 1:
        raise UserInputError(f"intpoints({spec.nagq}) (adaptive quadrature) is for one random-intercept level; "
                             f"crossed random factors are fitted by the Laplace approximation (intpoints(1), "
                             f"lme4's nAGQ = 1)")
    family = Family(spec.family, spec.link)
    data = prepare_model_data(frame, spec)
    factors = grouping_factors(data.frame, spec)
    order = nesting_order(factors)
    if order is not None:
        from engine.glmm.fit import fit_glmm

        return fit_as_nested(fit_glmm, frame, spec, order, factors, start_theta, predict=predict,
                             should_stop=should_stop, on_iteration=on_iteration)
    if spec.binomial:  # successes out of trials
        family = Family(family.name, family.link, data.frame[spec.binomial].to_numpy(dtype=float))
    y = data.y
    family.check_outcome(y, spec.outcome)
    offset = _offset(data.frame, spec)
    x, names = data.design.matrix, data.design.names
    effect_columns, covariances = [], []
    for level in spec.levels:
        columns = [np.ones(y.size) if term == "_cons" else data.frame[term].to_numpy(dtype=float)
                   for term in level.estimation_terms]
        effect_columns.append(np.column_stack(columns))
        covariances.append(LevelCovariance(len(columns), level.covariance if len(columns) > 1 else "independent"))
    groups = FactorGroups(factors)
    beta_glm, loglik_glm, glm_converged = fit_glm(family, y, x, offset)
    criterion = CrossedGlmmCriterion(factors, family, y, x, offset, effect_columns, covariances)
    theta0 = np.concatenate([cov.start() for cov in covariances]) if start_theta is None \
        else np.asarray(start_theta, dtype=float)
    if theta0.size != criterion.n_theta:
        raise UserInputError(f"start values: the model has {criterion.n_theta} covariance parameters, "
                             f"{theta0.size} were given")
    report = None if on_iteration is None else (lambda i, deviance: on_iteration(i, -0.5 * deviance))
    optimum = minimise_glmm(criterion, np.concatenate([theta0, beta_glm]), should_stop, report)
    theta, beta = criterion.split(optimum.params)
    loglik = -0.5 * optimum.deviance
    cov_all, free = covariance_from_gradient(criterion, optimum.params)
    n_free = int(free.sum())
    state = criterion.modes.solve(theta, criterion.fixed_part(beta), need_sds=predict)

    warnings: list[str] = []
    data_problems, data_notes = data_warnings(family, spec, y, x, names, groups, beta)
    warnings += data_problems
    cov_beta = _fixed_effects_covariance(cov_all, n_free, len(names), warnings)
    sd_rows, var_rows, boundary = _slope_rows(spec, criterion, theta, free,
                                              None if cov_all is None else cov_all[:n_free, :n_free])
    warnings += boundary
    warnings += _convergence_warnings(optimum, state)
    fixed = fixed_effect_rows(names, beta, cov_beta)
    result = _result(spec, family, data, names, beta, cov_beta, cov_all is not None, loglik, loglik_glm,
                     criterion.n_theta, optimum, state.converged, theta, sd_rows, var_rows, warnings, groups, fixed)
    if spec.eform:
        result.fixed_eform = [exponentiated(row) for row in fixed]
    factors_text = ", ".join(level.name for level in spec.levels)
    result.notes.append(f"The random factors ({factors_text}) cross: fitted with the Laplace approximation and a "
                        f"sparse Cholesky of Lambda'Z'WZ Lambda + I (lme4's glmer, nAGQ = 1); groups count the "
                        f"distinct ids of each factor.")
    result.notes += data_notes
    result.notes.append("ICCs are not reported for crossed random factors (as Stata's estat icc).")
    result.notes += sample_notes(data, glm_converged)
    if predict:
        fixed_part = criterion.fixed_part(beta)
        result.fitted = family.expected(fixed_part + state.random_part)
        result.fitted_fixed_only = family.expected(fixed_part)
        result.residuals = y - result.fitted
        sds = state.conditional_sds
        if sds is None:
            result.notes.append("Conditional standard errors of the predicted random effects are not computed for "
                                "this many groups of the smaller factors.")
        result.level_effects = [
            LevelEffects(level=level.name, terms=level.estimation_terms, group_ids=groups.group_ids(data.frame, i),
                         estimates=state.effects[i],
                         std_errors=sds[i] if sds is not None else np.full_like(state.effects[i], np.nan))
            for i, level in enumerate(spec.levels)]
    result.fit_seconds = time.perf_counter() - started
    return result


def covariance_from_gradient(criterion: CrossedGlmmCriterion, params: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Inverse observed information over (free theta, beta), by central differences of the exact
    gradient; diagonal theta entries below BOUNDARY_SD are held fixed. Returns it (None when not
    positive definite) and the free-theta mask; second differences of the deviance when the
    gradient is not available."""
    theta, beta = criterion.split(params)
    diagonal = np.array([low is not None for low, _ in theta_bounds(criterion)])
    free = ~(diagonal & (np.abs(theta) <= BOUNDARY_SD))
    n_free = int(free.sum())
    x0 = np.concatenate([theta[free], beta])
    keep = np.concatenate([free, np.ones(beta.size, dtype=bool)])

    def gradient(x):
        full = theta.copy()
        full[free] = x[:n_free]
        answer = criterion.deviance_and_gradient(np.concatenate([full, x[n_free:]]))
        return None if answer is None else answer[1][keep]

    hessian = np.empty((x0.size, x0.size))
    for j in range(x0.size):
        step = HESSIAN_STEP * max(1.0, abs(x0[j]))
        up, down = x0.copy(), x0.copy()
        up[j] += step
        down[j] -= step
        g_up, g_down = gradient(up), gradient(down)
        if g_up is None or g_down is None:
            return covariance_in_theta(criterion, params)
        hessian[:, j] = (g_up - g_down) / (2.0 * step)
    criterion.deviance(params)  # leave the modes at the optimum
    try:
        cov = np.linalg.inv(0.25 * (hessian + hessian.T))  # the information is half the deviance's Hessian
    except np.linalg.LinAlgError:
        return None, free
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        return None, free
    return cov, free
