"""The Model tab: build a ``ModelSpec`` by pointing and clicking, and see it as Stata and lme4.

The form is bound to the spec: every change rebuilds it and shows the equivalent Stata command
and lme4 formula at once. Changing the levels' order starts the engine's nesting check on a
worker thread (groups per level, and a warning when the order looks reversed).
"""

from __future__ import annotations

import copy

import pandas as pd
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QFrame, QScrollArea, QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPlainTextEdit,
                               QPushButton, QRadioButton, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from engine.centering import data_columns
from engine.errors import UserInputError
from engine.intervals import DEFAULT_BOOTSTRAP_REPS, IntervalRequest
from engine.model_spec import COVARIANCES, Level, ModelSpec
from engine.project import ColumnRoles
from engine.simulate import true_effect_columns
from gui.tables.dataframe_model import DataFrameTableModel, average_text, count_text
from gui.widgets.fields import mark_invalid
from gui.jobs import ESTIMATOR_LABELS, NestingCheck, nesting_check_job
from gui.tables.table_view import CopyableTableView
from gui.widgets.centering_editor import CenteringEditor
from gui.worker import JobRunner
from gui.screen_fit import rows_height

NESTING_CHECK_DELAY_MS = 250  # wait for the user to stop dragging before checking
METHOD_HELP = {
    "REML": "Restricted maximum likelihood: the variance estimates allow for the fixed effects having been "
            "estimated (less biased with few groups). Log-likelihoods of REML fits with different fixed "
            "effects cannot be compared.",
    "ML": "Maximum likelihood (Stata's default): use it to compare models with different fixed effects by "
          "likelihood-ratio tests or AIC/BIC. Variances come out a little too small with few groups.",
}
ESTIMATOR_HELP = {
    "mixed": "The nested multilevel model above, by REML or ML (Stata's mixed, lme4's lmer).",
    "ols": "Pooled ordinary least squares: ignores the levels (Stata's regress).",
    "fe": "Fixed effects with the innermost level as panel (Stata's xtreg, fe): each unit gets its own intercept.",
    "re": "Random effects GLS with the innermost level as panel (Stata's xtreg, re).",
}
# What the "OLS" estimator becomes for a binary or count outcome: the single-level GLM of its family.
POOLED_LABELS = {("binomial", "logit"): "Pooled logit", ("binomial", "probit"): "Pooled probit",
                 ("poisson", "log"): "Pooled Poisson"}
POOLED_HELP = {
    "binomial": "The single-level logit or probit model of the same predictors, ignoring the levels (Stata's logit, "
                "probit): its effects are population-averaged, smaller than the mixed model's conditional ones.",
    "poisson": "The single-level Poisson model of the same predictors, ignoring the levels (Stata's poisson): with a "
               "log link its coefficients estimate the same effects, but its standard errors ignore the clustering."}
INTERVAL_LABELS = {"wald": "Wald", "profile": "Profile likelihood", "bootstrap": "Bootstrap"}
INTERVAL_HELP = ("Confidence intervals of the mixed model. Wald (Stata's default): sds and variances on the log "
                 "scale, correlations on the atanh scale. Profile likelihood: every sd, correlation and the "
                 "residual sd by profiling the (restricted) likelihood, as lme4's confint(method = \"profile\"). "
                 "Bootstrap: parametric-bootstrap percentile intervals of every parameter, refitting the model "
                 "to data simulated from the fit (on all cores; Esc cancels).")
GROUP_FORMATS = {"Groups": count_text, "Min obs.": count_text, "Max obs.": count_text,
                 "Mean obs.": average_text}


# The outcome's family and link: the label shown, (family, link) of the ModelSpec.
FAMILY_CHOICES = [("Continuous (linear mixed model)", ("gaussian", "identity")),
                  ("Binary 0/1, logit (melogit)", ("binomial", "logit")),
                  ("Binary 0/1, probit (meprobit)", ("binomial", "probit")),
                  ("Count, Poisson log (mepoisson)", ("poisson", "log"))]
FAMILY_HELP = ("Binary and count outcomes are fitted by maximum likelihood with the Laplace approximation, "
               "or with adaptive quadrature (more integration points) when the model has one random-intercept "
               "level. Coefficients are log-odds (probit scale, log-rates); tick the ratio box for odds ratios "
               "or incidence-rate ratios.")

# Stata's dfmethod(): the label shown, the ModelSpec value.
DF_METHOD_CHOICES = [("z and chi2 (large sample, Stata's default)", None), ("Satterthwaite t and F (REML)", "satterthwaite"),
                     ("Kenward-Roger t and F (REML)", "kroger"), ("Residual df", "residual"),
                     ("Repeated-measures df (two levels)", "repeated"), ("ANOVA (containment) df", "anova")]
