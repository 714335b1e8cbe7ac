"""Derivatives of the fixed effects' covariance and of the REML criterion in the variance parameters.

Small-sample df (Satterthwaite, Kenward-Roger) need, at the REML optimum, the derivatives of
cov(beta) = sigma^2 (X'V^-1X)^-1 with respect to the variance parameters and an information
matrix of those parameters. Everything here comes from the nested recursion's exact
forward-mode first derivatives (``Evaluation.d_xtvx``, ``d_logdet_v``, ``d_logdet_x``, ``d_r2``):
first derivatives are exact; second derivatives are central differences of those exact first
derivatives, two criterion evaluations per parameter (four with the Richardson step for lmerTest's
observed information); never refits, never n x n matrices.
See docs/engine-derivation.md, "Small-sample inference".

Two parametrisations are used, as the two reference implementations do:

* lmerTest (Satterthwaite): phi = (theta, sigma), theta the relative Cholesky factors.
* pbkrtest (Kenward-Roger): tau, linear in the covariance, Sigma = sum_k tau_k G_k: per level the
  variances and covariances of its random effects (lower triangle of Psi = sigma^2 Lambda
  Lambda', in the order of theta), then the residual variance sigma^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.mixed.criterion import NestedCriterion

RELATIVE_STEP = 1e-4  # central differences of exact gradients: error ~ step^2, far below 1e-6
BOUNDARY_LIFT = 1e-8  # Kenward-Roger at a zero variance: evaluated at 1e-8 sigma^2 instead


@dataclass
class DataScale:
    """The linear map from the engine's internal fixed effects to the reported ones: b = T b_int + c."""

    transform: np.ndarray  # T, (p, p)

    def covariance(self, internal: np.ndarray) -> np.ndarray:
        return self.transform @ internal @ self.transform.T

    def information(self, internal: np.ndarray) -> np.ndarray:
        """A matrix like X'V^-1X (a covariance's inverse) in the reported coordinates."""
        inverse = np.linalg.inv(self.transform)
        return inverse.T @ internal @ inverse


@dataclass
class SigmaThetaDerivatives:
    """lmerTest's pieces in phi = (theta, sigma).

    ``cov`` is cov(beta) on the data scale, ``jacobian[k]`` its derivative in phi_k and
    ``information`` the observed information of phi: half the Hessian of the REML deviance
    -2 log L_R(theta, sigma) (sigma not profiled out).
    """

    cov: np.ndarray
    jacobian: np.ndarray  # (params + 1, p, p)
    information: np.ndarray  # (params + 1, params + 1)


@dataclass
class CovarianceDerivatives:
    """pbkrtest's pieces in tau (linear covariance parameters), all on the data scale.

    ``phi`` = (X'Sigma^-1X)^-1; ``p_matrices[i]`` = d(X'Sigma^-1X)/dtau_i; ``q_sym[i, j]`` =
    d^2(X'Sigma^-1X)/dtau_i dtau_j (= Q_ij + Q_ji in Kenward and Roger's notation);
    ``expected_information`` = 1/2 tr(P~ G_i P~ G_j), the REML expected information of tau.
    """

    phi: np.ndarray
    p_matrices: np.ndarray  # (m, p, p)
    q_sym: np.ndarray  # (m, m, p, p)
    expected_information: np.ndarray  # (m, m)


def _theta_steps(criterion, theta: np.ndarray) -> np.ndarray:
    """Central-difference steps for theta, relative to its size with the random-effect columns at
    unit size (``unit_free_theta_scale``), so that the df do not depend on the units of a slope."""
    unit = np.asarray(criterion.unit_free_theta_scale(), dtype=float)
    size = max(float(np.max(np.abs(theta) * unit)) if theta.size else 1.0, 1e-2)
    return RELATIVE_STEP * size / unit


