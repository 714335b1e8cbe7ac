"""The crossed criterion and its exact gradient with a scalar first factor absorbed analytically.

When the first (largest) factor has one random effect per group and every Lambda is diagonal, its
block of M is diagonal: m_g = 1 + d^2 a_g with d its theta and a_g = Z1g'Z1g. Everything the
other factors see of it is a sum over groups weighted by w_g = 1 / m_g (MixedModels.jl eliminates
this block the same way). w_g depends on the group only through a_g, so groups with equal a_g (for
an intercept: equal group sizes, often a handful of values) are summed once, at set-up:

  S      = Lambda2 (A22 - d^2 sum_c w_c G_c) Lambda2 + I    G_c = sum_{g in c} A21[:, g] A21[:, g]'
  S_W    = Lambda2 (Z2'W - d^2 sum_c w_c R_c)               R_c = sum_{g in c} A21[:, g] (Z1g'W)
  W'W - C1'C1 = W'W - d^2 sum_c w_c Q_c                     Q_c = sum_{g in c} (Z1g'W)'(Z1g'W)
  log|M11| = sum_c n_c log(1 + d^2 a_c)

so an evaluation costs the factorisation of S (the other factors' block) and a few products of
length (S's pattern) x (classes), nothing per row or per group of the first factor. The
gradient's pieces for the first factor follow from the same sums with weights w_c^2 (see
``AbsorbedFirstFactor.evaluate``); those of the other factors are gradient.py's.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

MAX_DENSE_CLASS_ENTRIES = 5_000_000  # (pattern entries) x (classes) held densely up to this (40 MB)


class AbsorbedFirstFactor:
    """Theta-independent sums over the first factor's groups, by class of equal a_g.

    Parameters
    ----------
    pattern : the criterion's ``_SchurPattern`` (S's pattern and the pairs of entries in one
        column of A21).
    a21 : Z2'Z1, the other factors' cross-products with the first factor's groups.
    a_groups : (groups,) a_g = Z1g'Z1g, the first factor's diagonal of Z'Z.
    ztw1 : (groups, p + 1) Z1g'W for W = [X y].
    """

    def __init__(self, pattern, a21: sp.csr_matrix, a_groups: np.ndarray, ztw1: np.ndarray):
        self.pattern = pattern
        values, group_class, counts = np.unique(a_groups, return_inverse=True, return_counts=True)
        self.a = values
        self.counts = counts.astype(float)
        n_classes = values.size
        width = ztw1.shape[1]
        self.width = width
        # G: the full symmetric pattern values of sum_{g in c} a_g a_g', one column per class.
        upper = self._class_matrix(pattern.pair_position, group_class[pattern.pair_group], pattern.pair_product,
                                   pattern.nnz, n_classes)  # filled where row <= column
        source = np.where(pattern.strictly_lower, pattern.mirror, np.arange(pattern.nnz))
        self.g = upper[source]
        # R: sum_{g in c} A21[:, g] (Z1g'W), as (others * width) x classes.
        coo = a21.tocoo()
        rows = (coo.row[:, None] * width + np.arange(width)[None, :]).ravel()
        entries = (coo.data[:, None] * ztw1[coo.col]).ravel()
        self.r = self._class_matrix(rows, np.repeat(group_class[coo.col], width), entries,
                                    a21.shape[0] * width, n_classes)
        # Q: sum_{g in c} (Z1g'W)'(Z1g'W), as width^2 x classes (dense: small).
        outer = (ztw1[:, :, None] * ztw1[:, None, :]).reshape(-1, width * width)
        self.q = np.zeros((width * width, n_classes))
        for k in range(width * width):
            self.q[k] = np.bincount(group_class, weights=outer[:, k], minlength=n_classes)

    @staticmethod
    def _class_matrix(rows, classes, values, n_rows, n_classes):
        """sum of ``values`` at (row, class): dense when small, else a CSR matrix."""
        if n_rows * n_classes <= MAX_DENSE_CLASS_ENTRIES and n_classes <= 64:
            return np.bincount(classes * np.int64(n_rows) + rows, weights=values,
                               minlength=n_rows * n_classes).reshape(n_classes, n_rows).T.copy()
        return sp.csr_matrix((values, (rows, classes)), shape=(n_rows, n_classes))

    def weights(self, d: float) -> np.ndarray:
        """w_c = 1 / (1 + d^2 a_c), the inverse of the first factor's block of M by class."""
        return 1.0 / (1.0 + d * d * self.a)

    def logdet(self, d: float) -> float:
        return float(self.counts @ np.log1p(d * d * self.a))

    def schur_values(self, d: float, w: np.ndarray, scale: np.ndarray) -> sp.csc_matrix:
        """S = diag(scale) (A22 - d^2 sum_c w_c G_c) diag(scale) + I on the pattern, as CSC."""
        pattern = self.pattern
        values = -(d * d) * (self.g @ w)
        values[pattern.a22_position] += pattern.a22_data
        values *= scale[pattern.rows] * scale[pattern.cols]
        values[pattern.diagonal_position] += 1.0
        return sp.csc_matrix((values, pattern.indices, pattern.indptr), shape=(pattern.size, pattern.size))

    def others_w(self, d: float, w: np.ndarray, ztw2: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """S_W = diag(scale) (Z2'W - d^2 sum_c w_c R_c)."""
        return scale[:, None] * (ztw2 - (d * d) * (self.r @ w).reshape(-1, self.width))

    def w_part(self, d: float, w: np.ndarray, wtw: np.ndarray) -> np.ndarray:
        """W'W - C1'C1 with C1 = L1^-1 Lambda1' Z1'W."""
        return wtw - (d * d) * (self.q @ w).reshape(self.width, self.width)

    def first_factor_pieces(self, d: float, w: np.ndarray, scale: np.ndarray, h_rest: np.ndarray,
                            inverse) -> tuple[float, np.ndarray]:
        """tr(E1 M^-1) and H1'H1 (width x width) for the first factor's parameter d.

        With v = Lambda2 H2 and t_g = A21[:, g]' v, the first factor's rows of H = M^-1 Lambda'Z'W
        are h_g = d w_g (Z1g'W - t_g), and its diagonal of M^-1 is w_g (1 + d^2 w_g a_g' Lambda2
        S^-1 Lambda2 a_g) (L1^-T (I + B'S^-1 B) L1^-1, B = Lambda2 A21 Lambda1 L1^-1)."""
        pattern = self.pattern
        w2 = w * w
        g_w2 = self.g @ w2  # sum_g w_g^2 a_g a_g' on the pattern
        scaled = g_w2 * scale[pattern.rows] * scale[pattern.cols]
        trace = float(self.counts @ w) + d * d * float(scaled @ inverse.entries(pattern.rows, pattern.cols))
        v = scale[:, None] * h_rest
        cross = (self.r @ w2).reshape(-1, self.width).T @ v  # sum_g w_g^2 (Z1g'W)' t_g
        gram = sp.csc_matrix((g_w2, pattern.indices, pattern.indptr), shape=(pattern.size, pattern.size))
        h1h1 = (self.q @ w2).reshape(self.width, self.width) - cross - cross.T + v.T @ (gram @ v)
        return trace, (d * d) * h1h1
