"""Fits of the history side by side (esttab-like), in a window of their own.

The table object comes from the engine (engine.model_table); this window only shows it and writes
it: Export writes the esttab layout as LaTeX or HTML, or every number at full precision as CSV.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QDialog, QFileDialog, QHBoxLayout, QLabel, QMessageBox,
                               QPushButton, QRadioButton, QVBoxLayout)

from engine.errors import UserInputError
from engine.model_table import ModelTable, build_model_table
from engine.model_table_output import SECTION_TITLES, model_table_frame, write_model_table
from gui.tables.dataframe_model import DataFrameTableModel
from gui.tables.table_view import CopyableTableView

MODEL_TABLE_FILTER = "LaTeX (*.tex);;HTML (*.html);;CSV, full precision (*.csv);;Text (*.txt)"


class ModelTableModel(DataFrameTableModel):
    """The side-by-side text cells, laid out as esttab: figures right-aligned, section headings bold."""

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if index.isValid() and role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if index.isValid() and role == Qt.ItemDataRole.FontRole and index.column() == 0:
            if self.frame.iat[index.row(), 0] in SECTION_TITLES.values():
                font = QFont()
                font.setBold(True)
                return font
        return super().data(index, role)


class ModelTableDialog(QDialog):
    """The chosen fits as columns: coefficients, variance components and statistics."""

    def __init__(self, records, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"{len(records)} fits side by side")
        self.resize(900, 640)
        self._records = list(records)
        self._titles = [f"({k}) {record.label}" if record.label else f"({k})" for k, record in enumerate(records, 1)]
        self.table: ModelTable | None = None

        self.se_button = QRadioButton("Standard errors")
        self.ci_button = QRadioButton("95% confidence intervals")
        self.se_button.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.se_button)
        group.addButton(self.ci_button)
        self.variances_check = QCheckBox("Variances instead of standard deviations")
        for widget in (self.se_button, self.ci_button):
            widget.toggled.connect(lambda checked: checked and self.refresh())
        self.variances_check.toggled.connect(lambda _: self.refresh())
        options = QHBoxLayout()
        options.addWidget(QLabel("Under each estimate:"))
        options.addWidget(self.se_button)
        options.addWidget(self.ci_button)
        options.addSpacing(20)
        options.addWidget(self.variances_check)
        options.addStretch(1)

        self.view = CopyableTableView(ModelTableModel(parent=self), export_name="models_side_by_side")
        self.view.verticalHeader().hide()
        self.view.setToolTip("The fits side by side. Ctrl+C copies; Export writes LaTeX, HTML or CSV.")
        self.models_label = QLabel()
        self.models_label.setWordWrap(True)
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save as LaTeX (booktabs) or HTML laid out as shown, or CSV with every number "
                                      "at full precision.")
        self.export_button.clicked.connect(self.export_with_dialog)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(options)
        layout.addWidget(self.models_label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.notes_label)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self) -> None:
        self.table = build_model_table([record.result for record in self._records], self._titles,
                                       interval="ci" if self.ci_button.isChecked() else "se",
                                       variances=self.variances_check.isChecked())
        self.view.table_model().set_frame(model_table_frame(self.table))
        self.view.export_notes = list(self.table.notes)
        self.view.resizeColumnsToContents()
        self.models_label.setText("<br>".join(f"<b>{title}</b> <code>{model}</code>"
                                              for title, model in zip(self.table.titles, self.table.models)))
        self.notes_label.setText("\n".join(self.table.notes))

    def export_to(self, path: str | Path) -> Path:
        return write_model_table(self.table, path)

    def export_with_dialog(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export fits side by side", "models.tex", MODEL_TABLE_FILTER)
        if not path:
            return
        if not Path(path).suffix:  # the filter names the format
            path += "." + chosen.split("*.")[-1].rstrip(")")
        try:
            self.export_to(path)
        except UserInputError as error:
            QMessageBox.warning(self, "Export failed", str(error))
