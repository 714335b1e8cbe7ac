"""Editable table models bound to a ``Design``: its levels and its covariates.

The models edit the design object in place (the form is a view of the design, not a copy of
it). Text that cannot be read as a number is kept in the cell as typed and marked there; the
design keeps its last readable value. Problems found by ``Design.validate()`` are set on a
cell with ``set_cell_error``.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate

from engine.design import (COVARIATE_DISTRIBUTIONS, OBSERVATION, CovariateDesign, CrossedFactor, Design,
                           LevelDesign, UnitCount)
from gui.widgets.fields import format_value, parse_number

CHOICES_ROLE = Qt.ItemDataRole.UserRole + 1
INVALID_BRUSH = QBrush(QColor("#f8d7da"))
DISABLED_BRUSH = QBrush(QColor("#eeeeee"))


def format_units(units: UnitCount) -> str:
    if units.distribution == "uniform":
        return f"{format_value(units.min)}..{format_value(units.max)}"
    if units.distribution == "poisson":
        return f"~{format_value(units.mean)}"
    if units.distribution == "empirical":
        return "observed " + ", ".join(str(size) for size in units.sizes)
    return format_value(units.n)


_RANGE = re.compile(r"^\s*(\S+)\s*(?:\.\.|-|to)\s*(\S+)\s*$")


def parse_units(text: str) -> UnitCount:
    """"20": 20 per parent; "15..35": uniform between 15 and 35; "~20": 20 on average (Poisson);
    "observed 12, 30, 25": drawn from these observed group sizes. Raises ValueError with the
    accepted forms."""
    text = text.strip()
    try:
        if text.lower().startswith("observed"):
            sizes = [parse_number(part) for part in re.split(r"[\s,;]+", text[len("observed"):]) if part]
            if not sizes or any(size < 1 or size != int(size) for size in sizes):
                raise ValueError
            return UnitCount.empirical(sizes)
        if text.startswith("~"):
            return UnitCount.poisson(float(parse_number(text[1:])))
        match = _RANGE.match(text)
        if match:
            low, high = parse_number(match.group(1)), parse_number(match.group(2))
            return UnitCount(distribution="uniform", n=low, min=low, max=high, mean=(low + high) / 2)
        count = parse_number(text)
        return UnitCount(distribution="fixed", n=count, min=count, max=count, mean=float(count))
    except ValueError:
        raise ValueError(f"units per parent: write a whole number (20), a range (15..35), ~ and an "
                         f"average (~20) or observed sizes (observed 12, 30, 25), got {text!r}") from None


class _DesignTableModel(QAbstractTableModel):
    """Shared behaviour: headers with tooltips, typed-text and error marks per cell."""

    design_edited = Signal()
    HEADERS: list[tuple[str, str]] = []  # (title, plain-words help)

    def __init__(self, design: Design, parent=None):
        super().__init__(parent)
        self._design = design
        self._typed: dict[tuple[int, int], str] = {}  # unreadable text the user typed, kept as is
        self._errors: dict[tuple[int, int], str] = {}

    def set_design(self, design: Design) -> None:
        self.beginResetModel()
        self._design = design
        self._typed.clear()
        self._errors.clear()
        self.endResetModel()

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.HEADERS):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.HEADERS[section][0]
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.HEADERS[section][1]
        if orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole:
            return str(section + 1)
        return None

    # ----- cell marks ----------------------------------------------------------------------------
    def parse_errors(self) -> list[str]:
        return [self._errors[key] for key in sorted(self._typed) if key in self._errors]

    def set_cell_error(self, row: int | None, column: int | None, reason: str | None) -> None:
        """Mark one cell (engine validation); None clears every engine mark (typed-text marks stay)."""
        before = set(self._errors)
        self._errors = {key: text for key, text in self._errors.items() if key in self._typed}
        if reason is not None and row is not None and column is not None and 0 <= row < self.rowCount():
            self._errors[(row, column)] = reason
        for key in before | set(self._errors):
            index = self.index(*key)
            self.dataChanged.emit(index, index)

    def cell_error(self, row: int, column: int) -> str:
        return self._errors.get((row, column), "")

    def _common_data(self, index: QModelIndex, role: int) -> Any:
        key = (index.row(), index.column())
        if role == Qt.ItemDataRole.BackgroundRole and key in self._errors:
            return INVALID_BRUSH
        if role == Qt.ItemDataRole.ToolTipRole:
            help_text = self.HEADERS[index.column()][1]
            return f"{help_text}\n\n⚠ {self._errors[key]}" if key in self._errors else help_text
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole) and key in self._typed:
            return self._typed[key]
        return None

    def _store_typed(self, index: QModelIndex, text: str, reason: str) -> None:
        key = (index.row(), index.column())
        self._typed[key] = text
        self._errors[key] = reason
        self.dataChanged.emit(index, index)
        self.design_edited.emit()

    def _clear_typed(self, index: QModelIndex) -> None:
        key = (index.row(), index.column())
        self._typed.pop(key, None)
        self._errors.pop(key, None)

    def _forget_rows(self) -> None:
        """Row operations renumber the cells: drop per-cell marks (validation sets them again)."""
        self._typed.clear()
        self._errors.clear()

    def _insert_row(self, items: list, row: int, item) -> int:
        """Insert ``item`` into the design's list ``items`` at ``row`` as one table row."""
        self.beginInsertRows(QModelIndex(), row, row)
        items.insert(row, item)
        self._forget_rows()
        self.endInsertRows()
        self.design_edited.emit()
        return row

    def _remove_row(self, items: list, row: int) -> None:
        """Remove row ``row`` (an entry of the design's list ``items``); out of range does nothing."""
        if not 0 <= row < len(items):
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del items[row]
        self._forget_rows()
        self.endRemoveRows()
        self.design_edited.emit()


