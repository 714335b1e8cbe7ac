"""Fit a nested linear mixed model by REML or ML: the engine's entry point."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd

from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LevelTerms, NestedCriterion
from engine.mixed.ddf import check_dfmethod, data_scale, fixed_effects_inference
from engine.mixed.hierarchy import build_hierarchy, nesting_notes, structure_warnings
from engine.mixed.inference import VarianceParameters, lr_test_vs_linear
from engine.mixed.optimize import minimise_deviance
from engine.mixed.prepare import build_work_columns, prepare_model_data
from engine.mixed.threads import single_threaded_blas
from engine.errors import UserInputError
from engine.model_spec import ModelSpec
from engine.results import FitResult, LinkCovariance


def fit_mixed(frame: pd.DataFrame, spec: ModelSpec, *, start_theta=None, predict: bool = True,
              should_stop: Callable[[], bool] | None = None,
              on_iteration: Callable[[int, float], None] | None = None) -> FitResult:
    """Fit ``spec`` to ``frame``.

    Parameters
    ----------
    frame : the data; rows with missing values in the model's variables are dropped.
    spec : the model (levels outermost first, REML or ML).
    start_theta : optional starting relative covariance parameters (e.g. from a previous fit).
    predict : also compute predicted random effects, fitted values and residuals.
    should_stop : polled at each criterion evaluation; returning True raises ``Cancelled``.
    on_iteration : called with (iteration, log-likelihood) as the optimiser proceeds.
    """
    if spec.family != "gaussian":  # binary and count outcomes have their own criterion
        from engine.glmm import fit_glmm

        return fit_glmm(frame, spec, start_theta=start_theta, predict=predict, should_stop=should_stop,
                        on_iteration=on_iteration)
    # The engine makes many tiny BLAS calls (q x q solves, L-BFGS-B's vector updates); with a
    # multi-threaded BLAS each one wakes a thread pool, which costs 10x when cores are busy.
    with single_threaded_blas():
        return _fit_mixed(frame, spec, start_theta=start_theta, predict=predict, should_stop=should_stop,
                          on_iteration=on_iteration)


def _fit_mixed(frame, spec, *, start_theta, predict, should_stop, on_iteration) -> FitResult:
    if spec.has_crossed:  # crossed factors: their own criterion (or this path, when they nest after all)
        from engine.mixed.crossed.fit import fit_crossed

        return fit_crossed(frame, spec, start_theta=start_theta, predict=predict, should_stop=should_stop,
                           on_iteration=on_iteration)
    started = time.perf_counter()
    check_dfmethod(spec)
    data = prepare_model_data(frame, spec)
    work = build_work_columns(data, spec)
    hierarchy = build_hierarchy(data.frame, spec.level_names)
    check_outcome_varies_within_groups(data, spec, hierarchy)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    reml = spec.method == "REML"
    criterion = NestedCriterion(work.matrix, hierarchy, levels, work.x_columns, work.y_column, reml)
    report_iteration = None
    if on_iteration is not None:
        def report_iteration(iteration, deviance):
            on_iteration(iteration, -0.5 * deviance)
    single_group = single_group_levels(hierarchy)
    held = np.zeros(criterion.n_params, dtype=bool)
    for index in single_group:
        held[criterion.param_offsets[index]:criterion.param_offsets[index + 1]] = True
    if start_theta is None and not single_group:
        start_theta = _start_from_subsample(work, data, hierarchy, levels, reml, should_stop)
    try:
        optimum = minimise_deviance(criterion, start_theta, should_stop, report_iteration, held_at_zero=held,
                                    coarse_search=True)
    except np.linalg.LinAlgError:
        raise UserInputError(
            "the fit broke down numerically: a variance grew without bound until the fixed effects' "
            "cross-products were no longer positive definite. Check that the outcome varies within the "
            "lowest-level groups and that no random effect duplicates another") from None
    evaluation = criterion.evaluate(optimum.theta, gradient=True, keep=predict)

    n, p = criterion.n, criterion.p
    dof = n - p if reml else n
    sigma = float(np.sqrt(evaluation.r2 / dof))
    names = data.design.names
    beta, cov_beta = _fixed_effects_on_data_scale(evaluation, sigma, work, names)
    loglik = -0.5 * evaluation.deviance

    warnings = structure_warnings(hierarchy, data.frame, data.y, data.design.matrix)
    unidentified = hierarchy.levels_sharing_groups()

    warnings += single_group_warnings(spec, single_group) + slope_within_group_warnings(data, spec, hierarchy)
    unidentified |= frozenset(single_group)
    variance = VarianceParameters(criterion, spec, optimum.theta, sigma, unidentified)
    warnings += _boundary_warnings(variance, spec, unidentified)
    cov_psi = variance.covariance()
    if cov_psi is None:
        warnings.append("The information matrix of the variance parameters is singular: "
                        "their standard errors are not reported.")
    sd_rows, var_rows = variance.rows(cov_psi)
    if not optimum.converged:
        warnings.append(f"The optimiser did not converge ({optimum.message}); treat the estimates with caution.")
    loglik_linear = -0.5 * criterion.evaluate(np.zeros(criterion.n_params), gradient=False).deviance

    inference = fixed_effects_inference(spec, names, beta, cov_beta, criterion, optimum.theta, sigma,
                                        data_scale(work.x_means, names), data.design.matrix, hierarchy)
    result = FitResult(
        estimator="mixed", method=spec.method, nobs=n, fixed=inference.coefficient_rows(),
        name=spec.to_stata(), model=spec.to_stata(), depvar=spec.outcome, loglik=loglik,
        converged=optimum.converged, random=sd_rows, groups=hierarchy.group_table(),
        lr_test=lr_test_vs_linear(loglik, loglik_linear, criterion.n_params),
        wald=inference.overall_test(), warnings=warnings, dropped_rows=data.dropped_rows,
        n_params=p + criterion.n_params + 1, iterations=[-0.5 * d for d in optimum.history],
        theta=[float(t) for t in optimum.theta], vcov=inference.cov.tolist(), spec=spec,
        dfmethod=spec.dfmethod or "z",
    )
    result.inference = inference
    result.random_variances = var_rows
    result.boundary_params = variance.boundary_names()
    if held.any():  # variances held at zero (single-group levels) are not estimated parameters
        result.n_params -= int(held.sum())
        result.lr_test = lr_test_vs_linear(loglik, loglik_linear, criterion.n_params - int(held.sum()))
    if cov_psi is not None:
        result.link_covariance = LinkCovariance(variance.free_names(), cov_psi.tolist())
    result.notes += nesting_notes(hierarchy)
    result.notes += data.design.notes  # interaction cells left out (empty cells)
    from engine.icc_r2 import attach_variance_summaries
    attach_variance_summaries(result, hierarchy, data)
    if data.dropped_rows:
        result.notes.append(f"{data.dropped_rows} rows with missing values in the model's variables were dropped.")
    if predict and spec.levels:
        from engine.mixed.predict import attach_predictions

        attach_predictions(result, criterion, evaluation, optimum.theta, sigma, hierarchy, data, work, beta)
    result.fit_seconds = time.perf_counter() - started
    return result


def _constant_within_groups(values: np.ndarray, codes: np.ndarray, n_groups: int) -> bool:
    """True when ``values`` are the same in every row of each group (groups given by ``codes``)."""
    first_row = np.empty(n_groups, dtype=np.int64)
    first_row[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
    return bool(np.array_equal(values, values[first_row][codes]))


def check_outcome_varies_within_groups(data, spec: ModelSpec, hierarchy) -> None:
    """Refuse an outcome that is constant within every group of the lowest level (with a random
    intercept there): the groups' effects then fit every row exactly, the residual variance goes
    to zero and the likelihood grows without bound, so there is no estimate to report."""
    if not spec.levels or "_cons" not in spec.levels[-1].estimation_terms:
        return
    leaf = hierarchy.n_levels - 1
    if hierarchy.rows_per_group(leaf).max() < 2:
        return  # one row per group: reported as confounded with the residual, not degenerate
    if _constant_within_groups(data.y, hierarchy.row_codes[leaf], hierarchy.group_counts[leaf]):
        name = spec.levels[-1].name
        raise UserInputError(
            f"the outcome {spec.outcome!r} is constant within every {name} group: the {name} effects reproduce "
            f"every row, leaving no residual variation, so the likelihood has no maximum; fit the {name} "
            f"means instead (one row per {name} group, without || {name}:), or check the outcome column")


def slope_within_group_warnings(data, spec: ModelSpec, hierarchy) -> list[str]:
    """Warn about a random slope whose variable does not vary within the level's groups."""
    out = []
    for index, level in enumerate(spec.levels):
        codes, count = hierarchy.row_codes[index], hierarchy.group_counts[index]
        if hierarchy.rows_per_group(index).max() < 2:
            continue
        for slope in dict.fromkeys(level.slopes):
            values = data.frame[slope].to_numpy(dtype=float)
            if _constant_within_groups(values, codes, count):
                out.append(
                    f"The random slope on {slope} at level {level.name}: {slope} is constant within every "
                    f"{level.name} group, so its random slope is not identified from within-group variation "
                    f"(it only rescales each group's intercept by that group's {slope}); consider a random "
                    f"slope at a level below, or none.")
    return out


