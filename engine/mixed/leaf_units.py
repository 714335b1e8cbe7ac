"""The lowest level's groups absorbed from theta-independent sums, merged where they share Z'Z.

A leaf group g with random-effect columns z contributes to its parent's sum of children

    S_g - S_g.z P_g S_g.z',   P = Lambda M^-1 Lambda',   M = I + Lambda' A Lambda,   A = S_g.zz

(Woodbury; the determinant lemma adds log|M|). ``S_g`` is the group's plain cross-product
W_g'W_g, so only P depends on theta, and P depends on the group only through A. Groups with the
same parent and the same A (e.g. students measured at the same occasions) form one unit, and

    sum over the unit of S_g.z P S_g.z' = sum_{l <= m} P_lm Q_lm,
    Q_lm = sum over the unit of (S_g.l S_g.m' + S_g.m S_g.l')   (l < m; S_g.l S_g.l' for l = m)

with Q formed once, before the fit. An evaluation then costs a q x q matrix function per distinct
A (closed form for q = 1 and 2) and q(q+1)/2 weighted sums per unit and entry of S: no pass over
the leaf groups. Derivatives, with dLambda = E (a basis matrix of Lambda) and C = Lambda M^-1:

    dP = F + F',   F = (I - P A) E C',        d log|M| = 2 <E, A C>   (sum of entrywise products)

A random-intercept leaf is the case q = 1: A is the group's size and P = t^2 / (1 + t^2 m).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.mixed.hierarchy import first_index_of_runs


PATTERN_BLOCK = 4096  # patterns per block of the closed-form weights


class LeafUnits:
    """Theta-independent sums of the lowest level's groups, merged by (parent, Z'Z).

    Parameters
    ----------
    leaf_cross : (k(k+1)/2, groups) packed W_g'W_g of every leaf group.
    packing : the packing of k x k matrices (``SymmetricPacking``) used by ``leaf_cross``.
    z : positions of the leaf level's random-effect columns in W.
    parents : (groups,) the parent of each leaf group, sorted (all zeros under the root).
    transform : T (q x q) with Z T well-conditioned columns (slopes centred and scaled), or None.
        Everything is held for the columns Z T and Lambda is taken to T^-1 Lambda: a slope far
        from zero (a calendar year) would otherwise make P's entries huge and cancel in the sums.

    P and its derivatives are computed once per distinct Z'Z (a pattern: e.g. the set of occasions
    a student was measured at), and the sums over units are one product with a sparse matrix that
    holds Q: row (entry of S, parent), column (entry of P, pattern). With one random effect
    (q = 1) Q is kept per unit instead and weighted unit by unit.
    """

    def __init__(self, leaf_cross: np.ndarray, packing, z: list[int], parents: np.ndarray,
                 transform: np.ndarray | None = None):
        from scipy import sparse

        from engine.mixed.criterion import SymmetricPacking  # one packing convention for both

        q = len(z)
        self.q = q
        self.q_packing = SymmetricPacking(q)
        qr, qc = self.q_packing.rows, self.q_packing.cols
        z = np.asarray(z)
        self.transform = np.eye(q) if transform is None else np.asarray(transform, dtype=float)
        self.inverse_transform = np.linalg.inv(self.transform)
        # The columns S_g.z T, (k, q, groups), and A = T'Z'Z T of each group, packed (q(q+1)/2, groups).
        sz = leaf_cross[packing.position[:, z]]
        if transform is not None:
            sz = np.einsum("kqg,qr->krg", sz, self.transform)
        a_groups = np.einsum("lm,mrg->lrg", self.transform.T, sz[z])[qr, qc]
        pattern, n_patterns = _pattern_codes(a_groups)
        self.pattern_count = np.bincount(pattern, minlength=n_patterns).astype(float)
        first = np.empty(n_patterns, dtype=np.int64)
        first[pattern[::-1]] = np.arange(pattern.size - 1, -1, -1)
        self.a = np.ascontiguousarray(a_groups[:, first])  # (q-packed, patterns)
        self.n_parents = int(parents[-1]) + 1 if parents.size else 1
        # One unit per (parent, pattern) pair; Q summed over each unit's groups.
        unit_codes, unit_keys = pd.factorize(parents.astype(np.int64) * np.int64(n_patterns) + pattern, sort=True)
        unit_parent, unit_pattern = np.divmod(np.asarray(unit_keys, dtype=np.int64), np.int64(n_patterns))
        n_units = unit_keys.size
        self.n_units = n_units
        n_q, n_k = self.q_packing.size, packing.size
        rows, cols = packing.rows, packing.cols
        values = np.empty((n_q, n_k, n_units))
        for index, (l, m) in enumerate(zip(qr, qc)):
            for entry in range(n_k):
                product = sz[rows[entry], l] * sz[cols[entry], m]
                if l != m:
                    product = product + sz[rows[entry], m] * sz[cols[entry], l]
                values[index, entry] = np.bincount(unit_codes, weights=product, minlength=n_units)
        if n_q == 1:
            # One weight per unit: weighting Q unit by unit and summing runs of units is cheaper
            # than the sparse product (and gives the parents' sums contiguous).
            self.q_matrix = None
            self.unit_products = values[0]
            self.unit_pattern = unit_pattern
            unit_starts = first_index_of_runs(unit_parent)
            self.unit_starts = None if unit_starts.size == n_units else unit_starts
        else:
            matrix_rows = np.arange(n_k)[None, :, None] * self.n_parents + unit_parent[None, None, :]
            matrix_cols = np.arange(n_q)[:, None, None] * n_patterns + unit_pattern[None, None, :]
            self.q_matrix = sparse.csr_matrix(
                (values.ravel(), (np.broadcast_to(matrix_rows, values.shape).ravel(),
                                  np.broadcast_to(matrix_cols, values.shape).ravel())),
                shape=(n_k * self.n_parents, n_q * n_patterns))
        self.parent_total = np.add.reduceat(leaf_cross, first_index_of_runs(parents), axis=1)

    def absorb(self, lam: np.ndarray, basis: list[np.ndarray], gradient: bool):
        """The parents' sums of absorbed children at Lambda = ``lam``.

        Returns the stack (1 [+ len(basis)], packed k x k, parents): the sums, then their
        derivatives along each basis matrix of Lambda; log|M| summed over the leaf groups; and
        its derivatives (len(basis),) (empty without ``gradient``).
        """
        weigh = _weights_scalar if self.q == 1 else _weights_pair if self.q == 2 else _weights_general
        lam = self.inverse_transform @ lam
        basis = [self.inverse_transform @ e for e in basis] if gradient else []
        depth = 1 + len(basis)
        n_patterns = self.pattern_count.size
        # Negated weights (the sums are subtracted from the parents' totals), laid out as the
        # sparse product's right-hand side: (q-packed, patterns, D).
        weights = np.empty((self.q_packing.size, n_patterns, depth))
        logdet, dlogdet = 0.0, np.zeros(len(basis))
        # In blocks of patterns: with many (times that differ between students) the temporaries
        # of the closed forms then stay small and in cache.
        for start in range(0, n_patterns, PATTERN_BLOCK):
            block = slice(start, start + PATTERN_BLOCK)
            p, dp, block_logdet, block_dlogdet = weigh(lam, basis, self.a[:, block], self.q_packing)
            np.negative(p, out=weights[:, block, 0])
            if basis:
                np.negative(np.moveaxis(dp, 0, -1), out=weights[:, block, 1:])
                dlogdet += block_dlogdet @ self.pattern_count[block]
            logdet += float(block_logdet @ self.pattern_count[block])
        if self.q_matrix is None:
            out = np.empty((depth,) + self.unit_products.shape)
            for row, weight in zip(out, weights[0].T):
                # One pattern (a balanced design): a scalar weight, no gather.
                np.multiply(self.unit_products, weight[0] if weight.size == 1 else weight.take(self.unit_pattern),
                            out=row)
            if self.unit_starts is not None:
                out = np.add.reduceat(out, self.unit_starts, axis=2)
        else:
            summed = self.q_matrix @ weights.reshape(-1, depth)  # (entries x parents, D)
            out = np.ascontiguousarray(summed.reshape(-1, self.n_parents, depth).transpose(2, 0, 1))
        out[0] += self.parent_total
        return out, logdet, (dlogdet if gradient else np.zeros(0))


def _pattern_codes(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0.. of the distinct columns of ``keys`` (bitwise-equal numbers only: no tolerance),
    and how many there are."""
    pattern = np.zeros(keys.shape[1], dtype=np.int64)
    n_patterns = 1
    for row in keys:
        codes, uniques = pd.factorize(row)
        pattern, patterns = pd.factorize(pattern * np.int64(len(uniques)) + codes)
        n_patterns = len(patterns)
    return pattern.astype(np.int64, copy=False), n_patterns


