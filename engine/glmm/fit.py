"""Fit a GLMM (binary or count outcome, nested random intercepts) by maximum likelihood; crossed
factors go to engine.glmm.crossed_fit."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd

from engine.errors import UserInputError
from engine.glmm.criterion import GlmmCriterion
from engine.glmm.diagnostics import data_warnings, glmm_structure_warnings
from engine.glmm.family import Family
from engine.glmm.glm import fit_glm
from engine.glmm.optimize import BOUNDARY_SD, covariance_of_estimates, minimise_glmm
from engine.mixed.hierarchy import build_hierarchy, nesting_notes
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
    if spec.has_crossed:  # crossed factors: their own criterion (or the nested one, when they nest in the data)
        from engine.glmm.crossed_fit import fit_glmm_crossed

        return fit_glmm_crossed(frame, spec, start_theta=start_theta, predict=predict, should_stop=should_stop,
                                on_iteration=on_iteration)
    data = prepare_model_data(frame, spec)
    if spec.binomial:  # successes out of trials
        family = Family(family.name, family.link, data.frame[spec.binomial].to_numpy(dtype=float))
    if not spec.levels:  # no random effects: the single-level model (Stata's logit, probit, poisson)
        from engine.glmm.single_level import fit_single_level

        return fit_single_level(data, spec, family, _offset(data.frame, spec), started)
    if any(level.slopes or not level.intercept for level in spec.levels):
        return _fit_general(data, spec, family, start_theta, predict, should_stop, on_iteration, started)
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

    warnings, structure_notes = glmm_structure_warnings(hierarchy, data.frame, family)
    data_problems, data_notes = data_warnings(family, spec, y, x, names, hierarchy, beta)
    warnings += data_problems
    data_notes = structure_notes + data_notes
    cov_beta = _fixed_effects_covariance(cov_all, n_free, len(names), warnings)
    for index, level in enumerate(spec.levels):
        if theta[index] <= BOUNDARY_SD:
            warnings.append(
                f"The variance of the random intercept at level {level.name} is estimated at zero (on the "
                f"boundary): the outcome varies no more between {level.name} groups than the other terms and chance "
                f"explain. "
                f"No standard error is reported for it; the model may be simplified by dropping it.")
    warnings += _convergence_warnings(optimum, state)

    sd_rows, var_rows = _random_rows(spec, theta, free_levels, cov_all)
    fixed = fixed_effect_rows(names, beta, cov_beta)
    result = _result(spec, family, data, names, beta, cov_beta, cov_all is not None, loglik, loglik_glm, hierarchy.n_levels,
                     optimum, state.converged, theta, sd_rows, var_rows, warnings, hierarchy, fixed)
    if cov_all is not None:
        labels = [f"{spec.levels[i].name}:sd(_cons)" for i in np.flatnonzero(free_levels)]
        result.link_covariance = LinkCovariance(labels + [f"beta:{name}" for name in names], cov_all.tolist())
    if spec.eform:
        result.fixed_eform = [exponentiated(row) for row in fixed]
    result.latent_icc = latent_iccs(family, spec, theta, free_levels,
                                    None if cov_all is None else cov_all[:n_free, :n_free])
    result.notes += nesting_notes(hierarchy) + data_notes
    result.notes += sample_notes(data, glm_converged)
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


def latent_iccs(family: Family, spec: ModelSpec, theta: np.ndarray, free_levels: np.ndarray | None = None,
                cov_log_sd: np.ndarray | None = None) -> list[RandomParam]:
    """Stata's `estat icc` on the latent scale: the correlation of two observations sharing the groups of
    a level and all levels above it, sum of those variances / (all variances + pi^2/3 or 1), labelled
    as Stata (school_id|dist_id); delta-method SE from the log sds' covariance, CI on the logit scale."""
    residual = family.latent_residual_variance
    if residual is None or not spec.levels:
        return []
    variances = np.asarray(theta, dtype=float) ** 2
    total = float(variances.sum()) + residual
    free = np.flatnonzero(free_levels) if free_levels is not None else np.zeros(0, dtype=int)
    rows = []
    for index in range(len(spec.levels)):
        label = "|".join(level.name for level in reversed(spec.levels[: index + 1]))
        share = float(variances[: index + 1].sum())
        icc = share / total
        se = ci = None
        if cov_log_sd is not None and free.size == cov_log_sd.shape[0]:
            # d icc / d log sd_j = 2 var_j (1{j <= index} / total - share / total^2)
            gradient = np.array([2.0 * variances[j] * ((1.0 if j <= index else 0.0) / total - share / total ** 2)
                                 for j in free])
            se = float(np.sqrt(max(gradient @ cov_log_sd @ gradient, 0.0)))
            if 0.0 < icc < 1.0 and se > 0:
                logit = np.log(icc / (1.0 - icc))
                half = Z_975 * se / (icc * (1.0 - icc))
                ci = [float(1.0 / (1.0 + np.exp(-(logit - half)))), float(1.0 / (1.0 + np.exp(-(logit + half))))]
        rows.append(RandomParam(label, "icc", float(icc), se, ci))
    return rows


