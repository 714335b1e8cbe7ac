"""Predicted random effects (BLUPs) and their conditional sds for the crossed criterion.

b solves M b = Lambda' Z' (y - X beta) by the blocked factorisation; u = Lambda b. The conditional
covariance of b is sigma^2 M^-1 (lme4's condVar): for the other factors the diagonal blocks of
S^-1, for the first factor L1^-T (I + B' S^-1 B) L1^-1 per group, where B = T21 L1^-T has few
entries per column, so only the entries of S^-1 at pairs of rows of one group's columns are read.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.mixed.crossed.criterion import CrossedCriterion

DENSE_INVERSE_LIMIT = 6000  # a dense Schur complement beyond this size is not inverted (gradient, sds)


def random_effects(criterion: CrossedCriterion, blocks, theta: np.ndarray, beta: np.ndarray, sigma: float):
    """Per level in the model's order: (estimates, conditional sds), each (groups, terms)."""
    w = np.append(-np.asarray(beta, dtype=float), 1.0)
    q1, n1 = criterion.q1, criterion.n1
    c = blocks.c1 @ w  # (groups, q1)
    inverse_rest = None
    if criterion.n_rest:
        b2 = blocks.solve_rest(blocks.s_rw @ w)
        c = c - (blocks.b_rest.T @ b2).reshape(n1, q1)
        if criterion.can_select_inverse(blocks):
            inverse_rest = blocks.solve_rest.inverse()
    b1 = np.einsum("gji,gj->gi", blocks.inv1, c)  # L1^-T c
    out: list = [None] * len(criterion.levels)
    first = criterion.order[0]
    lam1 = blocks.lam1
    var_b1 = _first_factor_variance(criterion, blocks, inverse_rest)
    out[first] = (b1 @ lam1.T, _sds(lam1, var_b1, sigma))
    lams = criterion._level_lambdas(np.asarray(theta, dtype=float))
    for position, index in enumerate(criterion.order[1:], start=1):
        start = criterion.offsets[position] - criterion.split
        q = len(criterion.levels[index].columns)
        groups = criterion.factors[index].n_groups
        window = slice(start, start + groups * q)
        lam = lams[index]
        estimates = b2[window].reshape(groups, q) @ lam.T
        if inverse_rest is None:
            sds = np.full((groups, q), np.nan)
        else:
            positions = start + np.arange(groups)[:, None] * q + np.arange(q)[None, :]
            var_b = inverse_rest.entries(positions[:, :, None], positions[:, None, :])
            sds = _sds(lam, var_b, sigma)
        out[index] = (estimates, sds)
    return out


def _first_factor_variance(criterion, blocks, inverse_rest):
    """Var(b1 | y) / sigma^2 per group of the first factor, (groups, q1, q1); NaN when not formed."""
    q1, n1 = criterion.q1, criterion.n1
    inner = np.broadcast_to(np.eye(q1), (n1, q1, q1)).copy()
    if criterion.n_rest:
        if inverse_rest is None:
            return np.full((n1, q1, q1), np.nan)
        if criterion.pattern is not None:
            inner[:, 0, 0] += _pattern_quadratic_forms(criterion.pattern, blocks, inverse_rest, n1)
        else:
            inner += _chunked_quadratic_forms(blocks.b_rest.tocsc(), inverse_rest, n1, q1)
    return np.einsum("gji,gjk,gkl->gil", blocks.inv1, inner, blocks.inv1)


MAX_PAIRS_PER_CHUNK = 20_000_000


def _pattern_quadratic_forms(pattern, blocks, inverse, n1: int) -> np.ndarray:
    """b_g' S^-1 b_g for scalar groups from the Schur pattern's pairs (each pair once, mirrored)."""
    values_on_pattern = inverse.entries(pattern.rows, pattern.cols)
    position = pattern.pair_position
    rows, cols = pattern.rows[position], pattern.cols[position]
    scale = blocks.rest_lambda
    weights = pattern.pair_product * values_on_pattern[position] * scale[rows] * scale[cols]
    weights *= np.where(rows == cols, 1.0, 2.0)
    group_scale = (blocks.lam1[0, 0] * blocks.inv1[:, 0, 0]) ** 2
    return np.bincount(pattern.pair_group, weights=weights, minlength=n1) * group_scale


def _chunked_quadratic_forms(b: sp.csc_matrix, inverse, n1: int, q1: int) -> np.ndarray:
    """_group_quadratic_forms over chunks of groups, so that the pair lists stay bounded in memory."""
    per_group = np.add.reduceat(np.diff(b.indptr).astype(np.int64), np.arange(0, n1 * q1, q1)) if n1 else np.zeros(0)
    pairs = np.cumsum(per_group ** 2)
    out = np.empty((n1, q1, q1))
    start = 0
    while start < n1:
        limit = (pairs[start - 1] if start else 0) + MAX_PAIRS_PER_CHUNK
        stop = max(start + 1, int(np.searchsorted(pairs, limit, side="right")))
        out[start:stop] = _group_quadratic_forms(b[:, start * q1: stop * q1], inverse, stop - start, q1)
        start = stop
    return out


def _group_quadratic_forms(b: sp.csc_matrix, inverse, n1: int, q1: int) -> np.ndarray:
    """(B' S^-1 B) restricted to each group's q1 x q1 block, from pairs of entries in one group."""
    b.sort_indices()
    nnz = b.nnz
    column = np.repeat(np.arange(b.shape[1]), np.diff(b.indptr))
    group = column // q1
    count = np.bincount(group, minlength=n1)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    reps = count[group]
    first = np.repeat(np.arange(nnz), reps)
    within = np.arange(first.size) - np.repeat(np.cumsum(reps) - reps, reps)
    second = start[group[first]] + within
    weights = b.data[first] * b.data[second] * inverse.entries(b.indices[first], b.indices[second])
    target = group[first] * q1 * q1 + (column[first] % q1) * q1 + column[second] % q1
    return np.bincount(target, weights=weights, minlength=n1 * q1 * q1).reshape(n1, q1, q1)


def _sds(lam: np.ndarray, var_b: np.ndarray, sigma: float) -> np.ndarray:
    var_u = np.einsum("ij,gjk,lk->gil", lam, var_b, lam)
    return sigma * np.sqrt(np.clip(np.einsum("gii->gi", var_u), 0.0, None))