DF_METHOD_HELP = ("Reference distribution of the coefficient tests and intervals (Stata's dfmethod()). With few "
                  "groups at a level, z tests are too liberal; Satterthwaite (as lmerTest) and Kenward-Roger (as "
                  "pbkrtest, with adjusted standard errors) give each coefficient its own df and need REML.")


NO_DATA_TO_FIT = "there are no data to fit: simulate a design or open a data file first"


def _term_words(term: str) -> list[str]:
    """The variable names in a typed Stata term ('i.a#c.b' -> ['a', 'b']), to find the field a message is about."""
    return [piece.split(".")[-1] for piece in term.replace("##", "#").split("#") if piece]


def _checkable(text: str, checked: bool, tooltip: str = "") -> QListWidgetItem:
    item = QListWidgetItem(text)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _checked_texts(widget: QListWidget) -> list[str]:
    return [widget.item(i).text() for i in range(widget.count())
            if widget.item(i).checkState() == Qt.CheckState.Checked]


class ModelView(QWidget):
    """Outcome, predictors, levels (in nesting order) with their random slopes, method, estimators."""

    spec_changed = Signal(object)  # ModelSpec, or None while the form has a problem
    fit_requested = Signal(object, list)  # ModelSpec, estimator names
    fit_refused = Signal(str)  # Fit was asked for (Ctrl+R reaches it from any tab) but cannot run: why

    def __init__(self, check_runner: JobRunner, parent=None):
        super().__init__(parent)
        self._runner = check_runner
        self._frame: pd.DataFrame | None = None
        self._roles = ColumnRoles()
        self._level_settings: dict[str, Level] = {}  # kept when a level is unticked, so nothing is lost
        self._spec: ModelSpec | None = None
        self._centering_choices: tuple[list[str], list[str]] | None = None
        self._error = ""
        self._updating = False
        self._last_check: NestingCheck | None = None
        # The linear model's method, df method, estimators and intervals, put aside while a binary or
        # count outcome forces ML, the mixed model and Wald, and given back when the user returns.
        self._linear_choices: tuple | None = None
        self._check_timer = QTimer(self, singleShot=True, interval=NESTING_CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self._start_nesting_check)
        self._updating = True  # widgets signal while they are built; the spec is built once they all exist
        self._build()
        self._updating = False
        self._set_enabled(False)

    # ----- construction --------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self._build_fixed_box())
        left_layout.addWidget(self._build_levels_box(), 1)
        left_layout.addWidget(self._build_centering_box())
        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addWidget(self._build_method_box())
        settings_layout.addWidget(self._build_commands_box())
        settings_layout.addWidget(self._build_nesting_box(), 1)
        settings_scroll = QScrollArea()  # scrolls on small screens; the Fit button below stays in view
        settings_scroll.setWidgetResizable(True)
        settings_scroll.setFrameShape(QFrame.Shape.NoFrame)
        settings_scroll.setWidget(settings)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(settings_scroll, 1)
        right_layout.addWidget(self._build_run_box())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        left_scroll = QScrollArea()  # the left column scrolls on small screens rather than growing the window
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        left_scroll.setWidget(left)
        splitter.addWidget(left_scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.no_data_label = QLabel("Simulate or open data first: the model is built from its columns.")
        layout.addWidget(self.no_data_label)
        layout.addWidget(splitter, 1)

    def _build_fixed_box(self) -> QGroupBox:
        box = QGroupBox("Outcome and fixed part")
        form = QFormLayout(box)
        self.outcome_combo = QComboBox()
        self.outcome_combo.setToolTip("The variable the model explains.")
        self.outcome_combo.activated.connect(lambda _: self._rebuild_spec(order_changed=True))  # the check uses the outcome
        self.predictor_list = QListWidget()
        self.predictor_list.setToolTip("Tick the variables whose average effect (fixed coefficient) the model estimates.")
        self.predictor_list.setMaximumHeight(rows_height(self.predictor_list, 6))
        self.predictor_list.itemChanged.connect(lambda _: self._rebuild_spec())
        self.extra_terms_edit = QLineEdit()
        self.extra_terms_edit.setPlaceholderText("e.g. i.sector c.ses#c.ses")
        self.extra_terms_edit.setToolTip("More fixed terms in Stata notation: i.x for a categorical variable, "
                                         "c.a#c.b for an interaction, a##b for both main effects and the interaction.")
        self.extra_terms_edit.textEdited.connect(lambda _: self._rebuild_spec())
        self.constant_check = QCheckBox("Constant (_cons)")
        self.constant_check.setChecked(True)
        self.constant_check.setToolTip("Estimate an intercept. Untick only if the outcome is zero when all predictors are.")
        self.constant_check.toggled.connect(lambda _: self._rebuild_spec())
        form.addRow("Outcome", self.outcome_combo)
        form.addRow("Predictors", self.predictor_list)
        form.addRow("More terms", self.extra_terms_edit)
        form.addRow("", self.constant_check)
        return box

    def _build_centering_box(self) -> QGroupBox:
        box = QGroupBox("Centring (new predictors made from existing ones)")
        box.setToolTip("Centre a predictor at its grand mean or at its group's mean, or add its group means as "
                       "a predictor of their own, as HLM 8 offers. The new names can then be ticked as predictors "
                       "or random slopes.")
        layout = QVBoxLayout(box)
        self.centering_editor = CenteringEditor()
        self.centering_editor.setMinimumSize(0, 110)  # scrolls inside the Model tab instead of widening it
        self.centering_editor.centerings_changed.connect(lambda _: self._on_centerings_changed())
        layout.addWidget(self.centering_editor)
        return box

    def _build_levels_box(self) -> QGroupBox:
        box = QGroupBox("Levels, outermost first (drag to reorder)")
        box.setToolTip("Tick the levels with random effects and put them in nesting order: the first level "
                       "contains the second, and so on (district, school, teacher, student).")
        self.level_list = QListWidget()
        self.level_list.setToolTip(box.toolTip())
        self.level_list.setMinimumHeight(rows_height(self.level_list, 4))  # the seed's four levels show at once
        self.level_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.level_list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.level_list.itemChanged.connect(lambda _: self._rebuild_spec(order_changed=True))
        self.level_list.model().rowsMoved.connect(lambda *_: self._rebuild_spec(order_changed=True))
        self.level_list.currentRowChanged.connect(lambda _: self._show_level_settings())
        self.level_up_button = QPushButton("Move up")
        self.level_up_button.setToolTip("Move the selected level one step out (Alt+Up).")
        self.level_up_button.setShortcut("Alt+Up")
        self.level_up_button.clicked.connect(lambda: self.move_level(self.level_list.currentRow(), -1))
        self.level_down_button = QPushButton("Move down")
        self.level_down_button.setToolTip("Move the selected level one step in (Alt+Down).")
        self.level_down_button.setShortcut("Alt+Down")
        self.level_down_button.clicked.connect(lambda: self.move_level(self.level_list.currentRow(), 1))
        order_buttons = QHBoxLayout()
        order_buttons.addWidget(self.level_up_button)
        order_buttons.addWidget(self.level_down_button)
        order_buttons.addStretch(1)

        self.level_settings_box = QGroupBox("Random effects at the selected level")
        settings = QFormLayout(self.level_settings_box)
        self.intercept_check = QCheckBox("Random intercept")
        self.intercept_check.setToolTip("Let each unit of this level have its own average outcome (its own intercept).")
        self.intercept_check.toggled.connect(lambda _: self._store_level_settings())
        self.slope_list = QListWidget()
        self.slope_list.setMaximumHeight(rows_height(self.slope_list, 5))
        self.slope_list.setToolTip("Random slopes: let the effect of a predictor differ between this level's units.")
        self.slope_list.itemChanged.connect(lambda _: self._store_level_settings())
        self.covariance_combo = QComboBox()
        self.covariance_combo.addItems(list(COVARIANCES))
        self.covariance_combo.setToolTip(
            "How the random effects of this level relate: independent (no correlations), unstructured "
            "(every correlation estimated), identity (same variance, no correlations) or exchangeable (same "
            "variance, one common correlation).")
        self.covariance_combo.activated.connect(lambda _: self._store_level_settings())
        self.crossed_check = QCheckBox("Crossed, not nested (Stata: || _all: R.x)")
        self.crossed_check.setToolTip(
            "Tick when this level's units are shared across the groups of the level above (students who "
            "change teacher, raters who score many items): each unit is one random effect wherever it "
            "appears, within the nested levels above it.")
        self.crossed_check.toggled.connect(lambda _: self._store_level_settings())
        settings.addRow(self.intercept_check)
        settings.addRow(self.crossed_check)
        settings.addRow("Random slopes", self.slope_list)
        settings.addRow("Covariance", self.covariance_combo)

        layout = QVBoxLayout(box)
        layout.addWidget(self.level_list, 1)
        layout.addLayout(order_buttons)
        layout.addWidget(self.level_settings_box)
        return box

    def _build_method_box(self) -> QGroupBox:
        box = QGroupBox("Estimation")
        layout = QVBoxLayout(box)
        method_row = QHBoxLayout()
        self.method_group = QButtonGroup(self)
        self.method_buttons: dict[str, QRadioButton] = {}
        for method in ("REML", "ML"):
            button = QRadioButton(method)
            button.setToolTip(METHOD_HELP[method])
            self.method_group.addButton(button)
            self.method_buttons[method] = button
            method_row.addWidget(button)
            button.toggled.connect(lambda checked: checked and self._rebuild_spec())
        self.method_buttons["REML"].setChecked(True)
        method_row.addStretch(1)
        layout.addLayout(method_row)
        df_row = QHBoxLayout()
        self.dfmethod_combo = QComboBox()
        for label, name in DF_METHOD_CHOICES:
            self.dfmethod_combo.addItem(label, name)
        self.dfmethod_combo.setToolTip(DF_METHOD_HELP)
        self.dfmethod_combo.activated.connect(lambda _: self._rebuild_spec())
        df_row.addWidget(QLabel("Tests of fixed effects:"))
        df_row.addWidget(self.dfmethod_combo, 1)
        layout.addLayout(df_row)
        family_row = QHBoxLayout()
        self.family_combo = QComboBox()
        for label, _ in FAMILY_CHOICES:
            self.family_combo.addItem(label)
        self.family_combo.setToolTip(FAMILY_HELP)
        self.family_combo.activated.connect(lambda _: self._on_family_changed())
        family_row.addWidget(QLabel("Outcome:"))
        family_row.addWidget(self.family_combo, 1)
        layout.addLayout(family_row)
        glmm_row = QHBoxLayout()
        self.nagq_spin = QSpinBox()
        self.nagq_spin.setRange(1, 30)
        self.nagq_spin.setToolTip("Integration points: 1 = Laplace approximation (lme4's default); more = adaptive "
                                  "Gauss-Hermite quadrature (one random-intercept level only; Stata's intpoints())")
        self.nagq_spin.valueChanged.connect(lambda _: self._rebuild_spec())
        self.eform_check = QCheckBox("Odds ratios / IRRs")
        self.eform_check.setToolTip("Report exp(coefficient): odds ratios (or) or incidence-rate ratios (irr)")
        self.eform_check.toggled.connect(lambda _: self._rebuild_spec())
        glmm_row.addWidget(QLabel("Integration points:"))
        glmm_row.addWidget(self.nagq_spin)
        glmm_row.addWidget(self.eform_check)
        glmm_row.addStretch(1)
        layout.addLayout(glmm_row)
        estimator_row = QHBoxLayout()
        self.estimator_checks: dict[str, QCheckBox] = {}
        for name in ESTIMATOR_LABELS:
            check = QCheckBox({"mixed": "Mixed", "ols": "OLS", "fe": "xtreg fe", "re": "xtreg re"}[name])
            check.setToolTip(ESTIMATOR_HELP[name])
            check.setChecked(name == "mixed")
            check.toggled.connect(lambda _: self._update_run_state())
            self.estimator_checks[name] = check
            estimator_row.addWidget(check)
        estimator_row.addStretch(1)
        layout.addWidget(QLabel("Estimators to run:"))
        layout.addLayout(estimator_row)
        layout.addLayout(self._build_interval_row())
        self._show_family_fields()
        return box

    def _build_interval_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.interval_combo = QComboBox()
        for method, label in INTERVAL_LABELS.items():
            self.interval_combo.addItem(label, method)
        self.interval_combo.setToolTip(INTERVAL_HELP)
        self.bootstrap_reps_spin = QSpinBox(minimum=2, maximum=1_000_000, value=DEFAULT_BOOTSTRAP_REPS,
                                            suffix=" replicates")
        self.bootstrap_reps_spin.setToolTip("Bootstrap replicates: more give steadier interval limits.")
        self.bootstrap_seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=1, prefix="seed ")
        self.bootstrap_seed_spin.setToolTip("The bootstrap's seed: the same seed gives the same intervals.")
        self.interval_combo.currentIndexChanged.connect(self._update_interval_controls)
        label = QLabel("Intervals:")
        label.setToolTip(INTERVAL_HELP)
        for widget in (label, self.interval_combo, self.bootstrap_reps_spin, self.bootstrap_seed_spin):
            row.addWidget(widget)
        row.addStretch(1)
        self._update_interval_controls()
        return row

    def _update_interval_controls(self) -> None:
        bootstrap = self.interval_combo.currentData() == "bootstrap"
        self.bootstrap_reps_spin.setEnabled(bootstrap)
        self.bootstrap_seed_spin.setEnabled(bootstrap)

    def interval_request(self) -> IntervalRequest:
        """The intervals chosen for the mixed model's fit."""
        return IntervalRequest(method=self.interval_combo.currentData(), reps=self.bootstrap_reps_spin.value(),
                               seed=self.bootstrap_seed_spin.value())

    def set_interval_request(self, request: IntervalRequest) -> None:
        self.interval_combo.setCurrentIndex(self.interval_combo.findData(request.method))
        self.bootstrap_reps_spin.setValue(request.reps)
        self.bootstrap_seed_spin.setValue(request.seed)

    def _build_commands_box(self) -> QGroupBox:
        box = QGroupBox("The same model elsewhere")
        form = QFormLayout(box)
        self.stata_text = self._command_field("The equivalent Stata command. Select it or press Copy.")
        self.lme4_text = self._command_field("The equivalent R formula for lme4::lmer "
                                             "(nested levels written as interactions of their ids).")
        form.addRow("Stata", self._with_copy_button(self.stata_text))
        form.addRow("lme4", self._with_copy_button(self.lme4_text))
        return box

    def _command_field(self, tooltip: str) -> QPlainTextEdit:
        field = QPlainTextEdit()
        field.setReadOnly(True)
        field.setToolTip(tooltip)
        field.setFixedHeight(self.fontMetrics().height() * 4 + 14)
        field.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        field.setStyleSheet("font-family: monospace;")
        return field

    def _with_copy_button(self, field: QPlainTextEdit) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        button = QPushButton("Copy")
        button.setToolTip("Copy to the clipboard.")
        button.clicked.connect(lambda: QGuiApplication.clipboard().setText(field.toPlainText()))
        row.addWidget(field, 1)
        row.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        return holder

    def _build_nesting_box(self) -> QGroupBox:
        box = QGroupBox("Nesting check")
        box.setToolTip("Groups per level in the order above, counted as Stata and lme4 count them: a group is "
                       "the combination of its id with every id above it.")
        self.nesting_status = QLabel()
        self.nesting_status.setWordWrap(True)
        self.nesting_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.nesting_model = DataFrameTableModel(formatters=GROUP_FORMATS, parent=self)
        self.nesting_table = CopyableTableView(self.nesting_model, export_name="nesting_check")
        self.nesting_table.setToolTip(box.toolTip())
        layout = QVBoxLayout(box)
        layout.addWidget(self.nesting_table, 1)
        layout.addWidget(self.nesting_status)
        return box

    def _build_run_box(self) -> QWidget:
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #a94442; font-weight: bold;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit the model with the ticked estimators (Ctrl+R).")
        self.fit_button.clicked.connect(self.request_fit)
        layout.addWidget(self.error_label)
        layout.addWidget(self.fit_button)
        return holder

    # ----- public ----------------------------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec | None:
        return self._spec

    @property
    def last_nesting_check(self) -> NestingCheck | None:
        return self._last_check

    def current_error(self) -> str:
        return self._error

    def estimators(self) -> list[str]:
        return [name for name, check in self.estimator_checks.items() if check.isChecked()]

    def set_estimators(self, names: list[str]) -> None:
        for name, check in self.estimator_checks.items():
            check.setChecked(name in names)

    def set_method(self, method: str) -> None:
        self.method_buttons[method.upper()].setChecked(True)

    def level_order(self) -> list[str]:
        return [self.level_list.item(i).text() for i in range(self.level_list.count())]

    def set_data(self, frame: pd.DataFrame | None, roles: ColumnRoles, preferred_spec: ModelSpec | None = None) -> None:
        """New data: offer its columns, keeping the model already built (or ``preferred_spec``)
        where it still applies to them."""
        self._frame = frame
        self._roles = roles
        self._set_enabled(frame is not None)
        if frame is None:  # no data (a new project): nothing to check
            self._check_timer.stop()
            self._last_check = None
            self.nesting_model.clear()
            self.nesting_status.setText("")
            return
        previous = preferred_spec or self._spec
        if previous is not None and set(data_columns(previous)) <= set(map(str, frame.columns)):
            self.set_spec(previous, roles)
        else:
            self.set_spec(ModelSpec(outcome=roles.outcome, fixed=list(roles.predictors),
                                    levels=[Level(name) for name in roles.ids],
                                    method=self._method()), roles)

    def set_spec(self, spec: ModelSpec, roles: ColumnRoles | None = None) -> None:
        """Show ``spec`` (e.g. from a project file) with the current data's columns."""
        roles = roles or self._roles
        if spec.family == "gaussian":  # a linear model shown: its own method stands, nothing to give back
            self._linear_choices = None
        data_names = [str(c) for c in self._frame.columns] if self._frame is not None else list(data_columns(spec))
        derived = [c.name for c in spec.centering if c.name not in data_names]
        columns = data_names + derived
        hidden = set(true_effect_columns(self._frame)) if self._frame is not None else set()
        self._updating = True
        try:
            centring_choices = ([c for c in data_names if c not in hidden],
                                list(dict.fromkeys([*spec.level_names, *roles.ids])))
            if centring_choices != self._centering_choices:  # refilling would disturb an edit
                self._centering_choices = centring_choices
                self.centering_editor.set_columns(*centring_choices)
            if self.centering_editor.centerings() != list(spec.centering):
                self.centering_editor.set_centerings(list(spec.centering))
            numeric = [c for c in columns if c not in hidden and (
                self._frame is None or c in derived or pd.api.types.is_numeric_dtype(self._frame[c].dtype))]
            self.outcome_combo.clear()
            self.outcome_combo.addItems(numeric)
            self.outcome_combo.setCurrentText(spec.outcome)
            ids = list(dict.fromkeys([*spec.level_names, *roles.ids]))
            candidates = [c for c in columns if c not in hidden and c not in ids and c != spec.outcome]
            self.predictor_list.clear()
            for name in candidates:
                self.predictor_list.addItem(_checkable(name, name in spec.fixed))
            self.extra_terms_edit.setText(" ".join(t for t in spec.fixed if t not in candidates))
            self.constant_check.setChecked(spec.constant)
            self._level_settings = {level.name: copy.deepcopy(level) for level in spec.levels}
            self.level_list.clear()
            for name in ids:
                self._level_settings.setdefault(name, Level(name))
                self.level_list.addItem(_checkable(name, name in spec.level_names,
                                                   "Tick to give this level random effects; drag to reorder."))
            self.method_buttons[spec.method].setChecked(True)
            self.dfmethod_combo.setCurrentIndex(max(0, self.dfmethod_combo.findData(spec.dfmethod)))
            self.family_combo.setCurrentIndex(self.family_index(spec.family, spec.link))
            self.nagq_spin.setValue(spec.nagq)
            self.eform_check.setChecked(spec.eform)
            self._glmm_extras = {"offset": spec.offset, "exposure": spec.exposure}
            self._show_family_fields()
        finally:
            self._updating = False
        if self.level_list.count():
            self.level_list.setCurrentRow(0)
        self._rebuild_spec(order_changed=True)

    def move_level(self, row: int, offset: int) -> None:
        """Move a level one step out (-1) or in (+1) in the nesting order."""
        target = row + offset
        if row < 0 or not 0 <= target < self.level_list.count():
            return
        self._updating = True
        item = self.level_list.takeItem(row)
        self.level_list.insertItem(target, item)
        self._updating = False
        self.level_list.setCurrentRow(target)
        self._rebuild_spec(order_changed=True)

    def set_level_order(self, names: list[str]) -> None:
        """Put the levels in this order (names not listed keep their place at the end)."""
        for position, name in enumerate(names):
            row = self.level_order().index(name)
            while row > position:
                self.move_level(row, -1)
                row -= 1

    @property
    def nesting_check_pending(self) -> bool:
        """True while a check waits for the user to stop reordering, or runs."""
        return self._check_timer.isActive() or self._runner.is_busy

    def stop_checks(self) -> None:
        """No more nesting checks (the window is closing)."""
        self._check_timer.stop()

    def request_fit(self) -> None:
        if self._frame is None:
            self.fit_refused.emit(NO_DATA_TO_FIT)
            return
        self._rebuild_spec()
        problem = self._error or ("" if self.estimators() else "tick at least one estimator")
        if problem:
            self.fit_refused.emit(problem)
            return
        self.fit_requested.emit(self._spec, self.estimators())

    # ----- spec ------------------------------------------------------------------------------------
    def _method(self) -> str:
        return "ML" if self.method_buttons["ML"].isChecked() else "REML"

    def _set_enabled(self, enabled: bool) -> None:
        for widget in self.findChildren(QGroupBox):
            widget.setEnabled(enabled)
        self.fit_button.setEnabled(enabled)
        self.no_data_label.setVisible(not enabled)

    def _show_level_settings(self) -> None:
        item = self.level_list.currentItem()
        self.level_settings_box.setEnabled(item is not None)
        if item is None:
            return
        level = self._level_settings.setdefault(item.text(), Level(item.text()))
        self._updating = True
        try:
            self.level_settings_box.setTitle(f"Random effects at {level.name}")
            self.intercept_check.setChecked(level.intercept)
            self.slope_list.clear()
            for name in self._candidate_variables():
                self.slope_list.addItem(_checkable(name, name in level.slopes))
            self.covariance_combo.setCurrentText(level.covariance)
            self.crossed_check.setChecked(level.crossed)
        finally:
            self._updating = False

    def _store_level_settings(self) -> None:
        if self._updating:
            return
        item = self.level_list.currentItem()
        if item is None:
            return
        level = self._level_settings[item.text()]
        level.intercept = self.intercept_check.isChecked()
        level.slopes = _checked_texts(self.slope_list)
        level.covariance = self.covariance_combo.currentText()
        level.crossed = self.crossed_check.isChecked()
        self._rebuild_spec(order_changed=True)

    def _fixed_variables(self) -> list[str]:
        return _checked_texts(self.predictor_list)

    def _candidate_variables(self) -> list[str]:
        return [self.predictor_list.item(i).text() for i in range(self.predictor_list.count())]

    def _rebuild_spec(self, order_changed: bool = False) -> None:
        if self._updating:
            return
        mark_invalid(self.intercept_check, None)
        mark_invalid(self.outcome_combo, None)
        mark_invalid(self.dfmethod_combo, None)
        mark_invalid(self.extra_terms_edit, None)
        mark_invalid(self.centering_editor.table, None)
        mark_invalid(self.slope_list, None)
        levels = []
        for name in _checked_texts(self.level_list):
            settings = self._level_settings.setdefault(name, Level(name))
            level = copy.deepcopy(settings)
            # A crossed factor lies within the nested levels above it (Stata's `|| a: || _all: R.x`).
            level.nested_in = [above.name for above in levels if not above.crossed] if level.crossed else []
            levels.append(level)
        fixed = self._fixed_variables() + self.extra_terms_edit.text().split()
        outcome = self.outcome_combo.currentText()
        self._error = ""
        try:
            if not outcome:
                raise UserInputError("choose the outcome")
            if self.centering_editor.problems():
                raise UserInputError(f"centring: {self.centering_editor.problems()[0]}")
            family, link = self.family_link()
            glmm = {} if family == "gaussian" else dict(
                family=family, link=link, nagq=self.nagq_spin.value(), eform=self.eform_check.isChecked(),
                **getattr(self, "_glmm_extras", {}))
            spec = ModelSpec(outcome=outcome, fixed=fixed, levels=levels, method=self._method(),
                             constant=self.constant_check.isChecked(),
                             centering=self.centering_editor.centerings(), dfmethod=self.dfmethod_combo.currentData(),
                             **glmm)
            from engine.mixed.ddf import check_dfmethod  # imports the mixed fit: not at window start
            from engine.centering import check_centring_source
            from engine.mixed.prepare import check_column_names, check_slope_columns
            check_dfmethod(spec)
            if self._frame is not None:  # a typed term naming no column, a text column centred: now, not at Fit
                check_column_names([*self._frame.columns, *(c.name for c in spec.centering)], spec)
                check_slope_columns(self._frame, spec)
                for centering in spec.centering:
                    if centering.variable in self._frame.columns:
                        check_centring_source(self._frame[centering.variable], centering.variable)
        except UserInputError as error:
            self._spec = None
            self._error = str(error)
            typed = self.extra_terms_edit.text().split()
            invalid = (self.intercept_check if "noconstant" in self._error else
                       self.centering_editor.table if self._error.startswith("cannot centre") else
                       self.slope_list if self._error.startswith("random slope") else
                       self.extra_terms_edit if any(repr(term) in self._error for term in typed) or any(
                           f"{word!r}" in self._error for term in typed for word in _term_words(term)) else
                       self.dfmethod_combo if "dfmethod" in self._error else
                       self.nagq_spin if "intpoints" in self._error else
                       self.family_combo if ("REML" in self._error or "outcome" in self._error
                                             and self.family_link()[0] != "gaussian")
                       else self.outcome_combo)
            mark_invalid(invalid, self._error)
            self.stata_text.setPlainText("")
            self.lme4_text.setPlainText("")
        else:
            self._spec = spec
            # Stata has no centring option: the derived columns are made first (shown as comments).
            made = "".join(f"* {centering.describe()}\n" for centering in spec.centering)
            self.stata_text.setPlainText(made + spec.to_stata())
            self.lme4_text.setPlainText(spec.to_lme4())
        self._update_run_state()
        self.spec_changed.emit(self._spec)
        if order_changed:
            self._schedule_nesting_check()

    def _on_centerings_changed(self) -> None:
        """New or changed derived columns: offer them as predictors and slopes, keeping the model."""
        if self._updating or self._frame is None:
            return
        if self.centering_editor.problems() or self._spec is None:
            self._rebuild_spec()  # shows the problem where the model's errors are shown
            return
        self.set_spec(self._spec.replace(centering=self.centering_editor.centerings()))

    @staticmethod
    def family_index(family: str, link: str) -> int:
        """Position of (family, link) in the outcome combo (0, linear, when unknown)."""
        values = [value for _, value in FAMILY_CHOICES]
        return values.index((family, link)) if (family, link) in values else 0

    def family_link(self) -> tuple[str, str]:
        return FAMILY_CHOICES[max(0, self.family_combo.currentIndex())][1]

    def _on_family_changed(self) -> None:
        family, _ = self.family_link()
        if family != "gaussian" and self._linear_choices is None:
            self._linear_choices = (self._method(), self.dfmethod_combo.currentIndex(), self.estimators(),
                                    self.interval_request())
        if family == "gaussian" and self._linear_choices is not None:
            method, dfmethod_index, estimators, intervals = self._linear_choices
            self._linear_choices = None
            self._show_family_fields()  # enable the linear estimators and intervals before ticking them
            self.method_buttons[method].setChecked(True)
            self.dfmethod_combo.setCurrentIndex(dfmethod_index)
            self.set_estimators(estimators)
            self.set_interval_request(intervals)
        if family != "gaussian":  # binary and count outcomes: maximum likelihood only, mixed model only
            self.method_buttons["ML"].setChecked(True)
            self.dfmethod_combo.setCurrentIndex(0)
            for name, check in self.estimator_checks.items():
                check.setChecked(name == "mixed")
        self._show_family_fields()
        self._rebuild_spec()

    def _show_family_fields(self) -> None:
        family, _ = self.family_link()
        glmm = family != "gaussian"
        self.nagq_spin.setEnabled(glmm)
        self.eform_check.setEnabled(glmm)
        self.eform_check.setText("Incidence-rate ratios (irr)" if family == "poisson" else "Odds ratios (or)")
        for name, check in self.estimator_checks.items():
            check.setEnabled(not glmm or name in ("mixed", "ols"))
            if glmm and name not in ("mixed", "ols"):  # xtreg fe and re are linear estimators
                check.setChecked(False)
        # Profile and bootstrap intervals work on the linear model's likelihood: Wald only for these outcomes.
        for row in range(self.interval_combo.count()):
            if self.interval_combo.itemData(row) != "wald":
                self.interval_combo.model().item(row).setEnabled(not glmm)
        if glmm and self.interval_combo.currentData() != "wald":
            self.interval_combo.setCurrentIndex(self.interval_combo.findData("wald"))
        pooled = POOLED_LABELS.get(self.family_link(), "OLS")
        self.estimator_checks["ols"].setText(pooled)
        self.estimator_checks["ols"].setToolTip(POOLED_HELP.get(family, ESTIMATOR_HELP["ols"]))
        if glmm:
            self.estimator_checks["mixed"].setChecked(True)

    def _update_run_state(self) -> None:
        problem = self._error or ("" if self.estimators() else "tick at least one estimator")
        self.error_label.setText(problem)
        self.error_label.setVisible(bool(problem))
        self.fit_button.setEnabled(self._frame is not None and not problem)

    # ----- nesting check ---------------------------------------------------------------------------
    def _schedule_nesting_check(self) -> None:
        if self._frame is None:
            return
        self.nesting_status.setText("Checking the nesting…")
        self._check_timer.start()

    def _start_nesting_check(self) -> None:
        if self._frame is None or not self._runner.is_running:  # no data, or the window is closing
            return
        names = _checked_texts(self.level_list)
        missing = [n for n in names if n not in self._frame.columns]
        if missing:
            self.nesting_status.setText(f"no column {missing[0]!r} in the data")
            return
        job = nesting_check_job(self._frame, names, self.outcome_combo.currentText())
        job.on_finished = self._show_nesting_check
        job.on_failed = lambda message: self.nesting_status.setText(message)
        self._runner.start(job)

    def _show_nesting_check(self, check: NestingCheck) -> None:
        if self._frame is None:  # the data went away while the check ran
            return
        self._last_check = check
        rows = [(g.level, g.groups, g.min, g.mean, g.max) for g in check.groups]
        self.nesting_model.set_frame(pd.DataFrame(rows, columns=["Level", "Groups", "Min obs.", "Mean obs.", "Max obs."]))
        self.nesting_table.resizeColumnsToContents()
        if not check.level_names:
            self.nesting_status.setText("No levels ticked: the model is a linear regression.")
        elif check.warnings:
            self.nesting_status.setText("⚠ " + "\n⚠ ".join(check.warnings))
            self.nesting_status.setStyleSheet("color: #8a6d3b;")
        else:
            self.nesting_status.setText("✓ The levels nest properly in this order.")
            self.nesting_status.setStyleSheet("color: #3c763d;")
