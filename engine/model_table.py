"""Several fits side by side (Stata's ``esttab``, R's ``modelsummary``): one typed table.

Rows are the union of the fits' rows in a reading order: fixed effects in order of first
appearance with ``_cons`` last, then the random-effects parameters level by level (outermost
first, the residual last), then statistics (observations, groups per level, log-likelihood, AIC,
BIC and, when the fits carry them, ICCs and R²). A fit without a row has an empty cell there.
Cells keep the fits' numbers at full precision; ``engine.model_table_output`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from engine.errors import UserInputError
from engine.results import FitResult
from engine.serialize import to_jsonable

INTERVALS = ("se", "ci")
# Stata's esttab default: * p < 0.05, ** p < 0.01, *** p < 0.001.
STAR_LEVELS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
SECTIONS = ("fixed", "random", "statistic")


@dataclass
class TableCell:
    """One fit's entry in one row: a number with its SE, 95% interval and p-value where it has them,
    or a text (e.g. the estimation method)."""

    estimate: Optional[float] = None
    se: Optional[float] = None
    ci: Optional[list[float]] = None
    p: Optional[float] = None
    text: Optional[str] = None

    @property
    def stars(self) -> str:
        if self.p is None or self.p != self.p:  # None or nan
            return ""
        return next((mark for limit, mark in STAR_LEVELS if self.p < limit), "")


@dataclass
class TableRow:
    """A row: ``section`` is 'fixed', 'random' or 'statistic'; ``level`` names a random-effects
    row's level ('Residual' for the residual); ``cells`` has one entry per fit (None: not in it)."""

    section: str
    label: str
    level: str = ""
    cells: list[Optional[TableCell]] = field(default_factory=list)
    integer: bool = False  # counts (observations, groups) print without decimals

    @property
    def name(self) -> str:
        """The row's label as a reader sees it: 'school: sd(_cons)' for random effects."""
        if self.section == "random" and self.level and self.level != "Residual":
            return f"{self.level}: {self.label}"
        return self.label


@dataclass
class ModelTable:
    """Fits side by side. ``interval`` says what goes under each estimate: its standard error
    ('se') or its 95% confidence interval ('ci'); ``variances`` whether random effects are shown
    as variances and covariances rather than standard deviations and correlations."""

    titles: list[str]
    models: list[str]  # each fit's Stata command
    depvars: list[str]
    rows: list[TableRow] = field(default_factory=list)
    interval: str = "se"
    variances: bool = False
    notes: list[str] = field(default_factory=list)

    def rows_of(self, section: str) -> list[TableRow]:
        return [row for row in self.rows if row.section == section]

    def row(self, label: str, section: str | None = None, level: str = "") -> TableRow:
        for row in self.rows:
            if row.label == label and row.level == level and (section is None or row.section == section):
                return row
        raise KeyError(f"no row {level + ': ' if level else ''}{label}")

    def to_dict(self) -> dict:
        return to_jsonable(self)


def build_model_table(results: Sequence[FitResult], titles: Sequence[str] | None = None, *,
                      interval: str = "se", variances: bool = False) -> ModelTable:
    """The side-by-side table of ``results``.

    Parameters
    ----------
    results : the fits, one column each, in this order.
    titles : column titles; default "(1)", "(2)", ... as esttab numbers its models.
    interval : 'se' (standard errors under the estimates) or 'ci' (95% confidence intervals).
    variances : random effects as variances/covariances instead of sds/correlations.

    Returns
    -------
    ModelTable
    """
    results = list(results)
    if not results:
        raise UserInputError("a model table needs at least one fit")
    if interval not in INTERVALS:
        raise UserInputError(f"interval must be 'se' or 'ci', not {interval!r}")
    if titles is None:
        titles = [f"({k})" for k in range(1, len(results) + 1)]
    titles = list(titles)
    if len(titles) != len(results):
        raise UserInputError(f"{len(titles)} titles for {len(results)} models: give one title per model")
    table = ModelTable(titles=titles, models=[r.model or r.name for r in results],
                       depvars=[r.depvar for r in results], interval=interval, variances=variances)
    table.rows += _fixed_rows(results)
    table.rows += _random_rows(results, variances)
    table.rows += _statistic_rows(results)
    table.notes = _notes(results, titles, interval)
    return table


