"""The profiled (restricted) deviance of a nested linear mixed model and its exact gradient.

See docs/engine-derivation.md. Every group carries S = W' V^-1 W over the columns
W = [random-effect columns | fixed-effect columns | outcome] of its rows. Bottom-up, a group sums
its children's S and absorbs its own random effects with the Woodbury identity; the matrix
determinant lemma accumulates log|V|. Derivatives with respect to theta ride along in forward
mode. Leaf groups' cross-products do not depend on theta and are aggregated once; when the
lowest level has a random intercept only, leaf groups of equal size under one parent are merged,
so an evaluation costs O(groups above the leaves).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.mixed.covariance import LevelCovariance
from engine.mixed.hierarchy import Hierarchy, first_index_of_runs

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass
class LevelTerms:
    """Which columns of W are a level's random-effect columns, and how Lambda is parametrised."""

    columns: list[int]
    covariance: LevelCovariance


@dataclass
class Evaluation:
    """Criterion value and everything the report needs at one theta."""

    deviance: float
    gradient: np.ndarray | None
    logdet_v: float
    xtvx: np.ndarray
    xtvy: np.ndarray
    ytvy: float
    beta: np.ndarray
    r2: float
    logdet_x: float = 0.0
    # Gradients of the pieces (theta-wise), for the likelihood with sigma not profiled out.
    d_logdet_v: np.ndarray | None = None
    d_logdet_x: np.ndarray | None = None
    d_r2: np.ndarray | None = None
    childsums: list[np.ndarray] = field(default_factory=list)  # per level: S summed over children


