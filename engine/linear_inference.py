"""Inference for linear combinations L'b of a fit's coefficients: the core of lincom, contrast, margins.

Every estimate is L'b (+ a constant) with standard error sqrt(L' V L), V the fit's coefficient
covariance (under Kenward–Roger the adjusted one the fit reports). Which distribution the test
statistic is referred to is decided in one place, :func:`reference_distribution`: the fit's
small-sample df method when it has one (the df of this L), Student's t with the residual df
where the coefficient table has one t df (OLS), else the normal (Stata's ``mixed`` default).

Multiple comparisons (:func:`adjust`): Bonferroni (p times m, capped at 1; intervals at level
1 - 0.05 / m) and Holm's step-down (p-values only: Holm has no simultaneous intervals, so the
intervals stay unadjusted and a note says so), by statsmodels' ``multipletests``.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from engine.distributions import normal_quantile, normal_sf, t_quantile, t_sf
from engine.errors import UserInputError
from engine.report import _num
from engine.results import FitResult
from engine.serialize import from_jsonable, to_jsonable

ADJUSTMENTS = ("none", "bonferroni", "holm")
LEVEL = 0.95


@dataclass
class LinearEstimate:
    """One row: the estimate of sum(weights[name] * _b[name]) + constant, its SE, test and interval."""

    label: str
    estimate: float
    se: float
    stat: float  # z, or t when df is set
    p: float
    ci: list[float]
    df: Optional[float] = None
    p_adjusted: Optional[float] = None  # when a multiple-comparison adjustment was asked for
    weights: dict[str, float] = field(default_factory=dict)
    constant: float = 0.0
    at: dict[str, Any] = field(default_factory=dict)  # margins and contrasts: the predictors' set values


@dataclass
class PostEstimation:
    """The result of lincom, contrast or margins: a table of linear estimates; ``format()`` prints it."""

    command: str  # 'lincom', 'contrast' or 'margins'
    title: str
    model: str
    depvar: str
    rows: list[LinearEstimate]
    adjustment: str = "none"
    notes: list[str] = field(default_factory=list)

    def row(self, label: str) -> LinearEstimate:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(f"no row {label!r}; have {[r.label for r in self.rows]}")

    def format(self) -> str:
        return format_estimates(self)

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "PostEstimation":
        return from_jsonable(cls, data)


def coefficients(result: FitResult) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The fit's coefficient names, estimates and covariance matrix."""
    names = [row.term for row in result.fixed]
    if not names:
        raise UserInputError("the model has no fixed effects to combine")
    cov = np.asarray(result.vcov, dtype=float)
    if cov.shape != (len(names), len(names)):
        raise UserInputError("the fit carries no covariance matrix of its coefficients")
    return names, np.array([row.coef for row in result.fixed], dtype=float), cov


def reference_distribution(result: FitResult, weights: np.ndarray) -> Optional[float]:
    """Degrees of freedom of the t distribution for the combination ``weights``, or None for the normal.

    The single place where the choice is made: a fit made with a small-sample df method
    (``dfmethod``) gives that method's df for this very combination (Satterthwaite, Kenward–Roger,
    or the design-based residual/repeated/anova df); a fit whose coefficient rows all carry the
    same t df (OLS) gives t with it; otherwise the normal, as Stata's ``mixed`` by default.
    """
    method = _df_method(result)
    if method is not None:
        return float(method.contrast_df(np.asarray(weights, dtype=float)))
    dfs = {_row_df(row) for row in result.fixed}
    if len(dfs) == 1 and None not in dfs:
        return float(next(iter(dfs)))
    return None


def _df_method(result: FitResult):
    """The fit's small-sample df method object (kept with a fit made in this session), or None."""
    inference = getattr(result, "inference", None)
    method = getattr(inference, "method", None)
    return method if method is not None and hasattr(method, "contrast_df") else None


def _row_df(row) -> Optional[float]:
    """A coefficient row's t df (``df``; ``t_df`` in older results), or None for z."""
    value = getattr(row, "df", None)
    return value if value is not None else getattr(row, "t_df", None)


def distribution_notes(result: FitResult) -> list[str]:
    """A note when the fit's small-sample df cannot be applied to combinations (a fit read from a
    project keeps its rows' df but not the method's machinery), so that nobody reads these z
    statistics as the df-corrected ones."""
    if _df_method(result) is not None:
        return []
    method = getattr(result.spec, "dfmethod", None) if result.spec is not None else None
    dfs = {_row_df(row) for row in result.fixed}
    if (method and str(method).lower() not in ("", "none")) or len(dfs) > 1:
        return [f"The fit's small-sample degrees of freedom{f' ({method})' if method else ''} are not applied to "
                f"combinations of a fit read back from a file: z statistics and normal intervals (large-sample) "
                f"are shown; refit the model for them."]
    return []