# ----- rows --------------------------------------------------------------------------------------
def _fixed_rows(results: list[FitResult]) -> list[TableRow]:
    terms = list(dict.fromkeys(row.term for result in results for row in result.fixed if row.term != "_cons"))
    if any(row.term == "_cons" for result in results for row in result.fixed):
        terms.append("_cons")
    rows = []
    for term in terms:
        cells = []
        for result in results:
            found = next((row for row in result.fixed if row.term == term), None)
            cells.append(None if found is None else TableCell(found.coef, found.se, list(found.ci), found.p))
        rows.append(TableRow("fixed", term, cells=cells))
    return rows


def _random_rows(results: list[FitResult], variances: bool) -> list[TableRow]:
    def parameters(result: FitResult):
        return result.random_variances if variances and result.random_variances else result.random

    levels: list[str] = []
    for result in results:  # levels outermost first, as each fit lists them; the residual last
        for row in parameters(result):
            if row.level != "Residual" and row.level not in levels:
                levels.append(row.level)
    levels.append("Residual")
    rows = []
    for level in levels:
        labels = list(dict.fromkeys(row.param for result in results for row in parameters(result) if row.level == level))
        for label in labels:
            cells = []
            for result in results:
                found = next((row for row in parameters(result) if row.level == level and row.param == label), None)
                cells.append(None if found is None else
                             TableCell(found.estimate, found.se, list(found.ci) if found.ci else None))
            rows.append(TableRow("random", label, level=level, cells=cells))
    return rows


def _statistic_rows(results: list[FitResult]) -> list[TableRow]:
    rows = [TableRow("statistic", "Observations", cells=[TableCell(float(r.nobs)) for r in results], integer=True)]
    levels = list(dict.fromkeys(g.level for r in results for g in r.groups))
    for level in levels:
        cells = []
        for result in results:
            found = next((g for g in result.groups if g.level == level), None)
            cells.append(None if found is None else TableCell(float(found.groups)))
        rows.append(TableRow("statistic", f"Groups: {level}", cells=cells, integer=True))
    rows.append(TableRow("statistic", "Method", cells=[TableCell(text=r.method) for r in results]))
    for label, value in (("Log likelihood", lambda r: r.loglik), ("AIC", lambda r: r.aic), ("BIC", lambda r: r.bic)):
        cells = [None if value(r) is None else TableCell(float(value(r))) for r in results]
        if any(cells):
            rows.append(TableRow("statistic", label, cells=cells))
    rows += _icc_rows(results)
    rows += _r2_rows(results)
    return rows


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _icc_rows(results: list[FitResult]) -> list[TableRow]:
    """ICCs per level when the fits carry them (``icc``: [{level, icc, se, ci}], Stata's estat icc)."""
    per_fit = [list(getattr(r, "icc", None) or []) for r in results]
    levels = list(dict.fromkeys(_field(item, "level") for items in per_fit for item in items))
    rows = []
    for level in levels:
        cells = []
        for items in per_fit:
            found = next((item for item in items if _field(item, "level") == level), None)
            cells.append(None if found is None or _field(found, "icc") is None else
                         TableCell(float(_field(found, "icc")), _field(found, "se"), _field(found, "ci")))
        rows.append(TableRow("statistic", f"ICC: {level}", cells=cells))
    return rows


R2_LABELS = {"marginal": "R² marginal", "conditional": "R² conditional", "r2": "R²", "r2_a": "Adjusted R²",
             "within": "R² within", "between": "R² between", "overall": "R² overall"}


def _r2_rows(results: list[FitResult]) -> list[TableRow]:
    keys = list(dict.fromkeys(key for r in results for key in (r.r2 or {})))
    rows = []
    for key in keys:
        cells = [None if (r.r2 or {}).get(key) is None else TableCell(float(r.r2[key])) for r in results]
        rows.append(TableRow("statistic", R2_LABELS.get(key, f"R² {key}"), cells=cells))
    return rows


def _notes(results: list[FitResult], titles: list[str], interval: str) -> list[str]:
    notes = ["Standard errors in parentheses." if interval == "se" else "95% confidence intervals in brackets.",
             "Fixed effects: * p < 0.05, ** p < 0.01, *** p < 0.001."]
    if any(r.dfmethod not in (None, "z") for r in results):
        notes.append("p-values and intervals of fits with a df method use t distributions with their df.")
    methods = {r.method for r in results}
    if "REML" in methods:
        notes.append("REML fits show the log restricted-likelihood (and AIC/BIC from it): compare fixed effects "
                     "only between ML fits.")
    if len({r.nobs for r in results}) > 1:
        notes.append("The fits use different numbers of observations: their log-likelihoods are not comparable.")
    for title, result in zip(titles, results):
        if result.warnings:
            notes.append(f"Model {title} has {len(result.warnings)} warning(s): "
                         + " ".join(result.warnings))
    return notes
