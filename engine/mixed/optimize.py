"""Minimise the profiled deviance over theta (bounded quasi-Newton with the exact gradient)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import minimize

from engine.errors import Cancelled
from engine.mixed.covariance import lower_triangular_factor
from engine.mixed.criterion import LevelTerms, NestedCriterion


@dataclass
class OptimumTheta:
    theta: np.ndarray
    deviance: float
    converged: bool
    message: str
    history: list[float] = field(default_factory=list)  # deviance at each iteration
    evaluations: int = 0


STRICT_OPTIONS = {"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20}
# Coarse search: stop L-BFGS-B once a step gains less than 1e-12 of the deviance and let Newton's
# method finish. Near the optimum L-BFGS-B spends most of its evaluations on line searches in the
# rounding noise of the deviance; a Newton step from there costs one evaluation per parameter.
COARSE_OPTIONS = dict(STRICT_OPTIONS, ftol=1e-12)
POLISHED_GRADIENT = 1e-10  # projected gradient, relative to the deviance, that needs no further search


def minimise_deviance(criterion: NestedCriterion, start: np.ndarray | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      on_iteration: Callable[[int, float], None] | None = None,
                      held_at_zero: np.ndarray | None = None, coarse_search: bool = False) -> OptimumTheta:
    """L-BFGS-B from ``start`` (lme4's default: 1 on the diagonal), polished until the gradient vanishes.

    ``held_at_zero`` (a boolean mask over theta) marks parameters kept at 0, e.g. those of a
    level with a single group, whose variance the data cannot identify.

    The search runs in unit-free coordinates (``SearchSpace``: Lambda for random-effect columns
    at unit size), so the path, the start, the boundary tests and the convergence test do not
    depend on the units of a random slope.
    ``start`` and the returned theta are in the criterion's own units.

    ``coarse_search`` stops L-BFGS-B early (``COARSE_OPTIONS``) and leaves the last digits to the
    Newton polish; where the polish cannot finish (a parameter near its bound, a Hessian that is
    not positive definite) the strict search continues from there, so the optimum is the same.
    """
    space = SearchSpace(criterion)
    theta0 = criterion.start() if start is None else space.from_theta(start)
    bounds = criterion.bounds()
    if held_at_zero is not None and np.any(held_at_zero):
        theta0 = np.where(held_at_zero, 0.0, theta0)
        bounds = [(0.0, 0.0) if held else bound for held, bound in zip(held_at_zero, bounds)]
    if theta0.size == 0:
        value = criterion.evaluate(theta0, gradient=False).deviance
        return OptimumTheta(theta0, value, True, "no variance parameters", [value], 1)
    history: list[float] = []
    last = {"value": np.nan, "count": 0}

    def objective(coordinates):
        if should_stop is not None and should_stop():
            raise Cancelled()
        value, gradient = space.evaluate(coordinates)
        last["value"] = value
        last["count"] += 1
        return value, gradient

    def record(_theta):
        history.append(last["value"])
        if on_iteration is not None:
            on_iteration(len(history), last["value"])

    history.append(objective(theta0)[0])
    if on_iteration is not None:
        on_iteration(0, history[0])
    options = COARSE_OPTIONS if coarse_search else STRICT_OPTIONS
    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds, callback=record, options=options)
    theta = _clip_to_bounds(result.x, bounds)
    value, gradient = objective(theta)
    # A zero diagonal entry of Lambda is a stationary point by symmetry (the deviance is even in
    # it), so a gradient method can stop there at a saddle. Step off and re-optimise if that helps.
    for _ in range(5):
        escape = _lower_point_off_boundary(objective, theta, value, bounds)
        if escape is None:
            break
        result = minimize(objective, escape, jac=True, method="L-BFGS-B", bounds=bounds, callback=record,
                          options=options)
        candidate = _clip_to_bounds(result.x, bounds)
        candidate_value, candidate_gradient = objective(candidate)
        if candidate_value >= value - 1e-10:
            break
        theta, value, gradient = candidate, candidate_value, candidate_gradient
    # Correlated random effects can also end on a singular covariance matrix that is only a local
    # optimum; start again from the same sds without correlations and keep the better optimum.
    restart = _uncorrelated_start(criterion, theta, bounds)
    if restart is not None:
        result = minimize(objective, restart, jac=True, method="L-BFGS-B", bounds=bounds, callback=record,
                          options=options)
        candidate = _clip_to_bounds(result.x, bounds)
        candidate_value, candidate_gradient = objective(candidate)
        if candidate_value < value - 1e-10:
            theta, value, gradient = candidate, candidate_value, candidate_gradient
    theta, value, gradient = _newton_polish(objective, theta, value, gradient, bounds)
    if coarse_search and not _at_stationary_point(theta, gradient, bounds, POLISHED_GRADIENT * max(1.0, abs(value))):
        result = minimize(objective, theta, jac=True, method="L-BFGS-B", bounds=bounds, callback=record,
                          options=STRICT_OPTIONS)
        candidate = _clip_to_bounds(result.x, bounds)
        candidate_value, candidate_gradient = objective(candidate)
        if candidate_value < value:
            theta, value, gradient = candidate, candidate_value, candidate_gradient
        theta, value, gradient = _newton_polish(objective, theta, value, gradient, bounds)
    # The gradient grows with the data; judge it relative to the criterion's size.
    converged = _at_stationary_point(theta, gradient, bounds, tolerance=max(1e-3, 1e-7 * abs(value)))
    return OptimumTheta(space.to_theta(theta), value, bool(converged), str(result.message), history, last["count"])


class SearchSpace:
    """The optimiser's coordinates and their map to theta (the criterion's, lme4's).

    A level with one random effect, or a shared (identity) Lambda, is searched in theta times
    ``criterion.theta_scale`` (its columns at unit root mean square). A level with several effects
    and a free Lambda is searched in Lambda_c, lower triangular, with Lambda Lambda' =
    (T Lambda_c)(T Lambda_c)' and T = ``criterion.search_transforms``: its slopes at unit sd and,
    beside an intercept with unstructured covariance, centred. Lambda = T Lambda_c is linear in
    Lambda_c, so a view of the criterion whose basis matrices are T E_t gives the deviance and its
    exact gradient in these coordinates; theta is recovered at the end as the lower-triangular
    factor of T Lambda_c.
    """

    def __init__(self, criterion: NestedCriterion):
        self.criterion = criterion
        # Criteria without unit-free coordinates of their own are searched in theta.
        scale = getattr(criterion, "theta_scale", None)
        self.scale = np.ones(criterion.n_params) if scale is None else np.array(scale, dtype=float)
        self.transforms = list(getattr(criterion, "search_transforms", None) or [None] * len(criterion.levels))
        self.view = copy.copy(criterion)
        levels = []
        for index, (terms, transform) in enumerate(zip(criterion.levels, self.transforms)):
            if transform is None:
                levels.append(terms)
                continue
            cov = copy.copy(terms.covariance)
            cov.basis = [transform @ e for e in terms.covariance.basis]
            levels.append(LevelTerms(terms.columns, cov))
            self.scale[self._window(index)] = 1.0
        self.view.levels = levels

    def _window(self, index: int) -> slice:
        offsets = self.criterion.param_offsets
        return slice(offsets[index], offsets[index + 1])

    def evaluate(self, coordinates: np.ndarray) -> tuple[float, np.ndarray]:
        evaluation = self.view.evaluate(np.asarray(coordinates, dtype=float) / self.scale)
        return evaluation.deviance, evaluation.gradient / self.scale

    def to_theta(self, coordinates: np.ndarray) -> np.ndarray:
        theta = np.asarray(coordinates, dtype=float) / self.scale
        for index, transform in enumerate(self.transforms):
            if transform is not None:
                cov = self.criterion.levels[index].covariance
                window = self._window(index)
                theta[window] = cov.theta_of_lambda(lower_triangular_factor(transform @ cov.lambda_of(theta[window])))
        return theta

    def from_theta(self, theta: np.ndarray) -> np.ndarray:
        coordinates = np.array(theta, dtype=float)
        for index, transform in enumerate(self.transforms):
            if transform is not None:
                cov = self.criterion.levels[index].covariance
                window = self._window(index)
                lam = cov.lambda_of(coordinates[window])
                coordinates[window] = cov.theta_of_lambda(lower_triangular_factor(np.linalg.solve(transform, lam)))
        return coordinates * self.scale


SINGULAR_DIAGONAL = 1e-4  # lme4's threshold for a singular fit


def _uncorrelated_start(criterion: NestedCriterion, theta: np.ndarray, bounds) -> np.ndarray | None:
    """theta with every singular unstructured level replaced by a diagonal Lambda of the same sds.

    ``theta`` is in the unit-free coordinates (the basis of Lambda is the same in both)."""
    start = np.array(theta, dtype=float)
    changed = False
    for index, terms in enumerate(criterion.levels):
        cov = terms.covariance
        if cov.kind != "unstructured" or cov.q < 2:
            continue
        window = slice(criterion.param_offsets[index], criterion.param_offsets[index + 1])
        if any(upper is not None for _, upper in bounds[window]):
            continue  # held fixed
        lam = cov.lambda_of(theta[window])
        if np.min(np.abs(np.diag(lam))) >= SINGULAR_DIAGONAL:
            continue
        sds = np.linalg.norm(lam, axis=1)
        floor = 0.1 * sds.max() + 1e-3  # an effect whose variance vanished gets a modest one back
        start[window] = cov.theta_of_lambda(np.diag(np.maximum(sds, floor)))
        changed = True
    return start if changed else None


def _newton_polish(objective, theta, value, gradient, bounds, steps: int = 3):
    """Newton steps on the interior coordinates, with the Hessian from the exact gradient.

    L-BFGS-B stops where the deviance is flat to rounding, which leaves theta accurate to about
    1e-7 and dependent on the path; the gradient is exact, so Newton's method pins the optimum
    down to rounding (one step usually: convergence is quadratic). The Hessian is a forward
    difference of the gradient. A step is kept only when it lowers the gradient without raising
    the deviance beyond rounding.
    """
    for _ in range(steps):
        free = np.array([upper is None and (lower is None or theta[i] > lower + 1e-8)
                         for i, (lower, upper) in enumerate(bounds)])
        if not free.any():
            break
        index = np.flatnonzero(free)
        hessian = np.empty((index.size, index.size))
        for column, i in enumerate(index):
            h = 1e-6 * max(1.0, abs(theta[i]))
            up = theta.copy()
            up[i] += h
            hessian[:, column] = (objective(up)[1][index] - gradient[index]) / h
        hessian = 0.5 * (hessian + hessian.T)
        try:
            np.linalg.cholesky(hessian)  # only a minimum's (positive-definite) Hessian gives a safe step
            step = np.linalg.solve(hessian, -gradient[index])
        except np.linalg.LinAlgError:
            break
        candidate = theta.copy()
        candidate[index] += step
        if any(lower is not None and candidate[i] < lower for i, (lower, _) in enumerate(bounds)):
            break
        candidate_value, candidate_gradient = objective(candidate)
        if not (np.linalg.norm(candidate_gradient[index]) < np.linalg.norm(gradient[index])
                and candidate_value <= value + 1e-12 * (1.0 + abs(value))):
            break
        theta, value, gradient = candidate, candidate_value, candidate_gradient
        if np.max(np.abs(step)) < 1e-5 * (1.0 + np.max(np.abs(theta))):
            break  # the next step would be of the order of this one squared: rounding
    return theta, value, gradient


def _lower_point_off_boundary(objective, theta, value, bounds):
    """A point with a lower deviance, one boundary coordinate moved inward, or None."""
    scale = max(float(np.max(np.abs(theta))), 0.1)
    best, best_value = None, value - 1e-8
    for i, (lower, upper) in enumerate(bounds):
        if lower is None or upper is not None or theta[i] > lower + 1e-8:
            continue
        for step in (0.01, 0.1, 0.5):
            trial = np.array(theta, dtype=float)
            trial[i] = lower + step * scale
            trial_value = objective(trial)[0]
            if trial_value < best_value:
                best, best_value = trial, trial_value
    return best


def _clip_to_bounds(theta, bounds):
    out = np.array(theta, dtype=float)
    for i, (lower, upper) in enumerate(bounds):
        if lower is not None and out[i] < lower:
            out[i] = lower
        if upper is not None and out[i] > upper:
            out[i] = upper
    return out


def _at_stationary_point(theta, gradient, bounds, tolerance=1e-3) -> bool:
    """Projected gradient small: interior components near zero, boundary ones pointing outward."""
    projected = np.array(gradient, dtype=float)
    for i, (lower, upper) in enumerate(bounds):
        if lower is not None and theta[i] <= lower + 1e-10 and projected[i] > 0:
            projected[i] = 0.0
        if upper is not None and lower == upper:
            projected[i] = 0.0  # held fixed
    return bool(np.all(np.abs(projected) < tolerance))
