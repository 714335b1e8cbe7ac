"""After a data file is read: choose its outcome, candidate predictors and level ids."""

from __future__ import annotations

import re

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


#: Names that suggest an outcome; they decide between columns that are otherwise alike.
OUTCOME_NAME_RE = re.compile(r"^(y|dv)$|outcome|response|score|perform|achiev|result|reaction|strength",
                             re.IGNORECASE)
#: How many example text columns the dialog names.
TEXT_COLUMNS_SHOWN = 4


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def proposed_roles(check: HierarchyReport, frame: pd.DataFrame) -> ColumnRoles:
    """A starting point from the engine's check of the file: its proposed nesting order as the
    ids, its numeric variables as predictors, and as the outcome the variable most like one
    (:func:`proposed_outcome`), never an id; the outcome is not among the predictors."""
    truth = set(true_effect_columns(frame))  # simulated data saved with their true effects
    ids = list(check.order)
    numeric = [str(c) for c in frame.columns if str(c) not in truth and _is_number_column(frame[c])]
    roles = {c.name: c.role for c in check.columns}
    variables = [name for name in numeric if roles.get(name) == "variable"]
    outcome = (proposed_outcome(frame, variables, check)
               or proposed_outcome(frame, [name for name in numeric if name not in ids], check))
    return ColumnRoles(outcome=outcome, predictors=[v for v in variables if v != outcome], ids=ids)


def proposed_outcome(frame: pd.DataFrame, names: list[str], check: HierarchyReport) -> str:
    """The column most like an outcome: one that varies within the innermost level's groups (not
    a group-level variable), has more than two values (not an indicator), a name like an
    outcome's, non-integer values, and the most distinct values; '' when ``names`` is empty."""
    constant = {c.name: c.constant_within for c in check.columns}

    def score(name: str):
        column = frame[name].dropna()
        distinct = int(column.nunique())
        integral = bool(len(column)) and bool((column.to_numpy(dtype=float) % 1 == 0).all())
        return (constant.get(name) is None, distinct > 2, bool(OUTCOME_NAME_RE.search(name)), not integral,
                distinct)

    return max(names, key=score) if names else ""


def text_columns(frame: pd.DataFrame) -> list[str]:
    """'name (e.g. 'Smith')' for each text column: usable as a factor (i.name), not as a number."""
    found = []
    for name in frame.columns:
        column = frame[name]
        if _is_number_column(column) or pd.api.types.is_bool_dtype(column.dtype):
            continue
        present = column.dropna()
        example = repr(present.iloc[0]) if len(present) else "empty"
        found.append(f"{name} (e.g. {example})")
    return found


class OpenDataDialog(QDialog):
    """Pick the outcome, predictors and ids (outermost first) of a data set just read."""

    def __init__(self, frame: pd.DataFrame, file_name: str, check: HierarchyReport, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Columns of {file_name}")
        roles = proposed_roles(check, frame)
        columns = [str(c) for c in frame.columns]
        numeric = [str(c) for c in frame.columns if _is_number_column(frame[c])]

        self.outcome_combo = QComboBox()
        self.outcome_combo.addItems(numeric)
        self.outcome_combo.setPlaceholderText("choose the outcome")
        self.outcome_combo.setCurrentIndex(numeric.index(roles.outcome) if roles.outcome in numeric else -1)
        self.outcome_combo.setToolTip("The variable the model explains (numeric). Proposed: a variable that is "
                                      "not an id and has many distinct values.")

        self.predictor_list = QListWidget()
        self.predictor_list.setToolTip("Variables offered as fixed predictors in the model builder.")
        for name in columns:
            self.predictor_list.addItem(_checkable_item(name, name in roles.predictors))
        self.outcome_combo.currentTextChanged.connect(self._keep_outcome_out_of_predictors)
        self._keep_outcome_out_of_predictors(self.outcome_combo.currentText())

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
        texts = text_columns(frame)
        if texts:
            shown = ", ".join(texts[:TEXT_COLUMNS_SHOWN]) + (", …" if len(texts) > TEXT_COLUMNS_SHOWN else "")
            notes.append(f"Text columns (use them as factors, i.name, or as level ids): {shown}.")
        if notes:
            found = QLabel("\n".join(notes))
            found.setWordWrap(True)
            found.setToolTip("What the check of the id columns found.")
            layout.addWidget(found)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _keep_outcome_out_of_predictors(self, outcome: str) -> None:
        """The outcome cannot also be a predictor: its box is unticked and disabled."""
        for row in range(self.predictor_list.count()):
            item = self.predictor_list.item(row)
            is_outcome = item.text() == outcome
            flags = item.flags()
            if is_outcome:
                item.setCheckState(Qt.CheckState.Unchecked)
                item.setFlags(flags & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip("The outcome: not a predictor.")
            elif not flags & Qt.ItemFlag.ItemIsEnabled:
                item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip("")

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
