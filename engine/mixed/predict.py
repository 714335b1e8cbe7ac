"""Predicted random effects (BLUPs), their conditional sds, fitted values and residuals.

Top-down over the levels, with the quantities the bottom-up pass kept. A group's residual
vector is r = W w (W: the work columns); conditioning on the group's ancestors changes only w.
Given its ancestors, a group's scaled effects v have mean H w and variance sigma^2 M^-1 with
M = I + Lambda' S_zz Lambda and H = M^-1 Lambda' S_z. (S: the group's children summed.) The
ancestors themselves are uncertain; Omega = Var(w | y) carries that down, so the reported
variance is the full conditional variance given the data and the fixed effects (lme4's condVar).
"""

from __future__ import annotations

import numpy as np

from engine.mixed.criterion import Evaluation, NestedCriterion
from engine.mixed.hierarchy import Hierarchy
from engine.mixed.prepare import ModelData, WorkColumns
from engine.results import FitResult, LevelEffects


def attach_predictions(result: FitResult, criterion: NestedCriterion, evaluation: Evaluation,
                       theta: np.ndarray, sigma: float, hierarchy: Hierarchy, data: ModelData,
                       work: WorkColumns, beta: np.ndarray) -> None:
    effects = predict_random_effects(criterion, evaluation, theta, sigma)
    spec = result.spec
    fitted = data.design.matrix @ beta
    for level, (estimates, _) in enumerate(effects):
        columns = criterion.levels[level].columns
        codes = hierarchy.row_codes[level]
        for term_index, column in enumerate(columns):
            fitted += work.matrix[:, column] * estimates[codes, term_index]
    result.level_effects = [
        LevelEffects(level=spec.levels[i].name, terms=spec.levels[i].estimation_terms,
                     group_ids=hierarchy.group_ids(data.frame, i), estimates=est, std_errors=se)
        for i, (est, se) in enumerate(effects)
    ]
    result.fitted = fitted
    result.residuals = data.y - fitted


