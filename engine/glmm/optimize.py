"""Maximise the GLMM likelihood over (theta, beta), and its Hessian for standard errors.

The outer problem is small (one sd per level plus the coefficients) and smooth once PIRLS is
converged tightly, so L-BFGS-B with central-difference gradients works well: the deviance is even
in each theta, so steps across theta = 0 are harmless. Standard errors come from the Hessian of
-2 log L in (log sd, beta) by central differences (Stata's observed information).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import minimize

from engine.errors import Cancelled
from engine.glmm.criterion import DERIVATIVE_OF_WEIGHT, GlmmCriterion, laplace_gradient

GRADIENT_STEP = 1e-6
HESSIAN_STEP = 1e-4
BOUNDARY_SD = 1e-4  # an sd below this is on the boundary (lme4's singular-fit threshold)


@dataclass
class GlmmOptimum:
    params: np.ndarray
    deviance: float
    converged: bool
    message: str
    history: list[float] = field(default_factory=list)


def central_gradient(function: Callable[[np.ndarray], float], x: np.ndarray, value: float | None = None) -> np.ndarray:
    gradient = np.empty(x.size)
    for j in range(x.size):
        h = GRADIENT_STEP * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        gradient[j] = (function(up) - function(down)) / (2.0 * h)
    return gradient


def has_exact_gradient(criterion: GlmmCriterion) -> bool:
    """The exact gradient covers the Laplace deviance with a canonical link (logit, log)."""
    return criterion.nagq <= 1 and criterion.family.link in DERIVATIVE_OF_WEIGHT and not criterion.general


def minimise_glmm(criterion: GlmmCriterion, start: np.ndarray,
                  should_stop: Callable[[], bool] | None = None,
                  on_iteration: Callable[[int, float], None] | None = None) -> GlmmOptimum:
    """L-BFGS-B over (theta >= 0, beta) from ``start``."""
    history: list[float] = []

    def deviance(params):
        if should_stop is not None and should_stop():
            raise Cancelled()
        return criterion.deviance(params)

    exact = has_exact_gradient(criterion)

    own_gradient = getattr(criterion, "deviance_and_gradient", None)  # a criterion with its own exact gradient

    def objective(params):
        if own_gradient is not None:
            if should_stop is not None and should_stop():
                raise Cancelled()
            answer = own_gradient(params)
            if answer is not None:
                return answer
        if exact:
            if should_stop is not None and should_stop():
                raise Cancelled()
            return laplace_gradient(criterion, params)
        value = deviance(params)
        return value, central_gradient(deviance, np.asarray(params, dtype=float), value)

    def record(params):
        history.append(criterion.last_deviance)
        if on_iteration is not None:
            on_iteration(len(history), history[-1])

    bounds = theta_bounds(criterion) + [(None, None)] * criterion.p
    options = {"maxiter": 500, "ftol": 1e-14, "gtol": 1e-7, "maxcor": 20}
    result = minimize(objective, np.asarray(start, dtype=float), jac=True, method="L-BFGS-B",
                      bounds=bounds, callback=record, options=options)
    params = np.array(result.x, dtype=float)
    # A zero sd is a stationary point by symmetry (the deviance is even in each diagonal theta), so
    # the optimiser can stop there at a saddle: step inside and optimise again while that helps.
    for _ in range(3):
        escape = _lower_point_off_boundary(deviance, params, float(result.fun), bounds[: criterion.n_theta])
        if escape is None:
            break
        candidate = minimize(objective, escape, jac=True, method="L-BFGS-B", bounds=bounds, callback=record,
                             options=options)
        if candidate.fun >= result.fun - 1e-9:
            break
        result = candidate
        params = np.array(result.x, dtype=float)
    value, gradient = objective(params)
    lower = np.array([bound[0] if bound[0] is not None else -np.inf for bound in bounds[: criterion.n_theta]])
    on_boundary = params[: criterion.n_theta] <= lower
    projected = gradient.copy()
    projected[: criterion.n_theta][on_boundary & (gradient[: criterion.n_theta] > 0)] = 0.0
    converged = bool(np.all(np.abs(projected) < max(1e-3, 1e-7 * abs(value))))
    return GlmmOptimum(params, value, converged, str(result.message), history)


def _lower_point_off_boundary(deviance, params, value, theta_bounds_list):
    """``params`` with one zero diagonal theta moved inward where that lowers the deviance, or None."""
    best, best_value = None, value - 1e-8
    for j, (low, _) in enumerate(theta_bounds_list):
        if low is None or abs(params[j]) > BOUNDARY_SD:
            continue
        for step in (0.02, 0.1, 0.3):
            trial = np.array(params, dtype=float)
            trial[j] = step
            trial_value = deviance(trial)
            if trial_value < best_value:
                best, best_value = trial, trial_value
    return best


def theta_bounds(criterion: GlmmCriterion) -> list[tuple[float | None, None]]:
    """theta >= 0 on the diagonal of each Lambda; off-diagonal entries are free."""
    if not criterion.general:
        return [(0.0, None)] * criterion.n_theta
    return [(low, None) for cov in criterion.modes.covariances for low in cov.lower_bounds()]


def covariance_in_theta(criterion: GlmmCriterion, params: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Inverse observed information over (free theta, beta), random slopes' path; theta entries on
    the diagonal of Lambda below BOUNDARY_SD are held fixed. Returns it and the free-theta mask."""
    theta, beta = criterion.split(params)
    diagonal = np.array([low is not None for low, _ in theta_bounds(criterion)])
    free = ~(diagonal & (np.abs(theta) <= BOUNDARY_SD))
    x0 = np.concatenate([theta[free], beta])

    def deviance(x):
        full = theta.copy()
        full[free] = x[: int(free.sum())]
        return criterion.deviance(np.concatenate([full, x[int(free.sum()):]]))

    steps = HESSIAN_STEP * np.maximum(1.0, np.abs(x0))
    hessian = _hessian_from_values(deviance, x0, steps)
    criterion.deviance(params)
    try:
        cov = np.linalg.inv(0.5 * hessian)
    except np.linalg.LinAlgError:
        return None, free
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        return None, free
    return cov, free