def cross_products_by_group(columns: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group W'W as an array (groups, k, k), by one weighted bincount per entry."""
    k = columns.shape[1]
    out = np.empty((n_groups, k, k))
    for i in range(k):
        for j in range(i, k):
            weights = columns[:, i] * columns[:, j]
            out[:, i, j] = np.bincount(codes, weights=weights, minlength=n_groups)
            out[:, j, i] = out[:, i, j]
    return out


def _reduce_to_parents(values: np.ndarray, starts: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.add.reduceat(values, starts, axis=axis)


class NestedCriterion:
    """Profiled deviance -2 log L (ML) or -2 log L_R (REML) as a function of theta."""

    def __init__(self, columns: np.ndarray, hierarchy: Hierarchy, levels: list[LevelTerms],
                 x_columns: list[int], y_column: int, reml: bool):
        self.hierarchy = hierarchy
        self.levels = levels
        self.x_columns = list(x_columns)
        self.y_column = y_column
        self.reml = reml
        self.n = columns.shape[0]
        self.p = len(x_columns)
        self.k = columns.shape[1]
        self.param_offsets = np.cumsum([0] + [lv.covariance.n_params for lv in levels]).tolist()
        self.n_params = self.param_offsets[-1]
        self._prepare(columns)

    # ----- set-up (theta-independent) ---------------------------------------------------------
    def _prepare(self, columns: np.ndarray) -> None:
        h = self.hierarchy
        self.starts = [h.child_starts(level) for level in range(h.n_levels)]
        if h.n_levels == 0:
            self.total_cross = columns.T @ columns
            return
        leaf = h.n_levels - 1
        leaf_cross = cross_products_by_group(columns, h.row_codes[leaf], h.group_counts[leaf])
        leaf_terms = self.levels[leaf]
        self.collapse_leaf = len(leaf_terms.columns) == 1 and self._is_constant_column(columns, leaf_terms.columns[0])
        if not self.collapse_leaf:
            self.leaf_cross = leaf_cross
            return
        z = leaf_terms.columns[0]
        sizes = np.rint(leaf_cross[:, z, z]).astype(np.int64)
        parents = h.parents[leaf]
        # Units: (parent, size) pairs; sorted by parent so each parent's units are contiguous.
        unit_key = parents * np.int64(sizes.max() + 1) + sizes
        unit_codes, unit_keys = _factorize_sorted(unit_key)
        n_units = unit_keys.size
        self.unit_size = (unit_keys % np.int64(sizes.max() + 1)).astype(float)
        self.unit_count = np.bincount(unit_codes, minlength=n_units).astype(float)
        self.unit_parent = unit_keys // np.int64(sizes.max() + 1)
        sums = leaf_cross[:, :, z]  # column sums of each leaf group, (groups, k)
        self.leaf_sums = sums
        self.leaf_sizes = sizes
        outer = np.empty((n_units, self.k, self.k))
        for i in range(self.k):
            for j in range(i, self.k):
                outer[:, i, j] = np.bincount(unit_codes, weights=sums[:, i] * sums[:, j], minlength=n_units)
                outer[:, j, i] = outer[:, i, j]
        self.unit_outer = outer
        if leaf == 0:
            self.leaf_parent_total = leaf_cross.sum(axis=0)[None]
            self.unit_starts = np.zeros(1, dtype=np.int64)
        else:
            self.leaf_parent_total = _reduce_to_parents(leaf_cross, self.starts[leaf])
            self.unit_starts = first_index_of_runs(self.unit_parent)

    @staticmethod
    def _is_constant_column(columns: np.ndarray, index: int) -> bool:
        column = columns[:, index]
        return bool(column.size and np.all(column == 1.0))

    # ----- evaluation --------------------------------------------------------------------------
    def start(self) -> np.ndarray:
        return np.concatenate([lv.covariance.start() for lv in self.levels]) if self.levels else np.zeros(0)

    def bounds(self) -> list[tuple[float | None, None]]:
        return [(lo, None) for lv in self.levels for lo in lv.covariance.lower_bounds()]

    def evaluate(self, theta: np.ndarray, gradient: bool = True, keep: bool = False) -> Evaluation:
        theta = np.asarray(theta, dtype=float)
        h = self.hierarchy
        n_levels = h.n_levels
        logdet = 0.0
        dlogdet = np.zeros(self.n_params)
        childsums: list[np.ndarray] = [None] * n_levels  # type: ignore[list-item]
        if n_levels == 0:
            total, dtotal = self.total_cross, np.zeros((0, self.k, self.k))
        else:
            leaf = n_levels - 1
            if self.collapse_leaf:
                S_sum, dS_sum, ld, dld = self._collapsed_leaf(theta, gradient)
                logdet += ld
                if gradient:
                    dlogdet[self.param_offsets[leaf]:] += dld
                next_level = leaf - 1
                if keep:
                    childsums[leaf] = None
            else:
                S_sum = self.leaf_cross
                dS_sum = np.zeros((0,) + S_sum.shape)
                next_level = leaf
            for level in range(next_level, -1, -1):
                if keep:
                    childsums[level] = S_sum
                S_new, dS_new, ld, dld = self._absorb(level, S_sum, dS_sum, theta, gradient)
                logdet += ld
                if gradient:
                    dlogdet[self.param_offsets[level]:] += dld
                if level > 0:
                    S_sum = _reduce_to_parents(S_new, self.starts[level])
                    dS_sum = _reduce_to_parents(dS_new, self.starts[level], axis=1) if gradient else dS_new
                else:
                    S_sum, dS_sum = S_new.sum(axis=0)[None], (dS_new.sum(axis=1)[:, None] if gradient else dS_new)
            total = S_sum[0]
            dtotal = dS_sum[:, 0] if gradient else None
        return self._profile(total, dtotal, logdet, dlogdet if gradient else None, childsums)

    def _collapsed_leaf(self, theta, gradient):
        leaf = self.hierarchy.n_levels - 1
        t = theta[self.param_offsets[leaf]]
        m = self.unit_size
        denom = 1.0 + t * t * m
        weight = t * t / denom
        S_sum = self.leaf_parent_total - _reduce_to_parents(weight[:, None, None] * self.unit_outer, self.unit_starts)
        logdet = float(np.dot(self.unit_count, np.log(denom)))
        if not gradient:
            return S_sum, None, logdet, None
        dweight = 2.0 * t / denom ** 2
        dS = -_reduce_to_parents(dweight[:, None, None] * self.unit_outer, self.unit_starts)[None]
        dlogdet = np.array([float(np.dot(self.unit_count, 2.0 * t * m / denom))])
        return S_sum, dS, logdet, dlogdet

    def _absorb(self, level, S, dS, theta, gradient):
        """Absorb one level's random effects into each of its groups (Woodbury, determinant lemma)."""
        terms = self.levels[level]
        offset = self.param_offsets[level]
        own = terms.covariance.n_params
        own_theta = theta[offset: offset + own]
        if len(terms.columns) == 1:
            return self._absorb_scalar(terms.columns[0], S, dS, float(own_theta[0]), gradient)
        return self._absorb_block(terms, S, dS, own_theta, gradient)

    @staticmethod
    def _absorb_scalar(z, S, dS, t, gradient):
        s = S[:, :, z]
        sz = s[:, z]
        denom = 1.0 + t * t * sz
        c = t * t / denom
        outer = s[:, :, None] * s[:, None, :]
        S_new = S - c[:, None, None] * outer
        logdet = float(np.sum(np.log(denom)))
        if not gradient:
            return S_new, None, logdet, None
        n_child = dS.shape[0]
        dS_new = np.empty((1 + n_child,) + S.shape)
        dlogdet = np.empty(1 + n_child)
        dS_new[0] = -(2.0 * t / denom ** 2)[:, None, None] * outer
        dlogdet[0] = float(np.sum(2.0 * t * sz / denom))
        for i in range(n_child):
            ds = dS[i, :, :, z]
            dsz = ds[:, z]
            dc = -c * c * dsz
            sym = ds[:, :, None] * s[:, None, :]
            dS_new[1 + i] = dS[i] - dc[:, None, None] * outer - c[:, None, None] * (sym + sym.transpose(0, 2, 1))
            dlogdet[1 + i] = float(np.sum(c * dsz))
        return S_new, dS_new, logdet, dlogdet

    @staticmethod
    def _absorb_block(terms, S, dS, own_theta, gradient):
        z = terms.columns
        cov = terms.covariance
        lam = cov.lambda_of(own_theta)
        q = len(z)
        Sz = S[:, :, z]  # (G, k, q)
        Szz = Sz[:, z, :]  # (G, q, q)
        B = Sz @ lam  # (G, k, q)
        M = np.eye(q) + lam.T @ Szz @ lam
        Minv = np.linalg.inv(M)
        BMinv = B @ Minv
        S_new = S - BMinv @ B.transpose(0, 2, 1)
        sign, logdets = np.linalg.slogdet(M)
        logdet = float(np.sum(logdets))
        if not gradient:
            return S_new, None, logdet, None
        n_own, n_child = cov.n_params, dS.shape[0]
        dS_new = np.empty((n_own + n_child,) + S.shape)
        dlogdet = np.empty(n_own + n_child)

        def propagate(dB, dM, dS_base):
            # d(S - B M^-1 B') = dS - dB M^-1 B' - B M^-1 dB' + B M^-1 dM M^-1 B'
            term = dB @ BMinv.transpose(0, 2, 1)
            out = -term - term.transpose(0, 2, 1) + BMinv @ dM @ BMinv.transpose(0, 2, 1)
            if dS_base is not None:
                out += dS_base
            return out, float(np.sum(np.einsum("gij,gji->g", Minv, dM)))

        for i, basis in enumerate(cov.basis):
            dB = Sz @ basis
            inner = basis.T @ Szz @ lam
            dM = inner + inner.transpose(0, 2, 1)
            dS_new[i], dlogdet[i] = propagate(dB, dM, None)
        for i in range(n_child):
            dSz = dS[i][:, :, z]
            dB = dSz @ lam
            dM = lam.T @ dSz[:, z, :] @ lam
            dS_new[n_own + i], dlogdet[n_own + i] = propagate(dB, dM, dS[i])
        return S_new, dS_new, logdet, dlogdet

    # ----- profiling out beta and sigma --------------------------------------------------------
    def _profile(self, total, dtotal, logdet, dlogdet, childsums) -> Evaluation:
        x, y = self.x_columns, self.y_column
        xtvx = total[np.ix_(x, x)]
        xtvy = total[x, y]
        ytvy = float(total[y, y])
        n, p = self.n, self.p
        if p:
            chol = np.linalg.cholesky(xtvx)
            beta = _chol_solve(chol, xtvy)
            logdet_x = 2.0 * float(np.sum(np.log(np.diag(chol))))
        else:
            beta, logdet_x = np.zeros(0), 0.0
        r2 = ytvy - float(xtvy @ beta)
        dof = n - p if self.reml else n
        deviance = logdet + dof * (1.0 + LOG_2PI + np.log(r2 / dof))
        if self.reml:
            deviance += logdet_x
        gradient = d_r2 = d_logdet_x = None
        if dlogdet is not None:
            d_xx = dtotal[:, x][:, :, x]
            d_xy = dtotal[:, x, y]
            d_yy = dtotal[:, y, y]
            d_r2 = d_yy - 2.0 * d_xy @ beta + np.einsum("i,tij,j->t", beta, d_xx, beta)
            d_logdet_x = np.zeros_like(d_r2)
            if p:
                xx_inv = _chol_solve(chol, np.eye(p))
                d_logdet_x = np.einsum("ij,tji->t", xx_inv, d_xx)
            gradient = dlogdet + dof * d_r2 / r2
            if self.reml:
                gradient = gradient + d_logdet_x
        return Evaluation(float(deviance), gradient, float(logdet), xtvx, xtvy, ytvy, beta, float(r2),
                          logdet_x, dlogdet, d_logdet_x, d_r2, childsums)

    def deviance_at_sigma(self, evaluation: Evaluation, sigma: float) -> float:
        """-2 log L (or -2 log L_R) with sigma given rather than profiled out."""
        n, p = self.n, self.p
        dof = n - p if self.reml else n
        value = evaluation.logdet_v + dof * (LOG_2PI + 2.0 * np.log(sigma)) + evaluation.r2 / sigma ** 2
        if self.reml:
            value += evaluation.logdet_x
        return float(value)

    def gradient_at_sigma(self, evaluation: Evaluation, sigma: float) -> tuple[np.ndarray, float]:
        """Gradient of ``deviance_at_sigma`` in theta (sigma fixed) and in log sigma (theta fixed)."""
        d_theta = evaluation.d_logdet_v + evaluation.d_r2 / sigma ** 2
        if self.reml:
            d_theta = d_theta + evaluation.d_logdet_x
        dof = self.n - self.p if self.reml else self.n
        return d_theta, 2.0 * dof - 2.0 * evaluation.r2 / sigma ** 2


def _chol_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    from scipy.linalg import cho_solve

    return cho_solve((chol, True), rhs)


def _factorize_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    codes, uniques = pd.factorize(keys, sort=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=np.int64)
