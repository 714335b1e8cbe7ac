"""A report of one fit to hand on: every table, the warnings, the plots; one typed object.

``build_fit_report`` collects what the fit says (model, data source, method, warnings, the
tables of fixed effects, random effects, groups, tests and statistics, and ICC/R² when the fit
carries them) and the figures the window drew. ``engine.fit_report_output`` writes it as one
self-contained HTML file or as a Word document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from engine import __version__
from engine.report import DF_METHOD_NAMES, format_fit_report
from engine.results import FitResult
from engine.serialize import to_jsonable

CLI_PLOTS_NOTE = ("Plots are drawn by the window (File > Export report); the command line has no plotting "
                  "library without Qt, so this report has none.")


@dataclass
class ReportTable:
    """A titled table: header and rows of numbers (kept at full precision) or texts.

    ``formats`` gives per column how numbers print: 'number' (4 decimals, or scientific notation
    when very small or large), 'p' (4 decimals), 'int' (thousands separated), 'df' (2 decimals)."""

    key: str  # 'fit', 'groups', 'fixed', 'random', 'tests', 'icc', 'r2'
    title: str
    columns: list[str]
    rows: list[list[Any]]
    formats: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text_rows(self) -> list[list[str]]:
        """The rows as printed."""
        kinds = self.formats or ["number"] * len(self.columns)
        return [[format_cell(value, kind) for value, kind in zip(row, kinds)] for row in self.rows]


@dataclass
class ReportFigure:
    """A plot as the window drew it: SVG text and a PNG (base64) for programs that take no SVG."""

    title: str
    svg: str = ""
    png_base64: str = ""
    caption: str = ""


@dataclass
class FitReport:
    title: str
    model: str
    data_source: str
    method: str
    created: str
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[ReportTable] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    stata_text: str = ""  # the Stata-style report, verbatim
    program: str = f"HLM Explorer {__version__}"

    def table(self, key: str) -> ReportTable:
        for table in self.tables:
            if table.key == key:
                return table
        raise KeyError(f"no table {key!r}; have {[t.key for t in self.tables]}")

    def to_dict(self) -> dict:
        return to_jsonable(self)


def format_cell(value: Any, kind: str = "number") -> str:
    """How a report prints one cell; missing and non-finite numbers print as '.', as in Stata."""
    if value is None:
        return "."
    if isinstance(value, str):
        return value
    value = float(value)
    if not math.isfinite(value):
        return "."
    if kind == "int":
        return f"{int(round(value)):,}"
    if kind == "p":
        return f"{value:.4f}"
    if kind == "df":
        return f"{value:.2f}"
    if kind == "mean":
        return f"{value:.1f}"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e7 or magnitude < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}"


METHOD_NAMES = {"REML": "Restricted maximum likelihood (REML)", "ML": "Maximum likelihood (ML)",
                "OLS": "Ordinary least squares", "within": "Within (fixed effects)", "GLS": "GLS random effects"}


def build_fit_report(result: FitResult, data_source: str = "", figures: list[ReportFigure] | None = None, *,
                     title: str = "", variances: bool = False, plots_note: str = "") -> FitReport:
    """The report of ``result``.

    Parameters
    ----------
    result : the fit.
    data_source : where the data came from (a file, or the simulated design), as the reader should see it.
    figures : plots drawn by the window, in order.
    title : the report's title (default: the estimator and the outcome).
    variances : random effects as variances and covariances instead of sds and correlations.
    plots_note : a note saying why there are no plots (the command line's).
    """
    kind = "Mixed-effects" if result.estimator == "mixed" else result.estimator.upper()
    report = FitReport(
        title=title or f"{kind} {result.method} regression of {result.depvar or 'the outcome'}",
        model=result.model or result.name, data_source=data_source or "not recorded",
        method=METHOD_NAMES.get(result.method, result.method),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        warnings=list(result.warnings), figures=list(figures or []),
        stata_text=format_fit_report(result, variances=variances))
    report.notes = list(result.notes)
    if result.spec is not None:
        report.notes = [f"Centring: {c.describe()}" for c in result.spec.centering] + report.notes
    if result.estimator == "mixed" and result.method == "REML":
        report.notes.append("REML fit: its log restricted-likelihood cannot compare models whose fixed effects differ.")
    if plots_note:
        report.notes.append(plots_note)
    report.tables.append(_fit_table(result, data_source))
    if result.groups:
        report.tables.append(ReportTable(
            "groups", "Groups", ["Level", "Groups", "Min. obs.", "Mean obs.", "Max. obs."],
            [[g.level, g.groups, g.min, g.mean, g.max] for g in result.groups],
            ["text", "int", "int", "mean", "int"]))
    report.tables.append(_fixed_table(result))
    rows = result.random_variances if variances and result.random_variances else result.random
    if rows:
        report.tables.append(ReportTable(
            "random", "Random-effects parameters", ["Level", "Parameter", "Estimate", "Std. Err.", "95% CI low", "95% CI high"],
            [[r.level, r.param, r.estimate, r.se, *(r.ci or [None, None])] for r in rows],
            ["text", "text", "number", "number", "number", "number"],
            notes=_random_notes(result, variances and bool(result.random_variances))))
    tests = _tests_table(result)
    if tests.rows:
        report.tables.append(tests)
    report.tables += _icc_and_r2_tables(result)
    return report


def _fit_table(result: FitResult, data_source: str) -> ReportTable:
    label = "Log restricted-likelihood" if result.method == "REML" else "Log likelihood"
    rows: list[list[Any]] = [["Model", result.model or result.name], ["Data", data_source or "not recorded"],
                             ["Method", METHOD_NAMES.get(result.method, result.method)],
                             ["Observations", f"{result.nobs:,}"]]
    if result.dropped_rows:
        rows.append(["Rows dropped (missing values)", f"{result.dropped_rows:,}"])
    if result.dfmethod is not None:
        rows.append(["Degrees of freedom", DF_METHOD_NAMES.get(result.dfmethod, result.dfmethod)])
    if result.loglik is not None:
        rows += [[label, format_cell(result.loglik)], ["AIC", format_cell(result.aic)], ["BIC", format_cell(result.bic)]]
    rows.append(["Converged", "yes" if result.converged else "no"])
    return ReportTable("fit", "Model and fit", ["Item", "Value"], rows, ["text", "text"])


def _fixed_table(result: FitResult) -> ReportTable:
    with_df = any(row.df is not None for row in result.fixed)
    stat = "t" if with_df else "z"
    columns = ["Term", "Coef.", "Std. Err.", stat] + (["df"] if with_df else []) + [f"P>|{stat}|", "95% CI low", "95% CI high"]
    formats = ["text", "number", "number", "df"] + (["df"] if with_df else []) + ["p", "number", "number"]
    rows = [[r.term, r.coef, r.se, r.z] + ([r.df] if with_df else []) + [r.p, r.ci[0], r.ci[1]] for r in result.fixed]
    notes = [fixed_units(result)]
    if result.dfmethod == "kroger":
        notes.append("Std. Err. are Kenward-Roger adjusted.")
    return ReportTable("fixed", f"Fixed effects (outcome {result.depvar})", columns, rows, formats, notes)


def fixed_units(result: FitResult) -> str:
    """What the coefficients are measured in: outcome units per unit of a predictor, or the link's scale."""
    y = result.depvar
    if result.family == "binomial":
        scale = "probit (latent standard-normal) scale" if result.link == "probit" else f"log-odds of {y} = 1"
        hint = "" if result.link == "probit" else "; exponentiated, odds ratios"
        return f"Units: coefficients on the {scale} per unit of each predictor{hint}."
    if result.family == "poisson":
        return f"Units: coefficients on the log of the expected {y} per unit of each predictor; exponentiated, " \
               f"incidence-rate ratios."
    return (f"Units: coefficients in units of {y} per unit of each predictor (a factor level: its difference "
            f"from the base level); _cons in units of {y}.")


def random_units(result: FitResult, variances: bool) -> str:
    """What the random-effects parameters are measured in."""
    if result.family is not None:
        scale = "latent probit" if result.link == "probit" else ("latent log-odds" if result.family == "binomial"
                                                                 else "log-rate")
        return f"Units: {'variances' if variances else 'sds'} on the {scale} scale; correlations have none."
    y = result.depvar
    what = f"variances in squared units of {y}" if variances else f"sds in units of {y}"
    return f"Units: {what} (a slope's per unit of its variable); correlations have none."


def _random_notes(result: FitResult, variances: bool = False) -> list[str]:
    if result.spec is None:
        return []
    return [random_units(result, variances)] + [
        f"{level.name}: {level.covariance} covariance of {', '.join(level.terms)}"
        for level in result.spec.levels if len(level.terms) > 1]


def _tests_table(result: FitResult) -> ReportTable:
    rows: list[list[Any]] = []
    if result.wald is not None:
        test = result.wald
        name = "F test: every coefficient except _cons is 0" if test.kind == "F" else "Wald test: every coefficient except _cons is 0"
        rows.append([name, _distribution(test.kind, test.df, test.df2), test.stat, test.p])
    if result.lr_test is not None:
        test = result.lr_test
        rows.append(["LR test vs. linear model", _distribution(test.kind, test.df, test.df2), test.stat, test.p])
    for joint in result.tests:
        if joint.F is not None:
            rows.append([f"Test of {' '.join(joint.terms)}", f"F({joint.df1}, {joint.df2:.2f})", joint.F, joint.p])
        else:
            rows.append([f"Test of {' '.join(joint.terms)}", f"chi2({joint.df1})", joint.chi2, joint.p])
    for label, test in (("F test that all u_i = 0", result.f_test_u0), ("Hausman test (fe vs re)", result.hausman)):
        if test is not None:
            rows.append([label, _distribution(test.kind, test.df, test.df2), test.stat, test.p])
    notes = []
    if result.lr_test is not None and result.lr_test.kind == "chi2":
        notes.append("The LR test vs. the linear model is conservative (more than one variance parameter).")
    return ReportTable("tests", "Tests", ["Test", "Distribution", "Statistic", "p-value"], rows,
                       ["text", "text", "number", "p"], notes)


def _distribution(kind: str, df: float, df2: Optional[float]) -> str:
    if kind == "F":
        return f"F({int(df)}, {df2:.2f})" if df2 is not None else f"F({int(df)})"
    if kind == "chibar2":
        return "chibar2(01)"
    return f"chi2({int(df)})"


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _icc_and_r2_tables(result: FitResult) -> list[ReportTable]:
    """ICC and R² tables when the fit carries them (``icc``: [{level, icc, se, ci}]; ``r2``: a dict)."""
    tables = []
    icc = list(getattr(result, "icc", None) or [])
    if icc:
        rows = []
        for item in icc:
            ci = _field(item, "ci") or [None, None]
            rows.append([_field(item, "level"), _field(item, "icc"), _field(item, "se"), ci[0], ci[1]])
        tables.append(ReportTable("icc", "Intraclass correlations", ["Level", "ICC", "Std. Err.", "95% CI low", "95% CI high"],
                                  rows, ["text", "number", "number", "number", "number"]))
    if result.r2:
        from engine.model_table import R2_LABELS

        tables.append(ReportTable("r2", "Variance explained", ["Measure", "Value"],
                                  [[R2_LABELS.get(key, key), value] for key, value in result.r2.items()],
                                  ["text", "number"]))
    return tables
