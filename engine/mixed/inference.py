"""Standard errors and tests: fixed-effect table, Wald and LR tests, random-effect SEs.

Random-effect SEs follow Stata: the observed information of the (restricted) log-likelihood in
(log sd, atanh corr, log sigma), with the fixed effects profiled out (which gives the same
variance-parameter block as the full information). The Hessian is the central difference of the
exact gradient. A parameter on the boundary (sd = 0) is held fixed and gets no SE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.distributions import chi2_sf, normal_quantile, normal_sf
from engine.mixed.criterion import NestedCriterion
from engine.model_spec import ModelSpec
from engine.results import FixedEffect, RandomParam, Test

Z_975 = float(normal_quantile(0.975))
BOUNDARY_RATIO = 1e-5  # sd / sigma below this counts as an estimate on the boundary (sd of the effect
# times the root mean square of its column, so that the test does not depend on a slope's units)
SINGULAR_THETA = 1e-4  # a diagonal entry of Lambda below this makes a level's covariance singular (lme4's
# rule, applied to the optimiser's unit-free Lambda: columns at unit size, slopes centred)


def on_boundary(sd, effect_scale, sigma: float):
    """True where a random effect's sd is negligible next to sigma, measured unit-free: the sd of
    its contribution to the outcome (sd times the root mean square of its column) against sigma."""
    return np.asarray(sd) * np.asarray(effect_scale) < BOUNDARY_RATIO * sigma


def fixed_effect_rows(names: list[str], beta: np.ndarray, cov: np.ndarray) -> list[FixedEffect]:
    rows = []
    for j, name in enumerate(names):
        se = float(np.sqrt(max(cov[j, j], 0.0)))
        z = float(beta[j] / se) if se > 0 else float("nan")
        p = float(2.0 * normal_sf(abs(z))) if se > 0 else float("nan")
        rows.append(FixedEffect(name, float(beta[j]), se, z, p, [float(beta[j] - Z_975 * se), float(beta[j] + Z_975 * se)]))
    return rows


def wald_test(names: list[str], beta: np.ndarray, cov: np.ndarray) -> Test | None:
    """Wald chi2 that every coefficient except `_cons` is zero."""
    keep = [j for j, n in enumerate(names) if n != "_cons"]
    if not keep:
        return None
    b = beta[keep]
    sub = cov[np.ix_(keep, keep)]
    stat = float(b @ np.linalg.solve(sub, b))
    return Test(stat, len(keep), float(chi2_sf(stat, len(keep))), "chi2")


def lr_test_vs_linear(loglik: float, loglik_linear: float, n_variance_params: int) -> Test | None:
    """Stata's 'LR test vs. linear model': chibar2(01) with one parameter, conservative chi2 otherwise."""
    if n_variance_params == 0:
        return None
    stat = max(0.0, 2.0 * (loglik - loglik_linear))
    if n_variance_params == 1:
        return Test(stat, 1, float(0.5 * chi2_sf(stat, 1)) if stat > 0 else 1.0, "chibar2")
    return Test(stat, n_variance_params, float(chi2_sf(stat, n_variance_params)), "chi2")


@dataclass
class _Entry:
    level: int  # index of the level, or -1 for the residual
    kind: str  # 'sd', 'corr' or 'sigma'
    i: int
    j: int
    value: float
    free: bool