def predict_random_effects(criterion: NestedCriterion, evaluation: Evaluation, theta: np.ndarray,
                           sigma: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per level: (estimates, conditional sds), each (groups, terms)."""
    k = criterion.k
    w_root = np.zeros(k)
    w_root[criterion.x_columns] = -evaluation.beta
    w_root[criterion.y_column] = 1.0
    hierarchy = criterion.hierarchy
    parent_w = w_root[None, :]  # (groups of the level above, k)
    parent_omega = np.zeros((1, k, k))
    out = []
    for level in range(hierarchy.n_levels):
        terms = criterion.levels[level]
        offset = criterion.param_offsets[level]
        lam = terms.covariance.lambda_of(theta[offset: offset + terms.covariance.n_params])
        parents = hierarchy.parents[level]
        is_leaf = level == hierarchy.n_levels - 1
        sz = evaluation.childsums[level][:, terms.columns, :]
        step = _scalar_step if len(terms.columns) == 1 else _leaf_block_step if is_leaf else _block_step
        estimates, sds, parent_w, parent_omega = step(
            terms.columns, lam, sz, parent_w, parent_omega, parents, sigma, need_children=not is_leaf)
        out.append((estimates, sds))
    return out


def _scalar_step(columns, lam, sz, parent_w, parent_omega, parents, sigma, need_children):
    """One random effect per group: every matrix of the general step is a scalar or a vector."""
    (z,) = columns
    t = float(lam[0, 0])
    row = sz[:, 0, :]  # (G, k)
    m = 1.0 + t * t * row[:, z]
    h = (t / m)[:, None] * row  # (G, k)
    w = parent_w[parents]
    v_hat = np.einsum("gk,gk->g", h, w)
    omega_h = _omega_times(parent_omega, parents, h)  # (G, k)
    var_v = sigma ** 2 / m + np.einsum("gk,gk->g", h, omega_h)
    u_hat = t * v_hat
    sds = np.sqrt(np.clip(t * t * var_v, 0.0, None))
    if not need_children:
        return u_hat[:, None], sds[:, None], None, None
    w[:, z] -= u_hat
    # Omega' = F Omega F' + noise with F = I - t e_z h'.
    omega = parent_omega[parents]
    omega[:, z, :] -= t * omega_h
    omega[:, :, z] -= t * omega_h
    omega[:, z, z] += t * t * (np.einsum("gk,gk->g", h, omega_h) + sigma ** 2 / m)
    return u_hat[:, None], sds[:, None], w, omega


def _omega_times(parent_omega, parents, vectors):
    """Omega of each group's parent times the group's vector, without copying Omega per group."""
    if parent_omega.shape[0] == 1 or parent_omega.shape[0] * 4 >= parents.size:
        return np.einsum("gij,gj->gi", parent_omega[parents], vectors)
    out = np.zeros_like(vectors)
    for i in range(vectors.shape[1]):
        for j in range(vectors.shape[1]):
            out[:, i] += parent_omega[parents, i, j] * vectors[:, j]
    return out


def _block_step(columns, lam, sz, parent_w, parent_omega, parents, sigma, need_children):
    k = sz.shape[2]
    q = len(columns)
    w = parent_w[parents]
    omega = parent_omega[parents]
    szz = sz[:, :, columns]
    m_inv = np.linalg.inv(np.eye(q) + lam.T @ szz @ lam)
    h = m_inv @ lam.T @ sz  # (G, q, k)
    v_hat = np.einsum("gqk,gk->gq", h, w)
    var_v = sigma ** 2 * m_inv + h @ omega @ h.transpose(0, 2, 1)
    u_hat = v_hat @ lam.T
    var_u = lam @ var_v @ lam.T
    sds = np.sqrt(np.clip(np.einsum("gii->gi", var_u), 0.0, None))
    if not need_children:
        return u_hat, sds, None, None
    embed = np.zeros((k, q))
    embed[columns, np.arange(q)] = 1.0
    f = np.eye(k) - embed @ lam @ h  # (G, k, k)
    noise = embed @ lam @ (sigma ** 2 * m_inv) @ lam.T @ embed.T
    return u_hat, sds, w - u_hat @ embed.T, f @ omega @ f.transpose(0, 2, 1) + noise


def _leaf_block_step(columns, lam, sz, parent_w, parent_omega, parents, sigma, need_children=False):
    """``_block_step`` for the lowest level (no children to pass on), with groups along the last
    axis and the small q x k products spelt out entry by entry: numpy's batched products of tiny
    matrices cost far more than these vector operations over groups."""
    q, k = len(columns), sz.shape[2]
    s = np.ascontiguousarray(np.moveaxis(sz, 0, -1))  # (q, k, G): S_z'
    n = s.shape[2]
    t = _constant_times(lam.T, s)  # Lambda' S_z', (q, k, G)
    m = np.zeros((q, q, n))  # M = I + (Lambda' S_z')[:, z] Lambda
    for i in range(q):
        m[i, i] += 1.0
        for j in range(q):
            for l in range(q):
                if lam[l, j] != 0.0:
                    m[i, j] += t[i, columns[l]] * lam[l, j]
    m_inv = _small_inverses(m)
    h = np.zeros((q, k, n))
    for i in range(q):
        for j in range(q):
            h[i] += m_inv[i, j] * t[j]
    r = _constant_times(lam, h)  # the effects' loadings on w: u_hat = r w
    w = parent_w.T[:, parents]  # (k, G)
    omega = np.moveaxis(parent_omega, 0, -1)[:, :, parents]  # (k, k, G)
    u_hat = np.zeros((q, n))
    var_u = np.zeros((q, n))
    for i in range(q):
        for a in range(k):
            u_hat[i] += r[i, a] * w[a]
            var_u[i] += r[i, a] * r[i, a] * omega[a, a]
            for b in range(a + 1, k):
                var_u[i] += 2.0 * r[i, a] * r[i, b] * omega[a, b]
        for j in range(q):
            for l in range(q):
                if lam[i, j] != 0.0 and lam[i, l] != 0.0:
                    var_u[i] += (sigma ** 2 * lam[i, j] * lam[i, l]) * m_inv[j, l]
    sds = np.sqrt(np.clip(var_u, 0.0, None))
    return u_hat.T, sds.T, None, None


def _constant_times(constant: np.ndarray, stack: np.ndarray) -> np.ndarray:
    """constant (a x b) times each matrix of ``stack`` (b, c, G), zero entries skipped."""
    out = np.zeros((constant.shape[0],) + stack.shape[1:])
    for i in range(constant.shape[0]):
        for j in range(constant.shape[1]):
            if constant[i, j] != 0.0:
                out[i] += constant[i, j] * stack[j]
    return out


def _small_inverses(m: np.ndarray) -> np.ndarray:
    """Inverses of the q x q matrices m[:, :, g]."""
    if m.shape[0] == 2:
        det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
        return np.stack([np.stack([m[1, 1], -m[0, 1]]), np.stack([-m[1, 0], m[0, 0]])]) / det
    return np.moveaxis(np.linalg.inv(np.moveaxis(m, -1, 0)), 0, -1)