class LevelTableModel(_DesignTableModel):
    """The design's levels, outermost first: id name, units per parent, intercept sd, slopes, and
    how often the bottom units move between this level's units (a crossed level)."""

    NAME, UNITS, SD, SLOPES, MOVES = range(5)
    HEADERS = [
        ("Level id", "The id column of this level, e.g. school_id. Levels are listed outermost first: "
                     "each level's units sit inside one unit of the level above."),
        ("Units per parent", "How many units of this level sit in each unit of the level above "
                             "(for the top level: how many there are in all). Write 20 for exactly 20, "
                             "15..35 for a number drawn between 15 and 35, ~20 for 20 on average, "
                             "observed 12, 30, 25 to draw from observed group sizes (as many parents as sizes get "
                             "exactly these; Plan the next study fills this in from a fit)."),
        ("SD of intercept", "Standard deviation of the random intercepts of this level's units: how much "
                            "units differ from each other in their average outcome. 0 for no differences."),
        ("Random slopes", "Variables whose effect varies between this level's units (set in design files)."),
        ("Units move", "Probability that each bottom unit (a student) moves to another unit of this level in "
                       "the same parent (another teacher of the same school) at each occasion after the first. "
                       "0 keeps the levels nested; above 0 this level is crossed with the levels below it."),
    ]

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._design.levels)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        common = self._common_data(index, role)
        if common is not None:
            return common
        level = self._design.levels[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == self.NAME:
                return level.name
            if column == self.UNITS:
                return format_units(level.units)
            if column == self.SD:
                return format_value(level.sd)
            if column == self.MOVES:
                return format_value(level.move_prob)
            return ", ".join(f"{s.variable} (sd {format_value(s.sd)})" for s in level.slopes)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.UNITS, self.SD, self.MOVES):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and column == self.SLOPES:
            return DISABLED_BRUSH
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.isValid() and index.column() != self.SLOPES:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        level = self._design.levels[index.row()]
        text = str(value).strip()
        column = index.column()
        try:
            if column == self.NAME:
                self._rename(level, text)
            elif column == self.UNITS:
                level.units = parse_units(text)
            elif column == self.SD:
                level.sd = parse_number(text)
            elif column == self.MOVES:
                level.move_prob = parse_number(text)
            else:
                return False
        except ValueError as error:
            what = "move probability" if column == self.MOVES else "sd"
            reason = str(error) if column == self.UNITS else f"level {level.name}: {what} must be a number, got {text!r}"
            self._store_typed(index, text, reason)
            return True
        self._clear_typed(index)
        self.dataChanged.emit(index, index)
        self.design_edited.emit()
        return True

    def _rename(self, level: LevelDesign, new_name: str) -> None:
        """Rename a level and whatever refers to it (treatment and covariate levels)."""
        old = level.name
        level.name = new_name
        # What refers to a name shared with another level (or the reserved 'observation') is not
        # this level's alone: following the rename would move the treatment or a covariate to
        # another level when a clash is typed and then undone.
        taken = {other.name for other in self._design.levels if other is not level} | {OBSERVATION}
        if old in taken or new_name in taken:
            return
        if self._design.treatment is not None and self._design.treatment.level == old:
            self._design.treatment.level = new_name
        for covariate in self._design.covariates:
            if covariate.level == old:
                covariate.level = new_name
        for factor in self._design.crossed:
            if factor.within == old:
                factor.within = new_name

    # ----- rows ----------------------------------------------------------------------------------
    def add_level(self, row: int | None = None) -> int:
        """Insert a new level below ``row`` (at the bottom when None); returns its row."""
        row = len(self._design.levels) if row is None else row + 1
        taken = set(self._design.level_names)
        number = len(taken) + 1
        while f"level{number}_id" in taken:
            number += 1
        return self._insert_row(self._design.levels, row, LevelDesign(f"level{number}_id", UnitCount.fixed(2), sd=1.0))

    def remove_level(self, row: int) -> None:
        self._remove_row(self._design.levels, row)

    def move_level(self, row: int, offset: int) -> int:
        """Move a level up (-1) or down (+1) in the nesting; returns its new row."""
        target = row + offset
        levels = self._design.levels
        if not (0 <= row < len(levels) and 0 <= target < len(levels)) or offset == 0:
            return row
        destination = target + 1 if offset > 0 else target  # Qt counts the destination before the move
        self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), destination)
        levels.insert(target, levels.pop(row))
        self._forget_rows()
        self.endMoveRows()
        self.design_edited.emit()
        return target