class VarianceParameters:
    """Map between theta and Stata's (log sd, atanh corr, log sigma) scale; Hessian there."""

    def __init__(self, criterion: NestedCriterion, spec: ModelSpec, theta: np.ndarray, sigma: float,
                 unidentified_levels: frozenset[int] = frozenset()):
        self.criterion = criterion
        self.spec = spec
        self.theta = np.asarray(theta, dtype=float)
        self.sigma = sigma
        self.entries: list[_Entry] = []
        self.level_sd: list[np.ndarray] = []
        self.level_corr: list[np.ndarray] = []
        self.singular_levels: list[int] = []  # correlated effects whose covariance matrix is singular
        self.level_scales: list[np.ndarray] = []  # root mean square of each random-effect column
        offsets = criterion.param_offsets
        for index, terms in enumerate(criterion.levels):
            cov = terms.covariance
            sd, corr = cov.sd_corr(self.theta[offsets[index]:offsets[index + 1]], sigma)
            self.level_sd.append(sd)
            self.level_corr.append(corr)
            shared = cov.shares_variance
            scales = criterion.effect_scales(index)
            if shared:  # one sd for all the level's columns: judged on their geometric mean size
                scales = np.full(cov.q, np.exp(np.mean(np.log(scales))))
            self.level_scales.append(scales)
            zero_sd = on_boundary(sd, scales, sigma)
            lam = criterion.search_lambda(index, self.theta)
            singular = cov.kind == "unstructured" and cov.q > 1 and (
                zero_sd.any() or np.min(np.abs(np.diag(lam))) < SINGULAR_THETA)
            if cov.is_exchangeable:  # Lambda's eigenvalues are its two parameters
                singular = bool(zero_sd.any() or np.min(np.abs(np.linalg.eigvalsh(lam))) < SINGULAR_THETA)
            if singular and not zero_sd.any():
                self.singular_levels.append(index)
            # Correlated effects with a singular covariance are held fixed as a whole.
            level_free = not singular
            level_free = level_free and index not in unidentified_levels
            for i in range(1 if shared else cov.q):
                self.entries.append(_Entry(index, "sd", i, i, float(sd[i]), level_free and not zero_sd[i]))
            if cov.kind == "unstructured":
                for i in range(cov.q):
                    for j in range(i + 1, cov.q):
                        value = float(np.nan_to_num(corr[i, j]))
                        self.entries.append(_Entry(index, "corr", i, j, value, level_free and abs(value) < 1 - 1e-8))
            elif cov.is_exchangeable:  # one common correlation, in (-1/(q-1), 1)
                value = float(np.nan_to_num(corr[1, 0]))
                interior = -1.0 / (cov.q - 1) + 1e-8 < value < 1 - 1e-8
                self.entries.append(_Entry(index, "corr", 0, 1, value, level_free and interior))
        self.entries.append(_Entry(-1, "sigma", 0, 0, sigma, True))
        self.free = [e for e in self.entries if e.free]

    def is_zero(self, entry: _Entry) -> bool:
        """True for an sd estimated at zero (unit-free: see ``on_boundary``)."""
        return bool(on_boundary(entry.value, self.level_scales[entry.level][entry.i], self.sigma))

    def boundary_names(self) -> list[str]:
        """The sds estimated at zero, as "level:sd(term)" (unit-free test: ``on_boundary``)."""
        out = []
        for entry in self.entries:
            if entry.kind == "sd" and self.is_zero(entry):
                out.append(f"{self._level_label(entry)}:{self._param_label(entry, 'sd', 'corr')}")
        return out

    def free_names(self) -> list[str]:
        """The free parameters as "level:sd(term)", "level:corr(a,b)", "Residual:sd(Residual)"."""
        return [f"{self._level_label(entry)}:{self._param_label(entry, 'sd', 'corr')}" for entry in self.free]

    def _level_label(self, entry: _Entry) -> str:
        return "Residual" if entry.kind == "sigma" else self.spec.levels[entry.level].name

    def _param_label(self, entry: _Entry, scale: str, pair: str) -> str:
        """E.g. sd(x), var(_cons), corr(x,_cons): terms named and ordered as Stata prints them
        (slopes first, `_cons` last), whatever the engine's internal order."""
        if entry.kind == "sigma":
            return f"{scale}(Residual)"
        level = self.spec.levels[entry.level]
        internal, stata = level.estimation_terms, level.terms
        cov = self.criterion.levels[entry.level].covariance
        if entry.kind == "sd":
            term = " ".join(stata) if cov.shares_variance else internal[entry.i]
            return f"{scale}({term})"
        if cov.shares_variance:  # Stata: cov(x1 x2 _cons), the common covariance
            return f"{pair}({' '.join(stata)})"
        a, b = sorted((internal[entry.i], internal[entry.j]), key=stata.index)
        return f"{pair}({a},{b})"

    def _stata_order(self, entry: _Entry) -> tuple:
        """Sort key: levels outermost first, sds then correlations, each in Stata's term order."""
        if entry.kind == "sigma":
            return (len(self.spec.levels),)
        level = self.spec.levels[entry.level]
        positions = sorted(level.terms.index(level.estimation_terms[k]) for k in {entry.i, entry.j})
        return (entry.level, 0 if entry.kind == "sd" else 1, *positions)

    def psi(self) -> np.ndarray:
        return np.array([np.arctanh(e.value) if e.kind == "corr" else np.log(e.value) for e in self.free])

    def theta_sigma(self, psi: np.ndarray) -> tuple[np.ndarray, float]:
        sds = [sd.copy() for sd in self.level_sd]
        corrs = [c.copy() for c in self.level_corr]
        sigma = self.sigma
        for value, entry in zip(psi, self.free):
            if entry.kind == "sigma":
                sigma = float(np.exp(value))
            elif entry.kind == "sd":
                sds[entry.level][entry.i] = np.exp(value)
            else:
                corrs[entry.level][entry.i, entry.j] = corrs[entry.level][entry.j, entry.i] = np.tanh(value)
        theta = []
        offsets = self.criterion.param_offsets
        held = {e.level for e in self.entries if e.kind != "sigma"} - {e.level for e in self.free if e.kind != "sigma"}
        for index, terms in enumerate(self.criterion.levels):
            cov = terms.covariance
            if index in held:  # nothing free at this level: keep its fitted Lambda, rescaled to sigma
                theta.append(self.theta[offsets[index]:offsets[index + 1]] * self.sigma / sigma)
                continue
            sd = sds[index]
            if cov.shares_variance:
                sd = np.full(cov.q, sd[0])
            theta.append(cov.theta_of_sd_corr(sd, corrs[index], sigma))
        return np.concatenate(theta) if theta else np.zeros(0), sigma

    def gradient(self, psi: np.ndarray, step: float = 1e-6) -> np.ndarray:
        """Gradient of -2 log L in psi: exact in theta and sigma, chained through a numeric Jacobian."""
        theta, sigma = self.theta_sigma(psi)
        evaluation = self.criterion.evaluate(theta)
        d_theta, d_log_sigma = self.criterion.gradient_at_sigma(evaluation, sigma)
        jac = np.empty((theta.size, psi.size))
        sigma_derivative = np.zeros(psi.size)
        for j in range(psi.size):
            up, down = psi.copy(), psi.copy()
            up[j] += step
            down[j] -= step
            (t_up, s_up), (t_down, s_down) = self.theta_sigma(up), self.theta_sigma(down)
            jac[:, j] = (t_up - t_down) / (2 * step)
            sigma_derivative[j] = (np.log(s_up) - np.log(s_down)) / (2 * step)
        return jac.T @ d_theta + sigma_derivative * d_log_sigma

    def covariance(self, step: float = 1e-4) -> np.ndarray | None:
        """Inverse observed information in psi, or None when it is singular or cannot be formed."""
        try:
            return self._covariance(step)
        except np.linalg.LinAlgError:  # a step left the positive-definite covariances
            return None

    def _covariance(self, step: float) -> np.ndarray | None:
        psi = self.psi()
        hessian = np.empty((psi.size, psi.size))
        for j in range(psi.size):
            up, down = psi.copy(), psi.copy()
            up[j] += step
            down[j] -= step
            hessian[:, j] = (self.gradient(up) - self.gradient(down)) / (2 * step)
        information = 0.25 * (hessian + hessian.T)  # Hessian of -2 log L, halved and symmetrised
        return _inverse_or_none(information)

    def rows(self, cov_psi: np.ndarray | None) -> tuple[list[RandomParam], list[RandomParam]]:
        """Random-effects rows on the sd scale and on the variance scale, in Stata's order."""
        se_psi = {}
        if cov_psi is not None:
            for index, entry in enumerate(self.free):
                se_psi[id(entry)] = float(np.sqrt(cov_psi[index, index]))
        sd_rows, var_rows = [], []
        free_index = {id(e): k for k, e in enumerate(self.free)}
        for entry in sorted(self.entries, key=self._stata_order):
            level = self._level_label(entry)
            se_link = se_psi.get(id(entry))
            if entry.kind == "corr":
                sd_rows.append(_corr_row(level, self._param_label(entry, "sd", "corr"), entry.value, se_link))
                var_rows.append(self._cov_row(level, self._param_label(entry, "var", "cov"), entry, cov_psi,
                                              free_index))
            else:
                sd_rows.append(_log_scale_row(level, self._param_label(entry, "sd", "corr"), entry.value, se_link, 1))
                var_rows.append(_log_scale_row(level, self._param_label(entry, "var", "cov"), entry.value, se_link, 2))
        return sd_rows, var_rows

    def _cov_row(self, level, label, entry, cov_psi, free_index) -> RandomParam:
        sd = self.level_sd[entry.level]
        rho = entry.value
        value = rho * sd[entry.i] * sd[entry.j]
        if cov_psi is None or id(entry) not in free_index:
            return RandomParam(level, label, float(value))
        grad = np.zeros(len(self.free))
        shared = self.criterion.levels[entry.level].covariance.shares_variance
        for k, other in enumerate(self.free):
            if other.level == entry.level and other.kind == "sd" and (shared or other.i in (entry.i, entry.j)):
                grad[k] = 2 * value if shared else value  # one sd stands for both of the pair's
        grad[free_index[id(entry)]] = sd[entry.i] * sd[entry.j] * (1 - rho ** 2)
        se = float(np.sqrt(max(grad @ cov_psi @ grad, 0.0)))
        return RandomParam(level, label, float(value), se, [float(value - Z_975 * se), float(value + Z_975 * se)])


def _inverse_or_none(information: np.ndarray) -> np.ndarray | None:
    try:
        cov = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        return None
    return cov


def _log_scale_row(level, label, sd, se_log, power) -> RandomParam:
    estimate = float(sd ** power)
    if se_log is None:
        return RandomParam(level, label, estimate)
    se = power * estimate * se_log
    log_value = power * np.log(sd)
    with np.errstate(over="ignore"):  # a near-boundary sd can have an unbounded interval
        ci = [float(np.exp(log_value - Z_975 * power * se_log)), float(np.exp(log_value + Z_975 * power * se_log))]
    return RandomParam(level, label, estimate, float(se), ci)


def _corr_row(level, label, rho, se_atanh) -> RandomParam:
    if se_atanh is None:
        return RandomParam(level, label, float(rho))
    link = np.arctanh(rho)
    return RandomParam(level, label, float(rho), float((1 - rho ** 2) * se_atanh),
                       [float(np.tanh(link - Z_975 * se_atanh)), float(np.tanh(link + Z_975 * se_atanh))])