def _attach_predictions(result, family, criterion, state, theta, beta, hierarchy, data, offset):
    """Predicted random effects (conditional modes) with approximate conditional sds; predicted
    probabilities or rates with the random effects at their modes and at zero."""
    fixed = criterion.fixed_part(beta)
    result.fitted = family.expected(fixed + state.random_part)
    result.fitted_fixed_only = family.expected(fixed)
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


# ----- random slopes ------------------------------------------------------------------------------

def _fit_general(data, spec, family, start_theta, predict, should_stop, on_iteration, started) -> FitResult:
    """Levels with random slopes: PIRLS steps through the linear engine's recursion, numerical
    derivatives in the outer problem (see engine.glmm.general)."""
    from engine.glmm.optimize import covariance_in_theta
    from engine.mixed.covariance import LevelCovariance

    y = data.y
    family.check_outcome(y, spec.outcome)
    offset = _offset(data.frame, spec)
    x, names = data.design.matrix, data.design.names
    hierarchy = build_hierarchy(data.frame, spec.level_names)
    effect_columns, covariances = [], []
    for level in spec.levels:
        columns = [np.ones(y.size) if term == "_cons" else data.frame[term].to_numpy(dtype=float)
                   for term in level.estimation_terms]
        effect_columns.append(np.column_stack(columns))
        covariances.append(LevelCovariance(len(columns), level.covariance))
    beta_glm, loglik_glm, glm_converged = fit_glm(family, y, x, offset)
    criterion = GlmmCriterion(hierarchy, family, y, x, offset, spec.nagq, effect_columns, covariances)
    theta0 = np.concatenate([cov.start() for cov in covariances]) if start_theta is None else np.asarray(start_theta, float)
    beta0 = beta_glm
    if start_theta is None and all(level.intercept for level in spec.levels):
        # start from the random-intercept model (the fast path): its sds and coefficients are close
        intercepts = GlmmCriterion(hierarchy, family, y, x, offset, 1)
        quick = minimise_glmm(intercepts, np.concatenate([np.ones(hierarchy.n_levels), beta_glm]), should_stop)
        quick_theta, beta0 = intercepts.split(quick.params)
        offsets = criterion.modes.offsets
        for level, cov in enumerate(covariances):
            lam = np.diag(np.ones(cov.q))
            lam[0, 0] = max(abs(quick_theta[level]), 0.1)  # _cons comes first (lme4's order)
            theta0[offsets[level]:offsets[level + 1]] = cov.theta_of_lambda(lam)
    report = None if on_iteration is None else (lambda i, deviance: on_iteration(i, -0.5 * deviance))
    optimum = minimise_glmm(criterion, np.concatenate([theta0, beta0]), should_stop, report)
    theta, beta = criterion.split(optimum.params)
    loglik = -0.5 * optimum.deviance
    cov_all, free = covariance_in_theta(criterion, optimum.params)
    n_free = int(free.sum())
    state = criterion.modes.solve(theta, criterion.fixed_part(beta), need_sds=True)
    warnings, structure_notes = glmm_structure_warnings(hierarchy, data.frame, family)
    data_problems, data_notes = data_warnings(family, spec, y, x, names, hierarchy, beta)
    warnings += data_problems
    data_notes = structure_notes + data_notes
    cov_beta = _fixed_effects_covariance(cov_all, n_free, len(names), warnings)
    sd_rows, var_rows, boundary = _slope_rows(spec, criterion, theta, free, None if cov_all is None else cov_all[:n_free, :n_free])
    warnings += boundary
    warnings += _convergence_warnings(optimum, state)
    fixed = fixed_effect_rows(names, beta, cov_beta)
    result = _result(spec, family, data, names, beta, cov_beta, cov_all is not None, loglik, loglik_glm, criterion.n_theta,
                     optimum, state.converged, theta, sd_rows, var_rows, warnings, hierarchy, fixed)
    if spec.eform:
        result.fixed_eform = [exponentiated(row) for row in fixed]
    result.notes += nesting_notes(hierarchy) + data_notes
    result.notes.append("ICCs are not reported: with random slopes the share of variance between groups depends "
                        "on the slope variables.")
    result.notes += sample_notes(data, glm_converged)
    if predict:
        fixed_part = criterion.fixed_part(beta)
        result.fitted = family.expected(fixed_part + state.random_part)
        result.fitted_fixed_only = family.expected(fixed_part)
        result.residuals = y - result.fitted
        result.level_effects = [
            LevelEffects(level=level.name, terms=level.estimation_terms, group_ids=hierarchy.group_ids(data.frame, i),
                         estimates=state.effects[i], std_errors=state.conditional_sds[i])
            for i, level in enumerate(spec.levels)]
    result.fit_seconds = time.perf_counter() - started
    return result


