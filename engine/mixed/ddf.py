"""Tests of the fixed effects under Stata's dfmethod(): t and F with denominator df, or z and chi2.

Methods (Stata's names):

* ``residual``: every coefficient gets n - rank(X).
* ``repeated`` (two-level random-intercept models): a coefficient whose column is constant within
  the groups is a between-group effect with G - rank(X_between) df; the others get the
  within-group df n - G - (rank(X) - rank(X_between)) (the two add up to the residual df).
* ``anova`` (nested random intercepts): the containment method. A coefficient is contained in a
  level when its column is constant within that level's groups; its df are the smallest rank
  contribution of a containing level to [X Z] (levels added outermost first), and the residual
  df n - rank([X Z]) when no level contains it.
* ``satterthwaite``: as lmerTest (observed information in (theta, sigma)).
* ``kroger``: as pbkrtest (adjusted covariance, expected information, scaled F).

Joint tests follow lmerTest's ``contestMD`` (Satterthwaite) and pbkrtest's ``KRmodcomp``
(Kenward-Roger); under the first three methods the F test takes the smallest df of the tested
coefficients (all equal in the designs these methods are meant for).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.distributions import chi2_sf, f_sf, normal_quantile, normal_sf, t_quantile, t_sf
from engine.errors import UserInputError
from engine.mixed.criterion import NestedCriterion
from engine.mixed.hierarchy import Hierarchy
from engine.mixed.kenward_roger import KenwardRoger
from engine.mixed.satterthwaite import Satterthwaite
from engine.mixed.variance_derivatives import DataScale, covariance_derivatives, sigma_theta_derivatives
from engine.model_spec import REML_ONLY_DF_METHODS, ModelSpec
from engine.results import FixedEffect, JointTest, Test

CONFIDENCE = 0.95
METHOD_LABELS = {None: "z (large sample)", "residual": "residual", "repeated": "repeated",
                 "anova": "ANOVA", "satterthwaite": "Satterthwaite", "kroger": "Kenward-Roger"}


def check_dfmethod(spec: ModelSpec) -> None:
    """Refuse a df method that cannot apply to this model, with the reason."""
    method = spec.dfmethod
    if method in REML_ONLY_DF_METHODS and spec.method != "REML":
        raise UserInputError(f"dfmethod({method}) requires REML estimation: add reml to the model "
                             f"(or --reml), as Stata requires")
    slopes = any(level.slopes for level in spec.levels)
    if method == "repeated" and (len(spec.levels) != 1 or slopes):
        raise UserInputError("dfmethod(repeated) applies to two-level models with a random intercept only "
                             "(one level, no random slopes); use satterthwaite or kroger")
    if method == "anova" and slopes:
        raise UserInputError("dfmethod(anova) applies to nested random intercepts only (no random slopes); "
                             "use satterthwaite or kroger")


class _FixedDf:
    """Per-coefficient df fixed by the design (residual, repeated, anova); cov is the usual one."""

    def __init__(self, name: str, cov: np.ndarray, dfs: np.ndarray):
        self.name = name
        self.cov = cov
        self.dfs = dfs

    def coefficient_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def contrast_df(self, contrast: np.ndarray) -> float:
        used = np.abs(np.asarray(contrast)) > 0
        return float(np.min(self.dfs[used]))

    def f_test(self, rows: np.ndarray, beta: np.ndarray) -> tuple[float, int, float, float]:
        rows = np.atleast_2d(rows)
        estimate = rows @ beta
        q = int(np.linalg.matrix_rank(rows))
        f_value = float(estimate @ np.linalg.solve(rows @ self.cov @ rows.T, estimate)) / q
        df2 = float(np.min(self.dfs[np.any(np.abs(rows) > 0, axis=0)]))
        return f_value, q, df2, float(f_sf(f_value, q, df2))


@dataclass
class FixedEffectsInference:
    """Coefficients, the covariance the tests use, and the df method: everything a test needs."""

    names: list[str]
    beta: np.ndarray
    cov: np.ndarray  # Kenward-Roger: the adjusted covariance
    dfmethod: str | None
    method: object | None = None  # Satterthwaite, KenwardRoger or _FixedDf; None for z

    def coefficient_rows(self) -> list[FixedEffect]:
        rows = []
        critical_z = normal_quantile(0.5 + CONFIDENCE / 2)
        for j, name in enumerate(self.names):
            coef = float(self.beta[j])
            se = float(np.sqrt(max(self.cov[j, j], 0.0)))
            ratio = coef / se if se > 0 else float("nan")
            if self.method is None or not se > 0:
                p = float(2 * normal_sf(abs(ratio))) if se > 0 else float("nan")
                rows.append(FixedEffect(name, coef, se, ratio, p, [coef - critical_z * se, coef + critical_z * se]))
                continue
            df = self.method.contrast_df(np.eye(len(self.names))[j])
            critical = t_quantile(0.5 + CONFIDENCE / 2, df)
            rows.append(FixedEffect(name, coef, se, ratio, float(2 * t_sf(abs(ratio), df)),
                                    [coef - critical * se, coef + critical * se], df=float(df), t=ratio))
        return rows

    def joint_test(self, columns: list[str], terms: list[str] | None = None) -> JointTest:
        """Wald test that the named coefficients are all zero: F with the method's df, or chi2."""
        index = [self.names.index(c) for c in columns]
        rows = np.eye(len(self.names))[index]
        label = self.dfmethod or "z"
        if self.method is None:
            estimate = rows @ self.beta
            chi2 = float(estimate @ np.linalg.solve(rows @ self.cov @ rows.T, estimate))
            q = len(index)
            return JointTest(terms or columns, columns, df1=q, p=float(chi2_sf(chi2, q)), chi2=chi2,
                             dfmethod=label)
        f_value, q, df2, p = self.method.f_test(rows, self.beta)
        return JointTest(terms or columns, columns, F=f_value, df1=q, df2=df2, p=p, dfmethod=label)

    def overall_test(self) -> Test | None:
        """The header's test that every coefficient but `_cons` is zero: Wald chi2, or F under a df method."""
        columns = [n for n in self.names if n != "_cons"]
        if not columns:
            return None
        test = self.joint_test(columns)
        if test.F is None:
            return Test(test.chi2, test.df1, test.p, "chi2")
        return Test(test.F, test.df1, test.p, "F", df2=test.df2)


