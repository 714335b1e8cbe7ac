"""Summaries of a study's records: per model, sweep value and parameter, how good is the estimator?

Definitions (over the replications of one model at one sweep value):

* ``reps``: replications run; ``failed``: share whose fit raised or did not converge;
  ``boundary``: share whose fit warned that a variance is estimated at zero.
* The estimate statistics use the fits that did not fail (``n`` of them): ``mean``,
  ``bias = mean - truth``, ``emp_sd`` (the empirical SD of the estimates, ddof 1),
  ``mean_se`` (mean reported SE, over fits that report one), ``rmse`` (root mean squared
  error about the truth).
* ``coverage``: share of the (1 - alpha) intervals containing the truth, over fits that
  report an interval (a variance on the boundary reports none: see ``at_zero``; an interval
  with an infinite bound counts). alpha is the study's (``montecarlo --alpha``, default 0.05);
  the records carry each fit's interval at that level (see ``replicate.interval_at``), whose
  critical value comes from :func:`critical_value`.
* ``power``: share of fits rejecting "coefficient = 0" at level alpha (fixed effects only; with a
  true value of 0 it is the type I error rate).
* ``at_zero``: share of fits estimating this sd at zero (sds of random effects only).
* Monte Carlo standard errors, for error bars: ``mcse_bias = emp_sd / sqrt(n)``,
  ``mcse_emp_sd = emp_sd / sqrt(2 (n - 1))`` (normal estimates),
  ``mcse_mean_se = sd(se) / sqrt(n_se)``, and the binomial
  ``sqrt(r (1 - r) / m)`` for coverage and power (r the rate, m its denominator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from engine.serialize import to_jsonable

ALPHA = 0.05  # the default level: 95% intervals, tests at 5%


def critical_value(alpha: float, df: Optional[float] = None) -> float:
    """The two-sided critical value of a (1 - alpha) interval: the normal quantile, or Student's t
    with ``df`` degrees of freedom when the fit's test is a t test.

    The one place Monte Carlo intervals get their multiplier; a fit that reports other
    denominator degrees of freedom passes them here.
    """
    from scipy import stats

    if df is None or not math.isfinite(float(df)):
        return float(stats.norm.ppf(1.0 - alpha / 2.0))
    return float(stats.t.ppf(1.0 - alpha / 2.0, float(df)))


@dataclass
class SummaryRow:
    """How one parameter of one model fared at one sweep value; see the module docstring."""

    model: str
    sweep: Optional[float]
    param: str
    truth: Optional[float]
    reps: int
    n: int
    mean: Optional[float]
    bias: Optional[float]
    emp_sd: Optional[float]
    mean_se: Optional[float]
    rmse: Optional[float]
    coverage: Optional[float]
    power: Optional[float]
    failed: float
    boundary: float
    at_zero: Optional[float]
    mcse_bias: Optional[float]
    mcse_emp_sd: Optional[float]
    mcse_mean_se: Optional[float]
    mcse_coverage: Optional[float]
    mcse_power: Optional[float]

    def to_dict(self) -> dict:
        """JSON-ready: NaN becomes null; a whole-number sweep value stays a whole number."""
        data = to_jsonable(self)
        if self.sweep is not None and float(self.sweep).is_integer():
            data["sweep"] = int(self.sweep)
        return data


def summarise_records(records: pd.DataFrame, alpha: float = ALPHA) -> list[SummaryRow]:
    """One summary row per model, sweep value and parameter.

    Models come in the order they first appear, sweep values in sweep order, parameters in the
    order the fits report them. A model and sweep value whose every fit failed gives one row
    with param ``""``, ``failed`` 1 and no statistics.

    Parameters
    ----------
    records : pandas.DataFrame
        Tidy records as :func:`engine.montecarlo.replicate.run_replications` returns them; their
        intervals are taken as they are (made at the study's alpha).
    alpha : float
        Level of the tests whose rejection rate is the power.

    Returns
    -------
    list of SummaryRow
    """
    rows: list[SummaryRow] = []
    if records.empty:
        return rows
    for model in dict.fromkeys(records["model"]):
        of_model = records[records["model"] == model]
        params = [p for p in dict.fromkeys(of_model["param"]) if p != ""]
        for sweep_index in sorted(set(of_model["sweep_index"])):
            group = of_model[of_model["sweep_index"] == sweep_index]
            sweep = float(group["sweep"].iloc[0])
            fits = group.drop_duplicates("rep")
            reps = len(fits)
            failed = float(fits["failed"].mean())
            boundary = float(fits["fit_boundary"].mean())
            used = group[~group["failed"]]
            present = [p for p in params if (used["param"] == p).any()]
            if not present:
                rows.append(_empty_row(model, sweep, reps, failed, boundary))
            for param in present:
                rows.append(_parameter_row(model, sweep, param, used[used["param"] == param], reps, failed, boundary,
                                           alpha))
    return rows


def _parameter_row(model: str, sweep: float, param: str, rows: pd.DataFrame, reps: int, failed: float,
                   boundary: float, alpha: float) -> SummaryRow:
    kind = rows["kind"].iloc[0]
    truth = float(rows["truth"].iloc[0])
    estimates = rows["estimate"].to_numpy(dtype=float)
    finite = np.isfinite(estimates)
    estimates = estimates[finite]
    n = len(estimates)
    mean = float(estimates.mean()) if n else math.nan
    emp_sd = float(estimates.std(ddof=1)) if n >= 2 else math.nan
    ses = rows["se"].to_numpy(dtype=float)[finite]
    ses = ses[np.isfinite(ses)]
    mean_se = float(ses.mean()) if len(ses) else math.nan
    mcse_mean_se = float(ses.std(ddof=1) / math.sqrt(len(ses))) if len(ses) >= 2 else math.nan
    low = rows["ci_low"].to_numpy(dtype=float)[finite]
    high = rows["ci_high"].to_numpy(dtype=float)[finite]
    has_interval = ~np.isnan(low) & ~np.isnan(high)  # an infinite bound is still a reported interval
    coverage, mcse_coverage = _rate((low[has_interval] <= truth) & (truth <= high[has_interval]))
    power = mcse_power = math.nan
    if kind == "fixed":
        p = rows["p"].to_numpy(dtype=float)[finite]
        power, mcse_power = _rate(p[np.isfinite(p)] < alpha)
    at_zero = math.nan
    if kind == "random" and ":sd(" in param:
        at_zero = float(rows["at_zero"].to_numpy()[finite].mean()) if n else math.nan
    return SummaryRow(
        model=model, sweep=_optional(sweep), param=param, truth=_optional(truth), reps=reps, n=n,
        mean=_optional(mean), bias=_optional(mean - truth), emp_sd=_optional(emp_sd), mean_se=_optional(mean_se),
        rmse=_optional(math.sqrt(float(np.mean((estimates - truth) ** 2))) if n else math.nan),
        coverage=_optional(coverage), power=_optional(power), failed=failed, boundary=boundary,
        at_zero=_optional(at_zero), mcse_bias=_optional(emp_sd / math.sqrt(n) if n else math.nan),
        mcse_emp_sd=_optional(emp_sd / math.sqrt(2 * (n - 1)) if n >= 2 else math.nan),
        mcse_mean_se=_optional(mcse_mean_se), mcse_coverage=_optional(mcse_coverage),
        mcse_power=_optional(mcse_power))


def _empty_row(model: str, sweep: float, reps: int, failed: float, boundary: float) -> SummaryRow:
    return SummaryRow(model=model, sweep=_optional(sweep), param="", truth=None, reps=reps, n=0, mean=None,
                      bias=None, emp_sd=None, mean_se=None, rmse=None, coverage=None, power=None, failed=failed,
                      boundary=boundary, at_zero=None, mcse_bias=None, mcse_emp_sd=None, mcse_mean_se=None,
                      mcse_coverage=None, mcse_power=None)


def _rate(hits: np.ndarray) -> tuple[float, float]:
    """Share of True and its binomial standard error (NaN for no trials)."""
    trials = len(hits)
    if trials == 0:
        return math.nan, math.nan
    rate = float(np.mean(hits))
    return rate, math.sqrt(rate * (1 - rate) / trials)


def _optional(value: float) -> Optional[float]:
    return None if value is None or not math.isfinite(value) else float(value)


def summary_frame(rows: list[SummaryRow]) -> pd.DataFrame:
    """The summary rows as a DataFrame (None as NaN), e.g. for plotting against the sweep."""
    columns = list(SummaryRow.__dataclass_fields__)
    return pd.DataFrame([[getattr(row, name) for name in columns] for row in rows], columns=columns)


def format_summary(rows: list[SummaryRow], sweep_label: str | None = None) -> str:
    """A plain-text table: one line per model, sweep value and parameter.

    Models are numbered (M1, M2, ...) with a legend above the table; bias and coverage carry
    their Monte Carlo standard errors in parentheses; "bound." is the share of fits with some
    variance on the boundary, "at 0" the share with this sd at zero.
    """
    if not rows:
        return "no replications finished"
    models = list(dict.fromkeys(row.model for row in rows))
    lines = [f"M{index}: {model}" for index, model in enumerate(models, start=1)]
    sweep_header = (sweep_label or "")[:10]
    header = (f"{'model':<6}{sweep_header:>10}  {'parameter':<24}{'truth':>8}{'mean':>9}{'bias (mcse)':>18}"
              f"{'emp sd':>9}{'mean se':>9}{'rmse':>9}{'coverage (mcse)':>18}{'power':>7}{'failed':>8}{'bound.':>8}"
              f"{'at 0':>7}")
    lines += ["", header, "-" * len(header)]
    for row in rows:
        sweep = "" if row.sweep is None else f"{row.sweep:g}"
        label = f"M{models.index(row.model) + 1}"
        lines.append(
            f"{label:<6}{sweep:>10}  {row.param or '(all fits failed)':<24}{_cell(row.truth, 8)}{_cell(row.mean, 9)}"
            f"{_with_error(row.bias, row.mcse_bias, 18)}{_cell(row.emp_sd, 9)}{_cell(row.mean_se, 9)}"
            f"{_cell(row.rmse, 9)}{_with_error(row.coverage, row.mcse_coverage, 18)}"
            f"{_cell(row.power, 7, '.2f')}{_cell(row.failed, 8, '.1%')}{_cell(row.boundary, 8, '.1%')}"
            f"{_cell(row.at_zero, 7, '.1%')}")
    return "\n".join(lines)


def _cell(value: Optional[float], width: int, spec: str = ".3f") -> str:
    return f"{'.':>{width}}" if value is None else f"{value:>{width}{spec}}"


def _with_error(value: Optional[float], error: Optional[float], width: int) -> str:
    if value is None:
        return f"{'.':>{width}}"
    text = f"{value:.3f}" + (f" ({error:.3f})" if error is not None else "")
    return f"{text:>{width}}"