def covariance_of_estimates(criterion: GlmmCriterion, params: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Inverse observed information over the free parameters (log sd of each interior level, beta).

    Returns the covariance (None when the information is not positive definite) and the boolean
    mask of the levels whose sd was free (sds on the boundary are held fixed, as Stata).
    """
    theta, beta = criterion.split(params)
    free_levels = np.abs(theta) > BOUNDARY_SD
    log_sd = np.log(np.abs(theta[free_levels]))
    x0 = np.concatenate([log_sd, beta])

    def deviance(x):
        full_theta = np.abs(theta).copy()
        full_theta[free_levels] = np.exp(x[: log_sd.size])
        return criterion.deviance(np.concatenate([full_theta, x[log_sd.size:]]))

    m = x0.size
    steps = HESSIAN_STEP * np.maximum(1.0, np.abs(x0))
    if has_exact_gradient(criterion):
        hessian = _hessian_from_gradients(criterion, theta, free_levels, x0, steps)
    else:
        hessian = _hessian_from_values(deviance, x0, steps)
    criterion.deviance(params)  # leave the modes at the optimum
    information = 0.5 * hessian  # the deviance is -2 log L
    try:
        cov = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return None, free_levels
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        return None, free_levels
    return cov, free_levels


def _hessian_from_gradients(criterion, theta, free_levels, x0, steps):
    """Central differences of the exact gradient, on the (log sd, beta) scale."""
    n_log = int(free_levels.sum())

    def gradient(x):
        full_theta = np.abs(theta).copy()
        full_theta[free_levels] = np.exp(x[:n_log])
        _, g = laplace_gradient(criterion, np.concatenate([full_theta, x[n_log:]]))
        return np.concatenate([g[: theta.size][free_levels] * full_theta[free_levels], g[theta.size:]])

    m = x0.size
    hessian = np.empty((m, m))
    for j in range(m):
        up, down = x0.copy(), x0.copy()
        up[j] += steps[j]
        down[j] -= steps[j]
        hessian[:, j] = (gradient(up) - gradient(down)) / (2.0 * steps[j])
    return 0.5 * (hessian + hessian.T)


def _hessian_from_values(deviance, x0, steps):
    m = x0.size
    centre = deviance(x0)
    hessian = np.empty((m, m))
    shifted = {}

    def at(offsets):
        key = tuple(offsets)
        if key not in shifted:
            point = x0.copy()
            for j, sign in offsets:
                point[j] += sign * steps[j]
            shifted[key] = deviance(point)
        return shifted[key]

    for j in range(m):
        hessian[j, j] = (at([(j, 1)]) - 2.0 * centre + at([(j, -1)])) / steps[j] ** 2
        for k in range(j):
            value = (at([(j, 1), (k, 1)]) - at([(j, 1), (k, -1)]) - at([(j, -1), (k, 1)]) + at([(j, -1), (k, -1)]))
            hessian[j, k] = hessian[k, j] = value / (4.0 * steps[j] * steps[k])
    return hessian