def fixed_effects_inference(spec: ModelSpec, names: list[str], beta: np.ndarray, cov: np.ndarray,
                            criterion: NestedCriterion, theta: np.ndarray, sigma: float, scale: DataScale,
                            design: np.ndarray, hierarchy: Hierarchy) -> FixedEffectsInference:
    """The inference for ``spec.dfmethod`` at the optimum ``theta`` (REML for Satterthwaite and KR).

    ``scale`` maps the criterion's internal fixed effects to ``beta``; ``design`` is X on the
    data scale (rows used by the fit), used by the design-based methods.
    """
    method = spec.dfmethod
    if method is None:
        return FixedEffectsInference(names, beta, cov, None)
    check_dfmethod(spec)
    if method == "satterthwaite":
        engine = Satterthwaite(sigma_theta_derivatives(criterion, theta, sigma, scale))
        return FixedEffectsInference(names, beta, engine.cov, method, engine)
    if method == "kroger":
        engine = KenwardRoger(covariance_derivatives(criterion, theta, sigma, scale))
        return FixedEffectsInference(names, beta, engine.cov, method, engine)
    dfs = design_df(method, design, hierarchy)
    return FixedEffectsInference(names, beta, cov, method, _FixedDf(method, cov, dfs))


def design_df(method: str, design: np.ndarray, hierarchy: Hierarchy) -> np.ndarray:
    """Per-column df of the residual, repeated and anova methods."""
    n, p = design.shape
    rank_x = _rank(design.T @ design)
    if method == "residual" or hierarchy.n_levels == 0:
        return np.full(p, float(n - rank_x))
    ranks = [rank_x]  # rank([X Z_1 .. Z_l]) = G_l + rank(X minus level-l group means), nested intercepts
    for level in range(hierarchy.n_levels):
        codes = hierarchy.row_codes[level]
        ranks.append(hierarchy.group_counts[level] + _rank(_within_cross_product(design, codes)))
    constant = [_constant_within(design, hierarchy.row_codes[level]) for level in range(hierarchy.n_levels)]
    if method == "repeated":
        between = constant[0]
        rank_between = _rank(design[:, between].T @ design[:, between]) if between.any() else 0
        groups = hierarchy.group_counts[0]
        return np.where(between, float(groups - rank_between), float(n - groups - (rank_x - rank_between)))
    contributions = np.diff(ranks)
    dfs = np.full(p, float(n - ranks[-1]))
    for level in range(hierarchy.n_levels):  # a level that repeats the groups above contributes nothing
        if contributions[level] > 0:
            dfs = np.where(constant[level], np.minimum(dfs, contributions[level]), dfs)
    return dfs


def _within_cross_product(design: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(X - group means)'(X - group means) from group sums (O(rows p^2))."""
    counts = np.bincount(codes).astype(float)
    sums = np.stack([np.bincount(codes, weights=design[:, j], minlength=counts.size) for j in range(design.shape[1])],
                    axis=1)
    keep = counts > 0
    return design.T @ design - (sums[keep] / counts[keep, None]).T @ sums[keep]


def _constant_within(design: np.ndarray, codes: np.ndarray) -> np.ndarray:
    grouped = pd.DataFrame(design).groupby(codes)
    spread = (grouped.max() - grouped.min()).abs().max(axis=0).to_numpy()
    size = np.maximum(np.abs(design).max(axis=0), 1e-300)
    return spread <= 1e-10 * size


def _rank(gram: np.ndarray) -> int:
    if gram.size == 0:
        return 0
    scale = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    eigenvalues = np.linalg.eigvalsh(gram / np.outer(scale, scale))
    return int(np.sum(eigenvalues > 1e-9 * max(eigenvalues.max(), 1e-300)))


def data_scale(x_means: np.ndarray, names: list[str]) -> DataScale:
    """The map from the criterion's centred fixed effects to the reported ones (see fit.py)."""
    transform = np.eye(len(names))
    if "_cons" in names:
        cons = names.index("_cons")
        transform[cons, :] -= x_means
        transform[cons, cons] = 1.0
    return DataScale(transform)
