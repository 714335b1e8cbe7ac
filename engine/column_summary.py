"""Per-column summaries of a data set (type, missing values, distinct values, range)."""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd

SUMMARY_COLUMNS = ["Column", "Type", "Missing", "Distinct", "Mean", "Std. Dev.", "Min", "Max"]


def column_summaries(frame: pd.DataFrame, should_stop: Optional[Callable[[], None]] = None) -> pd.DataFrame:
    """One row per column; numbers only for numeric (non-boolean) columns.

    ``should_stop`` is called before each column (it raises to cancel), so a long summary of a
    wide, large table can be stopped.
    """
    rows = []
    for name in frame.columns:
        if should_stop is not None:
            should_stop()
        column = frame[name]
        numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)
        rows.append({
            "Column": str(name), "Type": str(column.dtype), "Missing": int(column.isna().sum()),
            "Distinct": int(column.nunique()),
            "Mean": float(column.mean()) if numeric else None,
            "Std. Dev.": float(column.std()) if numeric else None,
            "Min": float(column.min()) if numeric else None,
            "Max": float(column.max()) if numeric else None,
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