def sigma_theta_derivatives(criterion: NestedCriterion, theta: np.ndarray, sigma: float,
                            scale: DataScale) -> SigmaThetaDerivatives:
    """cov(beta), its Jacobian in (theta, sigma) and the observed information (lmerTest's choice).

    The REML deviance with sigma given is D = log|V| + log|A| + (n - p) log(2 pi sigma^2) + r2 / sigma^2
    (A = X'V^-1X); its theta-gradient is exact, its sigma-derivatives are analytic, and the
    theta-theta block of the Hessian is the central difference of the exact theta-gradient.
    """
    theta = np.asarray(theta, dtype=float)
    m = theta.size
    evaluation = criterion.evaluate(theta, gradient=True)
    dof = criterion.n - criterion.p
    a_inv = np.linalg.inv(evaluation.xtvx)
    hessian = np.empty((m + 1, m + 1))
    steps = _theta_steps(criterion, theta)
    for t in range(m):
        step = steps[t]
        # Richardson: (4 D(h/2) - D(h)) / 3 cancels the h^2 term of the central difference, which
        # matters near a boundary, where the deviance is quartic in a small theta.
        wide, narrow = (_central_difference(criterion, theta, sigma, t, h) for h in (step, step / 2))
        hessian[:m, t] = (4.0 * narrow - wide) / 3.0
    hessian[:m, :m] = 0.5 * (hessian[:m, :m] + hessian[:m, :m].T)
    hessian[m, :m] = hessian[:m, m] = -2.0 * evaluation.d_r2 / sigma ** 3
    hessian[m, m] = -2.0 * dof / sigma ** 2 + 6.0 * evaluation.r2 / sigma ** 4
    jacobian = np.empty((m + 1, a_inv.shape[0], a_inv.shape[0]))
    for t in range(m):
        jacobian[t] = scale.covariance(-sigma ** 2 * a_inv @ evaluation.d_xtvx[t] @ a_inv)
    jacobian[m] = scale.covariance(2.0 * sigma * a_inv)
    return SigmaThetaDerivatives(scale.covariance(sigma ** 2 * a_inv), jacobian, 0.5 * hessian)


def _central_difference(criterion: NestedCriterion, theta: np.ndarray, sigma: float, t: int, step: float) -> np.ndarray:
    up, down = theta.copy(), theta.copy()
    up[t] += step
    down[t] -= step
    return (_theta_gradient(criterion, up, sigma) - _theta_gradient(criterion, down, sigma)) / (2 * step)


def _theta_gradient(criterion: NestedCriterion, theta: np.ndarray, sigma: float) -> np.ndarray:
    evaluation = criterion.evaluate(theta, gradient=True)
    return evaluation.d_logdet_v + evaluation.d_logdet_x + evaluation.d_r2 / sigma ** 2


