"""Conditional modes of nested random intercepts by penalised IRLS, with the O(groups) recursion.

At fixed theta (the sd of each level's intercept; the latent scale has no residual sd) and fixed
beta, one IRLS step solves the weighted penalised least-squares problem
min |W^1/2 (z - Z Lambda u)|^2 + |u|^2 with Fisher weights W and working response z. Scaling
rows by W^1/2 turns it into the linear model of engine.mixed with sigma = 1: the new modes are
that model's predicted random effects and log|I + Lambda' Z'WZ Lambda| is its log|V|. With
random intercepts only, every node's cross-product over [sqrt(w), sqrt(w) z] reduces to two
numbers, a = sum w and b = sum w z over its rows (after its children absorbed their effects),
so a step is one bincount over the rows and a few vector operations per level:

    bottom-up:  d_g = 1 + t^2 a_g,   log|H| += sum log d_g,   the parent receives a_g / d_g, b_g / d_g
    top-down:   u_g = t (b_g - a_g c_g) / d_g,   c_child = c_g + t u_g   (c: the ancestors' effects)

(docs/engine-derivation.md, "The recursion" and "Predicted random effects", with q = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.glmm.family import Family
from engine.mixed.hierarchy import Hierarchy

PIRLS_TOLERANCE = 1e-11  # relative decrease of the penalised deviance; lme4's default stops far earlier
PIRLS_MAX_STEPS = 60


@dataclass
class ModeState:
    """The result of PIRLS at one (theta, beta)."""

    modes: list[np.ndarray]  # per level: spherical modes u (groups,)
    random_part: np.ndarray  # per row: sum over levels of t u of its groups
    log_density: float  # sum over rows of log p(y | eta at the modes)
    penalty: float  # |u|^2
    logdet: float  # log|I + Lambda' Z'WZ Lambda| with W at the modes
    curvature: list[np.ndarray]  # per level: d_g = 1 + t^2 a_g at the modes
    steps: int
    converged: bool

    @property
    def laplace_deviance(self) -> float:
        """-2 log L by the Laplace approximation."""
        return -2.0 * self.log_density + self.penalty + self.logdet


class NestedInterceptModes:
    """PIRLS for nested random intercepts (one per level), levels outermost first."""

    def __init__(self, hierarchy: Hierarchy, family: Family, y: np.ndarray):
        self.hierarchy = hierarchy
        self.family = family
        self.y = y
        self.n_levels = hierarchy.n_levels
        self.codes = hierarchy.row_codes
        self.leaf_codes = hierarchy.row_codes[-1]
        self.counts = hierarchy.group_counts
        self.parents = hierarchy.parents
        self.starts = []
        for level in range(self.n_levels):
            starts = hierarchy.child_starts(level)
            self.starts.append(None if level > 0 and starts.size == self.counts[level] else starts)
        self.warm: list[np.ndarray] | None = None  # modes of the previous call: the next one starts there

    def random_part(self, theta: np.ndarray, modes: list[np.ndarray]) -> np.ndarray:
        """Per row, the sum of its groups' effects t u: summed down the levels, then one gather."""
        path = theta[0] * modes[0]
        for level in range(1, self.n_levels):
            path = path[self.parents[level]] + theta[level] * modes[level]
        return path[self.leaf_codes]

    def _step(self, theta: np.ndarray, weights: np.ndarray, weighted_response: np.ndarray,
              need_modes: bool = True):
        """One pass of the recursion: log|H|, the curvatures d and (top-down) the new modes."""
        a = np.bincount(self.leaf_codes, weights=weights, minlength=self.counts[-1])
        b = np.bincount(self.leaf_codes, weights=weighted_response, minlength=self.counts[-1]) if need_modes else None
        kept_a, kept_b, curvature = [None] * self.n_levels, [None] * self.n_levels, [None] * self.n_levels
        logdet = 0.0
        for level in range(self.n_levels - 1, -1, -1):
            t2 = theta[level] ** 2
            d = 1.0 + t2 * a
            curvature[level] = d
            kept_a[level], kept_b[level] = a, b
            logdet += float(np.sum(np.log(d)))
            if level == 0:
                break
            starts = self.starts[level]
            a = a / d
            if need_modes:
                b = b / d
            if starts is not None:
                a = np.add.reduceat(a, starts)
                if need_modes:
                    b = np.add.reduceat(b, starts)
        if not need_modes:
            return logdet, curvature, None
        modes = []
        ancestors = np.zeros(self.counts[0])
        for level in range(self.n_levels):
            if level > 0:
                ancestors = ancestors[self.parents[level]]
            t = theta[level]
            u = t * (kept_b[level] - kept_a[level] * ancestors) / curvature[level]
            modes.append(u)
            if level + 1 < self.n_levels:
                ancestors = ancestors + t * u
        return logdet, curvature, modes

    def solve(self, theta: np.ndarray, fixed_part: np.ndarray) -> ModeState:
        """Penalised IRLS to a tight optimum, with step halving, from the previous call's modes."""
        theta = np.abs(np.asarray(theta, dtype=float))  # the criterion is even in each theta
        family, y = self.family, self.y
        modes = [m.copy() for m in self.warm] if self.warm is not None else [np.zeros(c) for c in self.counts]
        random = self.random_part(theta, modes)
        log_density = float(np.sum(family.log_density(y, fixed_part + random)))
        penalty = float(sum(np.dot(m, m) for m in modes))
        objective = -2.0 * log_density + penalty
        converged = False
        steps = 0
        for steps in range(1, PIRLS_MAX_STEPS + 1):
            eta = fixed_part + random
            weights, scores = family.weights_and_scores(y, eta)
            weights = family.newton_weights(y, eta, weights)  # Newton steps; log|H| below keeps lme4's weights
            _, _, proposal = self._step(theta, weights, weights * random + scores)
            def at(candidate):
                candidate_random = self.random_part(theta, candidate)
                return (candidate_random, float(np.sum(family.log_density(y, fixed_part + candidate_random))),
                        float(sum(np.dot(m, m) for m in candidate)))

            proposal, new_random, new_log_density, new_penalty, new_objective = halve_until_no_rise(
                modes, proposal, at, objective)
            decrease = objective - new_objective
            modes, random, log_density, penalty, objective = proposal, new_random, new_log_density, new_penalty, new_objective
            if decrease <= PIRLS_TOLERANCE * (abs(objective) + 1.0):
                converged = True
                break
        weights, _ = family.weights_and_scores(y, fixed_part + random)
        logdet, curvature, _ = self._step(theta, weights, weights, need_modes=False)
        self.warm = modes
        return ModeState(modes, random, log_density, penalty, logdet, curvature, steps, converged)

    # ----- pieces of the exact gradient (canonical links) ---------------------------------------
    def solve_many(self, theta: np.ndarray, leaf_weights: np.ndarray, leaf_sums: np.ndarray) -> np.ndarray:
        """Z Lambda H^-1 Lambda' Z' W v for several vectors v, given per leaf group the sums of
        w (``leaf_weights``) and of w v (``leaf_sums``, (groups, r)); the result is constant within
        a leaf group and returned per leaf group, (groups, r)."""
        a, b = leaf_weights, leaf_sums
        kept = []
        for level in range(self.n_levels - 1, -1, -1):
            d = 1.0 + theta[level] ** 2 * a
            kept.append((a, b, d))
            if level == 0:
                break
            a, b = a / d, b / d[:, None]
            starts = self.starts[level]
            if starts is not None:
                a, b = np.add.reduceat(a, starts), np.add.reduceat(b, starts, axis=0)
        kept.reverse()
        ancestors = np.zeros((self.counts[0], b.shape[1]))
        for level in range(self.n_levels):
            if level > 0:
                ancestors = ancestors[self.parents[level]]
            a, b, d = kept[level]
            t = theta[level]
            ancestors = ancestors + t * t * (b - a[:, None] * ancestors) / d[:, None]
        return ancestors

    def level_values_at_leaves(self, values: list[np.ndarray]) -> np.ndarray:
        """(leaf groups, levels): each level's per-group value carried down to the leaf groups."""
        out = np.empty((self.counts[-1], self.n_levels))
        for level in range(self.n_levels):
            carried = values[level]
            for below in range(level + 1, self.n_levels):
                carried = carried[self.parents[below]]
            out[:, level] = carried
        return out

    def logdet_gradient_and_leverage(self, theta: np.ndarray, leaf_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d log|H| / d theta at fixed weights (forward mode through the recursion), and per leaf
        group the conditional variance of its rows' random part, h = (Z Lambda H^-1 Lambda' Z')_ii."""
        L = self.n_levels
        a = leaf_weights
        da = np.zeros((L, a.size))  # derivatives of a in each theta (only the levels below matter)
        gradient = np.zeros(L)
        curvature = [None] * L
        for level in range(L - 1, -1, -1):
            t = theta[level]
            d = 1.0 + t * t * a
            curvature[level] = d
            dd = t * t * da
            dd[level] = 2.0 * t * a
            gradient += (dd / d).sum(axis=1)
            if level == 0:
                break
            new_a = a / d
            new_da = (da * d - a * dd) / (d * d)
            starts = self.starts[level]
            if starts is not None:
                new_a, new_da = np.add.reduceat(new_a, starts), np.add.reduceat(new_da, starts, axis=1)
            a, da = new_a, new_da
        variance = np.zeros(self.counts[0])
        for level in range(L):
            if level > 0:
                variance = variance[self.parents[level]]
            d = curvature[level]
            variance = variance / (d * d) + theta[level] ** 2 / d
        return gradient, variance


def halve_until_no_rise(current, proposal, evaluate, objective: float, halvings: int = 30):
    """PIRLS step halving: move ``proposal`` back towards ``current`` until the penalised deviance
    -2 log density + penalty does not rise above ``objective`` (at most ``halvings`` times).

    ``evaluate(candidate)`` returns (random part, log density, penalty); the accepted candidate is
    returned with those and its deviance.
    """
    for _ in range(halvings):
        random, log_density, penalty = evaluate(proposal)
        value = -2.0 * log_density + penalty
        if value <= objective + 1e-12 * abs(objective):
            break
        proposal = [0.5 * (old + new) for old, new in zip(current, proposal)]
    return proposal, random, log_density, penalty, value
