"""The GLMM deviance -2 log L(theta, beta): Laplace for any nesting, adaptive quadrature for one level.

Laplace (lme4's nAGQ = 1, Stata's intpoints(1)): with u* the conditional modes,
-2 log L = -2 sum log p(y | u*) + |u*|^2 + log|I + Lambda' Z'WZ Lambda|, W the Fisher weights at
u* (for logit and Poisson the observed curvature; for probit the expected one, as lme4).

Adaptive Gauss-Hermite (one random-intercept level): the likelihood is a product of scalar
integrals, one per group, L_g = int p(y_g | u) phi(u) du. Each is evaluated at nodes placed at the
group's mode u*_g and scaled by its curvature, s_g = d_g^-1/2 (lme4's nAGQ > 1, Stata's
intmethod(mcaghermite)):  L_g ~ s_g sum_k w_k exp(x_k^2 / 2) p(y_g | u*_g + s_g x_k) phi(u*_g + s_g x_k),
with (x_k, w_k) the Gauss-Hermite rule for the weight exp(-x^2 / 2). One node gives Laplace.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import logsumexp

from engine.glmm.family import Family
from engine.glmm.modes import ModeState, NestedInterceptModes
from engine.mixed.hierarchy import Hierarchy

LOG_2PI = float(np.log(2.0 * np.pi))


class GlmmCriterion:
    """-2 log L as a function of the parameters (theta per level, then beta)."""

    def __init__(self, hierarchy: Hierarchy, family: Family, y: np.ndarray, x: np.ndarray,
                 offset: np.ndarray, nagq: int = 1, effect_columns=None, covariances=None):
        """``effect_columns`` (per level, (rows, q)) and ``covariances`` (LevelCovariance per level)
        describe random slopes; without them every level has a random intercept."""
        self.family = family
        self.y = y
        self.x = x
        self.offset = offset
        self.nagq = int(nagq)
        self.p = x.shape[1]
        self.general = covariances is not None
        if self.general:
            from engine.glmm.general import NestedGeneralModes

            self.modes = NestedGeneralModes(hierarchy, family, y, effect_columns, covariances)
            self.n_theta = self.modes.offsets[-1]
        else:
            self.modes = NestedInterceptModes(hierarchy, family, y)
            self.n_theta = hierarchy.n_levels
        self.hierarchy = hierarchy
        if self.nagq > 1:
            nodes, weights = hermegauss(self.nagq)
            self.nodes = nodes
            self.log_node_weights = np.log(weights) + 0.5 * nodes ** 2
        self.evaluations = 0
        self.last_state: ModeState | None = None
        self.last_deviance = float("nan")
        self.constant_columns = [bool(x.shape[0]) and bool(np.all(x[:, j] == x[0, j]) and x[0, j] == 1.0)
                                 for j in range(self.p)]

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params = np.asarray(params, dtype=float)
        return params[: self.n_theta], params[self.n_theta:]

    def fixed_part(self, beta: np.ndarray) -> np.ndarray:
        return self.offset + self.x @ beta

    def deviance(self, params: np.ndarray) -> float:
        theta, beta = self.split(params)
        fixed = self.fixed_part(beta)
        state = self.modes.solve(theta, fixed)
        self.evaluations += 1
        self.last_state = state
        if self.nagq <= 1:
            self.last_deviance = state.laplace_deviance
        else:
            self.last_deviance = self._quadrature_deviance(abs(float(theta[0])), fixed, state)
        return self.last_deviance

    def _quadrature_deviance(self, t: float, fixed: np.ndarray, state: ModeState) -> float:
        codes = self.hierarchy.row_codes[0]
        n_groups = self.hierarchy.group_counts[0]
        mode = state.modes[0]
        scale = 1.0 / np.sqrt(state.curvature[0])
        # (groups, nodes): the value of u at each node of each group's rule
        points = mode[:, None] + scale[:, None] * self.nodes[None, :]
        log_terms = np.empty_like(points)
        for k in range(self.nagq):
            eta = fixed + t * points[codes, k]
            log_terms[:, k] = np.bincount(codes, weights=self.family.log_density(self.y, eta), minlength=n_groups)
        log_terms += -0.5 * points ** 2 - 0.5 * LOG_2PI + self.log_node_weights[None, :]
        per_group = np.log(scale) + logsumexp(log_terms, axis=1)
        return -2.0 * float(np.sum(per_group))


DERIVATIVE_OF_WEIGHT = {
    "logit": lambda eta, w: w * (1.0 - 2.0 * special_expit(eta)),
    "log": lambda eta, w: w,
}


def special_expit(eta):
    from scipy.special import expit

    return expit(eta)


def laplace_gradient(criterion: GlmmCriterion, params: np.ndarray) -> tuple[float, np.ndarray]:
    """The Laplace deviance and its exact gradient in (theta, beta), for canonical links (logit, log).

    With u* the modes, f = -2 log p(y | u) + |u|^2 is stationary in u, so
    dD/dphi = df/dphi (u held) + d log|H|/dphi (W held) + sum_i w'_i h_i d eta*_i/dphi, where
    h_i = (Z Lambda H^-1 Lambda' Z')_ii and eta* moves with the modes:
    d eta*/d beta_j = x_j - R(x_j),  d eta*/d theta_l = 2 (z_l - R(z_l)),  z_l = t_l u_l per row / t_l,
    R(v) = Z Lambda H^-1 Lambda' Z' W v (one more pass of the recursion per column).
    """
    theta, beta = criterion.split(params)
    sign = np.where(theta < 0, -1.0, 1.0)  # the deviance is even in each theta
    theta = np.abs(theta)
    deviance = criterion.deviance(np.concatenate([theta, beta]))
    state = criterion.last_state
    modes = criterion.modes
    leaf, n_leaf = modes.leaf_codes, modes.counts[-1]
    eta = criterion.fixed_part(beta) + state.random_part
    weights, scores = criterion.family.weights_and_scores(criterion.y, eta)
    sensitivity = DERIVATIVE_OF_WEIGHT[criterion.family.link](eta, weights)  # w'(eta), times h below
    leaf_weights = np.bincount(leaf, weights=weights, minlength=n_leaf)
    d_logdet, leverage = modes.logdet_gradient_and_leverage(theta, leaf_weights)
    leaf_sensitivity = np.bincount(leaf, weights=sensitivity, minlength=n_leaf) * leverage
    sensitivity = sensitivity * leverage[leaf]
    # directions of the fixed effects: x_j, summed with weights per leaf group (a constant column needs no pass)
    x = criterion.x
    x_sums = np.empty((n_leaf, criterion.p))
    for j in range(criterion.p):
        column = x[:, j]
        x_sums[:, j] = leaf_weights if criterion.constant_columns[j] else np.bincount(
            leaf, weights=weights * column, minlength=n_leaf)
    # directions of the sds: z_l = u_l of each row's group, constant within leaf groups
    level_values = modes.level_values_at_leaves(state.modes)
    leaf_sums = np.column_stack([x_sums, level_values * leaf_weights[:, None]])
    responses = modes.solve_many(theta, leaf_weights, leaf_sums)
    leaf_scores = np.bincount(leaf, weights=scores, minlength=n_leaf)
    beta_part = -2.0 * (x.T @ scores) + x.T @ sensitivity - responses[:, : criterion.p].T @ leaf_sensitivity
    theta_part = (-2.0 * level_values.T @ leaf_scores
                  + 2.0 * (level_values - responses[:, criterion.p:]).T @ leaf_sensitivity + d_logdet)
    gradient = np.concatenate([theta_part * sign, beta_part])
    return deviance, gradient
