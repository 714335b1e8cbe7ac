"""The Laplace deviance of a GLMM with crossed random factors (lme4's glmer, nAGQ = 1).

-2 log L(theta, beta) ~ -2 log p(y | u*) + |u*|^2 + log|Lambda' Z' W Z Lambda + I|, u* the
conditional modes (engine.glmm.crossed_modes) and W the Fisher weights there, as on the nested
path (engine.glmm.criterion). The same interface as that criterion's random-slopes form, so the
outer optimiser and the covariance of the estimates (engine.glmm.optimize) serve both.
"""

from __future__ import annotations

import numpy as np

from engine.glmm.criterion import DERIVATIVE_OF_WEIGHT
from engine.glmm.crossed_modes import CrossedModes, CrossedModeState
from engine.glmm.family import Family
from engine.mixed.covariance import LevelCovariance
from engine.mixed.crossed.factors import GroupingFactor


class CrossedGlmmCriterion:
    """-2 log L (Laplace) as a function of (theta of every level in the model's order, beta)."""

    general = True  # theta in Lambda's parametrisation; derivatives by differences
    nagq = 1

    def __init__(self, factors: list[GroupingFactor], family: Family, y: np.ndarray, x: np.ndarray,
                 offset: np.ndarray, effect_columns: list[np.ndarray], covariances: list[LevelCovariance]):
        self.family = family
        self.y = y
        self.x = x
        self.offset = offset
        self.p = x.shape[1]
        self.modes = CrossedModes(factors, family, y, effect_columns, covariances)
        self.n_theta = self.modes.offsets[-1]
        self.evaluations = 0
        self.last_state: CrossedModeState | None = None
        self.last_deviance = float("nan")

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params = np.asarray(params, dtype=float)
        return params[: self.n_theta], params[self.n_theta:]

    def fixed_part(self, beta: np.ndarray) -> np.ndarray:
        return self.offset + self.x @ beta

    def deviance(self, params: np.ndarray) -> float:
        theta, beta = self.split(params)
        state = self.modes.solve(theta, self.fixed_part(beta))
        self.evaluations += 1
        self.last_state = state
        self.last_deviance = state.laplace_deviance
        return self.last_deviance

    def deviance_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray] | None:
        """The Laplace deviance and its exact gradient in (theta, beta); None when the Schur
        complement is too large to invert (the optimiser then takes differences).

        With A = Z Lambda, s the scores at the modes u, W_F the Fisher weights of log|H_F| (w' = dw_F/deta)
        and W_N the observed curvature that sets the modes' derivatives (the same for logit and log;
        probit differs), M_F = H_F^-1, M_N = H_N^-1, h_i = (A M_F A')_ii, r = w' h, m = M_N A' r,
        E_k = dLambda/dtheta_k and v_k = Z E_k u:
          dD/dbeta = -2 X's + X'r - X'W_N A m
          dD/dtheta_k = -2 s'v_k + 2 sum_i w_F,i (Z E_k)_i M_F A_i' + r'v_k + s'(Z E_k m) - (A m)'W_N v_k
        (the envelope term at fixed u, d log|H_F| at fixed W, and W_F's move with the modes, whose
        stationarity -Lambda'Z's + u = 0 gives du = -M_N d(-Lambda'Z's)).
        """
        theta, beta = self.split(params)
        deviance = self.deviance(params)
        modes, state = self.modes, self.last_state
        factorisation = modes.last_factorisation
        if factorisation is None or not np.isfinite(deviance):
            return None
        inverse = modes.inverse_in_slots(factorisation)
        if inverse is None:
            return None
        eta = self.fixed_part(beta) + state.random_part
        weights, scores = self.family.weights_and_scores(self.y, eta)
        slope = fisher_weight_derivative(self.family, eta, weights)
        zl = modes.z_lambda(theta)
        newton_weights, newton = weights, factorisation
        if self.family.link not in DERIVATIVE_OF_WEIGHT:  # probit: the modes move with the observed curvature
            newton_weights = self.family.newton_weights(self.y, eta, weights)
            newton = modes.factorise(theta, newton_weights)
        a_values = modes.a_values(theta)
        leverage = np.einsum("ia,iab,ib->i", a_values, inverse, a_values)
        r = slope * leverage
        m = newton.solve(zl.T @ r)
        am = zl @ m
        x = self.x
        beta_part = -2.0 * (x.T @ scores) + x.T @ r - x.T @ (newton_weights * am)
        theta_part = np.empty(self.n_theta)
        slots, u = modes.slot_cols, state.u
        inverse_times_a = np.einsum("iab,ib->ia", inverse, a_values)
        for level, cov in enumerate(modes.covariances):
            level_slots = modes.level_slots[level]
            for j, basis in enumerate(cov.basis):
                e_values = modes.effect_columns[level] @ basis  # (rows, q): the values of Z E_k
                v = np.sum(e_values * u[slots[:, level_slots]], axis=1)
                zem = np.sum(e_values * m[slots[:, level_slots]], axis=1)
                trace = float(np.sum(weights * np.sum(e_values * inverse_times_a[:, level_slots], axis=1)))
                theta_part[modes.offsets[level] + j] = (-2.0 * scores @ v + 2.0 * trace + r @ v + scores @ zem
                                                        - am @ (newton_weights * v))
        return deviance, np.concatenate([theta_part, beta_part])


def fisher_weight_derivative(family: Family, eta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """d w_F / d eta of the Fisher weights: w (1 - 2 mu) for logit, mu for log, and for probit
    w (-2 eta - phi/Phi + phi/(1 - Phi)) (from w = n phi^2 / (Phi (1 - Phi)))."""
    if family.link in DERIVATIVE_OF_WEIGHT:
        return DERIVATIVE_OF_WEIGHT[family.link](eta, weights)
    from scipy.special import log_ndtr

    log_phi = -0.5 * eta * eta - 0.5 * np.log(2.0 * np.pi)
    upper = np.exp(log_phi - log_ndtr(eta))
    lower = np.exp(log_phi - log_ndtr(-eta))
    return weights * (-2.0 * eta - upper + lower)
