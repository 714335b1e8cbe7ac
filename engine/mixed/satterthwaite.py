"""Satterthwaite's denominator df as lmerTest computes them (Kuznetsova et al. 2017, JSS 82(13)).

For a contrast l'beta: df = 2 (l'C l)^2 / (g' A g), C = cov(beta), g_k = l' dC/dphi_k l and A the
inverse observed information of phi = (theta, sigma) (lmerTest's ``vcov_varpar``). For several
contrasts (an F test) lmerTest's ``contestMD``: rotate to the eigenvectors of L C L', one t
statistic and one df per direction, and combine them (Fai and Cornelius 1996).
"""

from __future__ import annotations

import numpy as np

from engine.distributions import f_sf
from engine.mixed.variance_derivatives import SigmaThetaDerivatives


class Satterthwaite:
    """Satterthwaite df for contrasts of the fixed effects at a REML optimum."""

    name = "satterthwaite"

    def __init__(self, pieces: SigmaThetaDerivatives):
        self.cov = pieces.cov
        self.jacobian = pieces.jacobian
        self.varpar_cov = _inverse(pieces.information)

    def contrast_df(self, contrast: np.ndarray) -> float:
        contrast = np.asarray(contrast, dtype=float)
        variance = float(contrast @ self.cov @ contrast)
        gradient = np.einsum("i,kij,j->k", contrast, self.jacobian, contrast)
        return float(2.0 * variance ** 2 / (gradient @ self.varpar_cov @ gradient))

    def coefficient_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def f_test(self, rows: np.ndarray, beta: np.ndarray) -> tuple[float, int, float, float]:
        """(F, numerator df, denominator df, p) that rows @ beta = 0, as lmerTest's contestMD."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        values, vectors = np.linalg.eigh(rows @ self.cov @ rows.T)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        tolerance = max(np.sqrt(np.finfo(float).eps) * values[0], 0.0)
        q = int(np.sum(values > tolerance))
        rotated = vectors[:, :q].T @ rows
        f_value = float(np.sum((rotated @ beta) ** 2 / values[:q]) / q)
        dfs = np.array([self.contrast_df(row) for row in rotated])
        df2 = combined_f_df(dfs)
        return f_value, q, df2, float(f_sf(f_value, q, df2))


def combined_f_df(dfs: np.ndarray, tolerance: float = 1e-8) -> float:
    """Denominator df of an F built from q independent t statistics with these df (lmerTest's rule)."""
    if dfs.size == 1 or np.all(np.abs(dfs - dfs[0]) < tolerance):
        return float(dfs[0])
    if np.any(dfs <= 2):
        return 2.0
    expected = float(np.sum(dfs / (dfs - 2)))
    return 2.0 * expected / (expected - dfs.size)


def _inverse(information: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(information)
