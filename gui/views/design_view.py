"""The Design tab: a form bound to a ``Design``, a live summary and the Simulate button.

Every edit changes the bound design at once and re-runs ``Design.validate()``; its message is
shown at the field it names (and above the Simulate button, which stays disabled until the
design is valid). Nothing typed is thrown away: text that is not a number stays in its field.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QSplitter,
                               QTableView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.design import OBSERVATION, RESIDUAL, Design, Occasions, TreatmentDesign
from engine.errors import UserInputError
from engine.presets import PRESETS, get_preset
from gui.widgets import design_errors as where
from gui.tables.design_models import ChoiceDelegate, CovariateTableModel, CrossedFactorTableModel, LevelTableModel
from gui.widgets.fields import NumberField, invalid_reason, mark_invalid, parse_number
from gui.screen_fit import rows_height

MAX_SEED = 2**31 - 1
NO_SUMMARY = "Expected rows: — (fix the design first)"


# The outcome type of a design: the label shown, (family, link) of the Design.
DESIGN_FAMILIES = [("Continuous", ("gaussian", "identity")), ("Binary (logit)", ("binomial", "logit")),
                   ("Binary (probit)", ("binomial", "probit")), ("Count (Poisson)", ("poisson", "log"))]

class DesignView(QWidget):
    """Edit a design, see what it implies, and ask for a simulation."""

    simulate_requested = Signal(object, int)  # a copy of the design, the seed
    design_changed = Signal()  # the user edited the design (or loaded a preset)
    design_replaced = Signal()  # set_design showed another design (a project opened): not an edit
    validity_changed = Signal(bool)

    def __init__(self, design: Design, seed: int = 1, parent=None):
        super().__init__(parent)
        self._design = design
        self._last_occasions = design.occasions or Occasions()
        self._last_treatment = design.treatment or TreatmentDesign()
        self._parse_errors: dict[QWidget, str] = {}
        self._engine_marked: list[QWidget] = []
        self._error = ""
        self._loading = False
        self._build()
        for field in self.findChildren(NumberField):
            field.parse_failed.connect(lambda reason, f=field: self._on_parse_failed(f, reason))
            field.value_edited.connect(lambda _value, f=field: self._on_field_parsed(f))
        self.set_design(design, seed)

    # ----- construction --------------------------------------------------------------------------
    def _build(self) -> None:
        form = QWidget()
        form_layout = QVBoxLayout(form)
        form_layout.addWidget(self._build_preset_row())
        form_layout.addWidget(self._build_levels_box())
        form_layout.addWidget(self._build_crossed_box())
        side_by_side = QHBoxLayout()
        side_by_side.addWidget(self._build_outcome_box(), 1)
        side_by_side.addWidget(self._build_occasions_box(), 1)
        side_by_side.addWidget(self._build_treatment_box(), 1)
        form_layout.addLayout(side_by_side)
        form_layout.addWidget(self._build_covariates_box())
        form_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(form)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(self._build_summary_panel())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def _build_preset_row(self) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(PRESETS))
        self.preset_combo.setToolTip("Ready-made designs. Loading one replaces the form's content.")
        load = QPushButton("Load preset")
        load.setToolTip("Replace the design below by the chosen preset.")
        load.clicked.connect(lambda: self.load_preset(self.preset_combo.currentText()))
        layout.addWidget(QLabel("Preset:"))
        layout.addWidget(self.preset_combo)
        layout.addWidget(load)
        layout.addStretch(1)
        return row

    def _build_levels_box(self) -> QGroupBox:
        box = QGroupBox("Levels of the hierarchy (outermost first)")
        box.setToolTip("Each row is a level; each unit of a level sits inside one unit of the level above it "
                       "(students in teachers in schools in districts).")
        self.level_model = LevelTableModel(self._design, self)
        self.level_model.design_edited.connect(self._on_edited)
        self.level_table = QTableView()
        self.level_table.setModel(self.level_model)
        self.level_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.level_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.level_table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.level_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.level_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.level_table.setMinimumHeight(rows_height(self.level_table, 4))  # four levels, at any font size
        self.level_table.setToolTip(box.toolTip())
        buttons = QHBoxLayout()
        self.add_level_button = QPushButton("Add level")
        self.add_level_button.setToolTip("Insert a level below the selected one (at the bottom if none is selected).")
        self.add_level_button.clicked.connect(self._add_level)
        self.remove_level_button = QPushButton("Remove")
        self.remove_level_button.setToolTip("Remove the selected level.")
        self.remove_level_button.clicked.connect(lambda: self.level_model.remove_level(self._selected_level()))
        self.level_up_button = QPushButton("Move up")
        self.level_up_button.setToolTip("Move the selected level one step out (towards the top of the hierarchy).")
        self.level_up_button.clicked.connect(lambda: self._move_level(-1))
        self.level_down_button = QPushButton("Move down")
        self.level_down_button.setToolTip("Move the selected level one step in (towards the observations).")
        self.level_down_button.clicked.connect(lambda: self._move_level(1))
        for button in (self.add_level_button, self.remove_level_button, self.level_up_button, self.level_down_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(box)
        layout.addWidget(self.level_table)
        layout.addLayout(buttons)
        return box

    def _build_crossed_box(self) -> QGroupBox:
        box = QGroupBox("Crossed factors (not nested)")
        box.setToolTip("Classifications that cut across the levels, such as the neighbourhood a student lives in: "
                       "a school's students come from many neighbourhoods and a neighbourhood's from several "
                       "schools. Each bottom-level unit is assigned to one unit of the factor at random.")
        self.crossed_model = CrossedFactorTableModel(self._design, self)
        self.crossed_model.design_edited.connect(self._on_edited)
        self.crossed_table = QTableView()
        self.crossed_table.setModel(self.crossed_model)
        self.crossed_table.setItemDelegate(ChoiceDelegate(self.crossed_table))
        self.crossed_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.crossed_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.crossed_table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.crossed_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.crossed_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.crossed_table.setMinimumHeight(rows_height(self.crossed_table, 1))
        self.crossed_table.setToolTip(box.toolTip())
        buttons = QHBoxLayout()
        self.add_crossed_button = QPushButton("Add crossed factor")
        self.add_crossed_button.setToolTip("Add a factor crossed with the levels; edit its row to name it and set "
                                           "its units, sd and the level it lies within.")
        self.add_crossed_button.clicked.connect(self._add_crossed_factor)
        self.remove_crossed_button = QPushButton("Remove")
        self.remove_crossed_button.setToolTip("Remove the selected crossed factor.")
        self.remove_crossed_button.clicked.connect(self._remove_crossed_factor)
        buttons.addWidget(self.add_crossed_button)
        buttons.addWidget(self.remove_crossed_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(box)
        layout.addWidget(self.crossed_table)
        layout.addLayout(buttons)
        return box

    def _add_crossed_factor(self) -> None:
        self.crossed_table.selectRow(self.crossed_model.add_factor())

    def _remove_crossed_factor(self) -> None:
        rows = self.crossed_table.selectionModel().selectedRows()
        if rows:
            self.crossed_model.remove_factor(rows[0].row())

    def _build_outcome_box(self) -> QGroupBox:
        box = QGroupBox("Outcome")
        layout = QFormLayout(box)
        self.outcome_edit = QLineEdit()
        self.outcome_edit.setToolTip("Name of the outcome column in the simulated data.")
        self.outcome_edit.textEdited.connect(lambda text: self._set("outcome", text.strip()))
        self.intercept_field = NumberField("intercept", "The outcome's mean when the treatment and covariates are 0.")
        self.intercept_field.value_edited.connect(lambda v: self._set("intercept", v))
        self.residual_field = NumberField(
            "residual_sd", "Standard deviation of the residual: the variation between observations of the same "
                           "bottom-level unit that no level explains.")
        self.residual_field.value_edited.connect(lambda v: self._set("residual_sd", v))
        self.family_combo = QComboBox()
        for label, _ in DESIGN_FAMILIES:
            self.family_combo.addItem(label)
        self.family_combo.setToolTip(
            "Continuous: the outcome is the linear predictor plus a normal residual. Binary: a 0/1 outcome whose "
            "log-odds (logit) or probit is the linear predictor (no residual; the intercept is the baseline). "
            "Count: a Poisson count whose log-rate is the linear predictor. Level sds are on that latent scale.")
        self.family_combo.activated.connect(self._set_family)
        layout.addRow("Column", self.outcome_edit)
        layout.addRow("Type", self.family_combo)
        layout.addRow("Intercept", self.intercept_field)
        layout.addRow("Residual SD", self.residual_field)
        return box

    def _set_family(self, index: int) -> None:
        self._design.family, self._design.link = DESIGN_FAMILIES[index][1]
        self.residual_field.setEnabled(self._design.family == "gaussian")
        self._on_edited()

    def _build_occasions_box(self) -> QGroupBox:
        self.occasions_box = QGroupBox("Repeated occasions")
        self.occasions_box.setCheckable(True)
        self.occasions_box.setToolTip("Measure each bottom-level unit several times (semesters, waves). "
                                      "Every occasion is one row of data.")
        self.occasions_box.toggled.connect(self._on_occasions_toggled)
        layout = QFormLayout(self.occasions_box)
        self.occasion_name_edit = QLineEdit()
        self.occasion_name_edit.setToolTip("Name of the column numbering the occasions 1, 2, ...")
        self.occasion_name_edit.textEdited.connect(lambda text: self._set_occasions("name", text.strip()))
        self.occasion_count_field = NumberField("occasions: count", "How many times each unit is measured.")
        self.occasion_count_field.value_edited.connect(lambda v: self._set_occasions("count", v))
        self.occasion_missing_field = NumberField(
            "occasions: missing_prob", "Chance that any one occasion is missing (0 for none, below 1).")
        self.occasion_missing_field.value_edited.connect(lambda v: self._set_occasions("missing_prob", v))
        layout.addRow("Column", self.occasion_name_edit)
        layout.addRow("Per unit", self.occasion_count_field)
        layout.addRow("P(missing)", self.occasion_missing_field)
        return self.occasions_box

    def _build_treatment_box(self) -> QGroupBox:
        self.treatment_box = QGroupBox("Treatment")
        self.treatment_box.setCheckable(True)
        self.treatment_box.setToolTip("A yes/no treatment with a fixed effect on the outcome.")
        self.treatment_box.toggled.connect(self._on_treatment_toggled)
        layout = QFormLayout(self.treatment_box)
        self.treatment_name_edit = QLineEdit()
        self.treatment_name_edit.setToolTip("Name of the treatment column (1 = treated, 0 = not).")
        self.treatment_name_edit.textEdited.connect(lambda text: self._set_treatment("name", text.strip()))
        self.treatment_effect_field = NumberField("treatment: effect", "How much treatment raises the outcome.")
        self.treatment_effect_field.value_edited.connect(lambda v: self._set_treatment("effect", v))
        self.treatment_probability_field = NumberField(
            "treatment: probability", "Chance that a unit is treated, between 0 and 1.")
        self.treatment_probability_field.value_edited.connect(lambda v: self._set_treatment("probability", v))
        self.treatment_level_combo = QComboBox()
        self.treatment_level_combo.setToolTip(
            "Who is treated: each observation on its own, or whole units of a level (a cluster-randomised "
            "trial treats whole schools).")
        self.treatment_level_combo.activated.connect(
            lambda _: self._set_treatment("level", self.treatment_level_combo.currentText()))
        self.treatment_allocation_combo = QComboBox()
        self.treatment_allocation_combo.addItem("each unit with the probability", "bernoulli")
        self.treatment_allocation_combo.addItem("exactly, per block", "fixed")
        self.treatment_allocation_combo.setToolTip(
            "How units are assigned: each independently with the probability (the number treated varies), "
            "or exactly 'Treated' units (default: the probability's share, rounded) in each block.")
        self.treatment_allocation_combo.activated.connect(
            lambda _: self._set_allocation("allocation", self.treatment_allocation_combo.currentData()))
        self.treatment_treated_edit = QLineEdit()
        self.treatment_treated_edit.setPlaceholderText("the probability's share")
        self.treatment_treated_edit.setToolTip("Exact allocation: how many units are treated in each block "
                                               "(empty: the probability's share of the block, halves rounded up).")
        self.treatment_treated_edit.textEdited.connect(self._on_treated_edited)
        self.treatment_block_combo = QComboBox()
        self.treatment_block_combo.setToolTip("Exact allocation: the level whose units are the blocks (half the "
                                              "schools in each district: a multisite trial), or the whole sample.")
        self.treatment_block_combo.activated.connect(
            lambda _: self._set_allocation("block", self.treatment_block_combo.currentData()))
        layout.addRow("Column", self.treatment_name_edit)
        layout.addRow("Effect", self.treatment_effect_field)
        layout.addRow("Probability", self.treatment_probability_field)
        layout.addRow("Given per", self.treatment_level_combo)
        layout.addRow("Allocation", self.treatment_allocation_combo)
        layout.addRow("Treated", self.treatment_treated_edit)
        layout.addRow("Within each", self.treatment_block_combo)
        return self.treatment_box

    def _set_allocation(self, attribute: str, value) -> None:
        if attribute == "allocation":
            # Treated and blocks belong to an exact allocation: leaving it sets them aside (the fields
            # keep what was typed) and coming back applies them again.
            fixed = value == "fixed"
            text = self.treatment_treated_edit.text().strip()
            for name, kept in (("treated", int(text) if fixed and text.isdigit() else None),
                               ("block", self.treatment_block_combo.currentData() if fixed else None)):
                setattr(self._last_treatment, name, kept)
                if self._design.treatment is not None:
                    setattr(self._design.treatment, name, kept)
        self._set_treatment(attribute, value)
        self._show_allocation_fields()
        if attribute == "allocation":
            if value == "fixed":  # what the Treated field holds applies again, or its problem does
                self._on_treated_edited(self.treatment_treated_edit.text())
            else:  # the field is disabled now: its text no longer counts
                self._refresh()

    def _on_treated_edited(self, text: str) -> None:
        field = self.treatment_treated_edit
        text = text.strip()
        try:
            count = parse_number(text) if text else None  # empty: the probability's share
        except ValueError:
            # Counted like any unreadable field: it used to be marked but Simulate used the old count.
            self._on_parse_failed(field, f"treatment: treated must be a number, got {text!r}")
            mark_invalid(field, self._parse_errors[field])
            return
        self._parse_errors.pop(field, None)
        mark_invalid(field, None)
        self._set_treatment("treated", count)  # a fraction or a negative: the engine's words

    def _show_allocation_fields(self) -> None:
        """Treated and blocks apply to an exact allocation only."""
        fixed = self._last_treatment.allocation == "fixed"
        self.treatment_treated_edit.setEnabled(fixed)
        self.treatment_block_combo.setEnabled(fixed)

    def _build_covariates_box(self) -> QGroupBox:
        box = QGroupBox("Covariates")
        box.setToolTip("Other variables that affect the outcome, each drawn at one level.")
        self.covariate_model = CovariateTableModel(self._design, self)
        self.covariate_model.design_edited.connect(self._on_edited)
        self.covariate_table = QTableView()
        self.covariate_table.setModel(self.covariate_model)
        self.covariate_table.setItemDelegate(ChoiceDelegate(self.covariate_table))
        self.covariate_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.covariate_table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.covariate_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.covariate_table.setMinimumHeight(100)
        buttons = QHBoxLayout()
        add = QPushButton("Add covariate")
        add.setToolTip("Add a normal covariate drawn per observation; edit its row to change it.")
        add.clicked.connect(self.covariate_model.add_covariate)
        remove = QPushButton("Remove")
        remove.setToolTip("Remove the selected covariate.")
        remove.clicked.connect(self._remove_covariate)
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(box)
        layout.addWidget(self.covariate_table)
        layout.addLayout(buttons)
        return box

    def _build_summary_panel(self) -> QWidget:
        panel = QWidget()
        panel.setMinimumWidth(430)
        layout = QVBoxLayout(panel)
        run_box = QGroupBox("Simulation")
        run_layout = QFormLayout(run_box)
        seed_row = QHBoxLayout()
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setToolTip("The random seed: the same design and seed always give the same data.")
        self.seed_spin.valueChanged.connect(lambda _: self._loading or self.design_changed.emit())
        self.new_seed_button = QPushButton("Next seed")
        self.new_seed_button.setToolTip("Add 1 to the seed, for a fresh data set from the same design.")
        self.new_seed_button.clicked.connect(lambda: self.seed_spin.setValue((self.seed_spin.value() + 1) % MAX_SEED))
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.new_seed_button)
        run_layout.addRow("Random seed", seed_row)
        self.simulate_button = QPushButton("Simulate")
        self.simulate_button.setToolTip(f"Draw a data set from this design ({QKeySequence('F5').toString()}).")
        self.simulate_button.clicked.connect(self.request_simulation)
        run_layout.addRow(self.simulate_button)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #a94442; font-weight: bold;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        run_layout.addRow(self.error_label)
        layout.addWidget(run_box)

        summary_box = QGroupBox("What this design implies")
        summary_layout = QVBoxLayout(summary_box)
        self.rows_label = QLabel()
        self.rows_label.setToolTip("Expected number of rows (observations) of a simulated data set.")
        font = self.rows_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.rows_label.setFont(font)
        self.summary_table = QTableWidget(0, 5)
        self.summary_table.setHorizontalHeaderLabels(["Level", "Per parent", "Exp. units", "True share", "ICC"])
        tips = ["", "Units of the level inside each unit of the level above.", "Expected number of units of the level in all.",
                "Share of the unexplained variance of the outcome that lies at this level.",
                "Intraclass correlation: the correlation of two observations in the same unit of this level."]
        for column, tip in enumerate(tips):
            self.summary_table.horizontalHeaderItem(column).setToolTip(tip)
        self.summary_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_table.verticalHeader().setVisible(False)
        self.summary_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        summary_layout.addWidget(self.rows_label)
        summary_layout.addWidget(self.summary_table)
        layout.addWidget(summary_box, 1)
        return panel

    # ----- public ----------------------------------------------------------------------------------
    @property
    def design(self) -> Design:
        return self._design

    def seed(self) -> int:
        return self.seed_spin.value()

    def current_error(self) -> str:
        """The first problem of the form ('' when the design can be simulated)."""
        return self._error

    def is_valid(self) -> bool:
        return not self._error

    def set_design(self, design: Design, seed: int | None = None) -> None:
        """Show ``design`` (the form edits this object from now on)."""
        self._loading = True
        try:
            self._design = design
            if design.name in PRESETS:
                self.preset_combo.setCurrentText(design.name)
            # The design's own objects, not copies: a level rename re-points design.treatment.level,
            # and a copy would keep (and show, and restore on re-ticking) the old level.
            self._last_occasions = design.occasions or self._last_occasions
            self._last_treatment = design.treatment or self._last_treatment
            self._parse_errors.clear()
            self.level_model.set_design(design)
            self.covariate_model.set_design(design)
            self.crossed_model.set_design(design)
            self.outcome_edit.setText(design.outcome)
            mark_invalid(self.outcome_edit, None)
            self.intercept_field.set_value(design.intercept)
            self.residual_field.set_value(design.residual_sd)
            values = [value for _, value in DESIGN_FAMILIES]
            family = (design.family, design.link)
            self.family_combo.setCurrentIndex(values.index(family) if family in values else 0)
            self.residual_field.setEnabled(design.family == "gaussian")
            self.occasions_box.setChecked(design.occasions is not None)
            occasions = design.occasions or self._last_occasions
            self.occasion_name_edit.setText(occasions.name)
            self.occasion_count_field.set_value(occasions.count)
            self.occasion_missing_field.set_value(occasions.missing_prob)
            self.treatment_box.setChecked(design.treatment is not None)
            treatment = design.treatment or self._last_treatment
            self.treatment_name_edit.setText(treatment.name)
            self.treatment_effect_field.set_value(treatment.effect)
            self.treatment_probability_field.set_value(treatment.probability)
            self.treatment_allocation_combo.setCurrentIndex(
                max(0, self.treatment_allocation_combo.findData(treatment.allocation)))
            self.treatment_treated_edit.setText("" if treatment.treated is None else str(treatment.treated))
            mark_invalid(self.treatment_treated_edit, None)
            self._show_allocation_fields()
            if seed is not None:
                self.seed_spin.setValue(int(seed))
        finally:
            self._loading = False
        self._refresh()
        self.design_replaced.emit()

    def load_preset(self, name: str) -> None:
        self.set_design(get_preset(name))
        self.design_changed.emit()

    def request_simulation(self) -> None:
        self._refresh()
        if self.is_valid():
            self.simulate_requested.emit(self._design.copy(), self.seed())

    # ----- edits -----------------------------------------------------------------------------------
    def _set(self, attribute: str, value) -> None:
        setattr(self._design, attribute, value)
        self._on_edited()

    def _set_occasions(self, attribute: str, value) -> None:
        setattr(self._last_occasions, attribute, value)
        if self._design.occasions is not None:
            setattr(self._design.occasions, attribute, value)
        self._on_edited()

    def _set_treatment(self, attribute: str, value) -> None:
        setattr(self._last_treatment, attribute, value)
        if self._design.treatment is not None:
            setattr(self._design.treatment, attribute, value)
        self._on_edited()

    def _on_occasions_toggled(self, enabled: bool) -> None:
        if self._loading:
            return
        # The same object is kept while the box is unchecked, so re-checking restores what was typed.
        self._design.occasions = self._last_occasions if enabled else None
        self._on_edited()

    def _on_treatment_toggled(self, enabled: bool) -> None:
        if self._loading:
            return
        self._design.treatment = self._last_treatment if enabled else None
        self._on_edited()

    def _on_field_parsed(self, field: QWidget) -> None:
        """A field that held unreadable text holds a number again (its setter ran already)."""
        if self._parse_errors.pop(field, None) is not None:
            self._refresh()

    def _on_parse_failed(self, field: QWidget, reason: str) -> None:
        self._parse_errors[field] = reason
        self._refresh()
        self.design_changed.emit()

    def _on_edited(self) -> None:
        if self._loading:
            return
        self._refresh()
        self.design_changed.emit()

    def _selected_level(self) -> int:
        rows = self.level_table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def _add_level(self) -> None:
        selected = self._selected_level()
        row = self.level_model.add_level(selected if selected >= 0 else None)
        self.level_table.selectRow(row)

    def _move_level(self, offset: int) -> None:
        row = self._selected_level()
        if row >= 0:
            self.level_table.selectRow(self.level_model.move_level(row, offset))

    def _remove_covariate(self) -> None:
        rows = self.covariate_table.selectionModel().selectedRows()
        if rows:
            self.covariate_model.remove_covariate(rows[0].row())

    # ----- validation and summary ------------------------------------------------------------------
    def _refresh(self) -> None:
        self._refresh_level_choices()
        for widget in self._engine_marked:
            if widget not in self._parse_errors:
                mark_invalid(widget, None)
        self._engine_marked = []
        self.level_model.set_cell_error(None, None, None)
        self.covariate_model.set_cell_error(None, None, None)
        self.crossed_model.set_cell_error(None, None, None)

        # A field the design does not use now (the residual sd of a binary outcome, a field of an
        # unticked box) is disabled, so its unreadable text could not be fixed: it is kept as typed
        # but does not stop Simulate until the field is in use again.
        problems = [reason for field, reason in self._parse_errors.items() if field.isEnabled()]
        problems += self.level_model.parse_errors() + self.covariate_model.parse_errors()
        problems += self.crossed_model.parse_errors()
        engine_error = ""
        try:
            self._design.validate()
        except UserInputError as error:
            engine_error = str(error)
            self._mark_engine_error(engine_error)
        if engine_error:
            problems.append(engine_error)
        was_valid = not self._error
        self._error = problems[0] if problems else ""
        self.error_label.setText(self._error)
        self.error_label.setVisible(bool(self._error))
        self.simulate_button.setEnabled(not self._error)
        self.simulate_button.setToolTip(
            f"Fix this first: {self._error}" if self._error else "Draw a data set from this design (F5).")
        if not self._error:
            self._update_summary()
        else:  # the last valid design's counts would sit beside a problem that changes them
            self.rows_label.setText(NO_SUMMARY)
            self.summary_table.setRowCount(0)
        if was_valid != (not self._error):
            self.validity_changed.emit(not self._error)

    def _refresh_level_choices(self) -> None:
        choices = [*self._design.level_names, OBSERVATION]
        current = self._last_treatment.level
        self.treatment_level_combo.blockSignals(True)
        self.treatment_level_combo.clear()
        self.treatment_level_combo.addItems(choices if current in choices else [*choices, current])
        self.treatment_level_combo.setCurrentText(current)
        self.treatment_level_combo.blockSignals(False)
        block = self._last_treatment.block
        self.treatment_block_combo.blockSignals(True)
        self.treatment_block_combo.clear()
        self.treatment_block_combo.addItem("the whole sample", None)
        for name in self._design.level_names + ([block] if block and block not in self._design.level_names else []):
            self.treatment_block_combo.addItem(name, name)
        self.treatment_block_combo.setCurrentIndex(max(0, self.treatment_block_combo.findData(block)))
        self.treatment_block_combo.blockSignals(False)

    def _mark_engine_error(self, message: str) -> None:
        location = where.locate_error(message, self._design)
        if location is None:
            return
        widget = None
        if location.section == where.LEVELS:
            column = {"name": LevelTableModel.NAME, "sd": LevelTableModel.SD, "slopes": LevelTableModel.SLOPES,
                      }.get(location.attribute, LevelTableModel.UNITS if location.attribute.startswith("units") else None)
            if location.row is None or column is None:
                widget = self.level_table
            else:
                self.level_model.set_cell_error(location.row, column, message)
        elif location.section == where.CROSSED:
            if location.row is None:
                widget = self.crossed_table
            else:
                self.crossed_model.set_cell_error(location.row, CrossedFactorTableModel.column_of(location.attribute),
                                                  message)
        elif location.section == where.COVARIATES:
            self.covariate_model.set_cell_error(location.row, CovariateTableModel.column_of(location.attribute), message)
        elif location.section == where.OCCASIONS:
            widget = {"name": self.occasion_name_edit, "count": self.occasion_count_field,
                      "missing_prob": self.occasion_missing_field}.get(location.attribute, self.occasions_box)
        elif location.section == where.TREATMENT:
            widget = {"name": self.treatment_name_edit, "effect": self.treatment_effect_field,
                      "probability": self.treatment_probability_field, "treated": self.treatment_treated_edit,
                      "level": self.treatment_level_combo}.get(location.attribute, self.treatment_box)
        else:
            widget = {where.OUTCOME: self.outcome_edit, where.RESIDUAL_SD: self.residual_field,
                      where.INTERCEPT: self.intercept_field}.get(location.section)
        if widget is not None and widget not in self._parse_errors:
            mark_invalid(widget, message)
            self._engine_marked.append(widget)

    def unreadable_texts(self) -> list[str]:
        """Why each field or cell holding text that is not a number is unreadable (the design keeps
        the field's last number, which is what a saved project gets)."""
        return [*self._parse_errors.values(), *self.level_model.parse_errors(), *self.covariate_model.parse_errors(),
                *self.crossed_model.parse_errors()]

    def field_problem(self, widget: QWidget) -> str:
        """The reason shown at a field ('' if none): for tests and accessibility."""
        return invalid_reason(widget)

    def _update_summary(self) -> None:
        design = self._design
        counts = design.expected_counts()
        shares = design.variance_shares()
        iccs = design.intraclass_correlations()
        self.rows_label.setText(f"Expected rows: {counts.rows:,.0f}")
        # A level the bottom units move between (crossed, not nested) says so beside its count.
        rows = [(level.name, level.units.describe() + (f"; moves {level.move_prob:g}" if level.move_prob else ""),
                 counts.units[level.name], shares[level.name], iccs[level.name]) for level in design.levels]
        for factor in design.crossed:  # crossed with the levels: its units per unit of the level it lies within
            rows.append((factor.name, f"{factor.units.describe()}; crossed", counts.units[factor.name],
                         shares[factor.name], iccs[factor.name]))
        if design.occasions is not None:
            rows.append((design.occasions.name, str(design.occasions.count), counts.units[design.occasions.name],
                         None, None))
        rows.append((RESIDUAL, "", None, shares[RESIDUAL], None))
        crossed_within = {f.name: f"{f.units.describe()} per {f.within}" if f.within else f"{f.units.describe()} in all"
                          for f in design.crossed}
        self.summary_table.setRowCount(len(rows))
        for row, values in enumerate(rows):
            texts = [values[0], values[1],
                     "" if values[2] is None else f"{values[2]:,.0f}",
                     "" if values[3] is None else f"{values[3]:.1%}",
                     "" if values[4] is None else f"{values[4]:.3f}"]
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if column >= 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 1 and values[0] in crossed_within:
                    item.setToolTip(crossed_within[values[0]])
                self.summary_table.setItem(row, column, item)
