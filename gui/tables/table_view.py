"""A table view whose content can be copied (Ctrl+C, as tab-separated text) and exported."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QFileDialog, QHeaderView, QMenu, QTableView

from engine.errors import UserInputError
from gui.tables.dataframe_model import DataFrameTableModel
from gui.tables.table_export import TABLE_FILE_FILTER, export_table

# Copying more cells than this would freeze the window and fill the clipboard with megabytes.
MAX_COPY_CELLS = 1_000_000


class CopyableTableView(QTableView):
    """Shows a ``DataFrameTableModel``; Ctrl+C copies the selected cells with their headers;
    the context menu also copies or exports the whole table."""

    export_failed = Signal(str)
    table_exported = Signal(str)

    def __init__(self, model: DataFrameTableModel | None = None, export_name: str = "table", parent=None):
        super().__init__(parent)
        self.export_name = export_name
        self.export_notes: list[str] = []  # written under the table in LaTeX and HTML (the fit's model, warnings)
        self.last_directory = ""
        self.setModel(model or DataFrameTableModel(parent=self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._show_menu)
        vertical = self.verticalHeader()
        # Fixed row heights: Qt then never measures rows, which matters with millions of them.
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.horizontalHeader().setStretchLastSection(False)
        self.copy_action = QAction("Copy", self, shortcut=QKeySequence.StandardKey.Copy,
                                   shortcutContext=Qt.ShortcutContext.WidgetShortcut)
        self.copy_action.triggered.connect(self.copy_selection)
        self.addAction(self.copy_action)

    def table_model(self) -> DataFrameTableModel:
        return self.model()

    # ----- copy ----------------------------------------------------------------------------------
    def selection_text(self) -> str:
        """The selected block as tab-separated text with a header line (all cells if none)."""
        model = self.table_model()
        # Selection ranges, not selectedIndexes(): "select all" on millions of rows would build
        # one index object per cell just to count them.
        ranges = list(self.selectionModel().selection()) if self.selectionModel() else []
        if ranges:
            rows = sorted({row for r in ranges for row in range(r.top(), r.bottom() + 1)}
                          if _cell_count(ranges) <= MAX_COPY_CELLS else [])
            columns = sorted({column for r in ranges for column in range(r.left(), r.right() + 1)})
            cells = _cell_count(ranges)
        else:
            rows, columns = list(range(model.rowCount())), list(range(model.columnCount()))
            cells = len(rows) * len(columns)
        if cells > MAX_COPY_CELLS:
            raise UserInputError(
                f"the selection has {cells:,} cells; copy at most {MAX_COPY_CELLS:,} "
                "or export the table to a file")
        lines = ["\t".join(str(model.headerData(c, Qt.Orientation.Horizontal)) for c in columns)]
        for row in rows:
            lines.append("\t".join(str(model.data(model.index(row, c))) for c in columns))
        return "\n".join(lines) + "\n"

    def copy_selection(self) -> None:
        try:
            QGuiApplication.clipboard().setText(self.selection_text())
        except UserInputError as error:
            self.export_failed.emit(str(error))

    # ----- export --------------------------------------------------------------------------------
    def export_to(self, path: str | Path) -> Path:
        """Write the whole table (the shown columns) to ``path``; the extension picks the format."""
        return export_table(self.table_model().visible_frame(), path, notes=self.export_notes)

    def export_with_dialog(self) -> None:
        start = str(Path(self.last_directory or ".") / f"{self.export_name}.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export table", start, TABLE_FILE_FILTER)
        if not path:
            return
        if not Path(path).suffix:
            path += ".csv"
        try:
            written = self.export_to(path)
        except UserInputError as error:
            self.export_failed.emit(str(error))
            return
        self.last_directory = str(Path(path).parent)
        self.table_exported.emit(str(written))

    def _show_menu(self, position) -> None:
        menu = QMenu(self)
        menu.addAction(self.copy_action)
        copy_all = menu.addAction("Copy whole table")
        copy_all.triggered.connect(lambda: (self.clearSelection(), self.copy_selection()))
        menu.addSeparator()
        export = menu.addAction("Export table (CSV, LaTeX, HTML)…")
        export.triggered.connect(self.export_with_dialog)
        menu.popup(self.viewport().mapToGlobal(position))


def _cell_count(ranges) -> int:
    return sum((r.bottom() - r.top() + 1) * (r.right() - r.left() + 1) for r in ranges)
