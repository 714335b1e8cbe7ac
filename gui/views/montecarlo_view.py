"""The Monte Carlo tab: "does more data help?" — simulate the design many times, fit the models
to every replication and show how well they recover the truth.

The form collects a ``Study`` (engine/montecarlo); ``run_study`` runs on the given JobRunner's
worker thread and fans the replications out to worker processes. Progress reports carry the
engine's partial summaries, which fill the table and plots while the run goes on. Cancel sets
the job's stop flag, which ``run_study`` polls: chunks not started are dropped at once.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

import pandas as pd
from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QProgressBar, QPushButton, QSpinBox, QDoubleSpinBox, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from engine.design import RESIDUAL, Design
from engine.errors import UserInputError
from engine.montecarlo import Study, StudyResult, SummaryRow, Sweep, summary_frame
from engine.montecarlo.precision import StoppingRule
from engine.montecarlo.runner import RECORD_EXTENSIONS, local_cores
from engine.power.study_curve import analytic_power_curve, compare_power
from gui.analysis_jobs import MonteCarloProgress, montecarlo_job
from gui.tables.dataframe_model import DataFrameTableModel, count_text, decimals_formatter
from gui.widgets.fields import format_value, mark_invalid, parse_number
from gui.plots.montecarlo_plots import EstimateHistogramPlot, PowerPlot, StudyPlotData, SweepAccuracyPlot
from gui.tables.table_view import CopyableTableView
from gui.worker import Job, JobRunner

MAX_REPS = 1_000_000
MAX_SEED = 2_147_483_647
ELAPSED_REFRESH_MS = 500
NO_SWEEP = "none"
SWEEP_CHOICES = [  # (engine kind, words in the menu, tooltip)
    (NO_SWEEP, "No sweep", "Run the design as it is."),
    ("units", "Units per parent at a level",
     "Vary how many units each parent has at a level (e.g. schools per district): does more data help?"),
    ("sd", "Random-intercept sd of a level",
     "Vary the true sd of a level's random intercepts (or the residual sd)."),
    ("effect", "True effect of the treatment or a covariate",
     "Vary the true coefficient: with the treatment, the power curve is the study's power analysis."),
]
SUMMARY_COLUMNS = ["model", "sweep", "param", "truth", "reps", "n", "mean", "bias", "mcse_bias", "emp_sd",
                   "mean_se", "rmse", "coverage", "mcse_coverage", "power", "mcse_power", "failed", "boundary",
                   "at_zero", "model command"]
RATE_FORMAT = decimals_formatter(3)
SWEEP_VALUE_FORMAT = format_value  # 5, 10, 0.5: as typed in the sweep field
SUMMARY_FORMATS = {"reps": count_text, "n": count_text, "coverage": RATE_FORMAT, "mcse_coverage": RATE_FORMAT,
                   "power": RATE_FORMAT, "mcse_power": RATE_FORMAT, "failed": RATE_FORMAT,
                   "boundary": RATE_FORMAT, "at_zero": RATE_FORMAT}


class MonteCarloView(QWidget):
    """Settings of a study, Run and Cancel, progress, the summary table and the plots."""

    study_finished = Signal(object)  # StudyResult
    study_failed = Signal(str)  # the engine's message

    def __init__(self, job_runner: JobRunner, parent=None):
        super().__init__(parent)
        self.job_runner = job_runner
        self._design: Design | None = None
        self._design_problem = ""  # the Design tab's message while its form has a problem
        self._job: Job | None = None
        self._result: StudyResult | None = None
        self._plot_data: StudyPlotData | None = None
        self._plot_study: Study | None = None  # the study the shown summary belongs to
        self._last_progress: MonteCarloProgress | None = None
        self._clock = QElapsedTimer()
        self._elapsed_timer = QTimer(self, interval=ELAPSED_REFRESH_MS)
        self._elapsed_timer.timeout.connect(self._show_progress_text)
        self._build()
        job_runner.job_cancelled.connect(self._on_job_cancelled)
        self._update_sweep_targets()
        self._set_running(False)
        self._show_plan()

    # ----- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.models_edit = QPlainTextEdit()
        self.models_edit.setPlaceholderText("perform tutoring || school_id:, reml")
        self.models_edit.setToolTip(
            "The models fitted to every replication, one per line: Stata mixed syntax "
            "(perform tutoring || school_id:, reml) or an estimator (ols, fe student_id, re student_id). "
            "The model builder's command is filled in.")
        self.models_edit.setMaximumHeight(110)
        self.reps_spin = QSpinBox(minimum=1, maximum=MAX_REPS, value=100, singleStep=50)
        self.reps_spin.setGroupSeparatorShown(True)
        self.reps_spin.setToolTip("Replications at each sweep value. Monte Carlo errors shrink with the "
                                  "square root: four times the replications halve them.")
        self.seed_spin = QSpinBox(minimum=0, maximum=MAX_SEED, value=1)
        self.seed_spin.setToolTip("Base seed: every replication's data come from a seed derived from it, so a "
                                  "run is repeated exactly whatever the number of workers.")
        self.precision_edit = QLineEdit()
        self.precision_edit.setPlaceholderText("optional, e.g. power=0.01")
        self.precision_edit.setToolTip(
            "Stop each sweep value once the Monte Carlo SE of a statistic is at most a target, for every model and "
            "parameter concerned: power=0.01, coverage=0.005, bias=0.02, or power:tutoring=0.01 for one parameter "
            "(several separated by commas). Checked after every 100 replications; Replications is then the "
            "maximum. Empty: run all replications.")
        self.precision_edit.setProperty("help_text", self.precision_edit.toolTip())
        self.precision_edit.textEdited.connect(lambda _: mark_invalid(self.precision_edit, None))
        self.workers_spin = QSpinBox(minimum=1, maximum=max(64, 4 * local_cores()), value=local_cores())
        self.workers_spin.setToolTip(f"Worker processes fitting replications in parallel (this computer has "
                                     f"{local_cores()} cores). The results do not depend on it.")
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plan_label.setToolTip("What Run study simulates and fits: the Design tab's design (every change there "
                                   "applies here) and the models below.")
        self.models_edit.textChanged.connect(self._show_plan)
        self.reps_spin.valueChanged.connect(lambda _: self._show_plan())
        self.alpha_spin = QDoubleSpinBox(minimum=0.001, maximum=0.5, value=0.05, singleStep=0.01, decimals=3)
        self.alpha_spin.setToolTip("Coverage is of (1 - alpha) confidence intervals, power of tests at level "
                                   "alpha (0.05: 95% intervals, tests at 5%).")
        study_box = QGroupBox("Study")
        form = QFormLayout(study_box)
        form.addRow(self.plan_label)
        form.addRow("Models:", self.models_edit)
        form.addRow("Replications:", self.reps_spin)
        form.addRow("Stop at precision:", self.precision_edit)
        form.addRow("Base seed:", self.seed_spin)
        form.addRow("Workers:", self.workers_spin)
        form.addRow("Alpha:", self.alpha_spin)
        self.dfmethod_combo = dfmethod_combo()
        form.addRow("df method:", self.dfmethod_combo)

        self.sweep_kind_combo = QComboBox()
        for index, (kind, words, tip) in enumerate(SWEEP_CHOICES):
            self.sweep_kind_combo.addItem(words, kind)
            self.sweep_kind_combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        self.sweep_kind_combo.setToolTip("Vary one design value over a list: the x axis of the plots.")
        self.sweep_target_combo = QComboBox()
        self.sweep_target_combo.setToolTip("The level or variable whose value is varied.")
        self.sweep_values_edit = QLineEdit()
        self.sweep_values_edit.setPlaceholderText("e.g. 5, 10, 20")
        self.sweep_values_edit.setToolTip("The values, separated by commas.")
        self.sweep_values_edit.setProperty("help_text", self.sweep_values_edit.toolTip())
        self.sweep_kind_combo.currentIndexChanged.connect(lambda _: self._update_sweep_targets())
        self.sweep_kind_combo.currentIndexChanged.connect(lambda _: self._show_plan())
        self.sweep_target_combo.currentTextChanged.connect(lambda _: self._show_plan())
        self.sweep_values_edit.textChanged.connect(lambda _: self._show_plan())
        self.sweep_values_edit.textEdited.connect(lambda _: mark_invalid(self.sweep_values_edit, None))
        sweep_box = QGroupBox("Sweep (optional)")
        sweep_form = QFormLayout(sweep_box)
        sweep_form.addRow("Vary:", self.sweep_kind_combo)
        sweep_form.addRow("Of:", self.sweep_target_combo)
        sweep_form.addRow("Values:", self.sweep_values_edit)

        self.run_button = QPushButton("Run study")
        self.run_button.setToolTip("Simulate and fit every replication on worker processes.")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the study: replications not started are dropped; the finished ones "
                                      "stay in the table.")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.cancel_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_records_button = QPushButton("Save records…")
        self.save_records_button.setToolTip("Write every replication's estimates (one row per replication, model "
                                            "and parameter) as CSV or Parquet.")
        self.save_records_button.clicked.connect(self.save_records_with_dialog)

        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addWidget(study_box)
        settings_layout.addWidget(sweep_box)
        settings_layout.addLayout(buttons)
        settings_layout.addWidget(self.progress_bar)
        settings_layout.addWidget(self.progress_label)
        settings_layout.addWidget(self.status_label)
        settings_layout.addStretch(1)
        settings_layout.addWidget(self.save_records_button)

        self.legend_label = QLabel()
        self.legend_label.setWordWrap(True)
        self.legend_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.param_combo = QComboBox()
        self.param_combo.setToolTip("The parameter whose estimates, bias, RMSE and coverage are plotted.")
        self.param_combo.setMinimumContentsLength(22)
        self.param_combo.activated.connect(lambda _: self._draw_plots())
        self.summary_model = DataFrameTableModel(formatters=SUMMARY_FORMATS)
        self.summary_table = CopyableTableView(self.summary_model, export_name="montecarlo-summary")
        self.summary_table.setToolTip(
            "Per model, sweep value and parameter: bias = mean - truth, emp_sd = spread of the estimates, "
            "mean_se = average reported SE (close to emp_sd when SEs are right), coverage of the (1 - alpha) CI, "
            "power (share rejecting zero at level alpha; 95% and 5% by default), failed and boundary fits; mcse_ columns are Monte Carlo SEs.")
        self.histogram_plot = EstimateHistogramPlot()
        self.accuracy_plot = SweepAccuracyPlot()
        self.power_plot = PowerPlot()
        self.result_tabs = QTabWidget()
        self.result_tabs.addTab(self.summary_table, "Summary")
        for panel in self.plot_panels():
            self.result_tabs.addTab(panel, panel.title)
        parameter_row = QHBoxLayout()
        parameter_row.addWidget(QLabel("Parameter:"))
        parameter_row.addWidget(self.param_combo)
        parameter_row.addStretch(1)
        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(self.legend_label)
        results_layout.addLayout(parameter_row)
        results_layout.addWidget(self.result_tabs, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(settings)
        splitter.addWidget(results)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._draw_plots()

    def plot_panels(self) -> list:
        return [self.histogram_plot, self.accuracy_plot, self.power_plot]

    # ----- inputs from the window --------------------------------------------------------------------
    @property
    def design(self) -> Design | None:
        return self._design

    @property
    def result(self) -> StudyResult | None:
        """The last finished study (None before one finishes)."""
        return self._result

    @property
    def is_running(self) -> bool:
        return self._job is not None

    def set_design(self, design: Design | None, problem: str = "") -> None:
        """The design each replication simulates (the Design tab's); ``problem``: why it cannot be
        used now (the Design tab's form shows a problem), which stops a study."""
        self._design = design.copy() if design is not None else None
        self._design_problem = problem
        self._update_sweep_targets()
        self._set_running(self.is_running)
        self._show_plan()

    def plan_text(self) -> str:
        """The design and models a press of Run study uses, in words."""
        design = self._design
        if design is None:
            return "No design: describe one on the Design tab."
        parts = [f"{level.name} {level.units.describe()}" for level in design.levels]
        if design.occasions is not None:
            parts.append(f"{design.occasions.name} {design.occasions.count}")
        try:
            rows = f"about {design.expected_counts().rows:,.0f} rows"
        except (ValueError, ZeroDivisionError, AttributeError, TypeError):
            rows = "rows unknown"
        name = f" {design.name!r}" if design.name else ""
        models = self.model_texts()
        if not models:
            fitted = "no model yet (write one below, or build it on the Model tab)"
        elif len(models) == 1:
            fitted = f"fits {models[0]}"
        else:
            fitted = f"fits {len(models)} models (M1: {models[0]}, …)"
        kind = self.sweep_kind_combo.currentData()
        values = self.sweep_values_edit.text().strip()
        if kind == NO_SWEEP or not values:
            sweep = f"{self.reps_spin.value():,} replications"
        else:
            words = {"units": "units per parent at", "sd": "the sd of", "effect": "the true effect of"}[kind]
            sweep = (f"{self.reps_spin.value():,} replications at each value of the sweep, which sets {words} "
                     f"{self.sweep_target_combo.currentText()} to {values}")
        return (f"Each replication simulates the design{name} of the Design tab: {' × '.join(parts) or 'no levels'} "
                f"({rows}), and {fitted}; {sweep}.")

    def _show_plan(self) -> None:
        self.plan_label.setText(self.plan_text())

    def set_models(self, model_texts: list[str]) -> None:
        """The models to fit, as Stata commands (e.g. the model builder's)."""
        self.models_edit.setPlainText("\n".join(text for text in model_texts if text))

    def model_texts(self) -> list[str]:
        return [line.strip() for line in self.models_edit.toPlainText().splitlines() if line.strip()]

    def set_sweep(self, kind: str, target: str = "", values: str = "") -> None:
        """Choose a sweep in the form (``kind`` one of none, units, sd, effect)."""
        self.sweep_kind_combo.setCurrentIndex(max(0, self.sweep_kind_combo.findData(kind)))
        if target:
            self.sweep_target_combo.setCurrentText(target)
        self.sweep_values_edit.setText(values)

    def sweep(self) -> Optional[Sweep]:
        """The sweep of the form (None for no sweep); problems are marked at the field."""
        kind = self.sweep_kind_combo.currentData()
        if kind == NO_SWEEP:
            return None
        target = self.sweep_target_combo.currentText()
        if not target:
            raise UserInputError("choose what the sweep varies")
        try:
            values = [float(parse_number(piece)) for piece in self.sweep_values_edit.text().split(",") if piece.strip()]
        except ValueError:
            reason = f"sweep values must be numbers separated by commas, got {self.sweep_values_edit.text()!r}"
            mark_invalid(self.sweep_values_edit, reason)
            raise UserInputError(reason) from None
        sweep = Sweep(kind=kind, target=target, values=values)
        try:
            sweep.check()
        except UserInputError as error:
            mark_invalid(self.sweep_values_edit, str(error))
            raise
        mark_invalid(self.sweep_values_edit, None)
        return sweep

    def study(self) -> Study:
        """The study the form describes (checked by the engine when it runs)."""
        if self._design is None:
            raise UserInputError("there is no design to simulate: describe one on the Design tab")
        if self._design_problem:  # the design may hold a field's last number, not what the field shows
            raise UserInputError(self._design_problem)
        models = self.model_texts()
        if not models:
            raise UserInputError("give at least one model to fit, e.g. perform tutoring || school_id:, reml")
        study = Study(design=self._design.copy(), models=models, reps=self.reps_spin.value(),
                      seed=self.seed_spin.value(), sweep=self.sweep(), alpha=round(self.alpha_spin.value(), 6),
                      dfmethod=self.dfmethod_combo.currentData())
        study.precision = self.stopping_rule()
        return study

    def stopping_rule(self) -> Optional[StoppingRule]:
        """The form's precision targets (None when empty); a problem is marked at the field."""
        texts = [piece.strip() for piece in self.precision_edit.text().split(",") if piece.strip()]
        if not texts:
            mark_invalid(self.precision_edit, None)
            return None
        try:
            rule = StoppingRule.parse(texts)
        except UserInputError as error:
            mark_invalid(self.precision_edit, str(error))
            raise
        mark_invalid(self.precision_edit, None)
        return rule

    # ----- running ---------------------------------------------------------------------------------
    def run(self) -> Job | None:
        """Start the study on the worker; None (with the reason shown) if the form has a problem."""
        try:
            study = self.study()
        except UserInputError as error:
            self._show_error(str(error))
            return None
        job = montecarlo_job(study, self.workers_spin.value())
        job.on_progress = self._on_progress
        job.on_finished = self._on_finished
        job.on_failed = self._on_failed
        self._last_progress = None
        self._result = None
        self.status_label.setText("")
        self.status_label.setStyleSheet("")
        self._show_partial(study, [], None)
        self.progress_bar.setRange(0, study.total_replications)
        self.progress_bar.setValue(0)
        self._clock.start()
        self._elapsed_timer.start()
        self._job = self.job_runner.start(job)
        self._set_running(True)
        self._show_progress_text()
        return self._job

    def cancel(self) -> None:
        """Ask the running study to stop (only this view's job; others on the runner are left alone)."""
        if self._job is not None and self.job_runner.current_job is self._job:
            self.job_runner.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Stopping: replications not started are dropped…")

    def _on_progress(self, _message: str, _fraction, detail) -> None:
        if not isinstance(detail, MonteCarloProgress):
            return
        self._last_progress = detail
        self.progress_bar.setRange(0, max(detail.total, 1))
        self.progress_bar.setValue(detail.done)
        self._show_progress_text()
        if detail.summary is not None and self._job is not None:
            self._show_partial(self._study_of_job(), detail.summary, detail.records)

    def _on_finished(self, result: StudyResult) -> None:
        self._stop_clock()
        self._result = result
        self._job = None
        self._set_running(False)
        self.progress_bar.setRange(0, max(result.total, 1))
        self.progress_bar.setValue(result.completed)
        self.progress_label.setText(
            f"{result.completed:,} of {result.total:,} replications in {result.seconds:.1f} s "
            f"on {result.workers} {'process' if result.workers == 1 else 'processes'}.")
        notes = []
        if result.study.precision is not None:
            notes.append(result.format_stopping())
        if any(row.failed > 0 for row in result.summary):
            notes.append("Some fits failed; the 'failed' column gives the share per model.")
        self.status_label.setStyleSheet("")
        self.status_label.setText("\n".join(notes))
        self._show_partial(result.study, result.summary, result.records)
        self.study_finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self._stop_clock()
        self._job = None
        self._set_running(False)
        self.progress_label.setText("")
        self._show_error(message)
        self.study_failed.emit(message)

    def _on_job_cancelled(self, job: Job) -> None:
        if job is not self._job:
            return
        self._stop_clock()
        self._job = None
        self._set_running(False)
        progress = self._last_progress
        done = f"{progress.done:,} of {progress.total:,}" if progress is not None else "none of the"
        self.progress_label.setText(f"Stopped after {done} replications; the tables show the summary last "
                                    "reported.")

    def _study_of_job(self) -> Study:
        # The study the running job was started with (the form may have been edited since).
        return self._plot_study

    # ----- showing ---------------------------------------------------------------------------------
    def _show_partial(self, study: Study, summary: list[SummaryRow], records: Optional[pd.DataFrame]) -> None:
        self._plot_study = study
        frame = summary_frame(summary)
        treatment = study.design.treatment.name if study.design.treatment is not None else None
        analytic = self._analytic_of(study)
        self._plot_data = StudyPlotData(summary=frame, records=records, models=list(study.models),
                                        sweep_label=study.sweep.label if study.sweep is not None else None,
                                        treatment=treatment, alpha=study.alpha, analytic=analytic,
                                        comparisons=compare_power(analytic, summary))
        self.legend_label.setText(" &nbsp;·&nbsp; ".join(f"<b>M{i}</b>: {html.escape(model)}" for i, model in enumerate(study.models, 1))
                                  + (f" &nbsp;·&nbsp; mixed models with <b>dfmethod({study.dfmethod})</b>"
                                     if study.dfmethod else ""))
        formats = dict(SUMMARY_FORMATS)
        if study.sweep is not None:
            formats[study.sweep.label] = SWEEP_VALUE_FORMAT
        self.summary_model.set_frame(self._summary_table(frame, study), formatters=formats)
        self.summary_table.resizeColumnsToContents()
        chosen = self.param_combo.currentText()
        parameters = self._plot_data.parameters()
        self.param_combo.clear()
        self.param_combo.addItems(parameters)
        if chosen in parameters:
            self.param_combo.setCurrentText(chosen)
        elif treatment in parameters:
            self.param_combo.setCurrentText(treatment)
        self._draw_plots()

    def _analytic_of(self, study: Study):
        """The textbook power curve of a study (computed once per study: the formulas are cheap, but
        partial results arrive often)."""
        cached = getattr(self, "_analytic_cache", None)
        if cached is not None and cached[0] is study:
            return cached[1]
        try:
            curve = analytic_power_curve(study)
        except UserInputError:
            curve = None
        self._analytic_cache = (study, curve)
        return curve

    def _summary_table(self, frame: pd.DataFrame, study: Study) -> pd.DataFrame:
        """The engine's summary with the models numbered as in the plots and the sweep column
        named after what it varies."""
        if frame.empty:
            return pd.DataFrame(columns=[c for c in SUMMARY_COLUMNS if c != "sweep" or study.sweep is not None])
        table = frame.copy()
        table["model command"] = table["model"]
        table["model"] = [f"M{study.models.index(m) + 1}" if m in study.models else m for m in table["model"]]
        columns = [c for c in SUMMARY_COLUMNS if c != "sweep" or study.sweep is not None]
        table = table[columns]
        if study.sweep is not None:
            table["sweep"] = pd.to_numeric(table["sweep"])
            table = table.rename(columns={"sweep": study.sweep.label})
        return table

    def _draw_plots(self) -> None:
        param = self.param_combo.currentText()
        for panel in self.plot_panels():
            panel.draw(self._plot_data, param)

    def _show_progress_text(self) -> None:
        progress = self._last_progress
        elapsed = self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0
        if self._job is None:
            return
        if progress is None:
            self.progress_label.setText(f"Starting the worker processes… {elapsed:.0f} s")
            return
        left = progress.seconds_left
        if left is not None and progress.done:
            # Extrapolated from the last report, less the time since then.
            left = max(0.0, left - (elapsed - progress.elapsed_seconds))
        left_text = "estimating the time left" if left is None else f"about {_duration(left)} left"
        self.progress_label.setText(f"{progress.done:,} of {progress.total:,} replications · "
                                    f"{_duration(elapsed)} elapsed · {left_text}")

    def _show_error(self, message: str) -> None:
        self.status_label.setStyleSheet("color: #a94442;")
        self.status_label.setText(message)

    def _stop_clock(self) -> None:
        self._elapsed_timer.stop()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running and self._design is not None)
        self.run_button.setToolTip("Simulate and fit every replication on worker processes." if self._design
                                   is not None else "Describe a design first (Design tab).")
        self.cancel_button.setEnabled(running)
        self.save_records_button.setEnabled(not running and self._result is not None)
        for field in (self.models_edit, self.reps_spin, self.seed_spin, self.workers_spin, self.alpha_spin, self.dfmethod_combo, self.precision_edit,
                      self.sweep_kind_combo,
                      self.sweep_target_combo, self.sweep_values_edit):
            field.setEnabled(not running)
        if not running:
            self.sweep_target_combo.setEnabled(self.sweep_kind_combo.currentData() != NO_SWEEP)
            self.sweep_values_edit.setEnabled(self.sweep_kind_combo.currentData() != NO_SWEEP)

    def _update_sweep_targets(self) -> None:
        kind = self.sweep_kind_combo.currentData()
        chosen = self.sweep_target_combo.currentText()
        self.sweep_target_combo.clear()
        design = self._design
        if design is not None and kind == "units":
            self.sweep_target_combo.addItems(design.level_names)
        elif design is not None and kind == "sd":
            self.sweep_target_combo.addItems([*design.level_names, RESIDUAL])
        elif design is not None and kind == "effect":
            self.sweep_target_combo.addItems(list(design.variable_levels()))
        if chosen and self.sweep_target_combo.findText(chosen) >= 0:
            self.sweep_target_combo.setCurrentText(chosen)
        sweeping = kind != NO_SWEEP
        self.sweep_target_combo.setEnabled(sweeping and not self.is_running)
        self.sweep_values_edit.setEnabled(sweeping and not self.is_running)
        if kind in ("units", "sd", "effect"):
            self.sweep_values_edit.setPlaceholderText(
                {"units": "e.g. 5, 10, 20", "sd": "e.g. 0, 1, 3", "effect": "e.g. 0, 0.5, 1"}[kind])

    # ----- records ---------------------------------------------------------------------------------
    def save_records(self, path: str | Path) -> Path:
        if self._result is None:
            raise UserInputError("no finished study to save: run one first")
        return self._result.write_records(path)

    def save_records_with_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save Monte Carlo records", "montecarlo-records.csv",
                                              ";;".join(f"{ext[1:].upper()} (*{ext})" for ext in RECORD_EXTENSIONS))
        if not path:
            return
        try:
            written = self.save_records(path if Path(path).suffix else path + ".csv")
        except UserInputError as error:
            self._show_error(str(error))
            return
        self.status_label.setStyleSheet("")
        self.status_label.setText(f"Records saved to {written}")


def design_tab_problem(problem: str) -> str:
    """What a tab that uses the Design tab's design says while that form has a problem."""
    return f"fix the Design tab first: {problem}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"



def dfmethod_combo() -> QComboBox:
    """The study's df method: each model's own (z unless its text says dfmethod()), or one for every mixed model."""
    from gui.views.model_view import DF_METHOD_CHOICES, DF_METHOD_HELP

    combo = QComboBox()
    combo.addItem("Each model's own (z by default)", None)
    for label, name in DF_METHOD_CHOICES:
        if name is not None:
            combo.addItem(label, name)
    combo.setToolTip(DF_METHOD_HELP + " Applied to every mixed model of the study: coverage and power then use "
                     "t intervals and tests with these df.")
    return combo