def _weights_scalar(lam, basis, a, _packing):
    """q = 1: M = 1 + t^2 a, P = t^2 / M; along a basis value e: dP = 2 e t / M^2, d log M = 2 e t a / M."""
    t = float(lam[0, 0])
    m = 1.0 + t * t * a[0]
    p = (t * t / m)[None]
    logdet = np.log(m)
    if not basis:
        return p, None, logdet, None
    e = np.array([float(b[0, 0]) for b in basis])
    dp = (2.0 * t / (m * m))[None, None, :] * e[:, None, None]
    dlogdet = e[:, None] * (2.0 * t * a[0] / m)[None, :]
    return p, dp, logdet, dlogdet


def _weights_pair(lam, basis, a, _packing):
    """q = 2 in closed form, entry by entry, each entry a vector over patterns."""
    (l00, l01), (l10, l11) = lam.tolist()
    a0, a1, a2 = a  # A = [[a0, a1], [a1, a2]]
    b00, b01 = a0 * l00 + a1 * l10, a0 * l01 + a1 * l11  # B = A Lambda
    b10, b11 = a1 * l00 + a2 * l10, a1 * l01 + a2 * l11
    m00 = 1.0 + l00 * b00 + l10 * b10  # M = I + Lambda' B
    m01 = l00 * b01 + l10 * b11
    m11 = 1.0 + l01 * b01 + l11 * b11
    det = m00 * m11 - m01 * m01
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det  # M^-1
    c00, c01 = l00 * i00 + l01 * i01, l00 * i01 + l01 * i11  # C = Lambda M^-1
    c10, c11 = l10 * i00 + l11 * i01, l10 * i01 + l11 * i11
    p00, p01, p11 = c00 * l00 + c01 * l01, c00 * l10 + c01 * l11, c10 * l10 + c11 * l11  # P = C Lambda'
    p = np.stack([p00, p01, p11])
    logdet = np.log(det)
    if not basis:
        return p, None, logdet, None
    ac = (a0 * c00 + a1 * c10, a0 * c01 + a1 * c11, a1 * c00 + a2 * c10, a1 * c01 + a2 * c11)  # A C
    n00, n01 = 1.0 - (p00 * a0 + p01 * a1), -(p00 * a1 + p01 * a2)  # N = I - P A
    n10, n11 = -(p01 * a0 + p11 * a1), 1.0 - (p01 * a1 + p11 * a2)
    dp = np.empty((len(basis), 3, det.size))
    dlogdet = np.empty((len(basis), det.size))
    for index, e in enumerate(basis):
        (e00, e01), (e10, e11) = e.tolist()
        g00, g01 = e00 * c00 + e01 * c01, e00 * c10 + e01 * c11  # E C'
        g10, g11 = e10 * c00 + e11 * c01, e10 * c10 + e11 * c11
        f01 = n00 * g01 + n01 * g11  # F = N E C'
        f10 = n10 * g00 + n11 * g10
        dp[index, 0] = 2.0 * (n00 * g00 + n01 * g10)
        dp[index, 1] = f01 + f10
        dp[index, 2] = 2.0 * (n10 * g01 + n11 * g11)
        dlogdet[index] = 2.0 * (e00 * ac[0] + e01 * ac[1] + e10 * ac[2] + e11 * ac[3])
    return p, dp, logdet, dlogdet


def _weights_general(lam, basis, a, packing):
    """Any q: the same formulas on (patterns, q, q) stacks."""
    A = packing.unpack(a.T)  # (patterns, q, q)
    q = lam.shape[0]
    M = np.eye(q) + lam.T @ A @ lam
    _, logdet = np.linalg.slogdet(M)  # M is positive definite
    inverse = np.linalg.inv(M)
    C = lam @ inverse
    P = C @ lam.T
    p = packing.pack(P).T.copy()
    if not basis:
        return p, None, logdet, None
    N = np.eye(q) - P @ A
    AC = A @ C
    Ct = np.swapaxes(C, 1, 2)
    dp = np.empty((len(basis), packing.size, A.shape[0]))
    dlogdet = np.empty((len(basis), A.shape[0]))
    for index, e in enumerate(basis):
        F = N @ (e @ Ct)
        dp[index] = packing.pack(F + np.swapaxes(F, 1, 2)).T
        dlogdet[index] = 2.0 * np.einsum("rc,urc->u", e, AC)
    return p, dp, logdet, dlogdet