def estimate(result: FitResult, weights: np.ndarray, label: str, constant: float = 0.0) -> LinearEstimate:
    """L'b + constant with its standard error, test of = 0 and 95% interval.

    Parameters
    ----------
    result : FitResult
    weights : ndarray
        L, one weight per coefficient in the order of ``result.fixed``.
    label : str
    constant : float

    Returns
    -------
    LinearEstimate
    """
    names, beta, cov = coefficients(result)
    weights = np.asarray(weights, dtype=float)
    value = float(weights @ beta + constant)
    se = float(np.sqrt(max(weights @ cov @ weights, 0.0)))
    df = reference_distribution(result, weights)
    stat = value / se if se > 0 else float("nan")
    p = _two_sided_p(stat, df)
    half = critical_value(df, 1 - LEVEL) * se
    return LinearEstimate(label, value, se, stat, p, [value - half, value + half], df,
                          weights={n: float(w) for n, w in zip(names, weights) if w != 0}, constant=float(constant))


def critical_value(df: Optional[float], alpha: float) -> float:
    """The two-sided critical value at level 1 - alpha of the normal (df None) or t(df)."""
    return float(-normal_quantile(alpha / 2) if df is None else -t_quantile(alpha / 2, df))


def _two_sided_p(stat: float, df: Optional[float]) -> float:
    if not np.isfinite(stat):
        return float("nan")
    return float(2 * (normal_sf(abs(stat)) if df is None else t_sf(abs(stat), df)))


def adjust(rows: list[LinearEstimate], method: str) -> list[str]:
    """Set ``p_adjusted`` (and Bonferroni intervals) of a family of tests; return notes to show.

    Parameters
    ----------
    rows : list of LinearEstimate
        The family (changed in place).
    method : str
        'none', 'bonferroni' or 'holm'.
    """
    from statsmodels.stats.multitest import multipletests

    method = method.lower()
    if method not in ADJUSTMENTS:
        raise UserInputError(f"unknown adjustment {method!r}; use {', '.join(ADJUSTMENTS)}")
    if method == "none" or not rows:
        return []
    p = np.array([row.p for row in rows])
    finite = np.isfinite(p)
    adjusted = np.full(p.size, np.nan)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method=method)[1]
    m = len(rows)
    for row, value in zip(rows, adjusted):
        row.p_adjusted = float(value)
        if method == "bonferroni":
            half = critical_value(row.df, (1 - LEVEL) / m) * row.se
            row.ci = [row.estimate - half, row.estimate + half]
    if method == "bonferroni":
        return [f"Bonferroni adjustment for {m} comparisons: p-values multiplied by {m} (at most 1), "
                f"intervals at level {1 - (1 - LEVEL) / m:.4g}."]
    return [f"Holm's step-down adjustment for {m} comparisons: p-values adjusted; the intervals are unadjusted "
            f"(Holm's method has no simultaneous intervals)."]


def format_estimates(table: PostEstimation) -> str:
    """Stata-like text: title, notes on the rows, and the table of estimates."""
    t_stat = any(row.df is not None for row in table.rows)
    stat, p_label = ("t", "P>|t|") if t_stat else ("z", "P>|z|")
    adjusted = table.adjustment != "none"
    width = max([12, len(table.depvar[:24])] + [len(row.label) for row in table.rows])
    header = f"{table.depvar[:width]:>{width}} |   Estimate   Std. Err. {stat:>6}   {p_label}"
    if adjusted:
        header += "  P adj."
    header += "   [95% Conf. Interval]"
    rule = "-" * len(header)
    lines = [table.title]
    if table.model:
        lines.append(f"Model: {table.model}")
    if t_stat:
        dfs = sorted({row.df for row in table.rows if row.df is not None})
        lines.append("Degrees of freedom: " + ", ".join(f"{df:g}" for df in dfs))
    lines += [rule, header, "-" * (width + 1) + "+" + "-" * (len(header) - width - 2)]
    for row in table.rows:
        text = (f"{row.label:>{width}} | {_num(row.estimate)}  {_num(row.se)} {row.stat:6.2f}   "
                f"{_p_value(row.p)}")
        if adjusted:
            text += f"  {_p_value(row.p_adjusted)}"
        text += f"   {_num(row.ci[0])}  {_num(row.ci[1])}"
        lines.append(text)
    lines.append(rule)
    for note in table.notes:
        lines += textwrap.wrap(f"Note: {note}", 78, subsequent_indent="      ")
    return "\n".join(lines) + "\n"


def _p_value(value: Optional[float]) -> str:
    return f"{value:5.3f}" if value is not None and np.isfinite(value) else "    ."