class CovariateTableModel(_DesignTableModel):
    """The design's covariates; a cell is editable only if its distribution uses it."""

    NAME, LEVEL, DISTRIBUTION, COEF, MEAN, SD, PROBABILITY, LOW, HIGH = range(9)
    HEADERS = [
        ("Name", "The covariate's column name."),
        ("Varies at", "The level whose units each get one draw of the covariate (a school's sector is "
                      "drawn per school), or 'observation' for one draw per row."),
        ("Distribution", "normal (mean, sd), binary (probability of 1), uniform (low, high), or time: "
                         "the occasion number minus one (needs occasions)."),
        ("Coef.", "The covariate's true effect on the outcome (its fixed coefficient)."),
        ("Mean", "Mean of a normal covariate."),
        ("SD", "Standard deviation of a normal covariate."),
        ("P(1)", "Probability that a binary covariate is 1."),
        ("Low", "Lower end of a uniform covariate."),
        ("High", "Upper end of a uniform covariate."),
    ]
    _NUMERIC = {COEF: "coef", MEAN: "mean", SD: "sd", PROBABILITY: "probability", LOW: "low", HIGH: "high"}
    _USED_BY = {"normal": {MEAN, SD}, "binary": {PROBABILITY}, "uniform": {LOW, HIGH}, "time": set()}

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._design.covariates)

    def parse_errors(self) -> list[str]:
        # A cell the distribution does not use cannot be edited: its unreadable text is kept (and
        # shown again with a distribution that uses it) but does not stop Simulate.
        return [self._errors[key] for key in sorted(self._typed) if key in self._errors and self._key_applies(key)]

    def _key_applies(self, key: tuple[int, int]) -> bool:
        row, column = key
        return row < len(self._design.covariates) and self._applies(self._design.covariates[row], column)

    def _applies(self, covariate: CovariateDesign, column: int) -> bool:
        if column in (self.NAME, self.LEVEL, self.DISTRIBUTION, self.COEF):
            return True
        return column in self._USED_BY.get(covariate.distribution, set())

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        common = self._common_data(index, role) if self._key_applies((index.row(), index.column())) else None
        if common is not None:
            return common
        covariate = self._design.covariates[index.row()]
        column = index.column()
        applies = self._applies(covariate, column)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == self.NAME:
                return covariate.name
            if column == self.LEVEL:
                return covariate.level
            if column == self.DISTRIBUTION:
                return covariate.distribution
            return format_value(getattr(covariate, self._NUMERIC[column])) if applies else ""
        if role == CHOICES_ROLE:
            if column == self.LEVEL:
                return [*self._design.level_names, OBSERVATION]
            if column == self.DISTRIBUTION:
                return list(COVARIATE_DISTRIBUTIONS)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self._NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and not applies:
            return DISABLED_BRUSH
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self._applies(self._design.covariates[index.row()], index.column()):
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        covariate = self._design.covariates[index.row()]
        column = index.column()
        text = str(value).strip()
        if column == self.NAME:
            covariate.name = text
        elif column == self.LEVEL:
            covariate.level = text
        elif column == self.DISTRIBUTION:
            covariate.distribution = text
            self.dataChanged.emit(self.index(index.row(), 0), self.index(index.row(), self.HIGH))
        else:
            field_name = self._NUMERIC[column]
            try:
                setattr(covariate, field_name, parse_number(text))
            except ValueError:
                self._store_typed(index, text, f"covariate {covariate.name}: {field_name} must be a number, got {text!r}")
                return True
        self._clear_typed(index)
        self.dataChanged.emit(index, index)
        self.design_edited.emit()
        return True

    def add_covariate(self) -> int:
        taken = {c.name for c in self._design.covariates} | set(self._design.level_names)
        number = 1
        while f"x{number}" in taken:
            number += 1
        covariate = CovariateDesign(f"x{number}", level=OBSERVATION, distribution="normal", coef=1.0)
        return self._insert_row(self._design.covariates, len(self._design.covariates), covariate)

    def remove_covariate(self, row: int) -> None:
        self._remove_row(self._design.covariates, row)

    @classmethod
    def column_of(cls, attribute: str) -> int:
        """The column of a covariate field named in a validation message."""
        names = {"name": cls.NAME, "level": cls.LEVEL, "distribution": cls.DISTRIBUTION,
                 **{name: column for column, name in cls._NUMERIC.items()}}
        return names.get(attribute, cls.NAME)


