"""Write a table (a DataFrame) as CSV, LaTeX or HTML, chosen by the file's extension."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import UserInputError

TABLE_FORMATS = {".csv": "CSV (*.csv)", ".tex": "LaTeX (*.tex)", ".html": "HTML (*.html)"}
TABLE_FILE_FILTER = ";;".join(TABLE_FORMATS.values())

_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                   "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def export_table(frame: pd.DataFrame, path: str | Path, decimals: int = 4, notes: list[str] | None = None) -> Path:
    """Write ``frame`` to ``path``; CSV keeps full precision, LaTeX and HTML round to ``decimals``.

    ``notes`` (e.g. the fit's model and warnings) go under the table: LaTeX table notes, an HTML
    paragraph per note, comment lines (``# ...``) after a CSV's rows would break readers, so CSV
    leaves them out.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise UserInputError(f"{path.name}: unknown table format; use {', '.join(TABLE_FORMATS)}")
    notes = [note for note in (notes or []) if note]
    try:
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        elif suffix == ".html":
            table = frame.to_html(index=False, na_rep=".", float_format=lambda v: f"{v:.{decimals}f}",
                                  border=0, classes="hlm-table")
            footer = "".join(f'\n<p class="hlm-note">{html.escape(note)}</p>' for note in notes)
            path.write_text(table + footer + "\n", encoding="utf-8")
        else:
            path.write_text(latex_table(frame, decimals, notes), encoding="utf-8")
    except OSError as error:
        raise UserInputError(f"cannot write {path}: {error.strerror or error}") from error
    return path


def latex_table(frame: pd.DataFrame, decimals: int = 4, notes: list[str] | None = None) -> str:
    """A booktabs table whose number columns are siunitx ``S`` columns, so numbers line up on the
    decimal point; ``notes`` follow it as threeparttable notes. Written here so LaTeX export
    needs no jinja2."""
    numeric = [_is_number_column(frame[c]) for c in frame.columns]
    columns = "".join(_siunitx_column(frame[c], decimals) if is_number else "l"
                      for c, is_number in zip(frame.columns, numeric))
    header = " & ".join(("{" + _latex_escape(str(c)) + "}") if is_number else _latex_escape(str(c))
                        for c, is_number in zip(frame.columns, numeric))
    packages = "booktabs, siunitx" + (", threeparttable" if notes else "")
    lines = [f"% needs \\usepackage{{{packages}}}"]
    if notes:
        lines.append("\\begin{threeparttable}")
    lines += [f"\\begin{{tabular}}{{{columns}}}", "\\toprule", header + r" \\", "\\midrule"]
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_latex_cell(value, decimals, is_number) for value, is_number in zip(row, numeric))
                     + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if notes:
        lines += ["\\begin{tablenotes}\\footnotesize"] + [f"\\item {_latex_escape(note)}" for note in notes]
        lines += ["\\end{tablenotes}", "\\end{threeparttable}"]
    return "\n".join(lines) + "\n"


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def _siunitx_column(column: pd.Series, decimals: int) -> str:
    """``S[table-format=-3.4]``: room for the widest integer part and the sign, fixed decimals."""
    values = np.asarray(pd.to_numeric(column, errors="coerce").astype("float64"))
    finite = values[np.isfinite(values)]
    places = 0 if pd.api.types.is_integer_dtype(column.dtype) else decimals
    texts = [f"{v:.{places}f}" for v in finite]
    digits = max((len(t.lstrip("-").split(".")[0]) for t in texts), default=1)
    sign = "-" if any(t.startswith("-") for t in texts) else ""
    return f"S[table-format={sign}{digits}.{places},group-digits=false]"


def _latex_cell(value, decimals: int, in_number_column: bool = False) -> str:
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and not math.isfinite(value)):
        return "{.}" if in_number_column else "."  # braces: text, not a number, in an S column
    if isinstance(value, (float, np.floating)):
        return f"{value:.{decimals}f}"
    if in_number_column and isinstance(value, (int, np.integer)):
        return str(int(value))
    text = _latex_escape(str(value))
    return "{" + text + "}" if in_number_column else text


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)
