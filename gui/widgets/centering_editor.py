"""The centring editor: a table of derived predictors (``engine.centering.Centering``), one per
row — a new column name, the variable it is made from, the kind of centring and, for the group
kinds, the level whose groups are used.

Each row is checked by building the engine's ``Centering`` (its own rules) and against the data's
columns and levels; a problem is marked at the field it concerns, with the reason in its tooltip.
``centerings()`` returns the valid rows; the model builder puts them on ``ModelSpec.centering``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
                               QVBoxLayout, QWidget)

from engine.centering import CENTERING_KINDS, Centering
from engine.errors import UserInputError
from gui.widgets.fields import invalid_reason, mark_invalid

NAME, VARIABLE, KIND, LEVEL, MEANING = range(5)
HEADERS = ["New column", "Variable", "Kind", "Level", "Makes"]
# Plain words for the menu and its tooltips, after HLM 8's own explanation of the choices.
KIND_WORDS = {"grand": "Grand-mean centred", "group": "Group-mean centred", "group_mean": "Group mean"}
KIND_HELP = {
    "grand": ("Grand-mean centring: the variable minus its mean over all rows used in the fit. The slope is "
              "unchanged; the intercept becomes the expected outcome of a unit with an average value instead "
              "of a value of zero. The model is the same model, re-expressed, and the slope still mixes the "
              "relation within groups with the relation between them."),
    "group": ("Group-mean centring: the variable minus the mean of the unit's own group at the chosen level "
              "(e.g. ses minus the school's mean ses). The slope is then the relation within groups only, and "
              "the intercept is the outcome of a unit at its group's average. The differences between group "
              "means are taken out of the predictor: add the group mean as well to model them."),
    "group_mean": ("Group mean: the mean of the variable in each group at the chosen level, a new predictor of "
                   "that level (e.g. meanses, the school's mean ses). Beside a group-mean-centred version of the "
                   "same variable its coefficient is the relation between groups; beside a grand-mean-centred "
                   "version it is the contextual effect (between minus within)."),
}
NO_LEVEL = ""


class CenteringEditor(QWidget):
    """Rows of centrings with Add and Remove; ``centerings_changed`` carries the valid ones."""

    centerings_changed = Signal(list)  # list[Centering]

    def __init__(self, parent=None):
        super().__init__(parent)
        self._columns: list[str] = []
        self._levels: list[str] = []
        self._updating = False
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        # Fixed starting widths: the cells are editors, whose contents the header cannot measure.
        for column, width in ((NAME, 120), (VARIABLE, 120), (KIND, 180), (LEVEL, 110)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 14)
        header.setSectionResizeMode(MEANING, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Derived predictors, made before the fit; use the new column's name in the model.")
        self.add_button = QPushButton("Add centred variable")
        self.add_button.setToolTip("Add a row: a new column made from a numeric variable.")
        self.add_button.clicked.connect(lambda: self.add_row())
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected row.")
        self.remove_button.clicked.connect(self.remove_selected_row)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #a94442;")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.problem_label)
        self.setMinimumSize(640, 160)

    # ----- public ----------------------------------------------------------------------------------
    def set_columns(self, columns: list[str], levels: list[str]) -> None:
        """The data's columns (variables to centre) and level ids (groups), e.g. after new data."""
        self._columns = [str(c) for c in columns]
        self._levels = [str(level) for level in levels]
        self._updating = True
        try:
            for row in range(self.table.rowCount()):
                _refill(self._combo(row, VARIABLE), self._columns)
                _refill(self._combo(row, LEVEL), self._levels, keep_empty=True)
        finally:
            self._updating = False
        self._on_edited()

    def centerings(self) -> list[Centering]:
        """The centrings of the valid rows, in table order."""
        return [centering for centering in (self._row_centering(row) for row in range(self.table.rowCount()))
                if centering is not None]

    def set_centerings(self, centerings: list[Centering]) -> None:
        self._updating = True
        try:
            self.table.setRowCount(0)
            for centering in centerings:
                self.add_row(centering.name, centering.variable, centering.kind, centering.level or NO_LEVEL)
        finally:
            self._updating = False
        self._on_edited()

    def add_row(self, name: str = "", variable: str = "", kind: str = "grand", level: str = NO_LEVEL) -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        name_edit = QLineEdit(name)
        name_edit.setPlaceholderText("e.g. ses_c")
        _set_help(name_edit, "The new column's name, used in the model's terms (letters, digits and _).")
        name_edit.textEdited.connect(lambda _: self._on_edited())
        variable_combo = QComboBox()
        variable_combo.setEditable(False)
        _refill(variable_combo, self._columns if variable in self._columns or not variable
                else [*self._columns, variable])
        variable_combo.setCurrentText(variable)
        _set_help(variable_combo, "The numeric variable the new column is made from.")
        kind_combo = QComboBox()
        for index, key in enumerate(CENTERING_KINDS):  # the engine's kinds, in its order
            kind_combo.addItem(KIND_WORDS.get(key, key), key)
            kind_combo.setItemData(index, kind_help(key), Qt.ItemDataRole.ToolTipRole)
        kind_combo.setCurrentIndex(max(0, kind_combo.findData(kind)))
        _set_help(kind_combo, kind_help(kind_combo.currentData()))
        level_combo = QComboBox()
        _refill(level_combo, self._levels if level in self._levels or not level else [*self._levels, level],
                keep_empty=True)
        level_combo.setCurrentText(level)
        _set_help(level_combo, "The level whose groups give the means (group-mean centring and group means).")
        for combo in (variable_combo, kind_combo, level_combo):
            combo.currentIndexChanged.connect(lambda _: self._on_edited())
        self.table.setCellWidget(row, NAME, name_edit)
        self.table.setCellWidget(row, VARIABLE, variable_combo)
        self.table.setCellWidget(row, KIND, kind_combo)
        self.table.setCellWidget(row, LEVEL, level_combo)
        meaning = QLabel()
        meaning.setContentsMargins(4, 0, 4, 0)
        self.table.setCellWidget(row, MEANING, meaning)
        self._on_edited()
        return row

    def remove_row(self, row: int) -> None:
        if 0 <= row < self.table.rowCount():
            self.table.removeRow(row)
            self._on_edited()

    def remove_selected_row(self) -> None:
        self.remove_row(self.table.currentRow())

    def problems(self) -> list[str]:
        """The reason of every invalid row, as 'row 2: ...'."""
        return [f"row {row + 1}: {reason}" for row in range(self.table.rowCount())
                if (reason := self._row_problem(row))]

    def field(self, row: int, column: int) -> QWidget:
        """The editor of one cell (for tests and the window's focus on a problem)."""
        return self.table.cellWidget(row, column)

    def set_row(self, row: int, name: str | None = None, variable: str | None = None, kind: str | None = None,
                level: str | None = None) -> None:
        """Change a row as a user would (each change is checked at once)."""
        if name is not None:
            self.field(row, NAME).setText(name)
        if variable is not None:
            self._combo(row, VARIABLE).setCurrentText(variable)
        if kind is not None:
            self._combo(row, KIND).setCurrentIndex(self._combo(row, KIND).findData(kind))
        if level is not None:
            self._combo(row, LEVEL).setCurrentText(level)
        self._on_edited()

    # ----- checking ----------------------------------------------------------------------------------
    def _combo(self, row: int, column: int) -> QComboBox:
        return self.table.cellWidget(row, column)

    def _row_values(self, row: int) -> tuple[str, str, str, str]:
        return (self.field(row, NAME).text().strip(), self._combo(row, VARIABLE).currentText(),
                self._combo(row, KIND).currentData(), self._combo(row, LEVEL).currentText())

    def _row_centering(self, row: int) -> Centering | None:
        if self._row_problem(row):
            return None
        name, variable, kind, level = self._row_values(row)
        return Centering(name, variable, kind, level if kind != "grand" else None)

    def _row_problem(self, row: int) -> str:
        return next((invalid_reason(self.field(row, column)) for column in (NAME, VARIABLE, KIND, LEVEL)
                     if invalid_reason(self.field(row, column))), "")

    def _check_row(self, row: int, earlier_names: set[str]) -> None:
        """Mark each field of one row with its problem (or clear it) and describe the result."""
        name, variable, kind, level = self._row_values(row)
        fields = {column: self.field(row, column) for column in (NAME, VARIABLE, KIND, LEVEL)}
        reasons: dict[int, str] = {}
        level_combo = self._combo(row, LEVEL)
        level_combo.setEnabled(kind != "grand")
        if kind == "grand":
            level = NO_LEVEL
        if not name:
            reasons[NAME] = "give the new column a name, e.g. ses_c"
        elif name in earlier_names:
            reasons[NAME] = f"{name} is made by an earlier row already"
        elif name in self._columns:
            reasons[NAME] = f"the data have a column {name} already: choose another name"
        if not variable:
            reasons[VARIABLE] = "choose the variable to centre"
        elif self._columns and variable not in self._columns and variable not in earlier_names:
            reasons[VARIABLE] = f"the data have no column {variable}"
        if kind != "grand" and not level:
            reasons[LEVEL] = f"{KIND_WORDS.get(kind, kind).lower()} needs a level whose groups give the means"
        elif kind != "grand" and self._levels and level not in self._levels:
            reasons[LEVEL] = f"{level} is not a level of the data ({', '.join(self._levels)})"
        centering = None
        if not reasons:
            try:  # the engine's own rules (name syntax, a name other than the variable's, ...)
                centering = Centering(name, variable, kind, level or None)
            except UserInputError as error:
                reasons[NAME if "name" in str(error) else VARIABLE] = str(error)
        for column, widget in fields.items():
            mark_invalid(widget, reasons.get(column))
        _set_help(fields[KIND], kind_help(kind), keep_reason=True)
        meaning = self.table.cellWidget(row, MEANING)
        meaning.setText(centering.describe() if centering is not None else "⚠ " + next(iter(reasons.values())))
        meaning.setStyleSheet("" if centering is not None else "color: #a94442;")
        meaning.setToolTip(meaning.text())

    def _on_edited(self) -> None:
        if self._updating:
            return
        names: set[str] = set()
        for row in range(self.table.rowCount()):
            self._check_row(row, names)
            names.add(self._row_values(row)[0])
        problems = self.problems()
        self.problem_label.setText("\n".join(problems))
        self.problem_label.setVisible(bool(problems))
        self.remove_button.setEnabled(self.table.rowCount() > 0)
        self.centerings_changed.emit(self.centerings())


def _refill(combo: QComboBox, items: list[str], keep_empty: bool = False) -> None:
    chosen = combo.currentText()
    combo.blockSignals(True)
    try:
        combo.clear()
        if keep_empty:
            combo.addItem(NO_LEVEL)
        combo.addItems(items)
        if chosen and combo.findText(chosen) < 0:
            combo.addItem(chosen)  # keep a choice the new data lack: it is then marked, not lost
        combo.setCurrentText(chosen)
    finally:
        combo.blockSignals(False)


def _set_help(widget: QWidget, text: str, keep_reason: bool = False) -> None:
    """Set a field's plain-words help (the tooltip ``mark_invalid`` adds a problem to)."""
    widget.setProperty("help_text", text)
    reason = invalid_reason(widget) if keep_reason else ""
    widget.setToolTip(f"{text}\n\n⚠ {reason}" if reason else text)



def kind_help(kind: str) -> str:
    """Plain words for a kind of centring (the engine's short description for a kind new to this editor)."""
    return KIND_HELP.get(kind, CENTERING_KINDS.get(kind, kind))
