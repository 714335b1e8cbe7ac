"""Write a ModelTable (fits side by side) as text, CSV, LaTeX (booktabs) or HTML.

Text, LaTeX and HTML are laid out as esttab prints: each estimate with its significance stars and
its standard error (or 95% interval) on the line below. CSV is for programs: one row per table
row, every fit's estimate, SE, interval and p-value at full precision.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from engine.errors import UserInputError
from engine.model_table import ModelTable, TableCell, TableRow

MODEL_TABLE_FORMATS = (".csv", ".tex", ".html", ".txt")
SECTION_TITLES = {"fixed": "Fixed effects", "random": "Random effects", "statistic": "Statistics"}


def number_text(value: float | None, decimals: int = 3) -> str:
    """A number as the tables print it; missing or non-finite values are '.', as in Stata."""
    if value is None or not math.isfinite(value):
        return "."
    return f"{value:.{decimals}f}"


def cell_lines(cell: TableCell | None, row: TableRow, interval: str, decimals: int) -> tuple[str, str]:
    """The two lines of a cell: the estimate (with stars) and what goes under it."""
    if cell is None:
        return "", ""
    if cell.text is not None:
        return cell.text, ""
    if row.integer and cell.estimate is not None and math.isfinite(cell.estimate):
        return f"{int(round(cell.estimate))}", ""
    top = number_text(cell.estimate, decimals) + (cell.stars if row.section == "fixed" else "")
    if row.section == "statistic":
        return top, ""
    if interval == "ci":
        below = "" if not cell.ci else f"[{number_text(cell.ci[0], decimals)}, {number_text(cell.ci[1], decimals)}]"
    else:
        below = "" if cell.se is None else f"({number_text(cell.se, decimals)})"
    return top, below


def _lines_by_section(table: ModelTable, decimals: int):
    """(section, [(label, [top texts], [below texts])]) in the table's order."""
    out = []
    for section in ("fixed", "random", "statistic"):
        rows = table.rows_of(section)
        if not rows:
            continue
        entries = []
        for row in rows:
            pairs = [cell_lines(cell, row, table.interval, decimals) for cell in row.cells]
            entries.append((row.name, [p[0] for p in pairs], [p[1] for p in pairs]))
        out.append((section, entries))
    return out


# ----- display frame (the window's table) ------------------------------------------------------
def model_table_frame(table: ModelTable, decimals: int = 3) -> pd.DataFrame:
    """The table as the window shows it: text cells, a heading row per section, the SE row under
    each estimate (its label left empty)."""
    records = []
    for section, entries in _lines_by_section(table, decimals):
        records.append([SECTION_TITLES[section]] + [""] * len(table.titles))
        for label, tops, belows in entries:
            records.append([label] + tops)
            if any(belows):
                records.append([""] + belows)
    return pd.DataFrame(records, columns=["", *table.titles])


# ----- CSV -------------------------------------------------------------------------------------
def model_table_numbers(table: ModelTable) -> pd.DataFrame:
    """One row per table row; for each fit its estimate, SE, 95% interval and p at full precision."""
    records = []
    for row in table.rows:
        record = {"section": row.section, "level": row.level, "term": row.label}
        for title, cell in zip(table.titles, row.cells):
            present = cell is not None
            record[f"{title} estimate"] = (cell.text if cell.text is not None else cell.estimate) if present else None
            record[f"{title} se"] = cell.se if present else None
            record[f"{title} ci_low"] = cell.ci[0] if present and cell.ci else None
            record[f"{title} ci_high"] = cell.ci[1] if present and cell.ci else None
            record[f"{title} p"] = cell.p if present else None
        records.append(record)
    return pd.DataFrame(records)


# ----- text ------------------------------------------------------------------------------------
def model_table_text(table: ModelTable, decimals: int = 3) -> str:
    sections = _lines_by_section(table, decimals)
    labels = [label for _, entries in sections for label, _, _ in entries] + list(SECTION_TITLES.values())
    name_width = min(max(len(label) for label in labels), 40)
    cells = [text for _, entries in sections for _, tops, belows in entries for text in tops + belows]
    width = max([12, *(len(t) + 2 for t in table.titles), *(len(t) + 2 for t in table.depvars), *(len(c) + 2 for c in cells)])
    rule = "-" * (name_width + width * len(table.titles))

    def line(label: str, texts: list[str]) -> str:
        return f"{label[:name_width]:<{name_width}}" + "".join(f"{t:>{width}}" for t in texts)

    out = [rule, line("", table.titles), line("", table.depvars), rule]
    for index, (section, entries) in enumerate(sections):
        if index:
            out.append(rule)
        out.append(SECTION_TITLES[section])
        for label, tops, belows in entries:
            out.append(line(label, tops))
            if any(belows):
                out.append(line("", belows))
    out.append(rule)
    out += table.notes
    return "\n".join(out) + "\n"


