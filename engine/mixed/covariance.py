"""Relative covariance factors per level: Lambda is linear in theta, Lambda = sum_t theta_t E_t.

A level's random effects have covariance sigma^2 Lambda Lambda'. Parameters follow lme4: for an
unstructured level the lower triangle of Lambda column by column; diagonal entries are >= 0.

An exchangeable level (Stata's covariance(exchangeable): equal variances, one common covariance)
uses Lambda = t1 (I - P) + t2 P with P = J/q the projection onto the vector of ones. Lambda is
then symmetric and Lambda Lambda' = t1^2 (I - P) + t2^2 P, which covers every exchangeable
covariance matrix (eigenvalue t1^2 off the ones vector, t2^2 along it); it stays linear in
theta, so the criterion's exact gradient (which differentiates along the basis) holds, and, as
for lme4's diagonal, the deviance is even in each of t1 and t2, so both are bounded below by 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LevelCovariance:
    """The Lambda parametrisation of one level with ``q`` random effects."""

    q: int
    kind: str  # 'identity', 'independent', 'unstructured', 'exchangeable'

    def __post_init__(self) -> None:
        self.basis = self._basis()

    def _basis(self) -> list[np.ndarray]:
        q = self.q
        if self.kind == "identity" or q == 1:
            return [np.eye(q)]
        if self.kind == "exchangeable":
            along_ones = np.full((q, q), 1.0 / q)
            return [np.eye(q) - along_ones, along_ones]
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

    @property
    def is_exchangeable(self) -> bool:
        return self.kind == "exchangeable" and self.q > 1

    @property
    def shares_variance(self) -> bool:
        """One variance for every random effect of the level (identity, exchangeable)."""
        return self.kind in ("identity", "exchangeable") and self.q > 1

    def lower_bounds(self) -> list[float | None]:
        return [0.0 if diag else None for diag in self.is_diagonal_param()]

    def start(self) -> np.ndarray:
        return np.array([1.0 if diag else 0.0 for diag in self.is_diagonal_param()])

    def lambda_of(self, theta: np.ndarray) -> np.ndarray:
        return np.tensordot(np.asarray(theta, dtype=float), np.array(self.basis), axes=1)

    def theta_of_lambda(self, lam: np.ndarray) -> np.ndarray:
        """Inverse of ``lambda_of`` for a matrix of the right pattern."""
        if self.is_exchangeable:  # diagonal minus off-diagonal is t1; each row sums to t2
            return np.array([float(lam[0, 0] - lam[1, 0]), float(np.sum(lam[0]))])
        return np.array([float(np.sum(e * lam)) for e in self.basis])

    def theta_of_exchangeable(self, variance: float, rho: float, sigma: float) -> np.ndarray:
        """theta of an exchangeable level with this variance and common correlation.

        The covariance v((1 - rho) I + rho J) has eigenvalues v(1 - rho) off the ones vector and
        v(1 + (q - 1) rho) along it; Lambda's are their square roots over sigma."""
        off_ones = np.sqrt(max(variance * (1.0 - rho), 0.0)) / sigma
        along_ones = np.sqrt(max(variance * (1.0 + (self.q - 1) * rho), 0.0)) / sigma
        return np.array([off_ones, along_ones])

    def covariance_entries(self) -> list[tuple[int, int]]:
        """Positions (row, column) of the covariance matrix whose values determine it, one per
        parameter: the variances and covariances a linear (tau) parametrisation uses."""
        if self.is_exchangeable:
            return [(0, 0), (1, 0)]
        return [tuple(int(i) for i in np.argwhere(e)[0]) for e in self.basis]

    def covariance_of_entries(self, values: np.ndarray) -> np.ndarray:
        """The q x q covariance matrix from the values at ``covariance_entries``."""
        q = self.q
        values = np.asarray(values, dtype=float)
        if self.is_exchangeable:
            return values[0] * np.eye(q) + values[1] * (np.ones((q, q)) - np.eye(q))
        if self.kind == "identity" and q > 1:
            return values[0] * np.eye(q)
        out = np.zeros((q, q))
        for value, (i, j) in zip(values, self.covariance_entries()):
            out[i, j] = out[j, i] = value
        return out

    def theta_of_covariance(self, cov: np.ndarray) -> np.ndarray:
        """theta with sigma^2 Lambda Lambda' = cov for sigma = 1 (cov of the right pattern)."""
        if self.is_exchangeable:
            variance = float(cov[0, 0])
            rho = float(cov[1, 0]) / variance if variance > 0 else 0.0
            return self.theta_of_exchangeable(variance, rho, 1.0)
        if self.kind == "unstructured" and self.q > 1:
            return self.theta_of_lambda(np.linalg.cholesky(cov))
        if self.kind == "identity" and self.q > 1:
            return np.array([np.sqrt(cov[0, 0])])
        return np.sqrt(np.diag(cov))

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
        if self.is_exchangeable:
            return self.theta_of_exchangeable(float(sd[0]) ** 2, float(corr[1, 0]), sigma)
        return np.asarray(sd, dtype=float) / sigma


def lower_triangular_factor(matrix: np.ndarray) -> np.ndarray:
    """Lower-triangular L with nonnegative diagonal and L L' = A A' (A = ``matrix``), also when
    A A' is singular: from the QR decomposition of A'."""
    _, upper = np.linalg.qr(np.asarray(matrix, dtype=float).T)
    factor = upper.T
    return factor * np.where(np.diag(factor) < 0, -1.0, 1.0)
