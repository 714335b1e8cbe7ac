"""The profiled (restricted) deviance of a nested linear mixed model and its exact gradient.

See docs/engine-derivation.md. Every group carries S = W' V^-1 W over the columns
W = [random-effect columns | fixed-effect columns | outcome] of its rows. Bottom-up, a group sums
its children's S and absorbs its own random effects with the Woodbury identity; the matrix
determinant lemma accumulates log|V|. Derivatives with respect to theta ride along in forward
mode. Leaf groups' cross-products do not depend on theta, so the lowest level is absorbed from
sums formed once, with leaf groups that share a parent and a Z'Z merged (``LeafUnits``): an
evaluation costs O(distinct (parent, Z'Z) pairs) there and O(groups) above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import UserInputError
from engine.mixed.covariance import LevelCovariance, lower_triangular_factor
from engine.mixed.hierarchy import Hierarchy
from engine.mixed.leaf_units import LeafUnits

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
    d_xtvx: np.ndarray | None = None  # d(X'V^-1X)/dtheta, (theta, p, p): small-sample df need it


def packed_cross_products_by_group(columns: np.ndarray, codes: np.ndarray, n_groups: int,
                                   packing: "SymmetricPacking") -> np.ndarray:
    """Per-group W'W, upper triangle only, as (k(k+1)/2, groups): one weighted bincount per entry."""
    out = np.empty((packing.size, n_groups))
    for index, (i, j) in enumerate(zip(packing.rows, packing.cols)):
        out[index] = np.bincount(codes, weights=columns[:, i] * columns[:, j], minlength=n_groups)
    return out


class SymmetricPacking:
    """Store symmetric k x k matrices as their upper triangles (k(k+1)/2 numbers)."""

    def __init__(self, k: int):
        self.k = k
        self.rows, self.cols = np.triu_indices(k)
        self.size = self.rows.size
        self.position = np.empty((k, k), dtype=np.int64)
        self.position[self.rows, self.cols] = np.arange(self.size)
        self.position[self.cols, self.rows] = np.arange(self.size)

    def pack(self, full: np.ndarray) -> np.ndarray:
        return full[..., self.rows, self.cols]

    def unpack(self, packed: np.ndarray) -> np.ndarray:
        return packed[..., self.position]

    def column(self, z: int) -> np.ndarray:
        """Packed positions of column z of the matrix."""
        return self.position[:, z]