WHOLE_SAMPLE = "(whole sample)"  # the Within cell of a crossed factor that lies within no level


class CrossedFactorTableModel(_DesignTableModel):
    """The design's crossed factors (neighbourhoods crossed with schools): id name, units, sd and
    the level whose units they lie within."""

    NAME, UNITS, SD, WITHIN = range(4)
    HEADERS = [
        ("Factor id", "The id column of a classification crossed with the levels, e.g. neigh_id: each "
                      "bottom-level unit (a student) belongs to one of its units, whatever its school."),
        ("Units", "How many units the factor has in each unit of 'Within' (in all for the whole sample). "
                  "Write 15 for exactly 15, 10..20 for a number drawn between, ~15 for 15 on average."),
        ("SD of intercept", "Standard deviation of the random intercepts of the factor's units."),
        ("Within", "The level whose units hold the factor's units (neighbourhoods within districts): a student "
                   "is assigned, at random, to one of the units of its own district. Or the whole sample."),
    ]

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._design.crossed)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        common = self._common_data(index, role)
        if common is not None:
            return common
        factor = self._design.crossed[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == self.NAME:
                return factor.name
            if column == self.UNITS:
                return format_units(factor.units)
            if column == self.SD:
                return format_value(factor.sd)
            return factor.within or WHOLE_SAMPLE
        if role == CHOICES_ROLE and column == self.WITHIN:
            return [WHOLE_SAMPLE, *self._design.level_names[:-1]]
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.UNITS, self.SD):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return flags | Qt.ItemFlag.ItemIsEditable if index.isValid() else flags

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        factor = self._design.crossed[index.row()]
        text = str(value).strip()
        column = index.column()
        try:
            if column == self.NAME:
                factor.name = text
            elif column == self.UNITS:
                factor.units = parse_units(text)
            elif column == self.SD:
                factor.sd = parse_number(text)
            else:
                factor.within = None if text in ("", WHOLE_SAMPLE) else text
        except ValueError as error:
            reason = str(error) if column == self.UNITS else \
                f"crossed factor {factor.name}: sd must be a number, got {text!r}"
            self._store_typed(index, text, reason)
            return True
        self._clear_typed(index)
        self.dataChanged.emit(index, index)
        self.design_edited.emit()
        return True

    def add_factor(self) -> int:
        """Append a crossed factor (within the top level when there are two levels or more)."""
        taken = set(self._design.level_names) | {f.name for f in self._design.crossed}
        number = 1
        while f"cross{number}_id" in taken:
            number += 1
        within = self._design.level_names[0] if len(self._design.levels) > 1 else None
        factor = CrossedFactor(f"cross{number}_id", UnitCount.fixed(10), sd=1.0, within=within)
        return self._insert_row(self._design.crossed, len(self._design.crossed), factor)

    def remove_factor(self, row: int) -> None:
        self._remove_row(self._design.crossed, row)

    @classmethod
    def column_of(cls, attribute: str) -> int:
        """The column of a crossed factor's field named in a validation message."""
        if attribute.startswith("units"):
            return cls.UNITS
        return {"name": cls.NAME, "sd": cls.SD, "within": cls.WITHIN}.get(attribute, cls.NAME)


class ChoiceDelegate(QStyledItemDelegate):
    """Edits cells that offer choices (``CHOICES_ROLE``) with a drop-down list; others as text."""

    def createEditor(self, parent, option, index):  # noqa: N802
        choices = index.data(CHOICES_ROLE)
        if not choices:
            return super().createEditor(parent, option, index)
        combo = QComboBox(parent)
        combo.addItems([str(c) for c in choices])
        # Commit as soon as a choice is made, without waiting for the editor to lose focus.
        combo.activated.connect(lambda _=None, c=combo: (self.commitData.emit(c), self.closeEditor.emit(c)))
        return combo

    def setEditorData(self, editor, index):  # noqa: N802
        if isinstance(editor, QComboBox):
            editor.setCurrentText(str(index.data(Qt.ItemDataRole.EditRole)))
        else:
            super().setEditorData(editor, index)

    def setModelData(self, editor, model, index):  # noqa: N802
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)
        else:
            super().setModelData(editor, model, index)