def _slope_rows(spec, criterion, theta, free, cov_theta):
    """sd and corr rows (Stata's order: slopes first, _cons last) with delta-method SEs from the
    covariance of the free theta; variances and covariances likewise."""
    modes = criterion.modes
    free_index = np.flatnonzero(free)

    def psi(full_theta):
        values = []
        for i, cov in enumerate(modes.covariances):
            sd, corr = cov.sd_corr(full_theta[modes.offsets[i]:modes.offsets[i + 1]], 1.0)
            values += [np.log(max(s, 1e-300)) for s in sd]
            values += [np.arctanh(np.clip(corr[a, b], -1 + 1e-15, 1 - 1e-15))
                       for a in range(cov.q) for b in range(a + 1, cov.q) if cov.kind == "unstructured"]
        return np.array(values)

    base = psi(theta)
    cov_psi = None
    if cov_theta is not None:
        jacobian = np.empty((base.size, free_index.size))
        for k, j in enumerate(free_index):
            h = 1e-6 * max(1.0, abs(theta[j]))
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            jacobian[:, k] = (psi(up) - psi(down)) / (2 * h)
        cov_psi = jacobian @ cov_theta @ jacobian.T
    sd_rows, var_rows, warnings = [], [], []
    position = 0
    for i, (level, cov) in enumerate(zip(spec.levels, modes.covariances)):
        level_theta = theta[modes.offsets[i]:modes.offsets[i + 1]]
        sd, corr = cov.sd_corr(level_theta, 1.0)
        terms = level.estimation_terms
        sd_entries = []
        for a in range(cov.q):
            se_log = None
            if cov_psi is not None and sd[a] > BOUNDARY_SD and np.isfinite(cov_psi[position + a, position + a]):
                se_log = float(np.sqrt(max(cov_psi[position + a, position + a], 0.0)))
            sd_entries.append((terms[a], sd[a], se_log))
            if sd[a] <= BOUNDARY_SD:
                warnings.append(f"The variance of {terms[a]} at level {level.name} is estimated at zero (on the "
                                f"boundary); no standard error is reported for it.")
        position += cov.q
        corr_entries = []
        if cov.kind == "unstructured":
            for a in range(cov.q):
                for b in range(a + 1, cov.q):
                    se = None
                    if abs(corr[a, b]) >= 1 - 1e-6 and min(sd[a], sd[b]) > BOUNDARY_SD:  # glmer: singular fit
                        warnings.append(
                            f"The correlation of {terms[b]} and {terms[a]} at level {level.name} is estimated at "
                            f"{corr[a, b]:+.0f} (on the boundary): their covariance matrix is singular. No standard "
                            f"error is reported for it; consider covariance(independent) or fewer random slopes.")
                    if cov_psi is not None and abs(corr[a, b]) < 1 - 1e-6:
                        se = float(np.sqrt(max(cov_psi[position, position], 0.0)))
                    corr_entries.append((terms[a], terms[b], corr[a, b], se, sd[a] * sd[b] * corr[a, b]))
                    position += 1
        order = level.terms  # Stata: slopes first, _cons last
        for term, value, se_log in sorted(sd_entries, key=lambda e: order.index(e[0])):
            sd_rows.append(_log_scale_row(level.name, f"sd({term})", float(value), se_log, 1))
            var_rows.append(_log_scale_row(level.name, f"var({term})", float(value), se_log, 2))
        for a_term, b_term, rho, se, covariance in corr_entries:
            first, second = sorted((a_term, b_term), key=order.index)
            if se is None:
                sd_rows.append(RandomParam(level.name, f"corr({first},{second})", float(rho)))
            else:
                link = np.arctanh(rho)
                sd_rows.append(RandomParam(level.name, f"corr({first},{second})", float(rho), float((1 - rho ** 2) * se),
                                           [float(np.tanh(link - Z_975 * se)), float(np.tanh(link + Z_975 * se))]))
            var_rows.append(RandomParam(level.name, f"cov({first},{second})", float(covariance)))
    return sd_rows, var_rows, warnings


