"""Relative covariance factors per level: Lambda is linear in theta, Lambda = sum_t theta_t E_t.

A level's random effects have covariance sigma^2 Lambda Lambda'. Parameters follow lme4: for an
unstructured level the lower triangle of Lambda column by column; diagonal entries are >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LevelCovariance:
    """The Lambda parametrisation of one level with ``q`` random effects."""

    q: int
    kind: str  # 'identity', 'independent', 'unstructured'

    def __post_init__(self) -> None:
        self.basis = self._basis()

    def _basis(self) -> list[np.ndarray]:
        q = self.q
        if self.kind == "identity" or q == 1:
            return [np.eye(q)]
        if self.kind == "independent":
            out = []
            for j in range(q):
                e = np.zeros((q, q))
                e[j, j] = 1.0
                out.append(e)
            return out
        out = []
        for col in range(q):
            for row in range(col, q):
                e = np.zeros((q, q))
                e[row, col] = 1.0
                out.append(e)
        return out

    @property
    def n_params(self) -> int:
        return len(self.basis)

    def is_diagonal_param(self) -> list[bool]:
        return [bool(np.any(np.diag(e))) for e in self.basis]

    def lower_bounds(self) -> list[float | None]:
        return [0.0 if diag else None for diag in self.is_diagonal_param()]

    def start(self) -> np.ndarray:
        return np.array([1.0 if diag else 0.0 for diag in self.is_diagonal_param()])

    def lambda_of(self, theta: np.ndarray) -> np.ndarray:
        return np.tensordot(np.asarray(theta, dtype=float), np.array(self.basis), axes=1)

    def theta_of_lambda(self, lam: np.ndarray) -> np.ndarray:
        """Inverse of ``lambda_of`` for a matrix of the right pattern."""
        return np.array([float(np.sum(e * lam)) for e in self.basis])

    # ----- sd / correlation scale --------------------------------------------------------------
    def sd_corr(self, theta: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """Standard deviations and correlation matrix of the level's random effects."""
        lam = self.lambda_of(theta)
        cov = sigma ** 2 * lam @ lam.T
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(cov / np.outer(sd, sd))
        np.fill_diagonal(corr, 1.0)
        return sd, corr

    def theta_of_sd_corr(self, sd: np.ndarray, corr: np.ndarray, sigma: float) -> np.ndarray:
        """theta giving these sds and correlations (Cholesky factor of the covariance over sigma)."""
        if self.kind == "unstructured" and self.q > 1:
            cov = np.outer(sd, sd) * corr
            lam = np.linalg.cholesky(cov + 1e-300 * np.eye(self.q)) / sigma
            return self.theta_of_lambda(lam)
        if self.kind == "identity" and self.q > 1:
            return np.array([sd[0] / sigma])
        return np.asarray(sd, dtype=float) / sigma


def lower_triangular_factor(matrix: np.ndarray) -> np.ndarray:
    """Lower-triangular L with nonnegative diagonal and L L' = A A' (A = ``matrix``), also when
    A A' is singular: from the QR decomposition of A'."""
    _, upper = np.linalg.qr(np.asarray(matrix, dtype=float).T)
    factor = upper.T
    return factor * np.where(np.diag(factor) < 0, -1.0, 1.0)