def single_group_levels(hierarchy) -> list[int]:
    """Levels with a single group: one draw of their random effects, so no variance to estimate."""
    return [level for level, count in enumerate(hierarchy.group_counts) if count == 1]


def single_group_warnings(spec: ModelSpec, levels: list[int]) -> list[str]:
    out = []
    for index in levels:
        level = spec.levels[index]
        out.append(
            f"Level {level.name} has a single group: its variance ({', '.join(level.terms)}) is not identified "
            f"(one group gives a single draw of its random effects). It is held at zero "
            f"(on the boundary) with no standard error, and the fit is the one without this level; drop "
            f"|| {level.name}: or use data with more {level.name} groups.")
    return out


SUBSAMPLE_FROM_ROWS = 1_000_000  # below this a cold start is cheap enough
SUBSAMPLE_MIN_TOP_GROUPS = 50


def _start_from_subsample(work, data, hierarchy, levels, reml, should_stop):
    """On very large data, start from the optimum of every k-th top-level group (about a tenth).

    Whole top-level groups keep the nesting intact; the subsample's optimum is close to the full
    one, so the full-data optimiser needs far fewer of its expensive evaluations.
    """
    n_top = hierarchy.group_counts[0] if hierarchy.n_levels else 0
    if work.matrix.shape[0] < SUBSAMPLE_FROM_ROWS or n_top < SUBSAMPLE_MIN_TOP_GROUPS:
        return None
    stride = max(2, min(10, n_top // 20))
    keep = hierarchy.row_codes[0] % stride == 0
    sub_hierarchy = build_hierarchy(data.frame.loc[keep], hierarchy.level_names)
    sub_criterion = NestedCriterion(work.matrix[keep], sub_hierarchy, levels, work.x_columns, work.y_column, reml)
    return minimise_deviance(sub_criterion, None, should_stop, coarse_search=True).theta


def _fixed_effects_on_data_scale(evaluation, sigma, work, names):
    """Undo the centring of the fixed-effect columns and the outcome: b = T b_c (+ mean of y)."""
    p = len(work.x_columns)
    if p == 0:
        return np.zeros(0), np.zeros((0, 0))
    cov = sigma ** 2 * np.linalg.inv(evaluation.xtvx)
    beta = np.array(evaluation.beta, dtype=float)
    if "_cons" in names:
        cons = names.index("_cons")
        transform = np.eye(p)
        transform[cons, :] -= work.x_means
        transform[cons, cons] = 1.0
        beta = transform @ beta
        beta[cons] += work.y_mean
        cov = transform @ cov @ transform.T
    return beta, cov


def _boundary_warnings(variance: VarianceParameters, spec: ModelSpec, unidentified) -> list[str]:
    out = []
    for index in variance.singular_levels:
        level = spec.levels[index]
        out.append(
            f"The covariance matrix of the random effects at level {level.name} ({', '.join(level.terms)}) is "
            f"singular (on the boundary): some combination of them does not vary between {level.name} groups, "
            f"or two of them are perfectly correlated. Their standard errors are not reported; consider "
            f"covariance(independent) or fewer random slopes.")
    for entry in variance.entries:
        if entry.kind != "sd" or entry.level in unidentified:
            continue
        if variance.is_zero(entry):
            level = spec.levels[entry.level]
            cov = variance.criterion.levels[entry.level].covariance
            term = " ".join(level.terms) if cov.shares_variance else level.estimation_terms[entry.i]
            out.append(
                f"The variance of {term} at level {level.name} is estimated at zero (on the boundary): "
                f"the data show no variation between {level.name} groups beyond the levels below it. "
                f"No standard error is reported for it; the model may be simplified by dropping it.")
    return out
