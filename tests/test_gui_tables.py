"""The DataFrame table model (Qt's model tester; 8 million rows), copying and table export."""


import numpy as np
import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QGuiApplication

from engine.errors import UserInputError
from gui.tables.dataframe_model import RAW_VALUE_ROLE, DataFrameTableModel, format_number
from gui.tables.table_export import export_table, latex_table
from gui.tables.table_view import CopyableTableView

RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)


@pytest.fixture
def small_frame():
    return pd.DataFrame({
        "school_id": np.array([1, 1, 2], dtype=np.int32),
        "score": [1.5, np.nan, -2.25],
        "name": ["a", None, "c_d"],
        "count": pd.array([1, None, 3], dtype="Int64"),
        "flag": [True, False, True],
    })


def test_model_passes_qt_model_tester(qtmodeltester, small_frame):
    model = DataFrameTableModel(small_frame)
    qtmodeltester.check(model, force_py=False)


def test_cells_are_formatted_and_aligned(small_frame):
    model = DataFrameTableModel(small_frame)
    text = lambda row, column: model.data(model.index(row, column))  # noqa: E731
    assert [text(0, c) for c in range(5)] == ["1", "1.5000", "a", "1", "True"]
    assert text(1, 1) == "." and text(1, 2) == "." and text(1, 3) == "."
    assert model.data(model.index(0, 1), Qt.ItemDataRole.TextAlignmentRole) == RIGHT
    assert model.data(model.index(0, 2), Qt.ItemDataRole.TextAlignmentRole) == LEFT
    assert model.data(model.index(2, 1), RAW_VALUE_ROLE) == -2.25
    assert model.headerData(1, Qt.Orientation.Horizontal) == "score"
    assert model.headerData(2, Qt.Orientation.Vertical) == "3"
    model.set_columns(["score", "school_id"])
    assert model.columnCount() == 2 and text(0, 1) == "1"


def test_format_number():
    assert format_number(2.0) == "2.0000"
    assert format_number(1234567890123.0) == "1.235e+12"
    assert format_number(np.int64(7)) == "7"
    assert format_number(float("inf")) == "."


class CountingModel(DataFrameTableModel):
    """Counts the cells asked for, to show that only visible cells are formatted."""

    cells_asked = 0

    def data(self, index, role=None):  # noqa: D102 (Qt override)
        type(self).cells_asked += 1
        return super().data(index, role) if role is not None else super().data(index)


def test_eight_million_rows_are_formatted_only_where_visible(qtbot):
    rows = 8_000_000
    frame = pd.DataFrame({
        "student_id": np.arange(1, rows + 1, dtype=np.int32),
        "tutoring": (np.arange(rows) % 5 == 0).astype(np.int8),
        "perform": np.linspace(-30, 30, rows),
    })
    model = CountingModel(frame)
    view = CopyableTableView(model)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    CountingModel.cells_asked = 0
    view.scrollToBottom()
    view.viewport().grab()  # paints the visible cells: the only ones formatted
    assert model.rowCount() == rows
    assert model.data(model.index(rows - 1, 0)) == str(rows)
    # A screenful is some tens of rows x 3 columns x a few roles; nothing near 8 million.
    assert 0 < CountingModel.cells_asked < 20_000
    view.selectAll()
    with pytest.raises(UserInputError, match="export the table"):
        view.selection_text()
    view.close()


def test_copy_selection_as_tab_separated_text(qtbot, small_frame):
    view = CopyableTableView(DataFrameTableModel(small_frame))
    qtbot.addWidget(view)
    selection = view.selectionModel()
    model = view.model()
    for row in (0, 2):
        for column in (0, 1):
            selection.select(model.index(row, column), selection.SelectionFlag.Select)
    assert view.selection_text() == "school_id\tscore\n1\t1.5000\n2\t-2.2500\n"
    view.copy_selection()
    assert QGuiApplication.clipboard().text() == view.selection_text()


def test_export_csv_latex_html(tmp_path, small_frame):
    csv = export_table(small_frame, tmp_path / "t.csv")
    assert pd.read_csv(csv)["score"].iloc[2] == -2.25  # full precision
    tex = export_table(small_frame, tmp_path / "t.tex").read_text()
    assert "\\begin{tabular}{" in tex and r"c\_d" in tex and "-2.2500" in tex
    html = export_table(small_frame, tmp_path / "t.html").read_text()
    assert "<table" in html and "-2.2500" in html
    with pytest.raises(UserInputError, match="unknown table format"):
        export_table(small_frame, tmp_path / "t.xyz")


def test_latex_escapes_specials():
    text = latex_table(pd.DataFrame({"a_b": ["x&y%"], "v": [1.0]}), decimals=2)
    assert r"a\_b" in text and r"x\&y\%" in text and "1.00" in text


def test_model_rejects_child_indexes(small_frame):
    model = DataFrameTableModel(small_frame)
    assert model.rowCount(model.index(0, 0)) == 0
    assert model.data(QModelIndex()) is None
