"""The Compare Models tab: likelihood-ratio tests, AIC and BIC, intraclass correlations and the
variance explained, for a list of models fitted to the current data.

The user collects models (from the session's fits, or typed in Stata syntax), orders them from
small to large, and presses Compare; ``engine.model_comparison.compare_models`` runs on the
worker and its ``ModelComparison`` is shown as tables and as its own text. The engine's notes —
above all that REML fits with different fixed effects were refitted by ML for the tests — are
shown above the tables, where they cannot be missed.
"""

from __future__ import annotations

import html
from typing import Optional

import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPlainTextEdit, QPushButton, QSplitter, QTabWidget, QVBoxLayout,
                               QWidget)

from engine.design import Design, Truth
from engine.errors import UserInputError
from engine.model_comparison import LikelihoodRatioTest, ModelComparison
from engine.model_spec import ModelSpec
from gui.analysis_jobs import comparison_job
from gui.tables.dataframe_model import DataFrameTableModel, count_text, decimals_formatter
from gui.widgets.fields import mark_invalid
from gui.views.model_view import DF_METHOD_CHOICES
from gui.tables.table_view import CopyableTableView
from gui.worker import Job, JobRunner

SPEC_ROLE = Qt.ItemDataRole.UserRole
METHOD_CHOICES = [(None, "As each model says"), ("REML", "REML for every model"), ("ML", "ML for every model")]
NOTE_STYLE = "background: #fcf8e3; border: 1px solid #faebcc; border-radius: 3px; padding: 6px; color: #8a6d3b;"
P_FORMAT = decimals_formatter(4)
STATISTIC_FORMAT = decimals_formatter(2)
INFORMATION_FORMAT = decimals_formatter(3)
MODEL_FORMATS = {"N": count_text, "df": count_text, "Log-likelihood": INFORMATION_FORMAT, "AIC": INFORMATION_FORMAT,
                 "BIC": INFORMATION_FORMAT}
TEST_FORMATS = {"Statistic": STATISTIC_FORMAT, "df": count_text, "p": P_FORMAT}
ICC_FORMATS = {"ICC": P_FORMAT, "Std. Err.": P_FORMAT, "95% CI low": P_FORMAT, "95% CI high": P_FORMAT}
VARIANCE_FORMATS = {"Proportion explained": P_FORMAT}
FIXED_TEST_FORMATS = {"F": STATISTIC_FORMAT, "df1": count_text, "df2": STATISTIC_FORMAT, "P>F": P_FORMAT}


def model_label(index: int) -> str:
    """A, B, ..., Z, then M27, M28: the engine's default labels, by position in the list."""
    return chr(ord("A") + index) if index < 26 else f"M{index + 1}"


