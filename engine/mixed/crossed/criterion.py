"""The profiled deviance of a linear mixed model with crossed random factors (blocked Cholesky).

With Z the random-effects design, Lambda the relative covariance factor and W = [X y], the
deviance needs log|M| and the Schur complement W'W - W'Z Lambda M^-1 Lambda' Z'W of
M = Lambda' Z'Z Lambda + I (see ENGINE-NOTES; the profiling of beta and sigma is the nested
criterion's). As in MixedModels.jl the factors are ordered by size and the largest one's block
of M, which is block diagonal (its groups share no rows), is factored group by group; only the
Schur complement of the other factors is factored as a whole: densely when small or filled,
otherwise with a sparse LU (SuperLU, symmetric mode, no pivoting: M is positive definite), or
block by block when its pattern falls apart into independent blocks (components.py). A scalar
first factor is absorbed analytically for the optimiser's evaluations (absorbed.py); the
per-group blocks are formed only for the predictions.
The gradient in theta is exact (gradient.py): for diagonal Lambda by the effects each parameter
scales, for correlated (unstructured) and exchangeable blocks through Lambda's per-level inverse;
central differences only where S^-1's selected entries are unaffordable or an unstructured Lambda
is singular. See docs/engine-derivation.md, "Crossed factors".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.lapack import dpotri
from scipy.sparse.linalg import splu

from engine.errors import UserInputError
from engine.mixed.criterion import LOG_2PI, Evaluation, LevelTerms, ProfiledCriterion
from engine.mixed.crossed.absorbed import AbsorbedFirstFactor
from engine.mixed.crossed.components import BlockFactor, component_blocks
from engine.mixed.crossed.factors import GroupingFactor
from engine.mixed.crossed.selected_inverse import selected_inverse

DENSE_LIMIT = 400  # Schur complements up to this size are factored densely
DENSE_FILL = 0.15  # ... and larger ones when at least this share of entries is non-zero
GRADIENT_STEP = 1e-6
MAX_POSITION_TABLE = 1 << 24  # S's size squared up to which entries are located by a direct table
MAX_SCHUR_PAIRS = 40_000_000  # pairs of entries within the first factor's columns, for _SchurPattern


@dataclass
class _Blocks:
    """One evaluation's factorisation, kept for the random-effects predictions."""

    lam1: np.ndarray  # Lambda of the first factor (q1 x q1)
    inv1: np.ndarray  # (groups, q1, q1) inverses of the Cholesky factors L1 of its blocks of M
    c1: np.ndarray  # L1^-1 Lambda1' Z1' W, (groups, q1, p+1)
    b_rest: sp.csr_matrix  # T21 L1^-T (T21 = Lambda2' Z2' Z1 Lambda1)
    solve_rest: object  # solves with S, the Schur complement of the other factors' block of M
    s_rw: np.ndarray | None  # the W columns of that Schur complement, (others, p+1)
    rest_lambda: object  # Lambda of the other factors: a vector when diagonal, else sparse


