"""Write a table (a DataFrame) as CSV, LaTeX or HTML, chosen by the file's extension."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import UserInputError

TABLE_FORMATS = {".csv": "CSV (*.csv)", ".tex": "LaTeX (*.tex)", ".html": "HTML (*.html)"}
TABLE_FILE_FILTER = ";;".join(TABLE_FORMATS.values())

_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                   "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def export_table(frame: pd.DataFrame, path: str | Path, decimals: int = 4) -> Path:
    """Write ``frame`` to ``path``; CSV keeps full precision, LaTeX and HTML round to ``decimals``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise UserInputError(f"{path.name}: unknown table format; use {', '.join(TABLE_FORMATS)}")
    try:
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        elif suffix == ".html":
            frame.to_html(path, index=False, na_rep=".", float_format=lambda v: f"{v:.{decimals}f}",
                          border=0, classes="hlm-table")
        else:
            path.write_text(latex_table(frame, decimals), encoding="utf-8")
    except OSError as error:
        raise UserInputError(f"cannot write {path}: {error.strerror or error}") from error
    return path


def latex_table(frame: pd.DataFrame, decimals: int = 4) -> str:
    """A booktabs tabular; numbers right-aligned. Written here so LaTeX export needs no jinja2."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)
                    else "l" for c in frame.columns)
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule",
             " & ".join(_latex_escape(str(c)) for c in frame.columns) + r" \\", "\\midrule"]
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_latex_cell(value, decimals) for value in row) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def _latex_cell(value, decimals: int) -> str:
    if value is None or value is pd.NA:
        return "."
    if isinstance(value, (float, np.floating)):
        return "." if not math.isfinite(value) else f"{value:.{decimals}f}"
    return _latex_escape(str(value))


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)
