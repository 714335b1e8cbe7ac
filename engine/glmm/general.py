"""Conditional modes for nested levels with random slopes (any covariance structure).

The same PIRLS as engine.glmm.modes, but each step runs the linear engine's own recursion
(engine.mixed.criterion.NestedCriterion on the rows scaled by sqrt(w), sigma = 1) and its top-down
predicted effects (engine.mixed.predict): log|V| of that model is log|H|, its predicted effects
are the new modes b = Lambda u. Slower per step than the intercept-only path (the leaf
cross-products are rebuilt for every step) but general.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.glmm.family import Family
from engine.glmm.modes import PIRLS_MAX_STEPS, PIRLS_TOLERANCE, halve_until_no_rise
from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LevelTerms, NestedCriterion
from engine.mixed.hierarchy import Hierarchy
from engine.mixed.predict import predict_random_effects

# The standard errors here come from second differences of the deviance (step 1e-4), and log|H| is
# only as exact as the modes it is taken at: 1e-11 left the intercept's SE 8.5e-5 off glmer's
# (a Poisson slope model); 1e-13 gets it to 1e-7 for about one more PIRLS step per evaluation.
GENERAL_PIRLS_TOLERANCE = min(PIRLS_TOLERANCE, 1e-13)


@dataclass
class GeneralModeState:
    effects: list[np.ndarray]  # per level: b = Lambda u, (groups, q)
    random_part: np.ndarray
    log_density: float
    penalty: float
    logdet: float
    steps: int
    converged: bool
    conditional_sds: list[np.ndarray] | None = None  # per level (groups, q), at the modes

    @property
    def laplace_deviance(self) -> float:
        return -2.0 * self.log_density + self.penalty + self.logdet


class NestedGeneralModes:
    """PIRLS for nested levels whose random effects are given as data columns (1 for _cons)."""

    def __init__(self, hierarchy: Hierarchy, family: Family, y: np.ndarray, effect_columns: list[np.ndarray],
                 covariances: list[LevelCovariance]):
        self.hierarchy = hierarchy
        self.family = family
        self.y = y
        self.covariances = covariances
        # one matrix of the distinct random-effect columns; each level points into it
        distinct: list[np.ndarray] = []
        self.level_columns: list[list[int]] = []
        for columns in effect_columns:
            indices = []
            for column in columns.T:
                for index, seen in enumerate(distinct):
                    if np.array_equal(seen, column):
                        break
                else:
                    index = len(distinct)
                    distinct.append(column)
                indices.append(index)
            self.level_columns.append(indices)
        self.columns = np.column_stack(distinct)
        self.offsets = np.cumsum([0] + [c.n_params for c in covariances]).tolist()
        self.levels = [LevelTerms(cols, cov) for cols, cov in zip(self.level_columns, covariances)]
        self.warm: list[np.ndarray] | None = None

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        return [cov.lambda_of(theta[self.offsets[i]:self.offsets[i + 1]]) for i, cov in enumerate(self.covariances)]

    def random_part(self, effects: list[np.ndarray]) -> np.ndarray:
        out = np.zeros(self.y.size)
        for level, b in enumerate(effects):
            codes = self.hierarchy.row_codes[level]
            for term, column in enumerate(self.level_columns[level]):
                out += self.columns[:, column] * b[codes, term]
        return out

    def penalty(self, theta: np.ndarray, effects: list[np.ndarray]) -> float:
        """|u|^2 with b = Lambda u; u = pinv(Lambda) b is the mode's u even where Lambda is singular."""
        total = 0.0
        for lam, b in zip(self.lambdas(theta), effects):
            u = b @ np.linalg.pinv(lam).T
            total += float(np.sum(u * u))
        return total

    def reachable(self, theta: np.ndarray, effects: list[np.ndarray]) -> list[np.ndarray]:
        """The effects b = Lambda u nearest to ``effects`` that this theta can produce.

        Modes kept from other parameters may lie outside the range of a singular Lambda (a variance
        or a correlation of +-1 at the boundary); their log density would then go with the penalty of
        their projection, a deviance far too low that the optimiser chases (glmer's 940.90 became 926.66).
        """
        return [b @ np.linalg.pinv(lam).T @ lam.T for lam, b in zip(self.lambdas(theta), effects)]

    def _step(self, theta, weights, working, need_sds=False):
        root = np.sqrt(weights)
        matrix = np.column_stack([self.columns * root[:, None], root * working])
        # Wild trial points of the line search (eta in the 50s) make weights of 1e24 and the sums lose
        # all precision; such points get an infinite deviance instead of a warning.
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            nested = NestedCriterion(matrix, self.hierarchy, self.levels, [], matrix.shape[1] - 1, False)
            evaluation = nested.evaluate(theta, gradient=False, keep=True)
            predicted = predict_random_effects(nested, evaluation, theta, 1.0)
        if not np.isfinite(evaluation.logdet_v):
            return np.inf, [np.nan_to_num(est) for est, _ in predicted], [sd for _, sd in predicted]
        return evaluation.logdet_v, [est for est, _ in predicted], [sd for _, sd in predicted]

    def solve(self, theta: np.ndarray, fixed_part: np.ndarray, need_sds: bool = False) -> GeneralModeState:
        theta = np.asarray(theta, dtype=float)
        family, y = self.family, self.y
        zero = [np.zeros((self.hierarchy.group_counts[i], len(c))) for i, c in enumerate(self.level_columns)]
        effects, random = zero, np.zeros(y.size)
        log_density = float(np.sum(family.log_density(y, fixed_part)))
        objective = -2.0 * log_density
        penalty = 0.0
        if self.warm is not None:  # the previous modes, unless the new parameters make them a worse start
            warm = self.reachable(theta, self.warm)
            warm_random = self.random_part(warm)
            warm_log_density = float(np.sum(family.log_density(y, fixed_part + warm_random)))
            warm_penalty = self.penalty(theta, warm)
            if -2.0 * warm_log_density + warm_penalty < objective:
                effects, random = warm, warm_random
                log_density, penalty = warm_log_density, warm_penalty
                objective = -2.0 * log_density + penalty
        converged, steps = False, 0
        for steps in range(1, PIRLS_MAX_STEPS + 1):
            eta = fixed_part + random
            weights, scores = family.weights_and_scores(y, eta)
            weights = family.newton_weights(y, eta, weights)
            # a probit row predicted beyond |eta| ~ 38 has weight and score 0 (underflow): it carries no information
            steps_to = np.divide(scores, weights, out=np.zeros_like(scores), where=weights > 0)
            _, proposal, _ = self._step(theta, weights, random + steps_to)
            def at(candidate):
                candidate_random = self.random_part(candidate)
                return (candidate_random, float(np.sum(family.log_density(y, fixed_part + candidate_random))),
                        self.penalty(theta, candidate))

            proposal, new_random, new_log_density, new_penalty, new_objective = halve_until_no_rise(
                effects, proposal, at, objective)
            decrease = objective - new_objective
            effects, random, log_density, penalty, objective = proposal, new_random, new_log_density, new_penalty, new_objective
            if decrease <= GENERAL_PIRLS_TOLERANCE * (abs(objective) + 1.0):
                converged = True
                break
        weights, _ = family.weights_and_scores(y, fixed_part + random)
        logdet, _, sds = self._step(theta, weights, random + 1.0)  # the response does not enter log|H|
        self.warm = effects
        return GeneralModeState(effects, random, log_density, penalty, logdet, steps, converged,
                                sds if need_sds else None)
