"""The tables of a fit result as DataFrames (numbers kept at full precision for copy and export),
with the formatting each column gets on screen."""

from __future__ import annotations

import pandas as pd

from engine.results import FitResult
from gui.tables.dataframe_model import average_text, count_text, decimals_formatter, format_number

P_VALUE_FORMAT = decimals_formatter(4)
COUNT_FORMAT = count_text
AVERAGE_FORMAT = average_text


def fixed_effects_table(result: FitResult) -> pd.DataFrame:
    statistic = "t" if any(row.df is not None for row in result.fixed) else "z"
    if result.dfmethod not in (None, "z"):  # mixed models under a df method: each coefficient's df
        return pd.DataFrame(
            [(row.term, row.coef, row.se, row.z, row.df, row.p, row.ci[0], row.ci[1]) for row in result.fixed],
            columns=["Term", "Coef.", "Std. Err.", "t", "df", "P>|t|", "95% CI low", "95% CI high"])
    rows, label = result.fixed, "Coef."
    if result.fixed_eform:  # melogit ..., or / mepoisson ..., irr: exp(b) with delta-method SEs
        rows, label = result.fixed_eform, "Odds ratio" if result.family == "binomial" else "IRR"
    return pd.DataFrame(
        [(row.term, row.coef, row.se, row.z, row.p, row.ci[0], row.ci[1]) for row in rows],
        columns=["Term", label, "Std. Err.", statistic, f"P>|{statistic}|", "95% CI low", "95% CI high"])


def random_effects_table(result: FitResult, variances: bool = False) -> pd.DataFrame:
    rows = result.random_variances if variances and result.random_variances else result.random
    return pd.DataFrame(
        [(row.level, row.param, row.estimate, row.se, *(row.ci or [None, None])) for row in rows],
        columns=["Level", "Parameter", "Estimate", "Std. Err.", "95% CI low", "95% CI high"])


def groups_table(result: FitResult) -> pd.DataFrame:
    return pd.DataFrame([(g.level, g.groups, g.min, g.mean, g.max) for g in result.groups],
                        columns=["Level", "Groups", "Min obs.", "Mean obs.", "Max obs."])


def fit_statistics_table(result: FitResult) -> pd.DataFrame:
    """Observations, log-likelihood, AIC, BIC: the numbers used to choose between fits."""
    rows = [("Observations", float(result.nobs)), ("Log-likelihood", result.loglik),
            ("AIC", result.aic), ("BIC", result.bic), ("Fit time (s)", result.fit_seconds)]
    return pd.DataFrame([(name, value) for name, value in rows if value is not None], columns=["Statistic", "Value"])


def variance_summary_table(result: FitResult) -> pd.DataFrame:
    """ICC per level (Stata's estat icc), Nakagawa's R² and HLM's intercept reliabilities: one row each."""
    rows = [("ICC", row.label, row.icc, row.se, *(row.ci or [None, None])) for row in result.icc]
    if result.estimator == "mixed" and result.r2:
        rows += [(f"R² {kind}", "", result.r2[kind], None, None, None)
                 for kind in ("marginal", "conditional") if kind in result.r2]
    rows += [("Reliability", row.level, row.reliability, None, None, None) for row in result.reliability]
    return pd.DataFrame(rows, columns=["Statistic", "Level", "Estimate", "Std. Err.", "95% CI low", "95% CI high"])


FIXED_FORMATS = {"P>|z|": P_VALUE_FORMAT, "P>|t|": P_VALUE_FORMAT, "z": decimals_formatter(2), "df": decimals_formatter(2),
                 "t": decimals_formatter(2)}
GROUP_FORMATS = {"Groups": COUNT_FORMAT, "Min obs.": COUNT_FORMAT, "Max obs.": COUNT_FORMAT,
                 "Mean obs.": AVERAGE_FORMAT}
STATISTICS_FORMATS = {"Value": lambda v: f"{v:,.0f}" if float(v).is_integer() and abs(v) > 100 else format_number(v, 3)}
