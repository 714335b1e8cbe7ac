"""The single-level model (a plain GLM) by IRLS: the start of the GLMM fit and its LR test's baseline."""

from __future__ import annotations

import numpy as np

from engine.glmm.family import Family


def fit_glm(family: Family, y: np.ndarray, x: np.ndarray, offset: np.ndarray,
            max_steps: int = 100) -> tuple[np.ndarray, float, bool]:
    """Maximum-likelihood coefficients, log-likelihood and whether IRLS converged."""
    beta = np.zeros(x.shape[1])
    if family.name == "binomial":
        share = y.mean() if family.trials is None else y.sum() / family.trials.sum()
        mean = float(np.clip(share, 1e-3, 1 - 1e-3))
        if x.shape[1]:
            beta = np.linalg.lstsq(x, np.full(y.size, family_start(family, mean)) - offset, rcond=None)[0]
    else:
        beta = np.linalg.lstsq(x, np.log(y + 0.5) - offset, rcond=None)[0] if x.shape[1] else beta
    loglik = float(np.sum(family.log_density(y, offset + x @ beta)))
    for _ in range(max_steps):
        eta = offset + x @ beta
        weights, scores = family.weights_and_scores(y, eta)
        weighted = x * weights[:, None]
        step = np.linalg.lstsq(weighted.T @ x, x.T @ scores, rcond=None)[0]
        for _ in range(30):
            candidate = beta + step
            new_loglik = float(np.sum(family.log_density(y, offset + x @ candidate)))
            if new_loglik >= loglik - 1e-10 * abs(loglik):
                break
            step = 0.5 * step
        gain = new_loglik - loglik
        beta, loglik = candidate, new_loglik
        if abs(gain) < 1e-12 * (abs(loglik) + 1.0):
            return beta, loglik, True
    return beta, loglik, False


def family_start(family: Family, mean: float) -> float:
    from scipy.special import logit, ndtri

    return float(logit(mean) if family.link == "logit" else ndtri(mean))
