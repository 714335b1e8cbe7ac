"""The Laplace deviance of a GLMM with crossed random factors (lme4's glmer, nAGQ = 1).

-2 log L(theta, beta) ~ -2 log p(y | u*) + |u*|^2 + log|Lambda' Z' W Z Lambda + I|, u* the
conditional modes (engine.glmm.crossed_modes) and W the Fisher weights there, as on the nested
path (engine.glmm.criterion). The same interface as that criterion's random-slopes form, so the
outer optimiser and the covariance of the estimates (engine.glmm.optimize) serve both.
"""

from __future__ import annotations

import numpy as np

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
