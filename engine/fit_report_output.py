"""Write a FitReport as one self-contained HTML file (plots embedded) or as a Word document.

python-docx is imported only when a Word document is written, so the command line starts
without it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from engine.errors import UserInputError
from engine.fit_report import FitReport, ReportTable

REPORT_FORMATS = (".html", ".docx")

REPORT_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 60em; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
code, pre { font-family: Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.88em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.meta { color: #555; }
.warning { color: #8a5a00; background: #fff4d6; border: 1px solid #e8c66a; padding: 0.4em 0.7em; margin: 0.4em 0; }
table.hlm-table { border-collapse: collapse; margin: 0.4em 0; font-variant-numeric: tabular-nums; }
table.hlm-table th, table.hlm-table td { padding: 2px 10px; }
table.hlm-table thead th { border-top: 2px solid #333; border-bottom: 1px solid #333; text-align: right; }
table.hlm-table thead th:first-child { text-align: left; }
table.hlm-table tbody tr:last-child td { border-bottom: 2px solid #333; }
table.hlm-table td.num { text-align: right; }
table.hlm-table tr.level-start td { border-top: 1px solid #bbb; }
p.table-note, p.hlm-note { font-size: 90%; color: #333; margin: 0.2em 0; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 90%; color: #444; }
"""


def write_report(report: FitReport, path: str | Path) -> Path:
    """Write ``report`` as HTML or Word (.docx), by ``path``'s extension, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        from engine.atomic_write import write_text_atomically

        return write_text_atomically(path, report_html(report), "report")
    if suffix == ".docx":
        from engine.atomic_write import atomic_path

        with atomic_path(path, "report") as temporary:
            report_docx(report).save(str(temporary))
        return path
    raise UserInputError(f"{path.name}: unknown report format; use .html or .docx")


def check_report_option(path: str | None, data: str) -> None:
    """``fit --report PATH``: a known format, a writable place, not the data file itself."""
    if not path:
        return
    if Path(path).suffix.lower() not in (".html", ".htm", ".docx"):
        raise UserInputError(f"--report {path}: unknown report format; use .html or .docx")
    from engine.cli._options import check_outputs

    check_outputs([("--report", path)], [("DATA", data)])


def write_command_line_report(result, data: str, path: str, variances: bool = False) -> Path:
    """The command line's report: the data file named in full; no plots (no plotting without Qt)."""
    from engine.fit_report import CLI_PLOTS_NOTE, build_fit_report

    report = build_fit_report(result, str(Path(data).resolve()), variances=variances, plots_note=CLI_PLOTS_NOTE)
    return write_report(report, path)


# ----- HTML --------------------------------------------------------------------------------------
def table_html(table: ReportTable) -> str:
    kinds = table.formats or ["number"] * len(table.columns)
    parts = [f'<table class="hlm-table" id="table-{table.key}">', "<thead><tr>"
             + "".join(f'<th scope="col">{html.escape(c)}</th>' for c in table.columns) + "</tr></thead>", "<tbody>"]
    previous_level = None
    for values, texts in zip(table.rows, table.text_rows()):
        # random effects: a line where a new level starts
        level_start = table.key == "random" and previous_level is not None and values[0] != previous_level
        previous_level = values[0]
        cells = "".join(f'<td class="{"text" if kind == "text" else "num"}">{html.escape(text)}</td>'
                        for text, kind in zip(texts, kinds))
        parts.append(f'<tr class="level-start">{cells}</tr>' if level_start else f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    parts += [f'<p class="table-note">{html.escape(note)}</p>' for note in table.notes]
    return "\n".join(parts)


def report_html(report: FitReport) -> str:
    """One HTML page with everything in it: styles inline, plots as data: URIs (SVG, else PNG)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(report.title)}</title>", f"<style>{REPORT_CSS}</style>", "</head>", "<body>",
           f"<h1>{html.escape(report.title)}</h1>",
           f'<p class="meta">Model: <code>{html.escape(report.model)}</code><br>'
           f"Data: {html.escape(report.data_source)}<br>Method: {html.escape(report.method)}<br>"
           f"Made by {html.escape(report.program)} on {html.escape(report.created)}</p>"]
    if report.warnings:
        out.append("<h2>Warnings</h2>")
        out += [f'<p class="warning">⚠ {html.escape(warning)}</p>' for warning in report.warnings]
    for table in report.tables:
        out.append(f"<h2>{html.escape(table.title)}</h2>")
        out.append(table_html(table))
    if report.figures:
        out.append("<h2>Plots</h2>")
        for figure in report.figures:
            if figure.svg:
                source = "data:image/svg+xml;base64," + base64.b64encode(figure.svg.encode("utf-8")).decode("ascii")
            elif figure.png_base64:
                source = "data:image/png;base64," + figure.png_base64
            else:
                continue
            caption = html.escape(figure.title + (f": {figure.caption}" if figure.caption else ""))
            out.append(f'<figure><img src="{source}" alt="{html.escape(figure.title)}"><figcaption>{caption}</figcaption></figure>')
    if report.notes:
        out.append("<h2>Notes</h2>")
        out += [f'<p class="hlm-note">{html.escape(note)}</p>' for note in report.notes]
    out.append("<h2>Stata-style output</h2>")
    out.append(f"<pre>{html.escape(report.stata_text)}</pre>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ----- Word --------------------------------------------------------------------------------------
def report_docx(report: FitReport):
    """The report as a python-docx Document (tables as Word tables, plots as PNG pictures)."""
    import io

    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Inches, Pt, RGBColor

    document = Document()
    document.core_properties.title = report.title
    document.core_properties.author = report.program
    document.add_heading(report.title, level=1)
    meta = document.add_paragraph()
    for label, value in (("Model: ", report.model), ("Data: ", report.data_source), ("Method: ", report.method),
                         ("Made by: ", f"{report.program} on {report.created}")):
        meta.add_run(label).bold = True
        meta.add_run(value + "\n")
    if report.warnings:
        document.add_heading("Warnings", level=2)
        for warning in report.warnings:
            run = document.add_paragraph().add_run(f"⚠ {warning}")
            run.font.color.rgb = RGBColor(0x8A, 0x5A, 0x00)
    for table in report.tables:
        document.add_heading(table.title, level=2)
        kinds = table.formats or ["number"] * len(table.columns)
        grid = document.add_table(rows=1 + len(table.rows), cols=len(table.columns))
        grid.style = "Table Grid"
        for j, name in enumerate(table.columns):
            cell = grid.cell(0, j)
            cell.text = name
            cell.paragraphs[0].runs[0].bold = True
        for i, texts in enumerate(table.text_rows(), start=1):
            for j, (text, kind) in enumerate(zip(texts, kinds)):
                cell = grid.cell(i, j)
                cell.text = text
                if kind != "text":
                    cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
        for note in table.notes:
            document.add_paragraph(note).runs[0].italic = True
    pictures = [figure for figure in report.figures if figure.png_base64]
    if pictures:
        document.add_heading("Plots", level=2)
        for figure in pictures:
            document.add_picture(io.BytesIO(base64.b64decode(figure.png_base64)), width=Inches(6.0))
            document.add_paragraph(figure.title + (f": {figure.caption}" if figure.caption else "")).runs[0].italic = True
    if report.notes:
        document.add_heading("Notes", level=2)
        for note in report.notes:
            document.add_paragraph(note)
    document.add_heading("Stata-style output", level=2)
    for line in report.stata_text.rstrip("\n").split("\n"):
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(0)
        run = paragraph.add_run(line)
        run.font.name = "Courier New"
        run.font.size = Pt(7.5)
    return document