# ----- the linear (variance-covariance) parametrisation ------------------------------------------
class LinearCovarianceMap:
    """tau <-> (theta, s = sigma^2) and the Jacobian d tau / d(theta, s).

    Per level, tau holds the entries of Psi_c = U Psi U' (Psi = s Lambda Lambda') at the positions
    of theta's basis matrices (diagonal for intercepts and independent effects, the lower triangle
    for unstructured ones, one shared variance for identity), so tau has as many entries as theta,
    and the residual variance s comes last. U = T^-1 for the criterion's ``effect_transforms`` T
    (Z T: the level's columns at unit size, slopes centred beside a correlated intercept), or the
    columns' sizes: Psi_c is the covariance of the effects on those columns. pbkrtest takes the
    entries of Psi itself; Kenward-Roger's covariance and df do not change under a linear
    reparametrisation of tau, and these coordinates keep its differences and the inverse
    information well conditioned whatever the units or the origin of a random slope.
    """

    def __init__(self, criterion: NestedCriterion):
        self.criterion = criterion
        self.offsets = criterion.param_offsets
        self.covariances = [terms.covariance for terms in criterion.levels]
        self.positions = [cov.covariance_entries() for cov in self.covariances]
        transforms = getattr(criterion, "effect_transforms", None) or [None] * len(self.covariances)
        self.to_unit, self.from_unit = [], []  # U and T = U^-1 per level
        for index, (cov, transform) in enumerate(zip(self.covariances, transforms)):
            if transform is None:
                sizes = np.asarray(criterion.effect_scales(index), dtype=float)
                if cov.shares_variance:  # a multiple of I keeps a shared variance's pattern
                    sizes = np.full(cov.q, float(np.exp(np.mean(np.log(sizes)))))
                transform = np.diag(1.0 / sizes)
            self.from_unit.append(np.asarray(transform, dtype=float))
            self.to_unit.append(np.linalg.inv(transform))

    def _entries(self, index: int, psi: np.ndarray) -> list[float]:
        """tau's entries of level ``index`` for the covariance Psi (in the data's columns)."""
        unit = self.to_unit[index] @ psi @ self.to_unit[index].T
        return [unit[i, j] for i, j in self.positions[index]]

    def tau_of(self, theta: np.ndarray, s: float) -> np.ndarray:
        out = []
        for index, cov in enumerate(self.covariances):
            lam = cov.lambda_of(theta[self.offsets[index]:self.offsets[index + 1]])
            out += self._entries(index, s * lam @ lam.T)
        return np.array(out + [s])

    def theta_s_of(self, tau: np.ndarray) -> tuple[np.ndarray, float]:
        s = float(tau[-1])
        theta = []
        for index, cov in enumerate(self.covariances):
            back = self.from_unit[index]
            psi = back @ self.level_matrix(tau, index) @ back.T
            theta.append(cov.theta_of_covariance(0.5 * (psi + psi.T) / s))
        return (np.concatenate(theta) if theta else np.zeros(0)), s

    def level_matrix(self, tau: np.ndarray, index: int) -> np.ndarray:
        """Psi_c of level ``index`` from tau (unit-free)."""
        cov = self.covariances[index]
        return cov.covariance_of_entries(tau[self.offsets[index]:self.offsets[index + 1]])

    def lift_off_boundary(self, tau: np.ndarray) -> np.ndarray:
        """tau with every singular level covariance Psi_c moved to Psi_c + delta s I (delta = BOUNDARY_LIFT).

        At a variance estimated as 0 the map to theta is singular (dPsi/dtheta = 2 s theta = 0),
        while Kenward-Roger's quantities are smooth in tau there; evaluating them a relative
        1e-8 inside the boundary changes them by about that much (pbkrtest works at 0 itself).
        """
        s = float(tau[-1])
        out = tau.copy()
        for index, cov in enumerate(self.covariances):
            start = self.offsets[index]
            psi = self.level_matrix(tau, index)
            if np.linalg.eigvalsh(psi / s).min() >= BOUNDARY_LIFT:
                continue
            psi = psi + BOUNDARY_LIFT * s * np.eye(cov.q)
            for r, (i, j) in enumerate(self.positions[index]):
                out[start + r] = psi[i, j]
        return out

    def jacobian(self, theta: np.ndarray, s: float) -> np.ndarray:
        """K[i, k] = d tau_i / d (theta, s)_k, square."""
        m = theta.size
        jac = np.zeros((m + 1, m + 1))
        for index, cov in enumerate(self.covariances):
            start, stop = self.offsets[index], self.offsets[index + 1]
            lam = cov.lambda_of(theta[start:stop])
            for k, basis in enumerate(cov.basis):
                jac[start:stop, start + k] = self._entries(index, s * (basis @ lam.T + lam @ basis.T))
            jac[start:stop, m] = self._entries(index, lam @ lam.T)
        jac[m, m] = 1.0
        return jac