class ModelComparisonView(QWidget):
    """A list of models, Compare and Cancel, and the comparison's tables, notes and text."""

    comparison_finished = Signal(object)  # ModelComparison
    comparison_failed = Signal(str)  # the engine's message

    def __init__(self, job_runner: JobRunner, parent=None):
        super().__init__(parent)
        self.job_runner = job_runner
        self._frame: pd.DataFrame | None = None
        self._job: Job | None = None
        self._comparison: ModelComparison | None = None
        self._truth: Truth | None = None
        self._build()
        job_runner.job_cancelled.connect(self._on_job_cancelled)
        self._update_buttons()

    # ----- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_list = QListWidget()
        self.model_list.setToolTip("The models, compared in this order: each is tested against the next (the one "
                                   "with fewer parameters as the restricted model). Put nested models from small "
                                   "to large.")
        self.model_list.currentRowChanged.connect(lambda _: self._update_buttons())
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("mathach ses || school:, reml")
        help_text = "A model in Stata mixed syntax: outcome, fixed effects, || level: random slopes."
        self.model_edit.setToolTip(help_text)
        self.model_edit.setProperty("help_text", help_text)
        self.model_edit.textEdited.connect(lambda _: mark_invalid(self.model_edit, None))
        self.model_edit.returnPressed.connect(self.add_model_from_field)
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add the typed model to the list.")
        self.add_button.clicked.connect(self.add_model_from_field)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected model off the list.")
        self.remove_button.clicked.connect(lambda: self.remove_model(self.model_list.currentRow()))
        self.up_button = QPushButton("Move up")
        self.up_button.clicked.connect(lambda: self.move_model(self.model_list.currentRow(), -1))
        self.down_button = QPushButton("Move down")
        self.down_button.clicked.connect(lambda: self.move_model(self.model_list.currentRow(), 1))
        self.nested_crossed_button = QPushButton("Nested vs crossed")
        self.nested_crossed_button.setToolTip(
            "For data simulated from a design with something crossed (students who change teacher, "
            "neighbourhoods across schools): list the design's nested models and its crossed model, to see "
            "side by side where the nested models put the crossed factor's variance.")
        self.nested_crossed_button.clicked.connect(self.list_nested_and_crossed)
        self.method_combo = QComboBox()
        for method, words in METHOD_CHOICES:
            self.method_combo.addItem(words, method)
        self.method_combo.setToolTip(
            "REML estimates variances without bias but cannot compare fixed effects: when REML models differ in "
            "their fixed effects, the engine refits them by ML for the tests and says so.")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Fit every model to the same rows and compare them.")
        self.compare_button.clicked.connect(self.compare)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the comparison's fits.")
        self.cancel_button.clicked.connect(self.cancel)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        add_row = QHBoxLayout()
        add_row.addWidget(self.model_edit, 1)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.nested_crossed_button)  # beside Add: the order row would widen the window
        order_row = QHBoxLayout()
        for button in (self.remove_button, self.up_button, self.down_button):
            order_row.addWidget(button)
        run_row = QHBoxLayout()
        run_row.addWidget(self.compare_button, 1)
        run_row.addWidget(self.cancel_button)
        models_box = QGroupBox("Models to compare")
        models_layout = QVBoxLayout(models_box)
        models_layout.addWidget(self.model_list, 1)
        models_layout.addLayout(order_row)
        models_layout.addLayout(add_row)
        method_form = QFormLayout()
        method_form.addRow("Method:", self.method_combo)
        self.dfmethod_combo = QComboBox()
        self.dfmethod_combo.addItem("none (LR tests only)", None)
        for label, name in DF_METHOD_CHOICES:
            if name is not None:
                self.dfmethod_combo.addItem(label, name)
        self.dfmethod_combo.setToolTip("Also test the fixed effects a model adds to its neighbour (same random part) "
                                       "by a Wald F with this df method, fitted by REML as asked: pbkrtest's KRmodcomp "
                                       "for Kenward-Roger. With few groups it is the small-sample alternative to the "
                                       "LR test of ML refits.")
        method_form.addRow("F tests, df:", self.dfmethod_combo)
        models_layout.addLayout(method_form)
        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addWidget(models_box, 1)
        settings_layout.addLayout(run_row)
        settings_layout.addWidget(self.status_label)

        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.notes_label.setStyleSheet(NOTE_STYLE)
        self.notes_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes_label.hide()
        self.models_model = DataFrameTableModel(formatters=MODEL_FORMATS)
        self.models_table = CopyableTableView(self.models_model, export_name="model-comparison")
        self.models_table.setToolTip("Log-likelihood, parameters (df), AIC = -2 ll + 2 df and BIC = -2 ll + df ln N, "
                                     "by the method of the tests: smaller AIC and BIC are better.")
        self.tests_model = DataFrameTableModel(formatters=TEST_FORMATS)
        self.tests_table = CopyableTableView(self.tests_model, export_name="lr-tests")
        self.tests_table.setToolTip("Likelihood-ratio tests of neighbouring models. A variance tested at zero is "
                                    "on the boundary: its statistic follows a chi-bar-square mixture.")
        self.icc_model = DataFrameTableModel(formatters=ICC_FORMATS)
        self.icc_table = CopyableTableView(self.icc_model, export_name="intraclass-correlations")
        self.icc_table.setToolTip("Intraclass correlations (Stata's estat icc): the share of the variance at and "
                                  "above a level. CIs on the logit scale stay inside (0, 1).")
        self.variance_model = DataFrameTableModel(formatters=VARIANCE_FORMATS)
        self.variance_table = CopyableTableView(self.variance_model, export_name="variance-explained")
        self.variance_table.setToolTip("Raudenbush & Bryk's proportion of variance explained at each level, "
                                       "against the null model: (null - model) / null.")
        self.report_text = QPlainTextEdit()
        self.report_text.setReadOnly(True)
        self.report_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        tests_page = QWidget()
        tests_layout = QVBoxLayout(tests_page)
        tests_layout.addWidget(QLabel("<b>Models</b> (information criteria)"))
        tests_layout.addWidget(self.models_table, 1)
        tests_layout.addWidget(QLabel("<b>Likelihood-ratio tests</b>"))
        tests_layout.addWidget(self.tests_table, 1)
        self.fixed_tests_model = DataFrameTableModel(formatters=FIXED_TEST_FORMATS)
        self.fixed_tests_table = CopyableTableView(self.fixed_tests_model, export_name="fixed-effects-f-tests")
        self.fixed_tests_table.setToolTip("Wald F tests of the fixed effects a model adds, with the chosen df method.")
        self.fixed_tests_label = QLabel("<b>F tests of added fixed effects</b> (chosen df method)")
        tests_layout.addWidget(self.fixed_tests_label)
        tests_layout.addWidget(self.fixed_tests_table, 1)
        self.fixed_tests_label.hide()  # shown when a df method gives F tests
        self.fixed_tests_table.hide()
        variance_page = QWidget()
        variance_layout = QVBoxLayout(variance_page)
        variance_layout.addWidget(QLabel("<b>Intraclass correlations</b>"))
        variance_layout.addWidget(self.icc_table, 1)
        variance_layout.addWidget(QLabel("<b>Proportion of variance explained</b> against the null model"))
        variance_layout.addWidget(self.variance_table, 1)
        self.components_model = DataFrameTableModel(formatters={})
        self.components_table = CopyableTableView(self.components_model, export_name="variance-components")
        self.components_table.setToolTip("Each model's variance components (sds) row by row, with the truth the "
                                         "data were simulated from; an empty cell: the model has no such level.")
        self.shift_label = QLabel()
        self.shift_label.setWordWrap(True)
        self.shift_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.shift_label.setToolTip("Where each nested model puts the variance of a crossed factor: its variances "
                                    "minus the crossed model's, level by level.")
        components_page = QWidget()
        components_layout = QVBoxLayout(components_page)
        components_layout.addWidget(QLabel("<b>Variance components</b> side by side (and the truth)"))
        components_layout.addWidget(self.components_table, 1)
        components_layout.addWidget(self.shift_label)
        self.result_tabs = QTabWidget()
        self.result_tabs.addTab(tests_page, "Tests and information criteria")
        self.result_tabs.addTab(variance_page, "ICC and variance explained")
        self.result_tabs.addTab(components_page, "Variance components")
        self.result_tabs.addTab(self.report_text, "Text")
        self.tests_page, self.variance_page, self.components_page = tests_page, variance_page, components_page
        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(self.notes_label)
        results_layout.addWidget(self.result_tabs, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(settings)
        splitter.addWidget(results)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def table_views(self) -> list[CopyableTableView]:
        """The tables, for the window's export-failed and exported messages."""
        return [self.models_table, self.tests_table, self.icc_table, self.variance_table, self.fixed_tests_table,
                self.components_table]

    # ----- models --------------------------------------------------------------------------------
    @property
    def comparison(self) -> ModelComparison | None:
        return self._comparison

    @property
    def is_running(self) -> bool:
        return self._job is not None

    def set_data(self, frame: pd.DataFrame | None, truth: Truth | None = None) -> None:
        """New data (and their truth, when simulated): a shown comparison belongs to the old data,
        so it is cleared."""
        self._frame = frame
        self._truth = truth
        if self._comparison is not None:
            self._show_comparison(None)
            self.status_label.setText("The data changed: press Compare to compare the models on the new data.")
        self._update_buttons()

    def models(self) -> list[ModelSpec]:
        return [self.model_list.item(row).data(SPEC_ROLE) for row in range(self.model_list.count())]

    def set_models(self, specs: list[ModelSpec]) -> None:
        self.model_list.clear()
        for spec in specs:
            self.add_model(spec)

    def crossed_design(self) -> Design | None:
        """The design the data were simulated from, when something in it is crossed."""
        if self._truth is None or not self._truth.design:
            return None
        try:
            design = self._truth.source_design()
        except UserInputError:
            return None
        return design if design.crossed_names() else None

    def list_nested_and_crossed(self) -> None:
        """Replace the list by the design's nested models and its crossed model (the engine's choice)."""
        from engine.compare import nested_and_crossed_models

        design = self.crossed_design()
        if design is not None:
            self.set_models(nested_and_crossed_models(design))

    def add_model(self, spec: ModelSpec) -> bool:
        """Append ``spec`` (e.g. a fit's); False if the same model is listed already."""
        if any(_same_model(spec, listed) for listed in self.models()):
            return False
        item = QListWidgetItem()
        item.setData(SPEC_ROLE, spec)
        self.model_list.addItem(item)
        self._relabel()
        self.model_list.setCurrentItem(item)
        return True

    def add_model_from_field(self) -> Optional[ModelSpec]:
        text = self.model_edit.text().strip()
        if not text:
            return None
        try:
            spec = ModelSpec.parse(text)
        except UserInputError as error:
            mark_invalid(self.model_edit, str(error))
            return None
        if not self.add_model(spec):
            mark_invalid(self.model_edit, "this model is in the list already")
            return None
        self.model_edit.clear()
        return spec

    def remove_model(self, row: int) -> None:
        if 0 <= row < self.model_list.count():
            self.model_list.takeItem(row)
            self._relabel()

    def move_model(self, row: int, offset: int) -> None:
        target = row + offset
        if not (0 <= row < self.model_list.count() and 0 <= target < self.model_list.count()):
            return
        item = self.model_list.takeItem(row)
        self.model_list.insertItem(target, item)
        self.model_list.setCurrentRow(target)
        self._relabel()

    def _relabel(self) -> None:
        for row in range(self.model_list.count()):
            item = self.model_list.item(row)
            spec: ModelSpec = item.data(SPEC_ROLE)
            item.setText(f"{model_label(row)}   {spec.to_stata()}")
            tip = spec.to_stata()
            if spec.centering:
                tip += "\n" + "\n".join(c.describe() for c in spec.centering)
            item.setToolTip(tip)
        self._update_buttons()

    # ----- running --------------------------------------------------------------------------------
    def compare(self) -> Job | None:
        """Start the comparison on the worker; None (with the reason shown) if it cannot start."""
        specs = self.models()
        if self._frame is None:
            self._show_error("there are no data to compare the models on: simulate a design or open a data file")
            return None
        if len(specs) < 2:
            self._show_error("a comparison needs at least two models: add another one")
            return None
        job = comparison_job(self._frame, specs, [model_label(i) for i in range(len(specs))],
                             self.method_combo.currentData(), self.dfmethod_combo.currentData(), truth=self._truth)
        job.on_finished = self._on_finished
        job.on_failed = self._on_failed
        self.status_label.setStyleSheet("")
        self.status_label.setText(f"Fitting {len(specs)} models and the null model…")
        self._job = self.job_runner.start(job)
        self._update_buttons()
        return self._job

    def cancel(self) -> None:
        if self._job is not None and self.job_runner.current_job is self._job:
            self.job_runner.cancel()
            self.status_label.setText("Cancelling…")

    def _on_finished(self, comparison: ModelComparison) -> None:
        self._job = None
        self.status_label.setText(f"Compared {len(comparison.models)} models.")
        self._show_comparison(comparison)
        self._update_buttons()
        self.comparison_finished.emit(comparison)

    def _on_failed(self, message: str) -> None:
        self._job = None
        self._show_error(message)
        self._update_buttons()
        self.comparison_failed.emit(message)

    def _on_job_cancelled(self, job: Job) -> None:
        if job is self._job:
            self._job = None
            self.status_label.setText("Comparison cancelled.")
            self._update_buttons()

    # ----- showing ---------------------------------------------------------------------------------
    def _show_comparison(self, comparison: ModelComparison | None) -> None:
        self._comparison = comparison
        if comparison is None:
            for model in (self.models_model, self.tests_model, self.icc_model, self.variance_model,
                          self.fixed_tests_model, self.components_model):
                model.clear()
            self.shift_label.setText("")
            self.report_text.setPlainText("")
            self.notes_label.hide()
            return
        self.models_model.set_frame(models_table(comparison))
        self.tests_model.set_frame(tests_table(comparison))
        self.icc_model.set_frame(intraclass_table(comparison))
        self.variance_model.set_frame(variance_table(comparison))
        self.fixed_tests_model.set_frame(fixed_tests_table(comparison))
        self.components_model.set_frame(components_table(comparison))
        self.shift_label.setText("<br>".join(f"• <b>Where the {html.escape(shift.factor)} variance went:</b> "
                                             f"{html.escape(shift.text)}" for shift in comparison.variance_shifts))
        has_f_tests = bool(getattr(comparison, "fixed_tests", []))
        self.fixed_tests_label.setVisible(has_f_tests)
        self.fixed_tests_table.setVisible(has_f_tests)
        for table in self.table_views():
            table.resizeColumnsToContents()
        self.report_text.setPlainText(comparison.format())
        lines = [f"Tests and AIC/BIC by <b>{comparison.method}</b>; ICCs and variance explained by "
                 f"<b>{comparison.fit_method}</b>" + (f"; null model: {html.escape(comparison.null_model)}"
                                                      if comparison.null_model else "") + "."]
        lines += [("<b>Refitted by ML.</b> " if comparison.refitted_by_ml and "refitted by ML" in note else "")
                  + html.escape(note) for note in comparison.notes]
        self.notes_label.setText("<br>".join(f"• {line}" for line in lines))
        self.notes_label.show()

    def _show_error(self, message: str) -> None:
        self.status_label.setStyleSheet("color: #a94442;")
        self.status_label.setText(message)

    def _update_buttons(self) -> None:
        running = self.is_running
        row, count = self.model_list.currentRow(), self.model_list.count()
        self.compare_button.setEnabled(not running and count >= 2 and self._frame is not None)
        self.compare_button.setToolTip(
            "Fit every model to the same rows and compare them." if self._frame is not None and count >= 2 else
            "Needs data and at least two models.")
        self.cancel_button.setEnabled(running)
        self.remove_button.setEnabled(not running and 0 <= row < count)
        self.up_button.setEnabled(not running and 0 < row < count)
        self.down_button.setEnabled(not running and 0 <= row < count - 1)
        self.nested_crossed_button.setEnabled(not running and self.crossed_design() is not None)
        for widget in (self.model_edit, self.add_button, self.method_combo, self.dfmethod_combo, self.model_list):
            widget.setEnabled(not running)


# ----- the comparison as tables (numbers at full precision, for copy and export) -------------------
def fixed_tests_table(comparison: ModelComparison) -> pd.DataFrame:
    """The F tests of added fixed effects (empty without a df method)."""
    return pd.DataFrame([(t.restricted, t.full, ", ".join(t.columns), t.F, t.df1, t.df2, t.p, t.dfmethod)
                         for t in getattr(comparison, "fixed_tests", [])],
                        columns=["Restricted", "Full", "Added", "F", "df1", "df2", "P>F", "df method"])


def components_table(comparison: ModelComparison) -> pd.DataFrame:
    """Rows: the variance components; columns: the models (by label), then the truth if known."""
    labels = [model.label for model in comparison.models]
    rows = comparison.components
    data = {"Parameter": [row.key for row in rows]}
    for label in labels:
        data[label] = [row.estimates.get(label) for row in rows]
    if any(row.truth is not None for row in rows):
        data["Truth"] = [row.truth for row in rows]
    return pd.DataFrame(data, columns=list(data))


def models_table(comparison: ModelComparison) -> pd.DataFrame:
    return pd.DataFrame([(m.label, m.model, m.method, m.nobs, m.loglik, m.n_params, m.aic, m.bic,
                          "yes" if m.converged else "no") for m in comparison.models],
                        columns=["Model", "Command", "Method", "N", "Log-likelihood", "df", "AIC", "BIC", "Converged"])


def tests_table(comparison: ModelComparison) -> pd.DataFrame:
    return pd.DataFrame([(t.restricted, t.full, t.difference, t.stat, t.df, distribution_text(t), t.p, t.method,
                          t.note) for t in comparison.tests],
                        columns=["Restricted", "Full", "Full adds", "Statistic", "df", "Distribution", "p", "Method",
                                 "Note"])


def intraclass_table(comparison: ModelComparison) -> pd.DataFrame:
    return pd.DataFrame([(r.model, r.label, r.estimate, r.se, *(r.ci or [None, None])) for r in comparison.intraclass],
                        columns=["Model", "Level", "ICC", "Std. Err.", "95% CI low", "95% CI high"])


def variance_table(comparison: ModelComparison) -> pd.DataFrame:
    return pd.DataFrame([(r.model, r.level, r.parameter, r.null_variance, r.model_variance, r.proportion)
                         for r in comparison.variance_explained],
                        columns=["Model", "Level", "Parameter", "Null model", "This model", "Proportion explained"])


def distribution_text(test: LikelihoodRatioTest) -> str:
    """The reference distribution as Stata prints it: chi2(1), or chibar2 = 0.5 chi2(0) + 0.5 chi2(1)."""
    if test.distribution == "chibar2" and test.mixture:
        return "chibar2 = " + " + ".join(f"{weight:g} chi2({df:g})" for weight, df in test.mixture)
    return f"{test.distribution}({test.df})"


def _same_model(first: ModelSpec, second: ModelSpec) -> bool:
    return first.to_stata() == second.to_stata() and first.centering == second.centering