class CrossedCriterion(ProfiledCriterion):
    """Profiled deviance -2 log L (ML) or -2 log L_R (REML) of theta, for any random factors.

    ``levels`` and ``factors`` follow the model's levels (theta's order); internally the factors
    are arranged largest first.
    """

    def __init__(self, columns: np.ndarray, factors: list[GroupingFactor], levels: list[LevelTerms],
                 x_columns: list[int], y_column: int, reml: bool):
        super().__init__(columns, levels, x_columns, y_column, reml)
        # The optimiser searches theta times this (random-effect columns at unit size), so a slope
        # in other units takes the same path to the same optimum.
        self.theta_scale = self.unit_free_theta_scale()
        self.effect_transforms = self.unit_free_transforms(columns)  # coordinates for the df
        self.factors = factors
        self.order = sorted(range(len(levels)), key=lambda i: -factors[i].n_groups * len(levels[i].columns))
        # Exchangeable blocks are full (t1 (I - J/q) + t2 J/q): only identity/independent ones are diagonal.
        self.diagonal = all(lv.covariance.kind in ("identity", "independent") or len(lv.columns) == 1
                            for lv in levels)
        self._rest_index = None
        self._last_evaluation: dict = {}
        self._prepare(columns)

    # ----- set-up (theta-independent) ---------------------------------------------------------
    def _prepare(self, columns: np.ndarray) -> None:
        n = self.n
        blocks, offsets = [], [0]
        for index in self.order:
            factor, terms = self.factors[index], self.levels[index]
            q = len(terms.columns)
            rows = np.repeat(np.arange(n), q)
            cols = (factor.codes[:, None] * q + np.arange(q)[None, :]).ravel()
            values = columns[:, terms.columns].ravel()
            blocks.append(sp.csc_matrix((values, (rows, cols)), shape=(n, factor.n_groups * q)))
            offsets.append(offsets[-1] + factor.n_groups * q)
        self.offsets = offsets
        z = sp.hstack(blocks, format="csc")
        w = columns[:, self.x_columns + [self.y_column]]
        first = self.order[0]
        self.q1 = len(self.levels[first].columns)
        self.n1 = self.factors[first].n_groups
        split = offsets[1]
        self.split = split
        ztz = (z.T @ z).tocsr()
        a11 = ztz[:split, :split].tocoo()
        self.a11_blocks = np.zeros((self.n1, self.q1, self.q1))
        self.a11_blocks[a11.row // self.q1, a11.row % self.q1, a11.col % self.q1] = a11.data
        self.a21 = ztz[split:, :split].tocsr()
        self.a22 = ztz[split:, split:].tocsr()
        self.a21.sort_indices()
        self.a22.sort_indices()
        self.a21_rows = np.repeat(np.arange(self.a21.shape[0]), np.diff(self.a21.indptr))
        self.a22_rows = np.repeat(np.arange(self.a22.shape[0]), np.diff(self.a22.indptr))
        self.ztw = np.asarray(z.T @ w)
        self.wtw = w.T @ w
        self.n_rest = z.shape[1] - split
        self.identity_rest = sp.identity(self.n_rest, format="csr")
        self.pattern = None
        if self.diagonal and self.q1 == 1 and self.n_rest:
            per_group = np.diff(self.a21.tocsc().indptr).astype(np.int64)
            if int(per_group @ per_group) <= MAX_SCHUR_PAIRS:  # else the pair list would not fit in memory
                self.pattern = _SchurPattern(self.a22, self.a21)
        # The scalar first factor summed out once for all evaluations (absorbed.py).
        self.absorbed = None if self.pattern is None else \
            AbsorbedFirstFactor(self.pattern, self.a21, self.a11_blocks[:, 0, 0], self.ztw[: self.split])
        # S's independent blocks (crossing only within coarser units), factored densely in batches.
        self.blocking = None if self.pattern is None else component_blocks(self.pattern.matrix())

    # ----- Lambda -----------------------------------------------------------------------------
    def _level_lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        return [lv.covariance.lambda_of(theta[self.param_offsets[i]: self.param_offsets[i + 1]])
                for i, lv in enumerate(self.levels)]

    def _lambda_parts(self, theta):
        """Lambda of the first factor as (groups, q1, q1) and of the others as a sparse matrix
        (or, when every Lambda is diagonal, as vectors)."""
        lams = self._level_lambdas(theta)
        first = lams[self.order[0]]
        lam1 = np.broadcast_to(first, (self.n1, self.q1, self.q1))
        if self.diagonal:
            if self._rest_index is None:  # which diagonal entry of which Lambda each effect takes
                sizes = [len(self.levels[i].columns) for i in self.order[1:]]
                starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
                self._rest_index = np.concatenate(
                    [np.tile(start + np.arange(size), self.factors[i].n_groups)
                     for start, size, i in zip(starts, sizes, self.order[1:])]) if sizes else np.zeros(0, np.int64)
            diagonals = [np.diag(lams[i]) for i in self.order[1:]]
            rest = np.concatenate(diagonals)[self._rest_index] if diagonals else np.zeros(0)
            return lam1, np.diag(first), rest
        rest = sp.block_diag([sp.kron(sp.identity(self.factors[i].n_groups), lams[i]) for i in self.order[1:]],
                             format="csr") if len(self.order) > 1 else sp.csr_matrix((0, 0))
        return lam1, None, rest

    # ----- evaluation ---------------------------------------------------------------------------
    def evaluate(self, theta: np.ndarray, gradient: bool = True, keep: bool = False) -> Evaluation:
        theta = np.asarray(theta, dtype=float)
        if self.absorbed is not None and not keep:
            # The optimiser and the standard errors ask again for points already evaluated (the
            # start, the optimum): the last evaluation is kept and handed back for the same theta.
            # The dict is shared with the optimiser's shallow copy of this criterion (same terms).
            key = tuple(id(terms) for terms in self.levels)
            last = self._last_evaluation.get("last")
            if last is not None and last[0] == key and np.array_equal(last[1], theta) and (
                    last[2].gradient is not None or not gradient):
                return last[2]
            evaluation = self._evaluate_absorbed(theta, gradient)
            self._last_evaluation["last"] = (key, theta.copy(), evaluation)
            return evaluation
        evaluation, blocks = self._evaluate(theta)
        if gradient:
            from engine.mixed.crossed.gradient import analytic_gradient, general_gradient

            exact = (analytic_gradient if self.diagonal else general_gradient)(self, theta, evaluation, blocks)
            evaluation.gradient = self._numeric_gradient(theta) if exact is None else exact
        if keep:
            evaluation.childsums = [blocks]  # the predictions reuse the factorisation
        return evaluation

    def _evaluate_absorbed(self, theta: np.ndarray, gradient: bool) -> Evaluation:
        """As ``evaluate`` without the first factor's per-group blocks (absorbed.py)."""
        _, d1, rest = self._lambda_parts(theta)
        d = float(d1[0])
        absorbed = self.absorbed
        w = absorbed.weights(d)
        s_rw = absorbed.others_w(d, w, self.ztw[self.split:], rest)
        factor, logdet_rest = self._factor_rest(absorbed.schur_values(d, w, rest))
        h_rest = factor(s_rw)
        schur = absorbed.w_part(d, w, self.wtw) - s_rw.T @ h_rest
        evaluation = self._profile(schur, absorbed.logdet(d) + logdet_rest)
        if gradient:
            from engine.mixed.crossed.gradient import absorbed_gradient

            exact = absorbed_gradient(self, theta, evaluation, d, w, rest, h_rest, factor) \
                if self._can_invert(factor) else None
            evaluation.gradient = self._numeric_gradient(theta) if exact is None else exact
        return evaluation

    def _factor_rest(self, s_rr: sp.csc_matrix):
        """Factor S: by its independent blocks when it has them (on the Schur pattern), else whole."""
        if self.blocking is not None and self.pattern is not None and s_rr.nnz == self.pattern.nnz:
            factor = self.blocking.factor(s_rr.data)
            return factor, factor.logdet
        return _factor(s_rr)

    def _numeric_gradient(self, theta: np.ndarray) -> np.ndarray:
        out = np.empty(theta.size)
        for i in range(theta.size):
            step = GRADIENT_STEP * max(1.0, abs(theta[i]))
            up, down = theta.copy(), theta.copy()
            up[i] += step
            down[i] -= step
            out[i] = (self.evaluate(up, gradient=False).deviance
                      - self.evaluate(down, gradient=False).deviance) / (2 * step)
        return out

    def _evaluate(self, theta):
        lam1, d1, rest = self._lambda_parts(theta)
        q1 = self.q1
        # First factor: M11 = Lambda1' A11 Lambda1 + I, one q1 x q1 block per group.
        if d1 is not None:
            m11 = self.a11_blocks * (d1[:, None] * d1[None, :])[None] + np.eye(q1)[None]
        else:
            m11 = np.einsum("ji,gjk,kl->gil", lam1[0], self.a11_blocks, lam1[0]) + np.eye(q1)[None]
        if q1 == 1:  # scalar blocks: no batched factorisation needed
            chol1 = np.sqrt(m11)
        else:
            try:
                chol1 = np.linalg.cholesky(m11)
            except np.linalg.LinAlgError:
                raise UserInputError("the random-effects cross-products are not positive definite") from None
        logdet = 2.0 * float(np.sum(np.log(np.einsum("gii->gi", chol1))))
        inv1 = np.linalg.inv(chol1) if q1 > 1 else 1.0 / chol1
        # U = Lambda' Z' W, T21 = Lambda2' A21 Lambda1, T22 = Lambda2' A22 Lambda2.
        ztw1 = self.ztw[: self.split].reshape(self.n1, q1, -1)
        if d1 is not None:
            u1 = ztw1 * d1[None, :, None]
        else:
            u1 = np.einsum("ji,gjk->gik", lam1[0], ztw1)
        c1 = inv1 * u1 if q1 == 1 else np.einsum("gij,gjk->gik", inv1, u1)  # L1^-1 U1, (groups, q1, p+1)
        flat = c1.reshape(self.split, -1)
        w_part = self.wtw - flat.T @ flat
        if self.n_rest == 0:
            schur = w_part
            solve_rest = None
            b_rest = sp.csr_matrix((0, self.split))
        else:
            if self.diagonal:
                t22 = self.a22.copy()
                t22.data = t22.data * rest[self.a22_rows] * rest[self.a22.indices]
                u2 = self.ztw[self.split:] * rest[:, None]
                if q1 == 1:  # B = T21 L1^-T: every entry scaled by its row's and its column's factor
                    b_rest = self.a21.copy()
                    b_rest.data = b_rest.data * rest[self.a21_rows] * (d1[0] * inv1[:, 0, 0])[self.a21.indices]
                else:
                    t21 = self.a21.copy()
                    t21.data = t21.data * rest[self.a21_rows]
                    b_rest = (t21 @ self._first_transform(d1, lam1, inv1)).tocsr()
            else:
                t21 = (rest.T @ self.a21).tocsr()
                t22 = (rest.T @ self.a22 @ rest).tocsr()
                u2 = rest.T @ self.ztw[self.split:]
                b_rest = (t21 @ self._first_transform(d1, lam1, inv1)).tocsr()  # T21 L1^-T
            if self.pattern is not None:  # S = Lambda2 (A22 - A21 diag(w) A12) Lambda2 + I on a fixed pattern
                s_rr = self.pattern.assemble(rest, (d1[0] * inv1[:, 0, 0]) ** 2)
            else:
                s_rr = (t22 + self.identity_rest - b_rest @ b_rest.T).tocsc()
            s_rw = u2 - b_rest @ flat
            solve_rest, logdet_rest = self._factor_rest(s_rr)
            logdet += logdet_rest
            schur = w_part - s_rw.T @ solve_rest(s_rw)
        evaluation = self._profile(schur, logdet)
        return evaluation, _Blocks(lam1[0], inv1, c1, b_rest, solve_rest, s_rw if self.n_rest else None, rest)

    def columns_of_parameters(self) -> list[np.ndarray]:
        """For each theta parameter of a diagonal Lambda, the positions of the effects it scales."""
        cached = getattr(self, "_columns_cache", None)
        if cached is not None and cached[0] is self.levels:
            return cached[1]
        out = []
        for index, terms in enumerate(self.levels):
            position = self.order.index(index)
            q = len(terms.columns)
            groups = np.arange(self.factors[index].n_groups) * q + self.offsets[position]
            for basis in terms.covariance.basis:
                own = np.flatnonzero(np.diag(basis))
                out.append((groups[:, None] + own[None, :]).ravel())
        self._columns_cache = (self.levels, out)
        return out

    def _first_transform(self, d1, lam1, inv1) -> sp.csr_matrix:
        """Lambda1 L1^-T, block diagonal, so that T21 L1^-T = (Lambda2' A21) (Lambda1 L1^-T)."""
        q1 = self.q1
        if q1 == 1:
            return sp.diags(lam1[0][0, 0] * inv1[:, 0, 0])
        blocks = np.einsum("ij,gkj->gik", lam1[0], inv1)  # Lambda1 (L1^-1)'
        rows = (np.arange(self.n1)[:, None, None] * q1 + np.arange(q1)[None, :, None]).repeat(q1, axis=2)
        cols = (np.arange(self.n1)[:, None, None] * q1 + np.arange(q1)[None, None, :]).repeat(q1, axis=1)
        return sp.csr_matrix((blocks.ravel(), (rows.ravel(), cols.ravel())), shape=(self.split, self.split))

    def _profile(self, schur: np.ndarray, logdet: float) -> Evaluation:
        p = self.p
        xtvx, xtvy, ytvy = schur[:p, :p], schur[:p, p], float(schur[p, p])
        if p:
            chol = np.linalg.cholesky(xtvx)
            beta = cho_solve((chol, True), xtvy)
            logdet_x = 2.0 * float(np.sum(np.log(np.diag(chol))))
        else:
            beta, logdet_x = np.zeros(0), 0.0
        r2 = ytvy - float(xtvy @ beta)
        if not r2 > 1e-12 * max(ytvy, 1e-300):
            raise UserInputError("the fixed effects reproduce the outcome exactly: no residual variation is "
                                 "left to split between the random factors")
        dof = self.n - p if self.reml else self.n
        deviance = logdet + dof * (1.0 + LOG_2PI + np.log(r2 / dof))
        if self.reml:
            deviance += logdet_x
        return Evaluation(float(deviance), None, float(logdet), xtvx, xtvy, ytvy, beta, float(r2), logdet_x)

    def gradient_at_sigma(self, evaluation: Evaluation, sigma: float) -> tuple[np.ndarray, float]:
        """As NestedCriterion.gradient_at_sigma: needs an evaluation with the exact gradient's pieces."""
        d_theta = evaluation.d_logdet_v + evaluation.d_r2 / sigma ** 2
        if self.reml:
            d_theta = d_theta + evaluation.d_logdet_x
        dof = self.n - self.p if self.reml else self.n
        return d_theta, 2.0 * dof - 2.0 * evaluation.r2 / sigma ** 2

    def can_select_inverse(self, blocks) -> bool:
        """Whether S^-1 on S's pattern is affordable: always from a sparse factor, up to a size dense."""
        return self._can_invert(blocks.solve_rest)

    def _can_invert(self, factor) -> bool:
        from engine.mixed.crossed.predict import DENSE_INVERSE_LIMIT

        return self.n_rest <= DENSE_INVERSE_LIMIT or isinstance(factor, BlockFactor) or (
            isinstance(factor, _SparseFactor) and factor.symmetric)

    def deviance_at_sigma(self, theta: np.ndarray, sigma: float) -> float:
        """-2 log L (or -2 log L_R) with sigma given rather than profiled out."""
        evaluation = self.evaluate(theta, gradient=False)
        dof = self.n - self.p if self.reml else self.n
        value = evaluation.logdet_v + dof * (LOG_2PI + 2.0 * np.log(sigma)) + evaluation.r2 / sigma ** 2
        return value + (evaluation.logdet_x if self.reml else 0.0)


class _DenseFactor:
    """Cholesky factor of a dense positive definite matrix: solves and the explicit inverse."""

    def __init__(self, matrix: np.ndarray):
        try:
            self.factor = cho_factor(matrix, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise UserInputError("the random-effects cross-products are not positive definite") from None
        self.logdet = 2.0 * float(np.sum(np.log(np.diag(self.factor[0]))))

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        return cho_solve(self.factor, rhs, check_finite=False)

    def inverse(self) -> np.ndarray:
        lower, info = dpotri(self.factor[0], lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("inverse of the Schur complement failed")
        return SelectedInverse(lower, lower_only=True)


class _SparseFactor:
    """Sparse LU (SuperLU, symmetric mode, diagonal pivots) of a positive definite matrix."""

    def __init__(self, matrix: sp.csc_matrix):
        self.lu = splu(matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        diagonal = self.lu.U.diagonal()
        if np.any(diagonal <= 0):
            raise UserInputError("the random-effects cross-products are not positive definite")
        self.logdet = float(np.sum(np.log(diagonal)))
        self.size = matrix.shape[0]
        columns = np.repeat(np.arange(self.size), np.diff(matrix.indptr))
        coupling = (matrix.data != 0.0) & (matrix.indices != columns)
        self.decoupled = np.bincount(matrix.indices[coupling], minlength=self.size) == 0
        self.symmetric = np.array_equal(self.lu.perm_r, self.lu.perm_c)  # one symmetric permutation

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        return self.lu.solve(rhs)

    def inverse(self) -> np.ndarray:
        """S^-1 on the pattern of the factor (which covers the pattern of S); see selected_inverse.py.

        Takahashi's recurrence on P S P' = L D L' (SuperLU's U = D L' when it pivots on the
        diagonal with one symmetric permutation): Z = D^-1 L^-1 + (I - L') Z, column by column
        from the last, reading only entries inside the factor's pattern.
        """
        lu = self.lu
        if not self.symmetric:  # not a symmetric elimination: solve fully (small S only, see can_select_inverse)
            return SelectedInverse(lu.solve(np.eye(self.size)))
        lower = lu.L.tocsc()
        lower.sort_indices()
        strict = sp.tril(lower, k=-1, format="csc")
        strict.sort_indices()
        return selected_inverse(strict, lu.U.diagonal(), lu.perm_c, self.decoupled)


class _SchurPattern:
    """Sums sum_g w_g a_g a_g' over the columns a_g of A21, on the fixed pattern of A22 + A21 A12 + I.

    Every pair of entries in one column of A21 adds to one entry of the pattern; the pairs and
    their products are found once, so each evaluation is one weighted bincount.
    """

    def __init__(self, a22: sp.csr_matrix, a21: sp.csr_matrix):
        size = a22.shape[0]
        columns = a21.tocsc()
        columns.sort_indices()
        pattern = (abs(a22) + abs(columns) @ abs(columns).T + sp.identity(size)).tocsc()
        pattern.sort_indices()
        self.indptr, self.indices = pattern.indptr, pattern.indices
        self.rows = self.indices
        self.cols = np.repeat(np.arange(size), np.diff(self.indptr))
        self.size, self.nnz = size, self.indices.size
        self._keys = self.cols.astype(np.int64) * size + self.rows  # sorted: CSC with sorted rows
        self._table = None
        if size * size <= MAX_POSITION_TABLE:  # a direct table beats a binary search per entry
            self._table = np.empty(size * size, dtype=np.int32 if self.nnz < 2 ** 31 else np.int64)
            self._table[self._keys] = np.arange(self.nnz)
        first, second, self.pair_group = _upper_pairs(columns.indptr)  # each pair once; mirrored below
        self.pair_product = columns.data[first] * columns.data[second]
        self.pair_position = self._positions(columns.indices[first], columns.indices[second])
        a22 = a22.tocoo()
        self.a22_position = self._positions(a22.row, a22.col)
        self.a22_data = a22.data
        self.diagonal_position = self._positions(np.arange(size), np.arange(size))
        self.mirror = self._positions(self.cols, self.rows)  # position of (j, i) for each (i, j)
        self.strictly_lower = self.rows > self.cols
        self._table = None  # only needed while the positions above are found

    def _positions(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Index into the pattern's data of entries (row, col), all inside the pattern."""
        keys = cols.astype(np.int64) * self.size + rows
        if self._table is not None:
            return self._table[keys].astype(np.int64)
        return np.searchsorted(self._keys, keys)

    def weighted_sum(self, weights: np.ndarray) -> np.ndarray:
        half = np.bincount(self.pair_position, weights=self.pair_product * weights[self.pair_group],
                           minlength=self.nnz)  # filled where row <= column
        half[self.strictly_lower] = half[self.mirror[self.strictly_lower]]
        return half

    def matrix(self) -> sp.csc_matrix:
        """The pattern itself (every entry 1), as a CSC matrix."""
        return sp.csc_matrix((np.ones(self.nnz), self.indices, self.indptr), shape=(self.size, self.size))

    def assemble(self, scale: np.ndarray, weights: np.ndarray) -> sp.csc_matrix:
        """diag(scale) (A22 - sum_g w_g a_g a_g') diag(scale) + I as a CSC matrix."""
        values = -self.weighted_sum(weights)
        values[self.a22_position] += self.a22_data  # positions are distinct
        values *= scale[self.rows] * scale[self.cols]
        values[self.diagonal_position] += 1.0
        return sp.csc_matrix((values, self.indices, self.indptr), shape=(self.size, self.size))


def _upper_pairs(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (a, b), a <= b, of entry positions within one column of a CSC matrix with sorted
    rows, and the column: built for all columns with the same number of entries at once."""
    counts = np.diff(indptr)
    firsts, seconds, groups = [], [], []
    for count in np.unique(counts):
        if count == 0:
            continue
        columns = np.flatnonzero(counts == count)
        a, b = np.triu_indices(int(count))
        start = indptr[columns][:, None]
        firsts.append((start + a[None, :]).ravel())
        seconds.append((start + b[None, :]).ravel())
        groups.append(np.repeat(columns, a.size))
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(groups)


class SelectedInverse:
    """Entries of a dense S^-1 (z[rank[i], rank[j]] when ``rank`` is given), as SparseSelectedInverse."""

    def __init__(self, z: np.ndarray, rank: np.ndarray | None = None, lower_only: bool = False):
        self.z = z
        self.rank = rank
        self.lower_only = lower_only  # only the lower triangle of z is filled (LAPACK's potri)

    def _ranks(self, index):
        index = np.asarray(index)
        return index if self.rank is None else self.rank[index]

    def diagonal(self) -> np.ndarray:
        return np.diag(self.z) if self.rank is None else np.diag(self.z)[self.rank]

    def entries(self, rows, cols) -> np.ndarray:
        rows, cols = self._ranks(rows), self._ranks(cols)
        if self.lower_only:
            rows, cols = np.maximum(rows, cols), np.minimum(rows, cols)
        return self.z[rows, cols]


def _factor(matrix: sp.csc_matrix):
    """A solver (with ``inverse()``) and log-determinant of a symmetric positive definite matrix."""
    size = matrix.shape[0]
    if size <= DENSE_LIMIT or matrix.nnz >= DENSE_FILL * size * size:
        factor = _DenseFactor(matrix.toarray())
    else:
        factor = _SparseFactor(matrix)
    return factor, factor.logdet
