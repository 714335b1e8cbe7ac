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
        LevelEffects(level=spec.levels[i].name, terms=spec.levels[i].terms,
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
        z = terms.columns
        offset = criterion.param_offsets[level]
        lam = terms.covariance.lambda_of(theta[offset: offset + terms.covariance.n_params])
        parents = hierarchy.parents[level]
        w = parent_w[parents]
        omega = parent_omega[parents]
        is_leaf = level == hierarchy.n_levels - 1
        if is_leaf and criterion.collapse_leaf:
            sz = criterion.leaf_sums[:, None, :]  # (G, 1, k): S_z rows of a leaf group are its column sums
            szz = criterion.leaf_sizes[:, None, None].astype(float)
        else:
            childsum = evaluation.childsums[level]
            sz = childsum[:, z, :]
            szz = sz[:, :, z]
        m = np.eye(len(z)) + lam.T @ szz @ lam
        m_inv = np.linalg.inv(m)
        h = m_inv @ lam.T @ sz  # (G, q, k)
        v_hat = np.einsum("gqk,gk->gq", h, w)
        var_v = sigma ** 2 * m_inv + h @ omega @ h.transpose(0, 2, 1)
        u_hat = v_hat @ lam.T
        var_u = lam @ var_v @ lam.T
        out.append((u_hat, np.sqrt(np.clip(np.einsum("gii->gi", var_u), 0.0, None))))
        if not is_leaf:
            embed = np.zeros((k, len(z)))
            embed[z, np.arange(len(z))] = 1.0
            parent_w = w - u_hat @ embed.T
            f = np.eye(k) - embed @ lam @ h  # (G, k, k)
            noise = embed @ lam @ (sigma ** 2 * m_inv) @ lam.T @ embed.T
            parent_omega = f @ omega @ f.transpose(0, 2, 1) + noise
    return out
