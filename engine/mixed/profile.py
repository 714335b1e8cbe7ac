"""Profile-likelihood intervals for the variance parameters of a mixed fit (``fit --ci profile``).

As lme4's ``confint(fit, method = "profile")``: the parameters are the random effects' standard
deviations and correlations and the residual sd (Stata's and lme4's sd scale). For one parameter
held at a value v, the (restricted) deviance is minimised over all the other variance parameters,
with the fixed effects profiled out as in the fit; the interval is where that profile deviance
stays within chi2(1, level) of the minimum. The deviance here is not profiled over sigma (sigma is
one of the parameters), exactly as lme4's ``devfun2``:

    ML:   D = log|V| + n log(2 pi sigma^2) + r2 / sigma^2
    REML: D = log|V| + log|X'V^-1 X| + (n - p) log(2 pi sigma^2) + r2 / sigma^2

with V, r2 and X'V^-1X from the engine's nested criterion at theta (the relative Cholesky
factors), theta built from the sds, correlations and sigma. The limits are roots of
sqrt(D_profile(v) - D_min) = sqrt(chi2(1, level)), found with Brent's method; lme4 instead
interpolates a spline through a grid of profile points, so its limits differ from these in
about the fourth significant digit. An sd whose profile stays below the cut-off down to zero gets
the lower limit 0; a correlation whose profile stays below it up to +-1 gets that limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from scipy import optimize, stats

from engine.errors import Cancelled, UserInputError
from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LOG_2PI, LevelTerms, NestedCriterion
from engine.mixed.hierarchy import build_hierarchy
from engine.mixed.optimize import minimise_deviance
from engine.mixed.prepare import build_work_columns, prepare_model_data
from engine.mixed.threads import single_threaded_blas
from engine.results import FitResult

CORRELATION_LIMIT = 1.0 - 1e-9  # correlations stay inside (-1, 1), where the factor is defined
MAX_BRACKET_STEPS = 60
SIGMA_FLOOR = 1e-6  # relative to the estimate: the least residual sd the inner optimisation may try


@dataclass
class ProfileParameter:
    """One parameter on the sd scale: an sd or correlation of a level's random effects, or sigma."""

    level: int  # index of the level, -1 for the residual sd
    kind: str  # "sd", "corr" or "sigma"
    i: int = 0
    j: int = 0
    label: str = ""  # "school:sd(_cons)", "school:corr(ses_c,_cons)", "Residual:sd(Residual)"


@dataclass
class ProfileLimit:
    """The interval of one parameter, and whether each limit is a bound of the parameter space
    (sd 0, correlation -1 or 1) rather than a crossing of the cut-off."""

    parameter: ProfileParameter
    estimate: float
    lower: float
    upper: float
    lower_at_bound: bool = False
    upper_at_bound: bool = False


