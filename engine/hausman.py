"""Hausman specification test of fixed against random effects, as Stata's ``hausman fe re``."""

from __future__ import annotations

import numpy as np

from engine.distributions import chi2_sf
from engine.errors import UserInputError
from engine.panel_stats import CONSTANT
from engine.results import FitResult, Test

# Eigenvalues of V_fe - V_re below this fraction of the largest count as zero (rank, generalized inverse).
RANK_TOLERANCE = 1e-10


def hausman(fe_result: FitResult, re_result: FitResult) -> Test:
    """Hausman test that the random-effects estimates are consistent, as ``hausman fe re``.

    The statistic is (b - B)' (V_b - V_B)^- (b - B) over the coefficients both models
    estimate, ``_cons`` left out, where b, V_b are the fixed-effects estimates and their
    covariance and B, V_B the random-effects ones (each with its own sigma, Stata's default).
    The degrees of freedom are the rank of V_b - V_B, which is the number of common
    coefficients unless the difference is singular. When V_b - V_B is not positive definite
    a warning is added to the fixed-effects result, as Stata notes under its table.
    The test is also stored on ``fe_result.hausman``.

    Parameters
    ----------
    fe_result : FitResult
        A result of :func:`engine.panel.fit_fe` with conventional standard errors.
    re_result : FitResult
        A result of :func:`engine.panel.fit_re` on the same data, with conventional standard errors.

    Returns
    -------
    Test
        kind 'chi2'.

    Raises
    ------
    UserInputError
        If the results are not FE and RE fits of the same outcome and sample, if either uses
        robust or clustered standard errors (Stata's hausman refuses them), or if the
        models have no common coefficient besides ``_cons``.
    """
    check_comparable(fe_result, re_result)
    common = common_terms(fe_result, re_result)
    difference = coefficients(fe_result, common) - coefficients(re_result, common)
    covariance = covariance_block(fe_result, common) - covariance_block(re_result, common)
    statistic, rank, positive_definite = quadratic_form(difference, covariance)
    test = Test(stat=statistic, df=rank, p=float(chi2_sf(statistic, rank)) if rank else float("nan"),
                kind="chi2")
    if not positive_definite:
        fe_result.warnings.append(
            "Hausman test: V_b-V_B is not positive definite; the statistic uses a generalized inverse")
    fe_result.hausman = test
    return test


def check_comparable(fe_result: FitResult, re_result: FitResult) -> None:
    """Refuse pairs that ``hausman fe re`` cannot compare."""
    if fe_result.estimator != "fe" or re_result.estimator != "re":
        raise UserInputError(
            f"the Hausman test compares a fixed-effects and a random-effects fit (in that order), "
            f"not {fe_result.estimator!r} and {re_result.estimator!r}")
    if fe_result.depvar != re_result.depvar or fe_result.nobs != re_result.nobs:
        raise UserInputError(
            f"the Hausman test needs both fits on the same data: the FE fit has {fe_result.nobs} observations "
            f"of {fe_result.depvar}, the RE fit {re_result.nobs} of {re_result.depvar}")
    for result in (fe_result, re_result):
        if "vce(" in result.model:
            raise UserInputError(
                "the Hausman test needs conventional standard errors: Stata's hausman cannot be used "
                f"with robust or clustered ones ({result.model})")


def common_terms(fe_result: FitResult, re_result: FitResult) -> list[str]:
    """Coefficients estimated by both models, in the FE order, without ``_cons``."""
    re_terms = {row.term for row in re_result.fixed}
    common = [row.term for row in fe_result.fixed if row.term != CONSTANT and row.term in re_terms]
    if not common:
        raise UserInputError("the Hausman test needs a coefficient (other than _cons) that both models estimate")
    return common


def coefficients(result: FitResult, terms: list[str]) -> np.ndarray:
    """The estimates of ``terms``."""
    return np.array([result.coef(term).coef for term in terms])


def covariance_block(result: FitResult, terms: list[str]) -> np.ndarray:
    """The rows and columns of ``result.vcov`` that belong to ``terms``."""
    order = [row.term for row in result.fixed]
    positions = [order.index(term) for term in terms]
    return np.asarray(result.vcov, dtype=float)[np.ix_(positions, positions)]


def quadratic_form(difference: np.ndarray, covariance: np.ndarray) -> tuple[float, int, bool]:
    """d' V^- d with the generalized inverse of the symmetric ``covariance``.

    Returns
    -------
    statistic : float
    rank : int
        Rank of ``covariance``.
    positive_definite : bool
        Whether every eigenvalue is above the tolerance.
    """
    symmetric = (covariance + covariance.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    scale = max(float(np.abs(values).max()), np.finfo(float).tiny)
    nonzero = np.abs(values) > RANK_TOLERANCE * scale
    inverse = (vectors[:, nonzero] / values[nonzero]) @ vectors[:, nonzero].T
    statistic = float(difference @ inverse @ difference)
    return statistic, int(nonzero.sum()), bool((values > RANK_TOLERANCE * scale).all())