class ProfiledCriterion:
    """What every profiled-deviance criterion (nested, crossed) shares: the random-effect terms
    and theta's layout over them, the fixed and outcome columns, lme4's start and bounds, and the
    unit-free measures of each level's Lambda that boundary and singularity checks use."""

    def __init__(self, columns: np.ndarray, levels: list[LevelTerms], x_columns: list[int], y_column: int,
                 reml: bool):
        self.levels = levels
        self.x_columns = list(x_columns)
        self.y_column = y_column
        self.reml = reml
        self.n = columns.shape[0]
        self.p = len(x_columns)
        self.param_offsets = np.cumsum([0] + [lv.covariance.n_params for lv in levels]).tolist()
        self.n_params = self.param_offsets[-1]
        self.column_scale = _root_mean_squares(columns)

    def start(self) -> np.ndarray:
        return np.concatenate([lv.covariance.start() for lv in self.levels]) if self.levels else np.zeros(0)

    def bounds(self) -> list[tuple[float | None, None]]:
        return [(lo, None) for lv in self.levels for lo in lv.covariance.lower_bounds()]

    def effect_scales(self, level: int) -> np.ndarray:
        """Root mean square of each random-effect column of ``level`` (1 for an intercept)."""
        return self.column_scale[self.levels[level].columns]

    def scaled_lambda(self, level: int, theta: np.ndarray) -> np.ndarray:
        """The level's Lambda for its random-effect columns rescaled to unit size (unit-free)."""
        own = np.asarray(theta, dtype=float)[self.param_offsets[level]:self.param_offsets[level + 1]]
        return self.effect_scales(level)[:, None] * self.levels[level].covariance.lambda_of(own)

    def search_lambda(self, level: int, theta: np.ndarray) -> np.ndarray:
        """The level's Lambda in the optimiser's coordinates (here: theta's own, at unit size)."""
        return self.scaled_lambda(level, theta)

    def unit_free_theta_scale(self) -> np.ndarray:
        """Per parameter, the factor that makes theta unit-free: theta_scaled = theta_scale * theta.

        Entry (r, c) of a level's Lambda multiplies the effect on random-effect column r, so it is
        measured in 1 / (units of that column). Multiplying it by the column's root mean square
        gives the same entry for the column rescaled to unit size, a problem that does not
        depend on the units the data came in. A shared (identity) Lambda uses the geometric
        mean of its columns' sizes.
        """
        out = []
        for terms in self.levels:
            sizes = self.column_scale[terms.columns]
            cov = terms.covariance
            for basis in cov.basis:
                rows = np.flatnonzero(basis.any(axis=1))
                out.append(float(np.exp(np.mean(np.log(sizes[rows])))))
        return np.array(out, dtype=float)

    def unit_free_transforms(self, columns: np.ndarray) -> list[np.ndarray | None]:
        """Per level with several random effects and a free Lambda (independent or unstructured),
        T such that Z T are the level's columns at unit size, slopes centred when they share an
        unstructured Lambda with an intercept: [1, (x - mean x) / sd x, ...]. None elsewhere.

        Lambda = T Lambda_c with Lambda_c lower triangular is the same family of covariances
        (centring a slope that has a correlated intercept only reparametrises the model), but the
        optimiser's path in Lambda_c does not depend on the slopes' units or origins, nor do the
        small-sample df computed in these coordinates (``effect_transforms``).
        """
        out: list[np.ndarray | None] = []
        for terms in self.levels:
            cov = terms.covariance
            if cov.q < 2 or cov.kind not in ("independent", "unstructured"):
                out.append(None)
                continue
            z = terms.columns
            transform = np.diag(1.0 / self.column_scale[z])
            ones = [i for i, column in enumerate(z) if self._is_constant_column(columns, column)]
            if cov.kind == "unstructured" and ones == [0]:
                for i in range(1, cov.q):
                    values = columns[:, z[i]]
                    mean = float(values.mean())
                    sd = float(values.std())
                    if not (np.isfinite(sd) and sd > 0):
                        continue
                    transform[:, i] = 0.0
                    transform[0, i] = -mean / sd
                    transform[i, i] = 1.0 / sd
            out.append(transform)
        return out

    @staticmethod
    def _is_constant_column(columns: np.ndarray, index: int) -> bool:
        column = columns[:, index]
        return bool(column.size and np.all(column == 1.0))