class SdScaleDeviance:
    """The deviance D(phi), sigma not profiled, as a function of phi = (sds and correlations of
    every level, in the engine's term order, then sigma), with its gradient."""

    def __init__(self, criterion: NestedCriterion, spec):
        self.criterion = criterion
        self.parameters: list[ProfileParameter] = []
        for index, (terms, level) in enumerate(zip(criterion.levels, spec.levels)):
            cov = terms.covariance
            internal = level.estimation_terms
            shared = cov.kind == "identity" and cov.q > 1
            for i in range(1 if shared else cov.q):
                term = " ".join(level.terms) if shared else internal[i]
                self.parameters.append(ProfileParameter(index, "sd", i, i, f"{level.name}:sd({term})"))
            if cov.kind == "unstructured":
                for i in range(cov.q):
                    for j in range(i + 1, cov.q):
                        a, b = sorted((internal[i], internal[j]), key=level.terms.index)
                        self.parameters.append(ProfileParameter(index, "corr", i, j, f"{level.name}:corr({a},{b})"))
        self.parameters.append(ProfileParameter(-1, "sigma", label="Residual:sd(Residual)"))
        self.lower = np.array([0.0 if p.kind == "sd" else -CORRELATION_LIMIT if p.kind == "corr" else 0.0
                               for p in self.parameters])
        self.upper = np.array([CORRELATION_LIMIT if p.kind == "corr" else np.inf for p in self.parameters])
        self.dof = criterion.n - criterion.p if criterion.reml else criterion.n

    @property
    def size(self) -> int:
        return len(self.parameters)

    def phi_of(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """The sd-scale parameters of relative factors ``theta`` and residual sd ``sigma``."""
        offsets = self.criterion.param_offsets
        out = []
        for p in self.parameters:
            if p.kind == "sigma":
                out.append(sigma)
                continue
            cov = self.criterion.levels[p.level].covariance
            sd, corr = cov.sd_corr(theta[offsets[p.level]:offsets[p.level + 1]], sigma)
            out.append(sd[p.i] if p.kind == "sd" else corr[p.i, p.j])
        return np.array(out, dtype=float)

    def _level_pieces(self, phi: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], float]:
        """Per level the sds and the correlation matrix in phi, and sigma."""
        sds = [np.zeros(terms.covariance.q) for terms in self.criterion.levels]
        corrs = [np.eye(terms.covariance.q) for terms in self.criterion.levels]
        for value, p in zip(phi, self.parameters):
            if p.kind == "sd":
                cov = self.criterion.levels[p.level].covariance
                if cov.kind == "identity" and cov.q > 1:
                    sds[p.level][:] = value
                else:
                    sds[p.level][p.i] = value
            elif p.kind == "corr":
                corrs[p.level][p.i, p.j] = corrs[p.level][p.j, p.i] = value
        return sds, corrs, float(phi[-1])

    @staticmethod
    def _level_theta(cov: LevelCovariance, sd: np.ndarray, corr_factor: np.ndarray, sigma: float) -> np.ndarray:
        """theta of one level: Lambda = diag(sd) chol(R) / sigma, which is defined at sd = 0 (where
        the Cholesky factor of the covariance itself is not)."""
        if cov.kind == "identity" and cov.q > 1:
            return np.array([sd[0] / sigma])
        if cov.kind == "unstructured" and cov.q > 1:
            return cov.theta_of_lambda(sd[:, None] * corr_factor / sigma)
        return sd / sigma

    def theta_of(self, phi: np.ndarray) -> tuple[np.ndarray, float]:
        """(theta, sigma) of sd-scale parameters phi."""
        sds, corrs, sigma = self._level_pieces(phi)
        theta = [self._level_theta(terms.covariance, sd, np.linalg.cholesky(corr), sigma)
                 for terms, sd, corr in zip(self.criterion.levels, sds, corrs)]
        return (np.concatenate(theta) if theta else np.zeros(0)), sigma

    def value_and_gradient(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        theta, sigma = self.theta_of(phi)
        evaluation = self.criterion.evaluate(theta, gradient=True)
        deviance = (evaluation.logdet_v + self.dof * (LOG_2PI + 2.0 * np.log(sigma))
                    + evaluation.r2 / sigma ** 2)
        if self.criterion.reml:
            deviance += evaluation.logdet_x
        d_theta, d_log_sigma = self.criterion.gradient_at_sigma(evaluation, sigma)
        return float(deviance), self._chain(phi, theta, d_theta, d_log_sigma)

    def _chain(self, phi, theta, d_theta, d_log_sigma) -> np.ndarray:
        """dD/dphi from dD/dtheta (sigma fixed) and dD/dlog sigma (theta fixed).

        A level's theta is linear in each of its sds and proportional to 1/sigma, so those
        columns of the Jacobian are exact; a correlation's column is a central difference of
        the level's (cheap) map from its correlations to theta.
        """
        sds, corrs, sigma = self._level_pieces(phi)
        offsets = self.criterion.param_offsets
        factors = [np.linalg.cholesky(corr) for corr in corrs]
        gradient = np.empty(phi.size)
        for k, p in enumerate(self.parameters):
            if p.kind == "sigma":
                gradient[k] = float(d_theta @ (-theta / sigma)) + d_log_sigma / sigma
                continue
            cov = self.criterion.levels[p.level].covariance
            block = d_theta[offsets[p.level]:offsets[p.level + 1]]
            if p.kind == "sd":
                unit = np.ones(cov.q) if (cov.kind == "identity" and cov.q > 1) else np.eye(cov.q)[p.i]
                gradient[k] = float(block @ self._level_theta(cov, unit, factors[p.level], sigma))
                continue
            step = 1e-6
            up, down = min(phi[k] + step, self.upper[k]), max(phi[k] - step, self.lower[k])
            shifted = []
            for value in (up, down):
                corr = corrs[p.level].copy()
                corr[p.i, p.j] = corr[p.j, p.i] = value
                shifted.append(self._level_theta(cov, sds[p.level], np.linalg.cholesky(corr), sigma))
            gradient[k] = float(block @ (shifted[0] - shifted[1])) / (up - down)
        return gradient


class Profiler:
    """Minimise D over all parameters but one, held at a given value, warm-starting from the
    nearest value already solved."""

    def __init__(self, deviance: SdScaleDeviance, phi_hat: np.ndarray, d_min: float,
                 should_stop: Optional[Callable[[], bool]] = None):
        self.deviance = deviance
        self.phi_hat = phi_hat
        self.d_min = d_min
        self.should_stop = should_stop
        # Scale each parameter by its size so the quasi-Newton steps are balanced.
        sigma = phi_hat[-1]
        self.scale = np.array([1.0 if p.kind == "corr" else max(value, 0.05 * sigma)
                               for p, value in zip(deviance.parameters, phi_hat)])
        # sigma must stay positive while the others are optimised (the deviance has log sigma).
        self.lower = deviance.lower.copy()
        self.lower[-1] = SIGMA_FLOOR * sigma

    def profile(self, k: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """(min over the others of D with phi_k = value, the minimising phi)."""
        others = [m for m in range(self.deviance.size) if m != k]
        scale = self.scale[others]
        fixed = np.array(start, dtype=float)
        fixed[k] = value
        if not others:
            return self.deviance.value_and_gradient(fixed)[0], fixed

        def objective(x):
            if self.should_stop is not None and self.should_stop():
                raise Cancelled()
            phi = fixed.copy()
            phi[others] = x * scale
            value_, gradient = self.deviance.value_and_gradient(phi)
            return value_, gradient[others] * scale

        lower = self.lower[others] / scale
        upper = self.deviance.upper[others] / scale
        bounds = list(zip(lower, np.where(np.isfinite(upper), upper, None)))

        def minimise(x0):
            return optimize.minimize(objective, np.clip(x0, lower, upper), jac=True, method="L-BFGS-B",
                                     bounds=bounds, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10,
                                                             "maxcor": 20})

        best = minimise(fixed[others] / scale)
        # An sd at zero is a stationary point by symmetry (the deviance is even in it), so the
        # optimiser can stop there at a saddle: step inside and keep what is lower.
        for position, m in enumerate(others):
            if self.deviance.parameters[m].kind != "sd" or best.x[position] > 0:
                continue
            for step in (0.05, 0.5):
                trial = best.x.copy()
                trial[position] = step
                if objective(trial)[0] < best.fun - 1e-9:
                    candidate = minimise(trial)
                    if candidate.fun < best.fun:
                        best = candidate
                    break
        phi = fixed.copy()
        phi[others] = np.clip(best.x, lower, upper) * scale
        return float(best.fun), phi


def profile_limits(frame, result: FitResult, level: float = 0.95,
                   should_stop: Optional[Callable[[], bool]] = None) -> list[ProfileLimit]:
    """Profile-likelihood interval of every sd, correlation and the residual sd of a mixed fit.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data the fit was made on.
    result : FitResult
        A fit of ``fit_mixed`` (its ``spec`` and ``theta`` are used).
    level : float
        Confidence level; the cut-off is the chi2(1) quantile at ``level`` (3.841 for 95%).
    should_stop : callable, optional
        Polled at each evaluation; True raises ``Cancelled``.

    Returns
    -------
    list of ProfileLimit
        In the engine's parameter order (levels outermost first, sds then correlations, sigma last);
        none for levels whose groups equal a neighbour's (their variances are not identified).
    """
    if result.estimator != "mixed" or result.spec is None:
        raise UserInputError(f"profile-likelihood intervals need a mixed-model fit, not {result.estimator!r}")
    with single_threaded_blas():
        return _profile_limits(frame, result, level, should_stop)


def _profile_limits(frame, result, level, should_stop) -> list[ProfileLimit]:
    spec = result.spec
    if spec.has_crossed:
        from engine.mixed.crossed.fit import criterion_and_spec

        criterion, spec = criterion_and_spec(frame, spec)
    else:
        criterion = criterion_of(frame, spec)
    optimum = minimise_deviance(criterion, np.asarray(result.theta, dtype=float) if result.theta else None,
                                should_stop)
    evaluation = criterion.evaluate(optimum.theta, gradient=False)
    deviance = SdScaleDeviance(criterion, spec)
    sigma_hat = float(np.sqrt(evaluation.r2 / deviance.dof))
    phi_hat = deviance.phi_of(optimum.theta, sigma_hat)
    # Levels with the same groups as a neighbour have no separate variance: nothing to profile.
    unidentified = (criterion.hierarchy.levels_sharing_groups() if isinstance(criterion, NestedCriterion)
                    else frozenset())  # crossed factors are told apart by how they cross
    _check_same_estimates(result, deviance, phi_hat, unidentified)
    d_min = deviance.value_and_gradient(phi_hat)[0]
    profiler = Profiler(deviance, phi_hat, d_min, should_stop)
    cut = float(np.sqrt(stats.chi2.ppf(level, 1)))
    wald_se = _wald_standard_errors(result, deviance)
    limits = []
    for k, parameter in enumerate(deviance.parameters):
        if parameter.level in unidentified:
            continue
        lower, lower_bound = _limit(profiler, k, -1, cut, wald_se[k])
        upper, upper_bound = _limit(profiler, k, +1, cut, wald_se[k])
        limits.append(ProfileLimit(parameter, float(phi_hat[k]), lower, upper, lower_bound, upper_bound))
    return limits


def criterion_of(frame, spec) -> NestedCriterion:
    """The nested criterion of ``spec`` on ``frame``, built as ``fit_mixed`` builds it."""
    data = prepare_model_data(frame, spec)
    work = build_work_columns(data, spec)
    hierarchy = build_hierarchy(data.frame, spec.level_names)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    return NestedCriterion(work.matrix, hierarchy, levels, work.x_columns, work.y_column, spec.method == "REML")


ESTIMATE_AGREEMENT = 1e-3  # relative (absolute for correlations); optimisers stop a little apart


def _check_same_estimates(result: FitResult, deviance: SdScaleDeviance, phi_hat: np.ndarray,
                          unidentified: frozenset[int]) -> None:
    """The profile's own optimum must be the fit's: intervals around other estimates, or in other
    units, would be silently wrong. A disagreement is a defect of the engine, not of the input."""
    reported = {f"{row.level}:{row.param}": row.estimate for row in result.random}
    sigma = phi_hat[-1]
    for parameter, value in zip(deviance.parameters, phi_hat):
        expected = reported.get(parameter.label)
        if expected is None or parameter.level in unidentified:  # an arbitrary split: nothing to compare
            continue
        scale = 1.0 if parameter.kind == "corr" else max(abs(expected), 1e-2 * sigma)
        if abs(value - expected) > ESTIMATE_AGREEMENT * scale:
            raise RuntimeError(f"profile: the optimum of {parameter.label} is {value:.6g}, the fit reports "
                               f"{expected:.6g}")


def _wald_standard_errors(result: FitResult, deviance: SdScaleDeviance) -> list[Optional[float]]:
    """The fit's SE of each parameter (sd scale), a first guess of how far the limits lie."""
    by_label = {f"{row.level}:{row.param}": row.se for row in result.random}
    return [by_label.get(p.label) for p in deviance.parameters]


def _limit(profiler: Profiler, k: int, side: int, cut: float, se: Optional[float]) -> tuple[float, bool]:
    """The limit on one side: the root of zeta(v) = cut, or the bound of the parameter space."""
    deviance = profiler.deviance
    estimate = float(profiler.phi_hat[k])
    bound = deviance.lower[k] if side < 0 else deviance.upper[k]
    if side < 0 and deviance.parameters[k].kind == "sigma":
        bound = 0.0
    if estimate == bound:
        return estimate, True
    kind = deviance.parameters[k].kind
    if se is None or not np.isfinite(se) or se <= 0:
        se = 0.1 if kind == "corr" else 0.25 * profiler.scale[k]
    solved = {estimate: profiler.phi_hat}

    def zeta(value: float) -> float:
        nearest = min(solved, key=lambda v: abs(v - value))
        d, phi = profiler.profile(k, value, solved[nearest])
        solved[value] = phi
        return float(np.sqrt(max(d - profiler.d_min, 0.0))) - cut

    previous, step = estimate, 1.5 * se
    for _ in range(MAX_BRACKET_STEPS):
        value = estimate + side * step
        at_bound = (value <= bound) if side < 0 else (value >= bound)
        if kind == "sigma" and side < 0 and at_bound:
            value, at_bound = 0.5 * previous, False  # sigma > 0: halve towards zero
        elif at_bound:
            value = bound
        if zeta(value) > 0:
            root = optimize.brentq(zeta, min(previous, value), max(previous, value),
                                   xtol=1e-10 * max(abs(estimate), 1e-3), rtol=1e-12)
            return float(root), False
        if at_bound:
            edge = 1.0 if kind == "corr" else bound
            return float(side * edge if kind == "corr" else edge), True
        previous, step = value, step * 1.6
    return (float("inf") if side > 0 else 0.0), True


def apply_profile_intervals(result: FitResult, frame, level: float = 0.95,
                            should_stop: Optional[Callable[[], bool]] = None) -> list[ProfileLimit]:
    """Replace the Wald intervals of the fit's sds, correlations and residual sd (and of the
    variances, the squares) by profile-likelihood intervals; covariances keep their Wald
    intervals (their rows say so). Sets ``result.ci_method = "profile"``."""
    limits = profile_limits(frame, result, level, should_stop)
    by_label = {limit.parameter.label: limit for limit in limits}
    for row in result.random:
        limit = by_label.get(f"{row.level}:{row.param}")
        if limit is not None:
            row.ci, row.ci_method = [limit.lower, limit.upper], "profile"
    for row in result.random_variances:
        if not row.param.startswith("var("):
            continue
        limit = by_label.get(f"{row.level}:sd(" + row.param[len("var("):])
        if limit is not None:
            row.ci, row.ci_method = [limit.lower ** 2, limit.upper ** 2], "profile"
    result.ci_method = "profile"
    return limits