def covariance_derivatives(criterion: NestedCriterion, theta: np.ndarray, sigma: float,
                           scale: DataScale) -> CovarianceDerivatives:
    """Kenward-Roger's P, Q and expected information in tau, from the recursion's exact gradients.

    With Sigma linear in tau, Q_ij + Q_ji = d^2(X'Sigma^-1X)/dtau_i dtau_j and the REML expected
    information is -1/2 d^2(log|Sigma| + log|X'Sigma^-1X|)/dtau_i dtau_j. Both are central
    differences of exact tau-gradients, which are the (theta, s)-gradients mapped by K^-T.
    """
    mapping = LinearCovarianceMap(criterion)
    s = sigma ** 2
    tau = mapping.lift_off_boundary(mapping.tau_of(np.asarray(theta, dtype=float), s))
    m = tau.size
    g_centre, d_info, info = _tau_gradients(criterion, mapping, tau)
    second_logdet = np.empty((m, m))
    second_info = np.empty((m, m) + info.shape)
    for j in range(m):
        step, forward = _tau_step(mapping, tau, j)
        if forward:  # near the boundary: one side only, (-3 f(0) + 4 f(h) - f(2h)) / 2h (h may be < 0)
            near, far = tau.copy(), tau.copy()
            near[j] += step
            far[j] += 2 * step
            g_near, d_near, _ = _tau_gradients(criterion, mapping, near)
            g_far, d_far, _ = _tau_gradients(criterion, mapping, far)
            second_logdet[:, j] = (4 * g_near - g_far - 3 * g_centre) / (2 * step)
            second_info[:, j] = (4 * d_near - d_far - 3 * d_info) / (2 * step)
            continue
        up, down = tau.copy(), tau.copy()
        up[j] += step
        down[j] -= step
        g_up, d_up, _ = _tau_gradients(criterion, mapping, up)
        g_down, d_down, _ = _tau_gradients(criterion, mapping, down)
        second_logdet[:, j] = (g_up - g_down) / (2 * step)
        second_info[:, j] = (d_up - d_down) / (2 * step)
    second_logdet = 0.5 * (second_logdet + second_logdet.T)
    second_info = 0.5 * (second_info + second_info.transpose(1, 0, 2, 3))
    p_matrices = np.array([scale.information(d) for d in d_info])
    q_sym = np.array([[scale.information(second_info[i, j]) for j in range(m)] for i in range(m)])
    return CovarianceDerivatives(scale.covariance(np.linalg.inv(info)), p_matrices, q_sym, -0.5 * second_logdet)


def _tau_step(mapping: LinearCovarianceMap, tau: np.ndarray, j: int) -> tuple[float, bool]:
    """A step relative to the size of the entry (covariances: to their variances' geometric mean),
    and whether to difference on one side only (then the step's sign gives the side).

    A change h of one entry moves Psi_c's eigenvalues by at most h: a central difference keeps
    Psi_c positive definite with h below half its smallest eigenvalue. Where that would shrink
    the step (Psi_c singular or nearly so), the entry is differenced on one side with the full
    step where Psi_c stays positive definite there (a variance upward; a covariance towards
    zero): tiny central steps would magnify the rounding of the gradients.
    """
    s = tau[-1]
    if j == tau.size - 1:
        return RELATIVE_STEP * s, False
    level = int(np.searchsorted(mapping.offsets, j, side="right")) - 1
    i, k = mapping.positions[level][j - mapping.offsets[level]]
    psi = mapping.level_matrix(tau, level)
    step = RELATIVE_STEP * max(float(np.sqrt(psi[i, i] * psi[k, k])), 1e-2 * s)
    room = 0.5 * float(np.linalg.eigvalsh(psi).min())
    if room >= step:
        return step, False
    signed = step if i == k or psi[i, k] == 0 else -step * float(np.sign(psi[i, k]))
    far = tau.copy()
    far[j] += 2 * signed
    if np.linalg.eigvalsh(mapping.level_matrix(far, level)).min() > 0:  # then also at tau + signed (convexity)
        return signed, True
    return room, False


def _tau_gradients(criterion: NestedCriterion, mapping: LinearCovarianceMap, tau: np.ndarray):
    """At tau: the tau-gradient of log|Sigma| + log|X'Sigma^-1X|, that of X'Sigma^-1X, and X'Sigma^-1X."""
    theta, s = mapping.theta_s_of(tau)
    evaluation = criterion.evaluate(theta, gradient=True)
    n, p = criterion.n, criterion.p
    m = theta.size
    # (theta, s)-gradients: Sigma = s V, so log|Sigma| = n log s + log|V|, X'Sigma^-1X = A / s.
    g_logdet = np.empty(m + 1)
    g_logdet[:m] = evaluation.d_logdet_v + evaluation.d_logdet_x
    g_logdet[m] = (n - p) / s
    info = evaluation.xtvx / s
    d_info = np.empty((m + 1,) + info.shape)
    d_info[:m] = evaluation.d_xtvx / s
    d_info[m] = -info / s
    k_transpose = mapping.jacobian(theta, s).T
    g_tau = np.linalg.solve(k_transpose, g_logdet)
    d_tau = np.linalg.solve(k_transpose, d_info.reshape(m + 1, -1)).reshape(d_info.shape)
    return g_tau, d_tau, info
