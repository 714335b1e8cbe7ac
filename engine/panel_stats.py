"""Statistics that regress / xtreg print and the fitting libraries do not hand over in Stata's form.

Coefficient rows (t or z), joint tests of all non-constant coefficients, group counts, the
columns that the within transformation removes, and the equivalent Stata command.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from engine.distributions import chi2_sf, f_sf, normal_quantile, normal_sf, t_quantile, t_sf
from engine.results import FixedEffect, GroupCount, Test

CONSTANT = "_cons"
CONFIDENCE = 0.95
# A predictor is collinear once the panel means are removed when what is left of it is below
# this fraction of its size before the means were removed.
WITHIN_TOLERANCE = 1e-9


def coefficient_rows(names: list[str], params: np.ndarray, vcov: np.ndarray,
                     t_df: Optional[int] = None) -> list[FixedEffect]:
    """Stata's coefficient table: estimate, SE, t or z, two-sided p and 95% interval.

    Parameters
    ----------
    names : list of str
        Coefficient names.
    params : numpy.ndarray
        Estimates.
    vcov : numpy.ndarray
        Their covariance matrix.
    t_df : int or None
        Degrees of freedom of the t distribution; ``None`` for the normal (z) distribution.

    Returns
    -------
    list of FixedEffect
    """
    params = np.asarray(params, dtype=float)
    se = np.sqrt(np.diag(np.asarray(vcov, dtype=float)))
    if t_df is None:
        critical, upper_tail = normal_quantile(0.5 + CONFIDENCE / 2), normal_sf
    else:
        critical, upper_tail = t_quantile(0.5 + CONFIDENCE / 2, t_df), (lambda x: t_sf(x, t_df))
    rows = []
    for name, coef, error in zip(names, params, se):
        statistic = coef / error if error > 0 else float("nan")
        p = 2 * upper_tail(abs(statistic))
        rows.append(FixedEffect(term=name, coef=float(coef), se=float(error), z=float(statistic), p=float(p),
                                ci=[float(coef - critical * error), float(coef + critical * error)],
                                df=None if t_df is None else int(t_df),
                                t=None if t_df is None else float(statistic)))
    return rows


def joint_test(names: list[str], params: np.ndarray, vcov: np.ndarray,
               df2: Optional[int] = None) -> Optional[Test]:
    """Wald test that every coefficient except ``_cons`` is zero (Stata's model test).

    Parameters
    ----------
    names, params, vcov
        The coefficients and their covariance.
    df2 : int or None
        Denominator degrees of freedom: an F test (``regress``, ``xtreg, fe``) when given,
        a chi-squared test (``xtreg, re``) when ``None``.

    Returns
    -------
    Test or None
        ``None`` when there is no coefficient to test.
    """
    tested = [i for i, name in enumerate(names) if name != CONSTANT]
    if not tested:
        return None
    b = np.asarray(params, dtype=float)[tested]
    v = np.asarray(vcov, dtype=float)[np.ix_(tested, tested)]
    wald = float(b @ np.linalg.solve(v, b))
    q = len(tested)
    if df2 is None:
        return Test(stat=wald, df=q, p=float(chi2_sf(wald, q)), kind="chi2")
    if df2 < q:  # Stata leaves the F test out when there are fewer clusters than restrictions
        return Test(stat=float("nan"), df=q, p=float("nan"), kind="F", df2=df2)
    return Test(stat=wald / q, df=q, p=float(f_sf(wald / q, q, df2)), kind="F", df2=df2)


def group_count(level: str, codes: np.ndarray) -> GroupCount:
    """Number of groups and the observations per group (min, mean, max)."""
    sizes = np.bincount(codes)
    return GroupCount(level=level, groups=int(sizes.size), min=int(sizes.min()),
                      mean=float(sizes.mean()), max=int(sizes.max()))


def demean_by_group(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Subtract from each row the mean of its group (columns of a 2-d array, or a 1-d array)."""
    values = np.asarray(values, dtype=float)
    two_d = values.reshape(len(codes), -1)
    sizes = np.bincount(codes).astype(float)
    means = np.vstack([np.bincount(codes, weights=column) for column in two_d.T]).T / sizes[:, None]
    return (two_d - means[codes]).reshape(values.shape)


def split_within_collinear(matrix: np.ndarray, names: list[str], codes: np.ndarray) -> tuple[list[int], list[int]]:
    """Columns kept and omitted by the within (fixed-effects) transformation, as Stata's xtreg, fe.

    A predictor that is constant within every group, or a combination of the predictors
    before it once the group means are removed, has no within variation and is omitted
    ("x omitted because of collinearity"). The constant ``_cons`` is always kept: xtreg, fe
    reports it as the mean of the fixed effects.

    Parameters
    ----------
    matrix : numpy.ndarray
        The design (rows x columns).
    names : list of str
        Column names.
    codes : numpy.ndarray
        Group code of each row.

    Returns
    -------
    kept, omitted : list of int
        Column positions.
    """
    demeaned = demean_by_group(matrix, codes)
    basis = np.zeros((matrix.shape[0], 0))
    kept, omitted = [], []
    for j, name in enumerate(names):
        if name == CONSTANT:
            kept.append(j)
            continue
        column = demeaned[:, j]
        remainder = column - basis @ (basis.T @ column)
        size = np.linalg.norm(matrix[:, j])
        if size == 0 or np.linalg.norm(remainder) <= WITHIN_TOLERANCE * size:
            omitted.append(j)
            continue
        kept.append(j)
        basis = np.column_stack([basis, remainder / np.linalg.norm(remainder)])
    return kept, omitted


def stata_command(command: str, outcome: str, terms: list[str], options: list[str],
                  panel: Optional[str] = None) -> str:
    """The equivalent Stata command, e.g. ``xtset student_id; xtreg perform tutoring, fe``."""
    text = " ".join([command, outcome, *terms])
    chosen = [option for option in options if option]
    if chosen:
        text += ", " + " ".join(chosen)
    return f"xtset {panel}; {text}" if panel else text
