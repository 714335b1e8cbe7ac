"""After a data file is read: choose its outcome, candidate predictors and level ids."""

from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout,
                               QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout)

from engine.hierarchy_check import HierarchyReport
from engine.project import ColumnRoles
from engine.simulate import true_effect_columns


def _checkable_item(text: str, checked: bool) -> QListWidgetItem:
    item = QListWidgetItem(text)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
    return item


def _checked(widget: QListWidget) -> list[str]:
    return [widget.item(i).text() for i in range(widget.count())
            if widget.item(i).checkState() == Qt.CheckState.Checked]


def proposed_roles(check: HierarchyReport, frame: pd.DataFrame) -> ColumnRoles:
    """A starting point from the engine's check of the file: its proposed nesting order as the
    ids, its numeric variables as predictors, the last of them as the outcome (to be chosen)."""
    truth = set(true_effect_columns(frame))  # simulated data saved with their true effects
    variables = [c.name for c in check.columns
                 if c.role == "variable" and c.name in frame.columns and c.name not in truth
                 and pd.api.types.is_numeric_dtype(frame[c.name].dtype)]
    outcome = variables[-1] if variables else ""
    return ColumnRoles(outcome=outcome, predictors=[v for v in variables if v != outcome], ids=list(check.order))


class OpenDataDialog(QDialog):
    """Pick the outcome, predictors and ids (outermost first) of a data set just read."""

    def __init__(self, frame: pd.DataFrame, file_name: str, check: HierarchyReport, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Columns of {file_name}")
        roles = proposed_roles(check, frame)
        columns = [str(c) for c in frame.columns]
        numeric = [str(c) for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c].dtype)]

        self.outcome_combo = QComboBox()
        self.outcome_combo.addItems(numeric)
        self.outcome_combo.setCurrentText(roles.outcome)
        self.outcome_combo.setToolTip("The variable the model explains (numeric).")

        self.predictor_list = QListWidget()
        self.predictor_list.setToolTip("Variables offered as fixed predictors in the model builder.")
        for name in columns:
            self.predictor_list.addItem(_checkable_item(name, name in roles.predictors))

        self.id_list = QListWidget()
        self.id_list.setToolTip("Columns that identify the units of each level. Tick them and drag them into "
                                "nesting order, outermost first (district above school above student).")
        self.id_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        ordered = [c for c in roles.ids if c in columns] + [c for c in columns if c not in roles.ids]
        for name in ordered:
            self.id_list.addItem(_checkable_item(name, name in roles.ids))
        up, down = QPushButton("Move up"), QPushButton("Move down")
        up.setToolTip("Move the selected id one level out.")
        down.setToolTip("Move the selected id one level in.")
        up.clicked.connect(lambda: self._move(-1))
        down.clicked.connect(lambda: self._move(1))
        order_buttons = QHBoxLayout()
        order_buttons.addWidget(up)
        order_buttons.addWidget(down)

        form = QFormLayout()
        form.addRow("Outcome", self.outcome_combo)
        form.addRow("Predictors", self.predictor_list)
        id_column = QVBoxLayout()
        id_column.addWidget(self.id_list)
        id_column.addLayout(order_buttons)
        form.addRow("Level ids (outermost first)", id_column)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(frame):,} rows, {len(columns)} columns."))
        notes = [*check.findings, *(f"⚠ {warning}" for warning in check.warnings)]
        if notes:
            found = QLabel("\n".join(notes))
            found.setWordWrap(True)
            found.setToolTip("What the check of the id columns found.")
            layout.addWidget(found)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _move(self, offset: int) -> None:
        row = self.id_list.currentRow()
        target = row + offset
        if row < 0 or not 0 <= target < self.id_list.count():
            return
        item = self.id_list.takeItem(row)
        self.id_list.insertItem(target, item)
        self.id_list.setCurrentRow(target)

    def roles(self) -> ColumnRoles:
        ids = _checked(self.id_list)
        outcome = self.outcome_combo.currentText()
        predictors = [c for c in _checked(self.predictor_list) if c != outcome and c not in ids]
        return ColumnRoles(outcome=outcome, predictors=predictors, ids=ids)
