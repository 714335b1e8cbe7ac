"""Exact gradient of the crossed criterion when every Lambda is diagonal (intercepts, independent
slopes): Lambda = sum_k theta_k E_k with E_k selecting the effects that parameter k scales.

With V = I + Z Lambda Lambda' Z', H = M^-1 Lambda' Z' W = Lambda Z' V^-1 W and dV/dtheta_k =
2 theta_k Z E_k Z':
  d log|V|      = 2 (n_k - tr(E_k M^-1)) / theta_k      (because Lambda Z'V^-1 Z Lambda = I - M^-1)
  d r2          = -2 |E_k H w|^2 / theta_k                 (w = [-beta, 1]; r = V^-1 (y - X beta))
  d X'V^-1 X    = -2 (E_k H_X)'(E_k H_X) / theta_k
and at theta_k = 0 every term vanishes (the deviance is even in theta_k). tr(E_k M^-1) needs the
diagonal of M^-1: for the other factors that of S^-1, for the first factor
L1^-T (I + B' S^-1 B) L1^-1 per group (see predict.py).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp



def _solve_h(criterion, blocks):
    """H = M^-1 Lambda'Z'W by blocks: the first factor's rows per group (groups, q1, p+1), the other
    factors' rows (S^-1 S_W), and S's factorisation (None without other factors)."""
    width = criterion.p + 1
    c = blocks.c1
    h_rest = np.zeros((0, width))
    inverse = None
    if criterion.n_rest:
        h_rest = blocks.solve_rest(blocks.s_rw)
        c = c - (blocks.b_rest.T @ h_rest).reshape(criterion.n1, criterion.q1, width)
        inverse = blocks.solve_rest.inverse()
    return np.einsum("gji,gjk->gik", blocks.inv1, c), h_rest, inverse


def analytic_gradient(criterion, theta: np.ndarray, evaluation, blocks) -> np.ndarray | None:
    """d deviance / d theta, or None when the inverse it needs would be too large to form."""
    if not criterion.can_select_inverse(blocks):
        return None
    split = criterion.split
    h_first, h_rest, inverse = _solve_h(criterion, blocks)
    h = np.vstack([h_first.reshape(split, h_rest.shape[1]), h_rest])
    w = np.append(-evaluation.beta, 1.0)
    hw = h @ w
    p = criterion.p
    h_x = h[:, :p]
    n_params = theta.size
    d_logdet = np.zeros(n_params)
    d_r2 = np.zeros(n_params)
    d_xx = np.zeros((n_params, p, p))
    first = criterion.order[0]
    columns_of = criterion.columns_of_parameters()
    k = 0
    for index, terms in enumerate(criterion.levels):
        for basis in terms.covariance.basis:
            columns, t = columns_of[k], theta[k]
            if t != 0.0:
                if index == first:
                    trace = _first_factor_trace(criterion, blocks, inverse, np.flatnonzero(np.diag(basis)))
                else:
                    trace = float(inverse.diagonal()[columns - split].sum())
                d_logdet[k] = 2.0 * (columns.size - trace) / t
                d_r2[k] = -2.0 * float(hw[columns] @ hw[columns]) / t
                d_xx[k] = -2.0 * h_x[columns].T @ h_x[columns] / t
            k += 1
    return _assemble(criterion, evaluation, d_logdet, d_r2, d_xx)


def _assemble(criterion, evaluation, d_logdet, d_r2, d_xx) -> np.ndarray:
    """The deviance's gradient from those of log|V|, r2 and X'V^-1X; the pieces are kept on
    ``evaluation`` for the likelihood at a given sigma."""
    p = criterion.p
    dof = criterion.n - p if criterion.reml else criterion.n
    gradient = d_logdet + dof * d_r2 / evaluation.r2
    d_logdet_x = np.zeros(d_logdet.size)
    if p:
        xx_inv = np.linalg.inv(evaluation.xtvx)
        d_logdet_x = np.einsum("ij,tji->t", xx_inv, d_xx)
    if criterion.reml:
        gradient = gradient + d_logdet_x
    evaluation.d_logdet_v, evaluation.d_r2, evaluation.d_logdet_x = d_logdet, d_r2, d_logdet_x
    evaluation.d_xtvx = d_xx
    return gradient


def absorbed_gradient(criterion, theta: np.ndarray, evaluation, d: float, w: np.ndarray, scale: np.ndarray,
                      h_rest: np.ndarray, factor) -> np.ndarray:
    """``analytic_gradient`` when the scalar first factor is absorbed (absorbed.py): the first
    factor's trace and rows of H come from its sums by class, the others' from S.

    Parameters
    ----------
    criterion : the ``CrossedCriterion`` (with ``absorbed`` set).
    theta : the parameters evaluated.
    evaluation : the evaluation at ``theta``; its gradient pieces are filled in.
    d, w, scale : the first factor's theta, its weights by class and Lambda2's diagonal.
    h_rest : S^-1 S_W, the other factors' rows of H = M^-1 Lambda'Z'W.
    factor : S's factorisation, with ``inverse()``.

    Returns
    -------
    The gradient of the deviance in theta.
    """
    p, split = criterion.p, criterion.split
    inverse = factor.inverse()
    n_params = theta.size
    d_logdet, d_r2 = np.zeros(n_params), np.zeros(n_params)
    d_xx = np.zeros((n_params, p, p))
    w_vec = np.append(-evaluation.beta, 1.0)
    first = criterion.order[0]
    columns_of = criterion.columns_of_parameters()
    diagonal = None
    k = 0
    for index, terms in enumerate(criterion.levels):
        for _ in terms.covariance.basis:
            columns, t = columns_of[k], theta[k]
            if t != 0.0:
                if index == first:
                    trace, gram = criterion.absorbed.first_factor_pieces(d, w, scale, h_rest, inverse)
                else:
                    if diagonal is None:
                        diagonal = inverse.diagonal()
                    own = h_rest[columns - split]
                    trace, gram = float(diagonal[columns - split].sum()), own.T @ own
                d_logdet[k] = 2.0 * (columns.size - trace) / t
                d_r2[k] = -2.0 * float(w_vec @ gram @ w_vec) / t
                d_xx[k] = -2.0 * gram[:p, :p] / t
            k += 1
    return _assemble(criterion, evaluation, d_logdet, d_r2, d_xx)


def _block_diagonal(weights: np.ndarray) -> sp.csr_matrix:
    """The sparse block-diagonal matrix of per-group q x q blocks ``weights`` (groups, q, q)."""
    groups, q, _ = weights.shape
    rows = (np.arange(groups)[:, None, None] * q + np.arange(q)[None, :, None]).repeat(q, axis=2)
    cols = (np.arange(groups)[:, None, None] * q + np.arange(q)[None, None, :]).repeat(q, axis=1)
    return sp.csr_matrix((weights.ravel(), (rows.ravel(), cols.ravel())), shape=(groups * q, groups * q))


def _first_factor_trace(criterion, blocks, inverse, own: np.ndarray) -> float:
    """sum over groups and the effects in ``own`` of diag(M^-1) for the first factor:
    sum_g tr(W_g) + tr(S^-1 B W B') with W_g = L1g^-T[:, own] (L1g^-T[:, own])'."""
    selected = blocks.inv1[:, :, own]  # (groups, q1, own): rows of L1^-1 = columns of L1^-T
    weights = np.einsum("gai,gbi->gab", selected, selected)
    trace = float(np.einsum("gaa->", weights))
    if inverse is None:
        return trace
    q1 = criterion.q1
    pattern = criterion.pattern
    if pattern is not None:  # B diag(w) B' on the Schur complement's pattern, B = Lambda2 A21 Lambda1 L1^-T
        d1 = blocks.lam1[0, 0]
        values = pattern.weighted_sum(d1 ** 2 * blocks.inv1[:, 0, 0] ** 2 * weights[:, 0, 0])
        values *= blocks.rest_lambda[pattern.rows] * blocks.rest_lambda[pattern.cols]
        return trace + float(values @ inverse.entries(pattern.rows, pattern.cols))
    b = blocks.b_rest
    if q1 == 1:
        product = (b.multiply(weights[:, 0, 0][None, :]) @ b.T).tocoo()
    else:
        product = (b @ _block_diagonal(weights) @ b.T).tocoo()
    return trace + float(product.data @ inverse.entries(product.row, product.col))


# ----- any block-diagonal Lambda (correlated slopes, exchangeable blocks) -----------------------
SINGULAR_LAMBDA = 1e-6  # an unstructured Lambda with a diagonal entry this small (relative) is left to differences


def general_gradient(criterion, theta: np.ndarray, evaluation, blocks) -> np.ndarray | None:
    """d deviance / d theta for any block-diagonal Lambda = sum_k theta_k D_k, D_k = I (x) E_k on
    its level's groups; None when the inverse it needs is unaffordable or an unstructured Lambda
    is singular (then the caller takes differences).

    With A = Z'Z, H = M^-1 Lambda'Z'W and R = Z'V^-1 W = Z'W - A Lambda H (Woodbury):
      d log|V|     = 2 tr(M^-1 Lambda' A D_k) = 2 sum_g tr((I - M^-1_gg) Lambda_i^-1 E_k)
                     (M^-1 Lambda'A = (I - M^-1) Lambda^-1, both block diagonal by group)
      d W'V^-1 W   = -(R' D_k H + H' D_k' R)
    so only the groups' diagonal blocks M^-1_gg of M^-1 are needed: for the first factor
    L1^-T (I + B'S^-1 B) L1^-1, for the others S^-1's own blocks. For identity, independent and
    exchangeable blocks Lambda E_k = theta_k E_k, so Lambda^-1 E_k = E_k / theta_k, and at
    theta_k = 0 the term vanishes (the deviance is even in theta_k), as in ``analytic_gradient``.
    """
    if criterion.n_rest and not criterion.can_select_inverse(blocks):
        return None
    lambdas = criterion._level_lambdas(theta)
    solved = []  # per level: Lambda_i^-1 E_k for each of its parameters
    k = 0
    for index, terms in enumerate(criterion.levels):
        lam = lambdas[index]
        unstructured = terms.covariance.kind == "unstructured" and lam.shape[0] > 1
        if unstructured:
            diagonal = np.abs(np.diag(lam))
            if diagonal.min() <= SINGULAR_LAMBDA * max(1.0, float(np.abs(lam).max())):
                return None
            lam_inv = np.linalg.inv(lam)
        own = []
        for basis in terms.covariance.basis:
            if unstructured:
                own.append(lam_inv @ basis)
            else:
                own.append(basis / theta[k] if theta[k] != 0.0 else None)  # None: every term vanishes
            k += 1
        solved.append(own)

    split = criterion.split
    h_first, h_rest, inverse = _solve_h(criterion, blocks)  # h_first: (groups, q1, p+1)
    width = h_rest.shape[1]
    # R = Z'W - A Lambda H, by the blocks of A = [[A11, A12], [A21, A22]].
    lh_first = np.einsum("ij,gjk->gik", blocks.lam1, h_first)
    lh_rest = blocks.rest_lambda @ h_rest if criterion.n_rest else h_rest
    lh_first_flat = lh_first.reshape(split, width)
    r_first = criterion.ztw[:split] - np.einsum("gij,gjk->gik", criterion.a11_blocks, lh_first).reshape(split, width)
    r_rest = criterion.ztw[split:].copy()
    if criterion.n_rest:
        r_first = r_first - criterion.a21.T @ lh_rest
        r_rest = r_rest - criterion.a21 @ lh_first_flat - criterion.a22 @ lh_rest
    h = np.vstack([h_first.reshape(split, width), h_rest])
    r = np.vstack([r_first, r_rest])
    w = np.append(-evaluation.beta, 1.0)
    p = criterion.p
    n_params = theta.size
    d_logdet, d_r2 = np.zeros(n_params), np.zeros(n_params)
    d_xx = np.zeros((n_params, p, p))
    first = criterion.order[0]
    k = 0
    for index, terms in enumerate(criterion.levels):
        position = criterion.order.index(index)
        start, stop = criterion.offsets[position], criterion.offsets[position + 1]
        q = len(terms.columns)
        groups = (stop - start) // q
        h_level = h[start:stop].reshape(groups, q, width)
        r_level = r[start:stop].reshape(groups, q, width)
        if index == first:
            diagonal_blocks = None
        else:
            local = np.arange(groups)[:, None, None] * q + start - split
            rows = np.broadcast_to(local + np.arange(q)[None, :, None], (groups, q, q))
            cols = np.broadcast_to(local + np.arange(q)[None, None, :], (groups, q, q))
            diagonal_blocks = _selected(inverse, rows.ravel(), cols.ravel())
            if diagonal_blocks is None:
                return None
            diagonal_blocks = diagonal_blocks.reshape(groups, q, q)
        for basis, lam_inv_e in zip(terms.covariance.basis, solved[index]):
            if lam_inv_e is None:
                k += 1
                continue
            if np.any(lam_inv_e):
                if index == first:
                    inverse_trace = _first_factor_block_trace(criterion, blocks, inverse, lam_inv_e)
                    if inverse_trace is None:
                        return None
                else:
                    inverse_trace = float(np.einsum("gab,ba->", diagonal_blocks, lam_inv_e))
                d_logdet[k] = 2.0 * (groups * float(np.trace(lam_inv_e)) - inverse_trace)
            rw, hw = r_level @ w, h_level @ w
            d_r2[k] = -2.0 * float(np.einsum("ga,ab,gb->", rw, basis, hw))
            half = np.einsum("gai,ab,gbj->ij", r_level[:, :, :p], basis, h_level[:, :, :p])
            d_xx[k] = -(half + half.T)
            k += 1
    return _assemble(criterion, evaluation, d_logdet, d_r2, d_xx)


def _selected(inverse, rows, cols) -> np.ndarray | None:
    """S^-1's entries at (rows, cols), or None when some lie outside the factor's pattern (an entry
    of S that cancelled to zero): the caller then takes differences."""
    try:
        return inverse.entries(rows, cols)
    except ValueError:
        return None


def _first_factor_block_trace(criterion, blocks, inverse, matrix: np.ndarray) -> float | None:
    """sum_g tr(M^-1_gg C) over the first factor's groups, C = ``matrix`` (q1 x q1):
    M^-1_gg = L1g^-T (I + B_g'S^-1 B_g) L1g^-1, so the sum is sum_g tr(W_g) + tr(S^-1 B W B')
    with W_g = L1g^-1 C L1g^-T and W = blockdiag(W_g)."""
    weights = np.einsum("gai,ij,gbj->gab", blocks.inv1, matrix, blocks.inv1)
    trace = float(np.einsum("gaa->", weights))
    if inverse is None:
        return trace
    b = blocks.b_rest
    product = (b @ _block_diagonal(weights) @ b.T).tocoo()
    entries = _selected(inverse, product.row, product.col)
    return None if entries is None else trace + float(product.data @ entries)
