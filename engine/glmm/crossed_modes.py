"""Conditional modes of a GLMM whose random factors cross, by penalised IRLS with a sparse Cholesky.

At fixed theta and beta the modes u (spherical: b = Lambda u) minimise
-2 log p(y | eta) + |u|^2 with eta = offset + X beta + Z Lambda u. A Newton step solves
H u_new = Lambda' Z' (W Z Lambda u + s) with H = Lambda' Z' W Z Lambda + I, W the curvature and s
the scores of the log-density (see engine.glmm.modes for the nested recursion of the same step).

H has one block per factor. As in the linear crossed criterion (engine.mixed.crossed), the factor
with most random effects comes first: its block of H is block diagonal (its groups share no rows)
and is factored group by group; only the Schur complement of the other factors,
S = H22 - H21 H11^-1 H12, is factored as a whole (densely when small, else a sparse LU in
symmetric mode), so log|H| = log|H11| + log|S|. H itself is assembled by one weighted bincount
over each row's pairs of non-zero columns of Z ("slots"), on a pattern found once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.lapack import dpotri
from scipy.sparse.linalg import splu

from engine.glmm.family import Family
from engine.glmm.modes import PIRLS_MAX_STEPS, PIRLS_TOLERANCE, halve_until_no_rise
from engine.mixed.covariance import LevelCovariance
from engine.mixed.crossed.factors import GroupingFactor

DENSE_LIMIT = 2000  # Schur complements up to this size are factored densely
DENSE_FILL = 0.15  # ... and larger ones when at least this share of their entries is non-zero
INVERSE_LIMIT = 4000  # the exact gradient and the conditional sds need a dense S^-1; not beyond this size
DENSE_PRODUCT_LIMIT = 20_000_000  # H21 (the first factor's columns x the others') is kept dense up to this size


@dataclass
class CrossedModeState:
    """The result of PIRLS at one (theta, beta)."""

    u: np.ndarray  # spherical modes, in the columns' (internal) order
    random_part: np.ndarray  # per row: (Z Lambda u)_i
    log_density: float
    penalty: float  # |u|^2
    logdet: float  # log|Lambda' Z' W Z Lambda + I|, W the Fisher weights at the modes
    steps: int
    converged: bool
    effects: list[np.ndarray] | None = None  # per level (model order): b = Lambda u as (groups, q)
    conditional_sds: list[np.ndarray] | None = None  # per level (groups, q): sqrt diag(Lambda H^-1 Lambda')

    @property
    def laplace_deviance(self) -> float:
        return -2.0 * self.log_density + self.penalty + self.logdet


class _Factorisation:
    """H = Lambda' Z' W Z Lambda + I factored by blocks: H11 per group of the first factor, S for the rest."""

    def __init__(self, blocks: np.ndarray, h21, h22, split: int, q1: int):
        """``blocks``: H11 as (groups, q1, q1); ``h21``, ``h22``: the other factors' rows of H, both
        dense arrays (small problems) or both sparse."""
        self.split, self.q1 = split, q1
        chol = np.linalg.cholesky(blocks)
        self.logdet = 2.0 * float(np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2))))
        self.h11_inverse = np.linalg.inv(blocks)
        self.h21 = h21
        self.rest = h22.shape[0]
        self.dense = None
        self.lu = None
        self._y_dense = None  # Y' = H11^-1 H12 when H21 is dense
        self._y_t = None
        if not self.rest:
            return
        if isinstance(h21, np.ndarray):
            self._y_dense = self.apply_inverse11(h21.T)
            self.dense = cho_factor(h22 - h21 @ self._y_dense, lower=True)
            self.logdet += 2.0 * float(np.sum(np.log(np.diag(self.dense[0]))))
            return
        schur = (h22 - h21 @ self._inverse11_sparse() @ h21.T).tocsc()
        if self.rest <= DENSE_LIMIT or schur.nnz >= DENSE_FILL * self.rest ** 2:
            self.dense = cho_factor(schur.toarray(), lower=True)
            self.logdet += 2.0 * float(np.sum(np.log(np.diag(self.dense[0]))))
        else:
            self.lu = splu(schur, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                           options={"SymmetricMode": True})
            diagonal = self.lu.U.diagonal()
            if np.any(diagonal <= 0):
                raise np.linalg.LinAlgError("H is not positive definite")
            self.logdet += float(np.sum(np.log(diagonal)))

    def apply_inverse11(self, values: np.ndarray) -> np.ndarray:
        """H11^-1 times a vector or the columns of a matrix (group by group)."""
        if self.q1 == 1:
            inverse = self.h11_inverse[:, 0, 0]
            return values * (inverse if values.ndim == 1 else inverse[:, None])
        shaped = values.reshape(-1, self.q1, *values.shape[1:])
        return np.einsum("gab,gb...->ga...", self.h11_inverse, shaped).reshape(values.shape)

    def _inverse11_sparse(self) -> sp.csr_matrix:
        if self.q1 == 1:
            return sp.diags(self.h11_inverse[:, 0, 0], format="csr")
        return sp.block_diag(list(self.h11_inverse), format="csr")

    def _solve_schur(self, rhs: np.ndarray) -> np.ndarray:
        return cho_solve(self.dense, rhs) if self.dense is not None else self.lu.solve(rhs)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        first, second = rhs[: self.split], rhs[self.split:]
        y1 = self.apply_inverse11(first)
        if not self.rest:
            return y1
        u2 = self._solve_schur(second - self.h21 @ y1)
        u1 = self.apply_inverse11(first - self.h21.T @ u2)
        return np.concatenate([u1, u2])

    def schur_inverse(self) -> np.ndarray | None:
        """S^-1 as a dense matrix (kept), or None when S is too large to invert."""
        if self.rest > INVERSE_LIMIT:
            return None
        if getattr(self, "_schur_inverse", None) is None:
            if self.dense is not None:  # LAPACK's inverse from the Cholesky factor (lower triangle)
                lower, info = dpotri(self.dense[0], lower=1)
                if info != 0:
                    raise np.linalg.LinAlgError("inverse of the Schur complement failed")
                inverse = np.tril(lower) + np.tril(lower, -1).T
            else:
                inverse = self._solve_schur(np.eye(self.rest))
            self._schur_inverse = 0.5 * (inverse + inverse.T)
        return self._schur_inverse

    def inverse_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
        """Entries (rows[k], cols[k]) of H^-1 with rows[k] <= cols[k], for columns that share a data
        row (two columns of the first factor then lie in the same group). None when S is too large.

        With Y' = H11^-1 H12:  H^-1 = [[H11^-1 + Y' S^-1 Y, -Y' S^-1], [-S^-1 Y, S^-1]].
        """
        out = np.zeros(rows.size)
        if not self.rest:
            first = rows < self.split
            out[first] = self.h11_inverse[rows // self.q1, rows % self.q1, cols % self.q1]
            return out
        s_inverse = self.schur_inverse()
        if s_inverse is None:
            return None
        split, q1 = self.split, self.q1
        both_rest = rows >= split
        out[both_rest] = s_inverse[rows[both_rest] - split, cols[both_rest] - split]
        mixed = np.flatnonzero((rows < split) & (cols >= split))
        both_first = np.flatnonzero(cols < split)
        if self._y_dense is not None:  # Y' S^-1 as one dense matrix: plain gathers
            right = self._y_dense @ s_inverse  # (split, rest)
            out[mixed] = -right[rows[mixed], cols[mixed] - split]
            a, b = rows[both_first], cols[both_first]
            out[both_first] = (self.h11_inverse[a // q1, a % q1, b % q1]
                               + np.einsum("ij,ij->i", right[a], self._y_dense[b]))
            return out
        if self._y_t is None:
            self._y_t = (self._inverse11_sparse() @ self.h21.T).tocsr()  # (split, rest)
            self._y_t.sort_indices()
        y_t = self._y_t
        if mixed.size:
            pair, position = _row_entries(y_t, rows[mixed])
            values = y_t.data[position] * s_inverse[y_t.indices[position], cols[mixed][pair] - split]
            out[mixed] = -np.bincount(pair, weights=values, minlength=mixed.size)
        # Y_a' S^-1 Y_b reads S^-1 only where both rows of Y' have entries (a student's few teachers)
        for chunk in np.array_split(both_first, max(1, both_first.size // 65536)):
            if not chunk.size:
                continue
            a, b = rows[chunk], cols[chunk]
            pair, first_position = _row_entries(y_t, a)
            b_starts = y_t.indptr[b]
            repeats = (y_t.indptr[b + 1] - b_starts)[pair]
            pair = np.repeat(pair, repeats)
            first_position = np.repeat(first_position, repeats)
            within = np.arange(pair.size) - np.repeat(np.cumsum(repeats) - repeats, repeats)
            second_position = b_starts[pair] + within
            values = (y_t.data[first_position] * y_t.data[second_position]
                      * s_inverse[y_t.indices[first_position], y_t.indices[second_position]])
            out[chunk] = (self.h11_inverse[a // q1, a % q1, b % q1]
                          + np.bincount(pair, weights=values, minlength=chunk.size))
        return out


def _row_entries(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each k, the positions in ``matrix.data`` of the entries of row rows[k]: (k per entry, position)."""
    starts = matrix.indptr[rows]
    counts = matrix.indptr[rows + 1] - starts
    pair = np.repeat(np.arange(rows.size), counts)
    within = np.arange(pair.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return pair, starts[pair] + within


class CrossedModes:
    """PIRLS for random factors that cross: one Z for all factors, one sparse factorisation of H.

    Each data row has K = sum of the levels' q non-zero columns of Z ("slots"): ``slot_cols``
    (rows, K) holds them (internal column order) and the slots of level l are ``level_slots[l]``.
    """

    def __init__(self, factors: list[GroupingFactor], family: Family, y: np.ndarray,
                 effect_columns: list[np.ndarray], covariances: list[LevelCovariance]):
        """``factors``, ``effect_columns`` ((rows, q) per level, 1 for _cons) and ``covariances``
        follow the model's levels, which is also theta's order."""
        self.factors = factors
        self.family = family
        self.y = y
        self.effect_columns = effect_columns
        self.covariances = covariances
        self.offsets = np.cumsum([0] + [c.n_params for c in covariances]).tolist()
        self.q = [cov.q for cov in covariances]
        # internal column order: the factor with most random effects first (its block of H is block diagonal)
        self.order = sorted(range(len(factors)), key=lambda i: (-factors[i].n_groups * self.q[i], i))
        n = y.size
        blocks, starts, slot_cols = [], [0], []
        self.level_slots: list[list[int]] = [[] for _ in factors]
        for position, index in enumerate(self.order):
            q, factor = self.q[index], factors[index]
            columns = starts[-1] + factor.codes[:, None] * q + np.arange(q)[None, :]
            rows = np.repeat(np.arange(n), q)
            blocks.append(sp.csc_matrix((effect_columns[index].ravel(), (rows, (columns - starts[-1]).ravel())),
                                        shape=(n, factor.n_groups * q)))
            used = sum(c.shape[1] for c in slot_cols)
            self.level_slots[index] = list(range(used, used + q))
            slot_cols.append(columns)
            starts.append(starts[-1] + factor.n_groups * q)
        self.slot_cols = np.hstack(slot_cols)
        self.column_starts = starts  # internal order
        self.z = sp.hstack(blocks, format="csr")
        self.split = starts[1]
        self.q1 = self.q[self.order[0]]
        self.size = starts[-1]
        self.warm: np.ndarray | None = None
        self.last_factorisation: _Factorisation | None = None  # at the last modes, Fisher weights
        self._lambda_theta: np.ndarray | None = None
        self._z_lambda: sp.csr_matrix | None = None
        self._pairs = None
        self._a_theta: np.ndarray | None = None

    # ----- Lambda -------------------------------------------------------------------------------
    def level_lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        return [cov.lambda_of(theta[self.offsets[i]:self.offsets[i + 1]]) for i, cov in enumerate(self.covariances)]

    def lambda_matrix(self, theta: np.ndarray) -> sp.csr_matrix:
        lams = self.level_lambdas(theta)
        return sp.block_diag([sp.kron(sp.identity(self.factors[i].n_groups), sp.csr_matrix(lams[i]))
                              for i in self.order], format="csr")

    def z_lambda(self, theta: np.ndarray) -> sp.csr_matrix:
        """Z Lambda, kept for the last theta (PIRLS calls it once per step)."""
        theta = np.asarray(theta, dtype=float)
        if self._lambda_theta is None or not np.array_equal(theta, self._lambda_theta):
            self._z_lambda = (self.z @ self.lambda_matrix(theta)).tocsr()
            self._lambda_theta = theta.copy()
        return self._z_lambda

    def slot_values(self, matrices: list[np.ndarray]) -> np.ndarray:
        """(rows, K): per level, its effect columns times the level's q x q matrix (Lambda: the
        values of Z Lambda in each row's slots)."""
        out = np.empty(self.slot_cols.shape)
        for index, matrix in enumerate(matrices):
            out[:, self.level_slots[index]] = self.effect_columns[index] @ matrix
        return out

    def factorise(self, theta: np.ndarray, weights: np.ndarray) -> _Factorisation:
        """H = Lambda' Z' W Z Lambda + I by blocks: each pair of a row's slots adds w_i A_ia A_ib to
        one entry of H (A = Z Lambda), summed by one bincount over the precomputed pattern."""
        rows, cols, inverse = self._pair_pattern()
        a_values = self.a_values(theta)
        first, second = self._upper_slots
        values = np.bincount(inverse[:, : first.size].ravel(),
                             weights=(weights[:, None] * a_values[:, first] * a_values[:, second]).ravel(),
                             minlength=rows.size)
        split, q1 = self.split, self.q1
        ff, fr, rr = self._pair_kinds
        blocks = np.zeros((split // q1, q1, q1))
        group, a, b = rows[ff] // q1, rows[ff] % q1, cols[ff] % q1
        blocks[group, a, b] = values[ff]
        blocks[group, b, a] = values[ff]
        blocks += np.eye(q1)
        rest = self.size - split
        if rest <= DENSE_LIMIT and DENSE_FILL * split * rest <= np.count_nonzero(fr) and split * rest <= DENSE_PRODUCT_LIMIT:
            # small and filled (every person answers most items): dense blocks, BLAS products
            h21 = np.zeros((rest, split))
            h21[cols[fr] - split, rows[fr]] = values[fr]
            h22 = np.eye(rest)
            h22[rows[rr] - split, cols[rr] - split] += values[rr]
            off = rr & (rows != cols)
            h22[cols[off] - split, rows[off] - split] += values[off]
            return _Factorisation(blocks, h21, h22, split, q1)
        h21 = sp.csr_matrix((values[fr], (cols[fr] - split, rows[fr])), shape=(rest, split))
        off = rr & (rows != cols)
        h22 = sp.csr_matrix((np.concatenate([values[rr], values[off], np.ones(rest)]),
                             (np.concatenate([rows[rr], cols[off], np.arange(split, self.size)]) - split,
                              np.concatenate([cols[rr], rows[off], np.arange(split, self.size)]) - split)),
                            shape=(rest, rest))
        return _Factorisation(blocks, h21, h22, split, q1)

    def _pair_pattern(self):
        """The distinct entries (row <= col) of H that data rows touch, and for each row and pair of
        its slots (the upper pairs a <= b first, then the lower ones) the entry it adds to."""
        if self._pairs is None:
            n, k = self.slot_cols.shape
            upper_a, upper_b = np.triu_indices(k)
            lower_a, lower_b = np.tril_indices(k, -1)
            self._upper_slots = (upper_a, upper_b)
            self._all_slots = (np.concatenate([upper_a, lower_a]), np.concatenate([upper_b, lower_b]))
            a = self.slot_cols[:, self._all_slots[0]]
            b = self.slot_cols[:, self._all_slots[1]]
            keys = np.minimum(a, b).astype(np.int64) * self.size + np.maximum(a, b)
            unique, inverse = np.unique(keys.ravel(), return_inverse=True)
            rows, cols = unique // self.size, unique % self.size
            self._pairs = (rows, cols, inverse.reshape(n, -1))
            self._pair_kinds = (cols < self.split, (rows < self.split) & (cols >= self.split), rows >= self.split)
        return self._pairs

    def a_values(self, theta: np.ndarray) -> np.ndarray:
        """(rows, K): the values of Z Lambda in each row's slots, kept for the last theta."""
        theta = np.asarray(theta, dtype=float)
        if self._a_theta is None or not np.array_equal(theta, self._a_theta):
            self._a_values = self.slot_values(self.level_lambdas(theta))
            self._a_theta = theta.copy()
        return self._a_values

    # ----- PIRLS --------------------------------------------------------------------------------
    def solve(self, theta: np.ndarray, fixed_part: np.ndarray, need_sds: bool = False) -> CrossedModeState:
        """Penalised IRLS to a tight optimum (Newton steps, step halving) from the previous modes."""
        theta = np.asarray(theta, dtype=float)
        family, y = self.family, self.y
        zl = self.z_lambda(theta)
        u = np.zeros(self.size)
        random = np.zeros(y.size)
        log_density = float(np.sum(family.log_density(y, fixed_part)))
        penalty = 0.0
        objective = -2.0 * log_density
        if self.warm is not None:  # the previous modes, unless they are a worse start than zero
            warm_random = zl @ self.warm
            warm_log_density = float(np.sum(family.log_density(y, fixed_part + warm_random)))
            warm_penalty = float(self.warm @ self.warm)
            if -2.0 * warm_log_density + warm_penalty < objective:
                u, random, log_density, penalty = self.warm.copy(), warm_random, warm_log_density, warm_penalty
                objective = -2.0 * log_density + penalty

        def at(candidate):
            candidate_random = zl @ candidate[0]
            return (candidate_random, float(np.sum(family.log_density(y, fixed_part + candidate_random))),
                    float(candidate[0] @ candidate[0]))

        converged, steps = False, 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for steps in range(1, PIRLS_MAX_STEPS + 1):
                eta = fixed_part + random
                weights, scores = family.weights_and_scores(y, eta)
                weights = family.newton_weights(y, eta, weights)  # Newton steps; log|H| keeps the Fisher weights
                try:
                    proposal = self.factorise(theta, weights).solve(zl.T @ (weights * random + scores))
                except np.linalg.LinAlgError:
                    break
                (proposal,), new_random, new_log_density, new_penalty, new_objective = halve_until_no_rise(
                    [u], [proposal], at, objective)
                decrease = objective - new_objective
                u, random, log_density, penalty, objective = proposal, new_random, new_log_density, new_penalty, new_objective
                if decrease <= PIRLS_TOLERANCE * (abs(objective) + 1.0):
                    converged = True
                    break
            weights, _ = family.weights_and_scores(y, fixed_part + random)
            try:
                factorisation = self.factorise(theta, weights)
                logdet = factorisation.logdet
            except np.linalg.LinAlgError:
                factorisation, logdet = None, np.inf
        if not np.isfinite(log_density):
            logdet = np.inf
        self.warm = u
        self.last_factorisation = factorisation
        state = CrossedModeState(u, random, log_density, penalty, logdet, steps, converged)
        if need_sds:
            state.effects = self.effects(theta, u)
            state.conditional_sds = self.conditional_sds(theta, factorisation)
        return state

    # ----- entries of H^-1 ----------------------------------------------------------------------
    def inverse_in_slots(self, factorisation: _Factorisation) -> np.ndarray | None:
        """(rows, K, K): H^-1 at each row's pairs of slots; None when S is too large to invert."""
        rows, cols, inverse = self._pair_pattern()
        values = factorisation.inverse_at(rows, cols)
        if values is None:
            return None
        n, k = self.slot_cols.shape
        out = np.empty((n, k, k))
        out[:, self._all_slots[0], self._all_slots[1]] = values[inverse]
        out[:, self._all_slots[1], self._all_slots[0]] = values[inverse]
        return out

    # ----- per level ----------------------------------------------------------------------------
    def _per_level(self, vector_blocks: list[np.ndarray]) -> list[np.ndarray]:
        """Internal-order blocks back to the model's level order."""
        out = [None] * len(self.order)
        for position, index in enumerate(self.order):
            out[index] = vector_blocks[position]
        return out

    def effects(self, theta: np.ndarray, u: np.ndarray) -> list[np.ndarray]:
        """b = Lambda u per level, (groups, q)."""
        lams = self.level_lambdas(theta)
        blocks = []
        for position, index in enumerate(self.order):
            part = u[self.column_starts[position]:self.column_starts[position + 1]].reshape(-1, self.q[index])
            blocks.append(part @ lams[index].T)
        return self._per_level(blocks)

    def conditional_sds(self, theta: np.ndarray, factorisation: _Factorisation | None) -> list[np.ndarray] | None:
        """sqrt of the diagonal of Lambda H^-1 Lambda' per level, (groups, q) (lme4's condVar)."""
        if factorisation is None:
            return None
        lams = self.level_lambdas(theta)
        out = []
        for position, index in enumerate(self.order):
            q, groups = self.q[index], self.factors[index].n_groups
            first = self.column_starts[position] + np.arange(groups)[:, None, None] * q
            a = np.broadcast_to(first + np.arange(q)[None, :, None], (groups, q, q))
            b = np.broadcast_to(first + np.arange(q)[None, None, :], (groups, q, q))
            values = factorisation.inverse_at(np.minimum(a, b).ravel(), np.maximum(a, b).ravel())
            if values is None:
                return None
            block = values.reshape(groups, q, q)
            lam = lams[index]
            variances = np.einsum("ab,gbc,ac->ga", lam, block, lam)
            out.append(np.sqrt(np.maximum(variances, 0.0)))
        return self._per_level(out)
