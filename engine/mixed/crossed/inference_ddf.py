"""Small-sample df (Stata's ``dfmethod()``) for models with crossed random factors.

The shared df code (``engine.mixed.variance_derivatives``, ``satterthwaite``, ``kenward_roger``)
reads a criterion through one interface: ``evaluate(theta, gradient=True)`` returning X'V^-1X,
r2, log|V|, log|X'V^-1X| and their exact theta-derivatives ``d_xtvx``, ``d_r2``, ``d_logdet_v``,
``d_logdet_x``; second derivatives are differences of those. ``DerivativeCriterion`` gives the
crossed criterion that interface: the exact derivatives of its sparse evaluation when it has them
(gradient.py; not when S^-1 is unaffordable or an unstructured Lambda singular), otherwise Richardson-extrapolated central differences of the exact sparse
evaluation (error ~ step^4). Kenward-Roger's P_i and Q_ij are derivatives of X'V^-1X, so no n x n
matrix is ever formed, whatever n.

The design-based methods: ``residual`` is n - rank(X); ``anova`` is the containment method over
the factors added coarsest first (nested levels outermost first, as in ``engine.mixed.ddf``;
the df do not depend on the order the model was written in), with the rank contributions of crossed indicator matrices computed after absorbing the largest factor;
``repeated`` is for two-level models and is refused by ``check_dfmethod``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.errors import UserInputError
from engine.mixed.crossed.factors import GroupingFactor
from engine.mixed.ddf import FixedEffectsInference, _FixedDf, _rank, check_dfmethod
from engine.mixed.kenward_roger import KenwardRoger
from engine.mixed.satterthwaite import Satterthwaite
from engine.mixed.variance_derivatives import DataScale, covariance_derivatives, sigma_theta_derivatives
from engine.model_spec import ModelSpec

DIFFERENCE_STEP = 1e-3  # relative; with Richardson's step halving the error is ~ step^4
ANOVA_DENSE_LIMIT = 2000  # columns left after absorbing the largest factor (a dense eigenproblem)


class DerivativeCriterion:
    """A crossed criterion with the exact-derivative interface the shared df code reads.

    Parameters
    ----------
    criterion : CrossedCriterion
        The fitted model's criterion (its public ``evaluate`` is all that is called).
    differences_only : bool
        Take the derivatives by differences even where the criterion has exact ones (for tests).
    """

    def __init__(self, criterion, differences_only: bool = False):
        self.criterion = criterion
        self.differences_only = differences_only
        self.n, self.p = criterion.n, criterion.p
        self.levels = criterion.levels
        self.param_offsets = criterion.param_offsets
        self.n_params = criterion.n_params
        self.reml = criterion.reml
        # unit-free coordinates for the steps and the linear parametrisation (variance_derivatives)
        self.effect_scales = criterion.effect_scales
        self.effect_transforms = criterion.effect_transforms
        self.unit_free_theta_scale = criterion.unit_free_theta_scale

    def evaluate(self, theta: np.ndarray, gradient: bool = True, keep: bool = False):
        """The criterion's evaluation at ``theta``, with the derivative pieces when ``gradient``."""
        theta = np.asarray(theta, dtype=float)
        if not gradient:
            return self.criterion.evaluate(theta, gradient=False)
        if not self.differences_only:  # exact pieces unless the criterion fell back to differences
            evaluation = self.criterion.evaluate(theta, gradient=True)
            if evaluation.d_xtvx is not None and evaluation.d_logdet_v is not None:
                return evaluation
        return self._by_differences(theta)

    def _by_differences(self, theta: np.ndarray):
        evaluation = self.criterion.evaluate(theta, gradient=False)
        m, p = theta.size, self.p
        scale = max(float(np.max(np.abs(theta))) if m else 1.0, 1e-2)
        d_logdet_v, d_logdet_x, d_r2 = np.empty(m), np.empty(m), np.empty(m)
        d_xtvx = np.empty((m, p, p))
        for k in range(m):
            step = DIFFERENCE_STEP * max(abs(theta[k]), scale)
            wide, narrow = self._central(theta, k, step), self._central(theta, k, step / 2)
            logdet_v, logdet_x, r2, xtvx = ((4.0 * b - a) / 3.0 for a, b in zip(wide, narrow))
            d_logdet_v[k], d_logdet_x[k], d_r2[k], d_xtvx[k] = logdet_v, logdet_x, r2, xtvx
        evaluation.d_logdet_v, evaluation.d_logdet_x, evaluation.d_r2 = d_logdet_v, d_logdet_x, d_r2
        evaluation.d_xtvx = 0.5 * (d_xtvx + d_xtvx.transpose(0, 2, 1))
        return evaluation

    def _central(self, theta: np.ndarray, k: int, step: float):
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        hi, lo = (self.criterion.evaluate(t, gradient=False) for t in (up, down))
        return tuple((a - b) / (2.0 * step) for a, b in (
            (hi.logdet_v, lo.logdet_v), (hi.logdet_x, lo.logdet_x), (hi.r2, lo.r2), (hi.xtvx, lo.xtvx)))


