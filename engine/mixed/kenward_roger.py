"""Kenward-Roger (1997) adjusted covariance, df and scaled F, as pbkrtest computes them.

With Sigma = sum_i tau_i G_i (linear, so R_ij = 0), W the inverse expected information of tau,
P_i = d(X'Sigma^-1X)/dtau_i and Q_ij + Q_ji = d^2(X'Sigma^-1X)/dtau_i dtau_j:

    Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi,        Phi = (X'Sigma^-1X)^-1.

For a hypothesis L beta = 0 of rank q, with Theta = L'(L Phi L')^-1 L:
A1 = sum_ij W_ij tr(Theta Phi P_i Phi) tr(Theta Phi P_j Phi), A2 = sum_ij W_ij tr(Theta Phi P_i Phi Theta Phi P_j Phi),
and the df m and scaling lambda of F = lambda (L b)'(L Phi_A L')^-1 (L b) / q follow Kenward and
Roger's moment matching (pbkrtest's ``.KR_adjust``). For one coefficient m = 2 / A2.
"""

from __future__ import annotations

import numpy as np

from engine.distributions import f_sf
from engine.mixed.variance_derivatives import CovarianceDerivatives


class KenwardRoger:
    """The adjusted covariance of the fixed effects and Kenward-Roger df for contrasts."""

    name = "kroger"

    def __init__(self, pieces: CovarianceDerivatives):
        self.phi = pieces.phi
        self.p_matrices = pieces.p_matrices
        # pbkrtest's W: twice the inverse of tr(P~ G_i P~ G_j), i.e. the inverse expected information.
        self.w = _inverse(pieces.expected_information)
        self.cov = self.phi + 2.0 * self.phi @ self._u(pieces.q_sym) @ self.phi

    def _u(self, q_sym: np.ndarray) -> np.ndarray:
        # sum_ij W_ij Q_ij = 1/2 sum_ij W_ij (Q_ij + Q_ji) since W is symmetric.
        q_part = 0.5 * np.einsum("ij,ijab->ab", self.w, q_sym)
        p_phi = np.einsum("iab,bc->iac", self.p_matrices, self.phi)
        p_part = np.einsum("ij,iab,jbc->ac", self.w, p_phi, self.p_matrices)
        u = q_part - p_part
        return 0.5 * (u + u.T)

    def coefficient_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def _a1_a2(self, rows: np.ndarray) -> tuple[float, float, int]:
        middle = rows @ self.phi @ rows.T
        theta = rows.T @ np.linalg.solve(middle, rows)
        u = np.einsum("ab,bc,icd,de->iae", theta, self.phi, self.p_matrices, self.phi, optimize=True)
        traces = np.einsum("iaa->i", u)
        products = np.einsum("iab,jba->ij", u, u)
        a1 = float(traces @ self.w @ traces)
        a2 = float(np.sum(self.w * products))
        return a1, a2, int(np.linalg.matrix_rank(rows))

    def contrast_df(self, contrast: np.ndarray) -> float:
        """For one contrast A1 = A2 = g'Wg / v^2 with v = l'Phi l, g_i = l'Phi P_i Phi l, so m = 2 / A2."""
        contrast = np.asarray(contrast, dtype=float)
        phi_l = self.phi @ contrast
        variance = float(contrast @ phi_l)
        gradient = np.einsum("a,iab,b->i", phi_l, self.p_matrices, phi_l)
        return float(2.0 * variance ** 2 / (gradient @ self.w @ gradient))

    def f_test(self, rows: np.ndarray, beta: np.ndarray) -> tuple[float, int, float, float]:
        """(scaled F, q, denominator df, p) that rows @ beta = 0, as pbkrtest's KRmodcomp."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        f_unscaled, q, df2, scaling = self.f_parts(rows, beta)
        f_value = scaling * f_unscaled
        return f_value, q, df2, float(f_sf(f_value, q, df2))

    def f_parts(self, rows: np.ndarray, beta: np.ndarray) -> tuple[float, int, float, float]:
        """(unscaled F, q, df, scaling): pbkrtest's moment matching of Kenward and Roger (1997)."""
        a1, a2, q = self._a1_a2(rows)
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
        denominator = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
        v0 = 1 + c1 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1, v2 = 1 - c2 * b, 1 - c3 * b
        ratio = (1 - a2 / q) / v1 if v1 != 0 else 0.0
        rho = ratio ** 2 * v0 / v2 / q
        df2 = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(df2 - 4) < 1e-2 else df2 * (1 - a2 / q) / (df2 - 2)
        estimate = rows @ beta
        wald = float(estimate @ np.linalg.solve(rows @ self.cov @ rows.T, estimate))
        return wald / q, q, float(df2), float(scaling)


def _inverse(information: np.ndarray) -> np.ndarray:
    eigenvalues = np.linalg.eigvalsh(information)
    if np.min(np.abs(eigenvalues)) > 1e-10 * max(np.max(np.abs(eigenvalues)), 1e-300):
        return np.linalg.inv(information)
    return np.linalg.pinv(information)
