"""The Results tab's Summary page: the fit's tables formatted for reading (jamovi/JASP-like).

Warnings first, then the model, groups, fixed effects with significance marks, random effects
grouped under a heading per level (with its covariance structure), tests, and ICC/R² when the
fit carries them. The numbers and their formatting are the engine's report (engine.fit_report);
the Stata-style text stays on the Report page, one click away.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import QTextBrowser

from engine.fit_report import FitReport, ReportTable, build_fit_report
from engine.model_table import STAR_LEVELS

SCREEN_CSS = """
h3 { margin-top: 14px; margin-bottom: 4px; }
table { border-collapse: collapse; }
th { background: #eef2f7; padding: 3px 10px; text-align: right; border-bottom: 1px solid #8a9bb0; }
th.text { text-align: left; }
td { padding: 2px 10px; text-align: right; }
td.text { text-align: left; }
tr.level td { background: #f5f5f5; font-weight: bold; text-align: left; border-top: 1px solid #bbb; }
td.sig { color: #a0301c; font-weight: bold; text-align: left; }
td.nose { color: #8a8a8a; }
.warning { color: #8a5a00; background: #fff4d6; border: 1px solid #e8c66a; padding: 4px; }
.note { color: #444; }
"""


def _stars(p) -> str:
    if p is None or p != p:
        return ""
    return next((mark for limit, mark in STAR_LEVELS if p < limit), "")


def _header(table: ReportTable, extra: list[str] = ()) -> str:
    kinds = table.formats or ["number"] * len(table.columns)
    cells = "".join(f'<th class="{"text" if k == "text" else "num"}">{html.escape(c)}</th>'
                    for c, k in zip(table.columns, kinds))
    return "<tr>" + cells + "".join(f'<th class="text">{html.escape(e)}</th>' for e in extra) + "</tr>"


def _cells(texts: list[str], kinds: list[str]) -> str:
    return "".join(f'<td class="{"text" if k == "text" else "num"}">{html.escape(t)}</td>' for t, k in zip(texts, kinds))


def _plain_table(table: ReportTable) -> str:
    kinds = table.formats or ["number"] * len(table.columns)
    rows = "".join(f"<tr>{_cells(texts, kinds)}</tr>" for texts in table.text_rows())
    return f'<table cellspacing="0">{_header(table)}{rows}</table>'


def _fixed_table(table: ReportTable) -> str:
    """Coefficients with a significance column (*, **, ***) from each row's p-value."""
    kinds = table.formats
    p_column = next(i for i, c in enumerate(table.columns) if c.startswith("P>"))
    rows = []
    for values, texts in zip(table.rows, table.text_rows()):
        rows.append(f'<tr>{_cells(texts, kinds)}<td class="sig">{_stars(values[p_column])}</td></tr>')
    return f'<table cellspacing="0">{_header(table, [""])}{"".join(rows)}</table>'


def _random_table(table: ReportTable, structures: dict[str, str]) -> str:
    """One heading row per level ('school: Exchangeable'), its parameters under it; a missing SE
    (a boundary estimate) is shown greyed."""
    columns = table.columns[1:]
    kinds = table.formats[1:]
    sub = ReportTable(table.key, table.title, columns, [row[1:] for row in table.rows], kinds)
    rows, current = [], None
    for values, texts in zip(table.rows, sub.text_rows()):
        level = values[0]
        if level != current:
            current = level
            label = "Residual" if level == "Residual" else f"{level}: {structures.get(level, 'Identity')}"
            rows.append(f'<tr class="level"><td class="text" colspan="{len(columns)}">{html.escape(label)}</td></tr>')
        row_class = ' class="nose"' if values[2] is None else ""
        rows.append(f"<tr{row_class}>{_cells(texts, kinds)}</tr>")
    return f'<table cellspacing="0">{_header(sub)}{"".join(rows)}</table>'


def summary_html(report: FitReport, structures: dict[str, str]) -> str:
    parts = [f"<style>{SCREEN_CSS}</style>"]
    for warning in report.warnings:
        parts.append(f'<p class="warning">⚠ {html.escape(warning)}</p>')
    # On screen the estimates come first; the model's description is in the title above.
    order = ["fixed", "random", "icc", "r2", "tests", "groups", "fit"]
    tables = sorted(report.tables, key=lambda t: order.index(t.key) if t.key in order else len(order))
    for table in tables:
        parts.append(f"<h3>{html.escape(table.title)}</h3>")
        if table.key == "fixed":
            parts.append(_fixed_table(table))
            parts.append('<p class="note">* p &lt; 0.05, ** p &lt; 0.01, *** p &lt; 0.001</p>')
        elif table.key == "random":
            parts.append(_random_table(table, structures))
        else:
            parts.append(_plain_table(table))
        # The random table shows its structures in its level rows; its units note is still said.
        notes = [note for note in table.notes if table.key != "random" or note.startswith("Units:")]
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    if report.notes:
        parts.append("<h3>Notes</h3>")
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in report.notes]
    return "\n".join(parts)


class FitSummaryView(QTextBrowser):
    """Formatted tables of one fit (read only, selectable, copyable)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setToolTip("The fit's tables, formatted for reading. The Report page has the same numbers as "
                        "Stata prints them.")
        self.report: FitReport | None = None

    def show_fit(self, result, data_label: str = "", variances: bool = False) -> None:
        self.report = build_fit_report(result, data_label, variances=variances)
        self.report.stata_text = ""
        structures = {}
        for level in (result.spec.levels if result.spec is not None else []):
            structures[level.name] = level.covariance.capitalize() if len(level.terms) > 1 else "Identity"
        self.setHtml(summary_html(self.report, structures))

    def clear_fit(self) -> None:
        self.report = None
        self.clear()
