"""A read-only Qt table model over a pandas DataFrame that stays fast with millions of rows.

Nothing is formatted ahead of time: the view asks ``data()`` only for the cells it paints, so
cost depends on the window's size, not on the number of rows. Numeric columns are read through
their numpy arrays (a view, no copy); other columns cell by cell.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

MISSING_TEXT = "."  # Stata's missing value, as in the text reports
RAW_VALUE_ROLE = Qt.ItemDataRole.UserRole

Formatter = Callable[[Any], str]


def format_number(value: Any, decimals: int = 4) -> str:
    """Fixed decimals for ordinary magnitudes, scientific for very large or small ones."""
    if value is None:
        return MISSING_TEXT
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):d}"
    value = float(value)
    if not math.isfinite(value):
        return MISSING_TEXT
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e9 or magnitude < 10 ** -decimals):
        return f"{value:.{max(decimals - 1, 1)}e}"
    return f"{value:.{decimals}f}"


def decimals_formatter(decimals: int) -> Formatter:
    return lambda value: format_number(value, decimals)


class DataFrameTableModel(QAbstractTableModel):
    """Rows and columns of a DataFrame; ``columns`` picks and orders the columns shown.

    ``formatters`` maps a column name to a function value -> text; other numeric columns get
    four decimals. Numbers are right-aligned, text left-aligned.
    """

    def __init__(self, frame: pd.DataFrame | None = None, columns: list[str] | None = None,
                 formatters: Mapping[str, Formatter] | None = None, parent=None):
        super().__init__(parent)
        self._frame = pd.DataFrame()
        self._columns: list[str] = []
        self._numeric: list[bool] = []
        self._mixed: list[bool] = []
        self._arrays: dict[int, np.ndarray] = {}
        self._formatters: dict[str, Formatter] = dict(formatters or {})
        if frame is not None:
            self.set_frame(frame, columns)

    # ----- content -------------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        return self._frame

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def visible_frame(self) -> pd.DataFrame:
        """The shown columns, for copying and export."""
        return self._frame[self._columns]

    def set_frame(self, frame: pd.DataFrame, columns: list[str] | None = None,
                  formatters: Mapping[str, Formatter] | None = None) -> None:
        self.beginResetModel()
        self._frame = frame
        self._columns = list(frame.columns) if columns is None else [c for c in columns if c in frame.columns]
        if formatters is not None:
            self._formatters = dict(formatters)
        self._numeric = [pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)
                         for c in self._columns]
        # Columns of numbers mixed with words (object dtype) are aligned as numbers; a peek at
        # their first values decides, so that millions of rows are never scanned.
        self._mixed = [not numeric and frame[c].dtype == object and any(_is_number(v) for v in frame[c].iloc[:50])
                       for c, numeric in zip(self._columns, self._numeric)]
        self._arrays = {}
        self.endResetModel()

    def set_columns(self, columns: list[str]) -> None:
        self.set_frame(self._frame, columns)

    def clear(self) -> None:
        self.set_frame(pd.DataFrame())

    # ----- Qt model interface --------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._frame)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._value(index.row(), column)
            formatter = self._formatters.get(self._columns[column])
            return formatter(value) if formatter is not None else self._default_text(value, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            value = self._value(index.row(), column)  # full precision of what the cell rounds
            return repr(float(value)) if isinstance(value, (float, np.floating)) else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            numeric = self._numeric[column] or self._mixed[column]
            horizontal = Qt.AlignmentFlag.AlignRight if numeric else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == RAW_VALUE_ROLE:
            return self._value(index.row(), column)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return str(self._columns[section]) if 0 <= section < len(self._columns) else None
        return str(section + 1) if 0 <= section < len(self._frame) else None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # ----- helpers -------------------------------------------------------------------------------
    def _value(self, row: int, column: int) -> Any:
        if self._numeric[column]:
            array = self._arrays.get(column)
            if array is None:
                array = self._arrays[column] = _numeric_array(self._frame[self._columns[column]])
            return array[row]
        value = self._frame[self._columns[column]].iat[row]
        return None if value is pd.NA or (isinstance(value, float) and math.isnan(value)) else value

    def _default_text(self, value: Any, column: int) -> str:
        if self._numeric[column]:
            return format_number(value)
        return MISSING_TEXT if value is None else str(value)


def _numeric_array(series: pd.Series) -> np.ndarray:
    """The column's values as numpy; nullable (masked) columns become float with NaN for NA."""
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) and series.hasnans:
        if pd.api.types.is_integer_dtype(series.dtype):
            return series.to_numpy(dtype=object, na_value=None)  # whole numbers stay whole
        return series.to_numpy(dtype="float64", na_value=np.nan)
    return series.to_numpy()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def number_or_text(value: Any) -> str:
    """For columns that mix numbers and words (e.g. a comparison's "yes"/"no" rows); blank
    where there is nothing."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return ""
    return format_number(value) if _is_number(value) else str(value)


def average_text(value: Any) -> str:
    """Averages of counts: one decimal, thousands separated."""
    return MISSING_TEXT if value is None else f"{float(value):,.1f}"


def count_text(value: Any) -> str:
    """Counts with thousands separators (not for ids, which are names rather than amounts)."""
    return MISSING_TEXT if value is None else f"{int(value):,}"