def crossed_fixed_effects_inference(spec: ModelSpec, names: list[str], beta: np.ndarray, cov: np.ndarray,
                                    criterion, theta: np.ndarray, sigma: float, scale: DataScale,
                                    design: np.ndarray, factors: list[GroupingFactor]) -> FixedEffectsInference:
    """The inference for ``spec.dfmethod`` of a crossed fit at its optimum ``theta``.

    As ``engine.mixed.ddf.fixed_effects_inference``, with the crossed criterion and its grouping
    factors (in the model's level order) in place of the nested criterion and hierarchy.
    """
    method = spec.dfmethod
    if method is None:
        return FixedEffectsInference(names, beta, cov, None)
    check_dfmethod(spec)
    if method in ("satterthwaite", "kroger"):
        derivatives = DerivativeCriterion(criterion)
        if method == "satterthwaite":
            engine = Satterthwaite(sigma_theta_derivatives(derivatives, theta, sigma, scale))
        else:
            engine = KenwardRoger(covariance_derivatives(derivatives, theta, sigma, scale))
        return FixedEffectsInference(names, beta, engine.cov, method, engine)
    dfs = crossed_design_df(method, design, factors)
    return FixedEffectsInference(names, beta, cov, method, _FixedDf(method, cov, dfs))


def crossed_design_df(method: str, design: np.ndarray, factors: list[GroupingFactor]) -> np.ndarray:
    """Per-column df of the residual and anova (containment) methods for crossed random intercepts.

    anova: a coefficient whose column is constant within a factor's groups is contained in it; its
    df are the smallest rank contribution of a containing factor to [X Z_1 .. Z_k] (factors added
    coarsest first), and n - rank([X Z]) when no factor contains it.
    """
    n, p = design.shape
    rank_x = _rank(design.T @ design)
    if method == "residual":
        return np.full(p, float(n - rank_x))
    if method != "anova":
        raise UserInputError(f"dfmethod({method}) does not apply to crossed random factors")
    # Coarsest first (fewest groups; ties as written): nested levels then enter outermost first, as on
    # the nested path, and the df do not depend on the order the model was written in.
    ordered = sorted(factors, key=lambda factor: factor.n_groups)
    ranks = [rank_x] + [_rank_with_factors(design, ordered[:k + 1]) for k in range(len(ordered))]
    contributions = np.diff(ranks)
    dfs = np.full(p, float(n - ranks[-1]))
    for index, factor in enumerate(ordered):
        if contributions[index] > 0:
            constant = _constant_within(design, factor)
            dfs = np.where(constant, np.minimum(dfs, contributions[index]), dfs)
    return dfs


def _indicators(factor: GroupingFactor) -> sp.csc_matrix:
    rows = np.arange(factor.codes.size)
    return sp.csc_matrix((np.ones(rows.size), (rows, factor.codes)), shape=(rows.size, factor.n_groups))


def _rank_with_factors(design: np.ndarray, factors: list[GroupingFactor]) -> int:
    """rank([X Z_1 .. Z_k]) for random-intercept indicators: the largest factor's groups (all
    independent) plus the rank of the other columns after removing their means within its groups."""
    largest = max(range(len(factors)), key=lambda i: factors[i].n_groups)
    absorbed = factors[largest]
    others = [_indicators(f) for i, f in enumerate(factors) if i != largest]
    columns = sp.hstack([sp.csc_matrix(design)] + others, format="csc")
    if columns.shape[1] > ANOVA_DENSE_LIMIT:
        raise UserInputError(
            f"dfmethod(anova) needs the rank of a {columns.shape[1]:,}-column matrix for these crossed factors, "
            f"more than it computes ({ANOVA_DENSE_LIMIT:,}); use dfmethod(satterthwaite) or dfmethod(kroger)")
    gram = (columns.T @ columns).toarray()
    counts = np.bincount(absorbed.codes, minlength=absorbed.n_groups).astype(float)
    sums = (_indicators(absorbed).T @ columns).toarray()  # group sums of every column
    within = gram - sums.T @ (sums / counts[:, None])  # columns' cross-products after removing group means
    size = np.sqrt(np.maximum(np.diag(gram), 1e-300))  # measured against the columns' own size: a column
    eigenvalues = np.linalg.eigvalsh(within / np.outer(size, size))  # absorbed entirely leaves ~0, not noise
    top = max(float(eigenvalues.max()), 1e-300)
    return absorbed.n_groups + int(np.sum(eigenvalues > 1e-9 * max(top, 1.0)))


def _constant_within(design: np.ndarray, factor: GroupingFactor) -> np.ndarray:
    """Columns of X with one value in every group of the factor."""
    first_row = np.empty(factor.n_groups, dtype=np.int64)
    first_row[factor.codes[::-1]] = np.arange(factor.codes.size - 1, -1, -1)
    spread = np.abs(design - design[first_row][factor.codes]).max(axis=0) if design.size else np.zeros(0)
    size = np.maximum(np.abs(design).max(axis=0), 1e-300) if design.size else np.zeros(0)
    return spread <= 1e-10 * size