class NestedCriterion(ProfiledCriterion):
    """Profiled deviance -2 log L (ML) or -2 log L_R (REML) as a function of theta.

    Groups carry a stack (1 + derivatives, packed k x k, groups): row 0 is S, the others
    dS/dtheta for the parameters of the group's own level and the levels below it, in theta's
    order. Groups run along the last axis so that every entry is one contiguous vector.
    """

    def __init__(self, columns: np.ndarray, hierarchy: Hierarchy, levels: list[LevelTerms],
                 x_columns: list[int], y_column: int, reml: bool):
        super().__init__(columns, levels, x_columns, y_column, reml)
        self.hierarchy = hierarchy
        self.k = columns.shape[1]
        self.packing = SymmetricPacking(self.k)
        self.theta_scale = self.unit_free_theta_scale()
        self.search_transforms = self.unit_free_transforms(columns)
        self.effect_transforms = self.search_transforms
        self._prepare(columns)

    # ----- set-up (theta-independent) ---------------------------------------------------------
    def _prepare(self, columns: np.ndarray) -> None:
        h = self.hierarchy
        # None where every parent has exactly one child: summing over children is then a no-op.
        self.starts = []
        for level in range(h.n_levels):
            starts = h.child_starts(level)
            one_each = level > 0 and starts.size == h.group_counts[level]
            self.starts.append(None if one_each else starts)
        self.leaf_units = None
        if h.n_levels == 0:
            self.total_cross = self.packing.pack(columns.T @ columns)[None, :, None]
            return
        leaf = h.n_levels - 1
        self.leaf_cross = packed_cross_products_by_group(columns, h.row_codes[leaf], h.group_counts[leaf],
                                                         self.packing)
        self.leaf_units = LeafUnits(self.leaf_cross, self.packing, self.levels[leaf].columns, h.parents[leaf],
                                    self.search_transforms[leaf])

    def search_lambda(self, level: int, theta: np.ndarray) -> np.ndarray:
        """The level's Lambda in the optimiser's coordinates: for its columns at unit size (and
        slopes centred, see ``unit_free_transforms``), as a lower-triangular factor. Unit-free."""
        transform = self.search_transforms[level]
        if transform is None:
            return self.scaled_lambda(level, theta)
        own = np.asarray(theta, dtype=float)[self.param_offsets[level]:self.param_offsets[level + 1]]
        lam = self.levels[level].covariance.lambda_of(own)
        return lower_triangular_factor(np.linalg.solve(transform, lam))

    # ----- evaluation --------------------------------------------------------------------------
    def evaluate(self, theta: np.ndarray, gradient: bool = True, keep: bool = False) -> Evaluation:
        theta = np.asarray(theta, dtype=float)
        n_levels = self.hierarchy.n_levels
        logdet = 0.0
        dlogdet = np.zeros(self.n_params)
        childsums: list[np.ndarray] = [None] * n_levels  # type: ignore[list-item]
        if n_levels == 0:
            stack = self.total_cross
        else:
            leaf = n_levels - 1
            if keep:
                childsums[leaf] = self.packing.unpack(self.leaf_cross.T)
            stack, ld, dld = self._absorb_leaf(theta, gradient)
            top = leaf - 1
            logdet += ld
            if gradient:
                dlogdet[self.param_offsets[leaf]:] += dld
            for level in range(top, -1, -1):
                if keep:
                    childsums[level] = self.packing.unpack(stack[0].T)
                stack, ld, dld = self._absorb(level, stack, theta, gradient)
                logdet += ld
                if gradient:
                    dlogdet[self.param_offsets[level]:] += dld
                stack = self._sum_over_parents(stack, level)
        full = self.packing.unpack(stack[:, :, 0])
        dtotal = full[1:] if gradient else None
        return self._profile(full[0], dtotal, logdet, dlogdet if gradient else None, childsums)

    def _sum_over_parents(self, stack: np.ndarray, level: int) -> np.ndarray:
        if level == 0:
            return stack.sum(axis=2, keepdims=True)
        starts = self.starts[level]
        return stack if starts is None else np.add.reduceat(stack, starts, axis=2)

    def _absorb_leaf(self, theta, gradient):
        """The lowest level, absorbed from its theta-independent unit sums (see ``LeafUnits``)."""
        leaf = self.hierarchy.n_levels - 1
        cov = self.levels[leaf].covariance
        own = theta[self.param_offsets[leaf]: self.param_offsets[leaf + 1]]
        return self.leaf_units.absorb(cov.lambda_of(own), cov.basis, gradient)

    def _absorb(self, level, stack, theta, gradient):
        """Absorb one level's random effects into each of its groups (Woodbury, determinant lemma)."""
        terms = self.levels[level]
        offset = self.param_offsets[level]
        own_theta = theta[offset: offset + terms.covariance.n_params]
        if len(terms.columns) == 1:
            return self._absorb_scalar(terms.columns[0], stack, float(own_theta[0]), gradient)
        return self._absorb_block(terms, stack, own_theta, gradient)

    def _absorb_scalar(self, z, stack, t, gradient):
        rows, cols = self.packing.rows, self.packing.cols
        column = stack[:, self.packing.column(z)]  # (D, k, G)
        s = column[0]
        sz = s[z]
        denom = 1.0 + t * t * sz
        c = t * t / denom
        outer = s[rows] * s[cols]  # (npk, G)
        logdet = float(np.sum(np.log(denom)))
        if not gradient:
            return (stack[0] - c * outer)[None], logdet, np.zeros(0)
        n_child = stack.shape[0] - 1
        out = np.empty((stack.shape[0] + 1,) + stack.shape[1:])
        np.multiply(outer, -c, out=out[0])
        out[0] += stack[0]
        np.multiply(outer, -2.0 * t / denom ** 2, out=out[1])
        dlogdet = np.empty(1 + n_child)
        dlogdet[0] = float(np.dot(2.0 * t / denom, sz))
        if n_child:
            ds = column[1:]  # (P, k, G)
            dsz = ds[:, z]  # (P, G)
            sym = ds[:, rows] * s[cols]
            sym += s[rows] * ds[:, cols]
            sym *= -c
            sym += stack[1:]
            sym += (c * c * dsz)[:, None, :] * outer
            out[2:] = sym
            dlogdet[1:] = dsz @ c
        return out, logdet, dlogdet

    def _absorb_block(self, terms, stack, own_theta, gradient):
        """A level with q random effects per group; ``stack`` is (D, packed k x k, G).

        Small dimensions lead and groups trail, so each einsum below runs over contiguous
        vectors of groups. With B = S_.z Lambda, M = I + Lambda' S_zz Lambda and C = B M^-1:
        S_new = S - C B', and d S_new = dS - dB C' - C dB' + C dM C'.
        """
        z = terms.columns
        cov = terms.covariance
        lam = cov.lambda_of(own_theta)
        position = self.packing.position
        rows, cols = self.packing.rows, self.packing.cols
        column_positions = position[:, z]  # (k, q)
        block_positions = position[np.ix_(z, z)]  # (q, q)
        S = stack[0]
        Sz = S[column_positions]  # (k, q, G)
        Szz = S[block_positions]  # (q, q, G)
        B = np.einsum("alg,lj->ajg", Sz, lam)
        M = np.einsum("li,lmg,mj->ijg", lam, Szz, lam) + np.eye(len(z))[:, :, None]
        Minv, logdets = _small_inverse(M)
        C = np.einsum("aig,ijg->ajg", B, Minv)
        logdet = float(np.sum(logdets))
        S_new = S - np.einsum("pjg,pjg->pg", C[rows], B[cols])
        if not gradient:
            return S_new[None], logdet, np.zeros(0)
        n_own, n_child = cov.n_params, stack.shape[0] - 1
        out = np.empty((1 + n_own + n_child,) + S.shape)
        out[0] = S_new
        dlogdet = np.empty(n_own + n_child)
        C_rows, C_cols = C[rows], C[cols]

        def change(dB, dM):
            value = np.einsum("pig,ijg,pjg->pg", C_rows, dM, C_cols)
            value -= np.einsum("pjg,pjg->pg", dB[rows], C_cols)
            value -= np.einsum("pjg,pjg->pg", C_rows, dB[cols])
            return value, float(np.einsum("ijg,jig->", Minv, dM))

        for i, basis in enumerate(cov.basis):
            inner = np.einsum("li,lmg,mj->ijg", basis, Szz, lam)
            out[1 + i], dlogdet[i] = change(np.einsum("alg,lj->ajg", Sz, basis), inner + inner.transpose(1, 0, 2))
        for i in range(n_child):
            dS = stack[1 + i]
            dB = np.einsum("alg,lj->ajg", dS[column_positions], lam)
            dM = np.einsum("li,lmg,mj->ijg", lam, dS[block_positions], lam)
            value, dlogdet[n_own + i] = change(dB, dM)
            out[1 + n_own + i] = dS + value
        return out, logdet, dlogdet

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
        if not r2 > 1e-12 * max(ytvy, 1e-300):
            raise UserInputError("the fixed effects reproduce the outcome exactly: no residual variation is "
                                 "left to split between the levels")
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
                          logdet_x, dlogdet, d_logdet_x, d_r2, childsums,
                          d_xtvx=None if dlogdet is None else d_xx)

    def gradient_at_sigma(self, evaluation: Evaluation, sigma: float) -> tuple[np.ndarray, float]:
        """Gradient of -2 log L with sigma given, not profiled out, in theta (sigma fixed) and in log
        sigma (theta fixed). ML: log|V| + n log(2 pi sigma^2) + r2 / sigma^2; REML adds
        log|X'V^-1X| and has n - p for n."""
        d_theta = evaluation.d_logdet_v + evaluation.d_r2 / sigma ** 2
        if self.reml:
            d_theta = d_theta + evaluation.d_logdet_x
        dof = self.n - self.p if self.reml else self.n
        return d_theta, 2.0 * dof - 2.0 * evaluation.r2 / sigma ** 2