# ----- LaTeX -----------------------------------------------------------------------------------
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                   "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def _latex_number(text: str) -> str:
    """Stars as a superscript, so the number stays a number; the rest escaped."""
    stripped = text.rstrip("*")
    stars = text[len(stripped):]
    return latex_escape(stripped) + (f"$^{{{stars}}}$" if stars else "")


def model_table_latex(table: ModelTable, decimals: int = 3) -> str:
    """A booktabs tabular (threeparttable for the notes), one centred column per fit."""
    k = len(table.titles)
    lines = ["% needs \\usepackage{booktabs, threeparttable}", "\\begin{threeparttable}",
             f"\\begin{{tabular}}{{l{'c' * k}}}", "\\toprule",
             " & " + " & ".join(latex_escape(t) for t in table.titles) + r" \\",
             " & " + " & ".join(latex_escape(t) for t in table.depvars) + r" \\"]
    for section, entries in _lines_by_section(table, decimals):
        lines.append("\\midrule")
        lines.append(f"\\multicolumn{{{k + 1}}}{{l}}{{\\textit{{{SECTION_TITLES[section]}}}}} \\\\")
        for label, tops, belows in entries:
            lines.append(latex_escape(label) + " & " + " & ".join(_latex_number(t) for t in tops) + r" \\")
            if any(belows):
                lines.append(" & " + " & ".join(latex_escape(b) for b in belows) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\begin{tablenotes}\\footnotesize"]
    lines += [f"\\item {latex_escape(note)}" for note in table.notes]
    lines += ["\\end{tablenotes}", "\\end{threeparttable}"]
    return "\n".join(lines) + "\n"


# ----- HTML ------------------------------------------------------------------------------------
TABLE_CSS = """
table.hlm-table { border-collapse: collapse; margin: 0.5em 0; font-variant-numeric: tabular-nums; }
table.hlm-table th, table.hlm-table td { padding: 2px 10px; }
table.hlm-table thead tr:first-child th { border-top: 2px solid #333; }
table.hlm-table thead tr:last-child th { border-bottom: 1px solid #333; }
table.hlm-table tbody:last-of-type tr:last-child > * { border-bottom: 2px solid #333; }
table.hlm-table td { text-align: right; }
table.hlm-table th[scope=row] { text-align: left; font-weight: normal; }
table.hlm-table tr.section th { text-align: left; font-style: italic; border-top: 1px solid #999; }
table.hlm-table tr.below td { color: #555; }
p.hlm-note { font-size: 90%; color: #333; margin: 0.2em 0; }
"""


def _html_number(text: str) -> str:
    stripped = text.rstrip("*")
    stars = text[len(stripped):]
    return html.escape(stripped) + (f"<sup>{stars}</sup>" if stars else "")


def model_table_html(table: ModelTable, decimals: int = 3, document: bool = True) -> str:
    """The table as HTML; ``document`` wraps it in a complete page with its style sheet."""
    parts = ['<table class="hlm-table hlm-model-table">', "<thead>",
             "<tr><th></th>" + "".join(f'<th scope="col">{html.escape(t)}</th>' for t in table.titles) + "</tr>",
             "<tr><th></th>" + "".join(f"<th>{html.escape(d)}</th>" for d in table.depvars) + "</tr>", "</thead>"]
    for section, entries in _lines_by_section(table, decimals):
        parts.append(f'<tbody class="{section}">')
        parts.append(f'<tr class="section"><th colspan="{len(table.titles) + 1}">{SECTION_TITLES[section]}</th></tr>')
        for label, tops, belows in entries:
            parts.append(f'<tr><th scope="row">{html.escape(label)}</th>'
                         + "".join(f"<td>{_html_number(t)}</td>" for t in tops) + "</tr>")
            if any(belows):
                parts.append('<tr class="below"><th scope="row"></th>'
                             + "".join(f"<td>{html.escape(b)}</td>" for b in belows) + "</tr>")
        parts.append("</tbody>")
    parts.append("</table>")
    parts += [f'<p class="hlm-note">{html.escape(note)}</p>' for note in table.notes]
    body = "\n".join(parts)
    if not document:
        return body + "\n"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(' / '.join(table.titles))}</title>\n<style>{TABLE_CSS}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


# ----- files -----------------------------------------------------------------------------------
def write_model_table(table: ModelTable, path: str | Path, decimals: int = 3) -> Path:
    """Write ``table`` in the format of ``path``'s extension (.csv, .tex, .html or .txt), atomically."""
    from engine.atomic_write import write_text_atomically

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text = model_table_numbers(table).to_csv(index=False)
    elif suffix == ".tex":
        text = model_table_latex(table, decimals)
    elif suffix in (".html", ".htm"):
        text = model_table_html(table, decimals)
    elif suffix == ".txt":
        text = model_table_text(table, decimals)
    else:
        raise UserInputError(f"{path.name}: unknown table format; use {', '.join(MODEL_TABLE_FORMATS)}")
    return write_text_atomically(path, text, "model table")