def _result(spec, family, data, names, beta, cov_beta, has_covariance, loglik, loglik_glm, n_theta, optimum,
            modes_converged, theta, sd_rows, var_rows, warnings, hierarchy, fixed) -> FitResult:
    """The FitResult both GLMM paths (random intercepts, random slopes) report."""
    result = FitResult(
        estimator="mixed", method="ML", nobs=int(data.y.size), fixed=fixed, name=spec.to_stata(),
        model=spec.to_stata(), depvar=spec.outcome, loglik=loglik, converged=optimum.converged and modes_converged,
        random=sd_rows, groups=hierarchy.group_table(), lr_test=lr_test_vs_linear(loglik, loglik_glm, n_theta),
        wald=wald_test(names, beta, cov_beta) if has_covariance else None, warnings=warnings,
        dropped_rows=data.dropped_rows, n_params=len(names) + n_theta,
        iterations=[-0.5 * d for d in optimum.history], theta=[float(t) for t in theta],
        vcov=cov_beta.tolist(), spec=spec, dfmethod="z",
        family=family.name, link=family.link, nagq=spec.nagq, integration=integration_name(spec.nagq),
    )
    result.random_variances = var_rows
    if has_covariance:  # Wald chi2 tests of terms (Stata's test after melogit), as linear fits carry
        from engine.mixed.ddf import FixedEffectsInference

        result.inference = FixedEffectsInference(list(names), np.asarray(beta, float), np.asarray(cov_beta), None)
    # The sds held at zero, for Monte Carlo's "at 0" (the threshold the warnings use).
    result.boundary_params = [f"{row.level}:{row.param}" for row in sd_rows
                              if row.param.startswith("sd(") and row.estimate <= BOUNDARY_SD]
    return result


def _fixed_effects_covariance(cov_all, n_free: int, n_fixed: int, warnings: list[str]) -> np.ndarray:
    """The fixed effects' block of the covariance of all estimates; NaN (and a warning) when the
    observed information could not be inverted."""
    if cov_all is None:
        warnings.append("The observed information matrix is not positive definite: standard errors are not "
                        "reported (a parameter may be at a boundary or not identified).")
        return np.full((n_fixed, n_fixed), np.nan)
    return cov_all[n_free:, n_free:]


def sample_notes(data, glm_converged: bool = True) -> list[str]:
    """Notes every GLMM report carries about its rows and its single-level comparison fit."""
    notes = []
    if data.dropped_rows:
        notes.append(f"{data.dropped_rows} rows with missing values in the model's variables were dropped.")
    if not glm_converged:
        notes.append("The single-level model of the LR test did not converge (IRLS); its test is approximate.")
    return notes


def _convergence_warnings(optimum, state) -> list[str]:
    """The outer optimiser's and the conditional modes' (PIRLS) failures to converge."""
    out = []
    if not optimum.converged:
        out.append(f"The optimiser did not converge ({optimum.message}); treat the estimates with caution.")
    if not state.converged:
        out.append("The conditional modes (penalised IRLS) did not converge at the estimates; the "
                   "likelihood approximation may be inaccurate.")
    return out