def _root_mean_squares(columns: np.ndarray) -> np.ndarray:
    """sqrt(mean(column^2)) of each column, 1 where that is 0 or not finite."""
    if columns.shape[0] == 0:
        return np.ones(columns.shape[1])
    with np.errstate(over="ignore"):
        rms = np.sqrt(np.einsum("ij,ij->j", columns, columns) / columns.shape[0])
    if not np.all(np.isfinite(rms)):  # squares overflowed: scale each column by its largest value first
        largest = np.max(np.abs(columns), axis=0)
        largest = np.where(np.isfinite(largest) & (largest > 0), largest, 1.0)
        unit = columns / largest
        rms = largest * np.sqrt(np.einsum("ij,ij->j", unit, unit) / columns.shape[0])
    return np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)


def _small_inverse(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of q x q matrices stacked as (q, q, groups)."""
    if M.shape[0] == 2:
        det = M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]
        inverse = np.stack([np.stack([M[1, 1], -M[0, 1]]), np.stack([-M[1, 0], M[0, 0]])]) / det
        return inverse, np.log(det)
    moved = np.moveaxis(M, 2, 0)
    _, logdets = np.linalg.slogdet(moved)
    return np.moveaxis(np.linalg.inv(moved), 0, 2), logdets


def _chol_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    from scipy.linalg import cho_solve

    return cho_solve((chol, True), rhs)
