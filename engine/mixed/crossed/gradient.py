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



def analytic_gradient(criterion, theta: np.ndarray, evaluation, blocks) -> np.ndarray | None:
    """d deviance / d theta, or None when the inverse it needs would be too large to form."""
    if not criterion.can_select_inverse(blocks):
        return None
    n1, q1, split = criterion.n1, criterion.q1, criterion.split
    width = criterion.p + 1
    c = blocks.c1
    h_rest = np.zeros((0, width))
    inverse = None
    if criterion.n_rest:
        h_rest = blocks.solve_rest(blocks.s_rw)
        c = c - (blocks.b_rest.T @ h_rest).reshape(n1, q1, width)
        inverse = blocks.solve_rest.inverse()
    h_first = np.einsum("gji,gjk->gik", blocks.inv1, c).reshape(split, width)
    h = np.vstack([h_first, h_rest])
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


def _first_factor_trace(criterion, blocks, inverse, own: np.ndarray) -> float:
    """sum over groups and the effects in ``own`` of diag(M^-1) for the first factor:
    sum_g tr(W_g) + tr(S^-1 B W B') with W_g = L1g^-T[:, own] (L1g^-T[:, own])'."""
    selected = blocks.inv1[:, :, own]  # (groups, q1, own): rows of L1^-1 = columns of L1^-T
    weights = np.einsum("gai,gbi->gab", selected, selected)
    trace = float(np.einsum("gaa->", weights))
    if inverse is None:
        return trace
    n1, q1 = criterion.n1, criterion.q1
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
        rows = (np.arange(n1)[:, None, None] * q1 + np.arange(q1)[None, :, None]).repeat(q1, axis=2)
        cols = (np.arange(n1)[:, None, None] * q1 + np.arange(q1)[None, None, :]).repeat(q1, axis=1)
        block = sp.csr_matrix((weights.ravel(), (rows.ravel(), cols.ravel())), shape=(n1 * q1, n1 * q1))
        product = (b @ block @ b.T).tocoo()
    return trace + float(product.data @ inverse.entries(product.row, product.col))
