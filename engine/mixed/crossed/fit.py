"""Fit a linear mixed model whose random factors are crossed (or any mix of nested and crossed).

When the factors turn out to nest in the data, the nested O(groups) path fits the model instead.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LevelTerms
from engine.mixed.crossed.criterion import CrossedCriterion
from engine.mixed.crossed.factors import (fit_as_nested, group_table, grouping_factors, nested_equivalent,
                                         nesting_order)
from engine.mixed.crossed.inference_ddf import crossed_fixed_effects_inference
from engine.mixed.ddf import check_dfmethod, data_scale
from engine.mixed.inference import VarianceParameters, lr_test_vs_linear
from engine.mixed.optimize import minimise_deviance
from engine.mixed.prepare import build_work_columns, prepare_model_data
from engine.model_spec import ModelSpec
from engine.results import FitResult, LevelEffects, LinkCovariance

HESSIAN_STEP = 1e-3  # second differences of -2 log L, on the log-sd / atanh-corr / log-sigma scale
PROFILE_HESSIAN_STEP = 1e-7  # forward differences of the profiled deviance's exact gradient, relative to theta
JACOBIAN_STEP = 1e-6  # central differences of the explicit map psi -> (theta, log sigma)


def fit_crossed(frame: pd.DataFrame, spec: ModelSpec, *, start_theta=None, predict: bool = True,
                should_stop=None, on_iteration=None) -> FitResult:
    """Fit ``spec``, whose levels include crossed factors; see ``engine.mixed.fit_mixed``."""
    started = time.perf_counter()
    data = prepare_model_data(frame, spec)
    factors = grouping_factors(data.frame, spec)
    order = nesting_order(factors)
    if order is not None:
        from engine.mixed.fit import _fit_mixed

        return fit_as_nested(_fit_mixed, frame, spec, order, factors, start_theta, predict=predict,
                             should_stop=should_stop, on_iteration=on_iteration)
    check_dfmethod(spec)
    work = build_work_columns(data, spec)
    criterion = _crossed_criterion(work, factors, spec)
    reml = criterion.reml
    report = None
    if on_iteration is not None:
        def report(iteration, deviance):
            on_iteration(iteration, -0.5 * deviance)
    optimum = minimise_deviance(criterion, start_theta, should_stop, report)
    evaluation, blocks = criterion._evaluate(optimum.theta)

    from engine.mixed.fit import _fixed_effects_on_data_scale

    n, p = criterion.n, criterion.p
    sigma = float(np.sqrt(evaluation.r2 / (n - p if reml else n)))
    names = data.design.names
    beta, cov_beta = _fixed_effects_on_data_scale(evaluation, sigma, work, names)
    loglik = -0.5 * evaluation.deviance
    variance = CrossedVarianceParameters(criterion, spec, optimum.theta, sigma)
    warnings = _boundary_warnings(variance, spec)
    cov_psi = variance.covariance()
    if cov_psi is None:
        warnings.append("The information matrix of the variance parameters is singular: "
                        "their standard errors are not reported.")
    if not optimum.converged:
        warnings.append(f"The optimiser did not converge ({optimum.message}); treat the estimates with caution.")
    sd_rows, var_rows = variance.rows(cov_psi)
    loglik_linear = -0.5 * criterion.evaluate(np.zeros(criterion.n_params), gradient=False).deviance
    inference = crossed_fixed_effects_inference(spec, names, beta, cov_beta, criterion, optimum.theta, sigma,
                                                data_scale(work.x_means, names), data.design.matrix, factors)
    result = FitResult(
        estimator="mixed", method=spec.method, nobs=n, fixed=inference.coefficient_rows(),
        name=spec.to_stata(), model=spec.to_stata(), depvar=spec.outcome, loglik=loglik,
        converged=optimum.converged, random=sd_rows, groups=group_table(factors),
        lr_test=lr_test_vs_linear(loglik, loglik_linear, criterion.n_params),
        wald=inference.overall_test(), warnings=warnings, dropped_rows=data.dropped_rows,
        n_params=p + criterion.n_params + 1, iterations=[-0.5 * d for d in optimum.history],
        theta=[float(t) for t in optimum.theta], vcov=inference.cov.tolist(), spec=spec,
        dfmethod=spec.dfmethod or "z",
    )
    result.inference = inference
    result.random_variances = var_rows
    result.boundary_params = variance.boundary_names()  # judged unit-free, as the nested fit's
    if cov_psi is not None:
        result.link_covariance = LinkCovariance(variance.free_names(), cov_psi.tolist())
    crossed = [level.name for level in spec.levels if level.crossed]
    result.notes.append(f"Crossed random factors ({', '.join(crossed)}): fitted with the general "
                        f"(blocked sparse Cholesky) criterion; groups count the distinct ids of each factor.")
    if data.dropped_rows:
        result.notes.append(f"{data.dropped_rows} rows with missing values in the model's variables were dropped.")
    if predict:
        _attach_predictions(result, criterion, blocks, optimum.theta, evaluation, sigma, factors, data, work, beta)
    result.fit_seconds = time.perf_counter() - started
    return result


def _crossed_criterion(work, factors, spec: ModelSpec) -> CrossedCriterion:
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    return CrossedCriterion(work.matrix, factors, levels, work.x_columns, work.y_column, spec.method == "REML")


def criterion_and_spec(frame: pd.DataFrame, spec: ModelSpec):
    """The criterion ``fit_crossed`` minimises for ``spec`` on ``frame``, with the spec in that
    criterion's parameter order: the nested equivalent when the factors nest in the data (as the
    fit then does), else ``spec`` itself with the crossed criterion. For profile intervals."""
    from engine.mixed.profile import criterion_of

    data = prepare_model_data(frame, spec)
    factors = grouping_factors(data.frame, spec)
    order = nesting_order(factors)
    if order is not None:
        nested = nested_equivalent(spec, order)
        return criterion_of(frame, nested), nested
    return _crossed_criterion(build_work_columns(data, spec), factors, spec), spec


class CrossedVarianceParameters(VarianceParameters):
    """Standard errors on Stata's scale. With an exact gradient: the Hessian of the profiled
    deviance by forward differences of that gradient in theta, completed analytically in sigma
    (``_hessian_from_profile``); else by central second differences of the function."""

    def _covariance(self, step: float | None = None) -> np.ndarray | None:
        if self.criterion.diagonal:
            centre = self.criterion.evaluate(self.theta)
            if centre.d_r2 is not None:
                from engine.mixed.inference import _inverse_or_none

                return _inverse_or_none(0.5 * self._hessian_from_profile(centre))
        step = HESSIAN_STEP
        psi = self.psi()
        size = psi.size

        def value(shift):
            theta, sigma = self.theta_sigma(psi + shift)
            return self.criterion.deviance_at_sigma(theta, sigma)

        centre = value(np.zeros(size))
        hessian = np.empty((size, size))
        unit = np.eye(size) * step
        for i in range(size):
            hessian[i, i] = (value(unit[i]) - 2.0 * centre + value(-unit[i])) / step ** 2
            for j in range(i):
                hessian[i, j] = hessian[j, i] = (
                    value(unit[i] + unit[j]) - value(unit[i] - unit[j])
                    - value(-unit[i] + unit[j]) + value(-unit[i] - unit[j])) / (4 * step ** 2)
        from engine.mixed.inference import _inverse_or_none

        return _inverse_or_none(0.5 * hessian)


    def _hessian_from_profile(self, centre) -> np.ndarray:
        """Hessian of -2 log L in psi (log sds, log sigma) from that of the profiled deviance D_p.

        D_p(theta) = min over sigma of D(theta, sigma), so in (theta, log sigma), at the optimum
        sigma^2 = r2 / dof: D_ss = 4 dof, D_ts = -2 dof (d r2 / d theta) / r2 and
        D_tt = H_p + D_ts D_ts' / D_ss with H_p the Hessian of D_p (forward differences of its
        exact gradient, one evaluation per parameter). At a stationary point psi's Hessian is
        J' H J, with J = d(theta, log sigma) / d psi (no evaluations: the map is explicit).
        """
        criterion, theta = self.criterion, self.theta
        psi = self.psi()
        jacobian = np.empty((theta.size + 1, psi.size))
        for j in range(psi.size):
            up, down = psi.copy(), psi.copy()
            up[j] += JACOBIAN_STEP
            down[j] -= JACOBIAN_STEP
            (t_up, s_up), (t_down, s_down) = self.theta_sigma(up), self.theta_sigma(down)
            jacobian[:-1, j] = (t_up - t_down) / (2 * JACOBIAN_STEP)
            jacobian[-1, j] = (np.log(s_up) - np.log(s_down)) / (2 * JACOBIAN_STEP)
        moving = np.flatnonzero(np.any(jacobian[:-1] != 0.0, axis=1) & (theta != 0.0))
        profiled = np.zeros((theta.size, theta.size))
        for k in moving:
            step = PROFILE_HESSIAN_STEP * abs(theta[k])
            shifted = theta.copy()
            shifted[k] += step
            profiled[:, k] = (criterion.evaluate(shifted).gradient - centre.gradient) / step
        inner = np.ix_(moving, moving)
        profiled[inner] = 0.5 * (profiled[inner] + profiled[inner].T)
        dof = criterion.n - criterion.p if criterion.reml else criterion.n
        cross = -2.0 * dof * centre.d_r2 / centre.r2
        full = np.zeros((theta.size + 1, theta.size + 1))
        full[:-1, :-1] = profiled + np.outer(cross, cross) / (4.0 * dof)
        full[:-1, -1] = full[-1, :-1] = cross
        full[-1, -1] = 4.0 * dof
        return jacobian.T @ full @ jacobian


def _boundary_warnings(variance: VarianceParameters, spec: ModelSpec) -> list[str]:
    out = []
    for index in variance.singular_levels:  # lme4: "boundary (singular) fit"
        level = spec.levels[index]
        out.append(
            f"The covariance matrix of the random effects across {level.name} groups ({', '.join(level.terms)}) "
            f"is singular (on the boundary): some combination of them does not vary between {level.name} "
            f"groups, or two of them are perfectly correlated. Their standard errors are not reported; "
            f"consider independent effects (lme4's ||) or fewer random slopes.")
    for entry in variance.entries:
        if entry.kind == "sd" and variance.is_zero(entry):  # judged unit-free, as the nested fit's
            level = spec.levels[entry.level]
            term = level.estimation_terms[entry.i]
            out.append(f"The variance of {term} across {level.name} groups is estimated at zero (on the boundary); "
                       f"no standard error is reported for it; the model may be simplified by dropping it.")
    return out


def _attach_predictions(result, criterion, blocks, theta, evaluation, sigma, factors, data, work, beta):
    from engine.mixed.crossed.predict import random_effects

    effects = random_effects(criterion, blocks, theta, evaluation.beta, sigma)
    fitted = data.design.matrix @ beta
    level_effects = []
    for index, (level, factor, (estimates, sds)) in enumerate(zip(result.spec.levels, factors, effects)):
        for term, column in enumerate(criterion.levels[index].columns):
            fitted += work.matrix[:, column] * estimates[factor.codes, term]
        first_row = np.full(factor.n_groups, -1, dtype=np.int64)
        first_row[factor.codes[::-1]] = np.arange(factor.codes.size - 1, -1, -1)
        ids = data.frame[factor.columns].iloc[first_row].reset_index(drop=True)
        level_effects.append(LevelEffects(level=level.name, terms=level.estimation_terms, group_ids=ids,
                                          estimates=estimates, std_errors=sds))
    result.level_effects = level_effects
    result.fitted = fitted
    result.residuals = data.y - fitted
