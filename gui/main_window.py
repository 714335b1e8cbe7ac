"""The main window: five tabs (Design, Data, Model, Results, Plots), menus, and the jobs.

The window connects the views to the session and to the worker threads. It never computes
anything itself: simulations, fits, file reading and checks run on a ``JobRunner``; what comes
back is handed to the views. Engine errors are shown with the engine's own words.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from engine.data_io import READ_EXTENSIONS, WRITE_EXTENSIONS, Dataset
from engine.errors import UserInputError
from engine.intervals import IntervalRequest
from engine.presets import get_preset
from engine.project import PROJECT_SUFFIX, ColumnRoles, DataSource, Project
from engine.simulate import SimulatedData
from gui.views.data_view import DataView
from gui.views.design_view import DesignView
from gui.widgets.error_bar import ErrorBar
from gui.dialogs.help_dialogs import GuideDialog, show_about
from gui.jobs import (DataFileContent, FitBatch, IterationReport, fit_job, read_data_job, simulate_job,
                      write_data_job)
from gui.views.model_comparison_view import ModelComparisonView
from gui.views.model_view import NO_DATA_TO_FIT, ModelView
from gui.views.montecarlo_view import MonteCarloView, design_tab_problem
from gui.dialogs.open_data_dialog import OpenDataDialog
from gui.plots.base import PlotContext
from gui.plots.plots_view import PlotsView
from gui.views.power_view import PowerView
from gui.widgets.progress_panel import ProgressPanel
from gui.views.results_view import ResultsView
from gui.screen_fit import default_window_size
from gui.session import Session, roles_of_design
from gui.settings import Settings
from gui.worker import Job, JobFailure, JobRunner

START_PRESET = "tutoring"
PROJECT_FILTER = f"HLM Explorer projects (*{PROJECT_SUFFIX} *.json);;All files (*)"
DATA_FILTER = "Data files (" + " ".join(f"*{ext}" for ext in READ_EXTENSIONS) + ");;All files (*)"
DATA_SAVE_FILTER = ";;".join(f"{ext[1:].upper()} (*{ext})" for ext in WRITE_EXTENSIONS)
DESIGN, DATA, MODEL, RESULTS, PLOTS, MONTECARLO, COMPARE_MODELS, POWER = range(8)

log = logging.getLogger(__name__)


def is_offscreen() -> bool:
    """No one can answer a dialog (tests, the self-test): questions take their default."""
    return QGuiApplication.platformName() in ("offscreen", "minimal")


class MainWindow(QMainWindow):
    """HLM Explorer's window. ``settings`` may be given to isolate tests from the user's settings."""

    data_loaded = Signal()
    fits_added = Signal(list)  # FitRecords of one run
    error_shown = Signal(str)

    def __init__(self, settings: Settings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings or Settings()
        self.job_runner = JobRunner("jobs", self)
        self.check_runner = JobRunner("nesting-check", self)
        self.summary_runner = JobRunner("column-summaries", self)
        # Runners of their own: a study or a model comparison does not cancel a fit, nor a fit them.
        self.montecarlo_runner = JobRunner("montecarlo", self)
        self.comparison_runner = JobRunner("model-comparison", self)
        self.margins_runner = JobRunner("margins", self)
        self.session = Session(Project(design=get_preset(START_PRESET), seed=1), self)
        self._pending_spec = None
        self._restoring = False  # a project's parts are being put back: not the user's edits
        self._open_dialogs: list = []

        self.design_view = DesignView(self.session.project.design, self.session.project.seed)
        self.data_view = DataView(self.summary_runner)
        self.model_view = ModelView(self.check_runner)
        self.results_view = ResultsView(postestimation_runner=self.margins_runner)
        self.plots_view = PlotsView(margins_runner=self.margins_runner)
        self.montecarlo_view = MonteCarloView(self.montecarlo_runner)
        self.comparison_view = ModelComparisonView(self.comparison_runner)
        self.power_view = PowerView(self._design_for_analyses)
        self.tabs = QTabWidget()
        for view, title, tip in (
                (self.design_view, "Design", "Describe a hierarchy and simulate data from it (Ctrl+1)."),
                (self.data_view, "Data", "The current data (Ctrl+2)."),
                (self.model_view, "Model", "Build the model and fit it (Ctrl+3)."),
                (self.results_view, "Results", "Reports and tables of the fits (Ctrl+4)."),
                (self.plots_view, "Plots", "Plots of the chosen fit (Ctrl+5)."),
                (self.montecarlo_view, "Monte Carlo",
                 "Simulate the design many times: bias, coverage and power of the model (Ctrl+6)."),
                (self.comparison_view, "Compare models",
                 "Likelihood-ratio tests, AIC and BIC, ICCs and variance explained (Ctrl+7)."),
                (self.power_view, "Power",
                 "Plan a trial: analytic power, minimum detectable effect and units needed (Ctrl+8).")):
            index = self.tabs.addTab(view, title)
            self.tabs.setTabToolTip(index, tip)
        self.error_bar = ErrorBar()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.error_bar)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.progress_panel = ProgressPanel()
        self.statusBar().addPermanentWidget(self.progress_panel)

        self._build_actions()
        self._build_menus()
        self._connect()
        self._update_title()
        self.resize(default_window_size(self))  # 1280 x 820, or less on a smaller screen
        self._restore_layout()

    # ----- actions and menus -------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.new_action = self._action("&New project", self.new_project, keys.New, "Start again from the tutoring design.")
        self.open_action = self._action("&Open project…", self.open_project_dialog, keys.Open, "Open a saved project.")
        self.open_data_action = self._action("Open &data…", self.open_data_dialog, "Ctrl+Shift+O",
                                             "Read a data file (CSV, Stata, SPSS, Excel, Parquet).")
        self.export_data_action = self._action(
            "E&xport data…", self.export_data_dialog, None,
            "Save the data as CSV, Stata, SPSS or Parquet (with the truth of simulated data beside it).")
        self.save_action = self._action("&Save project", self.save_project, keys.Save, "Save the project.")
        self.save_as_action = self._action("Save project &as…", self.save_project_as, "Ctrl+Shift+S",
                                           "Save the project under a new name.")
        self.quit_action = self._action("&Quit", self.close, keys.Quit, "Close the window.")
        self.simulate_action = self._action("&Simulate", self.design_view.request_simulation, "F5",
                                            "Simulate data from the design.")
        self.fit_action = self._action("&Fit model", self.model_view.request_fit, "Ctrl+R",
                                       "Fit the model with the ticked estimators.")
        self.cancel_action = self._action("&Cancel", self.cancel_job, "Esc", "Stop the running job.")
        self.cancel_action.setEnabled(False)
        self.tab_actions = [
            self._action(f"{name}", lambda _=False, i=index: self.tabs.setCurrentIndex(i), f"Ctrl+{index + 1}",
                         f"Show the {name} tab.")
            for index, name in enumerate(["Design", "Data", "Model", "Results", "Plots", "Monte Carlo",
                                          "Compare models", "Power"])]
        self.guide_action = self._action("&Guide", self.show_guide, keys.HelpContents,
                                         "Nesting order, REML against ML, reading the tables.")
        self.about_action = self._action("&About HLM Explorer", lambda: show_about(self), None, "Version and credits.")

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for action in (self.new_action, self.open_action):
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addAction(self.open_data_action)
        file_menu.addAction(self.export_data_action)
        file_menu.addSeparator()
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.save_as_action)
        file_menu.addSeparator()
        export_table = file_menu.addAction("Export shown table…")
        export_table.triggered.connect(self._export_shown_table)
        export_plot = file_menu.addAction("Export shown plot…")
        export_plot.triggered.connect(self.plots_view.export_with_dialog)
        export_report = file_menu.addAction("Export &report…")
        export_report.setToolTip("The chosen fit's report with every table and plot, as one HTML page or a Word document.")
        export_report.triggered.connect(self.export_report_dialog)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = menu.addMenu("&Run")
        for action in (self.simulate_action, self.fit_action, self.cancel_action):
            run_menu.addAction(action)
        view_menu = menu.addMenu("&View")
        for action in self.tab_actions:
            view_menu.addAction(action)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.guide_action)
        help_menu.addAction(self.about_action)

    def _connect(self) -> None:
        self.design_view.simulate_requested.connect(self.simulate)
        self.design_view.design_changed.connect(self._mark_modified)
        self.design_view.validity_changed.connect(self.simulate_action.setEnabled)
        self.model_view.fit_requested.connect(self.fit)
        self.model_view.fit_refused.connect(self.show_error)
        self.model_view.spec_changed.connect(lambda _spec: self._mark_modified())
        self.results_view.fit_selected.connect(lambda _record: self._update_plots())
        self.results_view.fit_selected.connect(self.data_view.set_fit)
        self.results_view.history_cleared.connect(self._clear_history)
        self.results_view.plan_requested.connect(self._ask_plan_next_study)
        self.session.modified_changed.connect(lambda _m: self._update_title())
        self.session.path_changed.connect(lambda _p: self._update_title())
        self.job_runner.busy_changed.connect(self._on_busy_changed)
        self.job_runner.progress_changed.connect(self._on_progress)
        self.job_runner.job_failed.connect(self._on_job_failed)
        self.job_runner.job_cancelled.connect(self._on_job_cancelled)
        for view in [*self.results_view.table_views(), self.data_view.table, self.data_view.summary_table,
                     self.model_view.nesting_table]:
            view.export_failed.connect(self.show_error)
            view.table_exported.connect(lambda path: self.statusBar().showMessage(f"Table saved to {path}", 5000))
        # One design for every tab: the Design tab's, which the project holds and Monte Carlo runs
        # (the Power tab reads it when asked).
        self._share_design()
        self.design_view.design_changed.connect(self._share_design)
        self.design_view.design_replaced.connect(self._share_design)
        self.design_view.validity_changed.connect(lambda _valid: self._share_design())
        self.power_view.failed.connect(self.show_error)
        self.model_view.spec_changed.connect(self._offer_model_to_analyses)
        self.session.data_changed.connect(lambda: self.comparison_view.set_data(self.session.frame, self.session.truth))
        self.session.data_changed.connect(lambda: self.results_view.postestimation_view.set_data(self.session.frame))
        self.fits_added.connect(self._add_fits_to_model_comparison)
        self.montecarlo_view.study_failed.connect(self.show_error)
        self.comparison_view.comparison_failed.connect(self.show_error)
        self.montecarlo_view.study_finished.connect(lambda result: self.statusBar().showMessage(
            f"Monte Carlo: {result.completed:,} replications in {result.seconds:.1f} s", 8000))
        for view in [*self.comparison_view.table_views(), self.montecarlo_view.summary_table]:
            view.export_failed.connect(self.show_error)
            view.table_exported.connect(lambda path: self.statusBar().showMessage(f"Table saved to {path}", 5000))
        self.plots_view.export_failed.connect(self.show_error)
        self.plots_view.plot_exported.connect(lambda path: self.statusBar().showMessage(f"Plot saved to {path}", 5000))

    def _mark_modified(self) -> None:
        if not self._restoring:
            self.session.set_modified()

    def _share_design(self) -> None:
        """The design shown on the Design tab is the project's and the one Monte Carlo simulates."""
        self.session.project.design = self.design_view.design
        self.session.project.seed = self.design_view.seed()
        self.montecarlo_view.set_design(self.design_view.design, problem=self._design_problem())

    def _design_problem(self) -> str:
        """Why the Design tab's design cannot be used now ('' if it can): the engine's words when the
        design itself is invalid (as the command line prints them), else the form's problem (a field
        holding text, while the design keeps the field's last number)."""
        problem = self.design_view.current_error()
        if not problem:
            return ""
        try:
            self.design_view.design.validate()
        except UserInputError as error:
            return str(error)
        return design_tab_problem(problem)

    def _design_for_analyses(self):
        """The Design tab's design for the Power tab; refused while the form shows a problem."""
        problem = self._design_problem()
        if problem:
            raise UserInputError(problem)
        return self.design_view.design

    def _ask_plan_next_study(self, result) -> None:
        """Ask which fixed effect (if any) is the treatment to randomise, then plan from the fit."""
        from PySide6.QtWidgets import QInputDialog

        from engine.power.from_fit import PLAIN_NAME

        choices = ["(no treatment)"] + [row.term for row in result.fixed
                                        if row.term != "_cons" and PLAIN_NAME.match(row.term)]
        if len(choices) > 1:
            choice, ok = QInputDialog.getItem(
                self, "Plan the next study", "Fixed effect to randomise as the treatment:", choices, 0, False)
            if not ok:
                return
        else:
            choice = choices[0]
        group_sizes = "average"
        if self._plan_data(result) is not None:
            sizes = ["the data's own group sizes (unbalanced, as observed)", "the average group size (balanced)"]
            answer, ok = QInputDialog.getItem(
                self, "Plan the next study", "Units per group below the top level:", sizes, 0, False)
            if not ok:
                return
            group_sizes = "observed" if answer == sizes[0] else "average"
        self.plan_next_study(result, None if choice == choices[0] else choice, group_sizes)

    def _plan_data(self, result):
        """The current data when they hold the fit's columns (else None)."""
        frame = self.session.frame
        needed = set(result.spec.variables()) if result.spec is not None else set()
        return frame if frame is not None and needed <= set(frame.columns) else None

    def plan_next_study(self, result, treatment: str | None = None, group_sizes: str = "average") -> list[str] | None:
        """Put the design a fit describes on the Design tab (Monte Carlo and Power use it) and its
        model in the Monte Carlo tab; the notes (what was assumed or dropped) go to the status bar.
        Covariates (and, with ``group_sizes="observed"``, the group sizes) are learned from the
        current data when it holds the fit's columns."""
        from engine.errors import UserInputError
        from engine.power.from_fit import design_from_fit

        data = self._plan_data(result)
        try:
            design, model, notes = design_from_fit(result, data, treatment=treatment, name="planned from a fit",
                                                   group_sizes=group_sizes)
        except UserInputError as error:
            self.show_error(str(error))
            return None
        self.design_view.set_design(design)
        self._share_design()
        self.montecarlo_view.set_models([model])
        self.tabs.setCurrentWidget(self.design_view)
        self.statusBar().showMessage("Design from the fit: " + "; ".join(notes or ["sds and counts as fitted"]),
                                     15000)
        return notes

    def _offer_model_to_analyses(self, spec) -> None:
        # Monte Carlo studies take Stata text, which cannot carry centring: only plain models go there.
        if spec is not None and not spec.centering:
            self.montecarlo_view.set_models([spec.to_stata()])

    def _add_fits_to_model_comparison(self, records) -> None:
        for record in records:
            if record.result.estimator == "mixed" and record.result.spec is not None:
                self.comparison_view.add_model(record.result.spec)

    # ----- jobs --------------------------------------------------------------------------------
    def start_job(self, job: Job) -> Job:
        self.error_bar.hide()
        self.progress_panel.start(job.label)
        return self.job_runner.start(job)

    def cancel_job(self) -> None:
        if self.job_runner.is_busy:
            self.progress_panel.cancelling()
            self.job_runner.cancel()

    def simulate(self, design, seed: int) -> Job:
        job = simulate_job(design, seed)
        job.on_finished = self._on_simulated
        return self.start_job(job)

    def fit(self, spec, estimators: list[str]) -> Job | None:
        if self.session.frame is None:
            self.show_error(NO_DATA_TO_FIT)
            return None
        job = fit_job(self.session.frame, spec, estimators, self.session.truth,
                      intervals=self.model_view.interval_request())
        job.on_finished = self._on_fitted
        self.plots_view.fit_started()
        return self.start_job(job)

    def _on_busy_changed(self, busy: bool) -> None:
        self.cancel_action.setEnabled(busy)
        if not busy:
            self.progress_panel.stop()

    def _on_progress(self, _job: Job, message: str, fraction, detail) -> None:
        self.progress_panel.update_progress(message, fraction)
        if isinstance(detail, IterationReport):
            self.plots_view.add_live_point(detail.iteration, detail.loglik)

    def _on_job_failed(self, job: Job, failure: JobFailure) -> None:
        self.show_error(failure.message)
        if failure.details:  # a programming error, not bad input: keep the traceback in the log
            log.error("%s\n%s", failure.message, failure.details)

    def _on_job_cancelled(self, job: Job) -> None:
        self.statusBar().showMessage(f"{job.label} cancelled after {self.progress_panel.elapsed_seconds():.1f} s", 8000)

    def show_error(self, message: str) -> None:
        """Show an engine message as is (the command line prints the same words after 'error:')."""
        self.error_bar.show_error(message)
        self.statusBar().showMessage(message, 10000)
        self.error_shown.emit(message)

    # ----- results of jobs ---------------------------------------------------------------------
    def _on_simulated(self, simulated: SimulatedData) -> None:
        seconds = self.progress_panel.elapsed_seconds()
        self._set_data(simulated.frame, simulated.truth, roles_of_design(simulated.design),
                       DataSource.simulation(simulated.design, simulated.seed))
        self._cross_crossed_factors(simulated.design)
        self.session.set_modified()
        self.statusBar().showMessage(f"Simulated {len(simulated.frame):,} rows in {seconds:.1f} s", 8000)

    def _cross_crossed_factors(self, design) -> None:
        """A design's crossed factor shown as a nested level is certainly wrong: show the design's
        crossed model (the engine's) instead."""
        spec = self.model_view.spec
        factors = {factor.name for factor in design.crossed}
        if spec is None or not any(level.name in factors and not level.crossed for level in spec.levels):
            return
        from engine.compare import nested_and_crossed_models

        crossed = nested_and_crossed_models(design)[-1]
        self.model_view.set_spec(crossed.replace(method=spec.method, dfmethod=spec.dfmethod, family=spec.family,
                                                 link=spec.link))

    def _match_outcome_family(self, design) -> None:
        """A binary or count design gets a model of its family (and a linear design a linear model)."""
        spec = self.model_view.spec
        if spec is None or spec.outcome != design.outcome or (spec.family, spec.link) == (design.family, design.link):
            return
        glmm = design.family != "gaussian"
        self.model_view.set_spec(spec.replace(
            family=design.family, link=design.link, method="ML" if glmm else spec.method, dfmethod=None,
            nagq=1, eform=spec.eform and glmm, offset=None, exposure=None))

    def load_dataset(self, dataset: Dataset, roles: ColumnRoles, path: str | Path) -> None:
        """Use a data set read from a file, with the column roles chosen for it."""
        self._set_data(dataset.frame, dataset.truth, roles, DataSource.file(path, roles))
        self.session.set_modified()

    def _set_data(self, frame, truth, roles: ColumnRoles, source: DataSource) -> None:
        self.session.set_data(frame, truth, roles, source)
        self.data_view.set_data(frame, self.session.data_description)
        # A reopened project's model is shown against its data once they are back.
        spec, self._pending_spec = self._pending_spec, None
        self.model_view.set_data(frame, roles, preferred_spec=spec)
        if source.design is not None and spec is None:  # a new simulation, not a reopened project
            self._match_outcome_family(source.design)
        self.results_view.set_truth(truth)
        self._update_plots()
        self.data_loaded.emit()

    def _on_fitted(self, batch: FitBatch) -> None:
        records = self.session.add_run(batch.results)
        self.results_view.add_run(records, batch.comparison)
        seconds = self.progress_panel.elapsed_seconds()
        self.statusBar().showMessage(f"Fitted {len(records)} model(s) in {seconds:.1f} s", 8000)
        self.tabs.setCurrentWidget(self.results_view)
        self.fits_added.emit(records)

    def _clear_history(self) -> None:
        self.session.clear_fits()
        self.results_view.set_history([])

    def _update_plots(self) -> None:
        self.plots_view.set_context(PlotContext(record=self.results_view.current_record, truth=self.session.truth,
                                                true_shares=self.session.true_shares(), frame=self.session.frame))

    # ----- data files --------------------------------------------------------------------------
    def open_data_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open data", self.settings.get("last_directory"), DATA_FILTER)
        if path:
            self.open_data(path)

    def open_data(self, path: str | Path, roles: ColumnRoles | None = None) -> Job:
        """Read a data file on the worker; then ask for the column roles (unless given)."""
        job = read_data_job(path)
        job.on_finished = lambda content: self._on_data_read(content, path, roles)
        return self.start_job(job)

    def _on_data_read(self, content: DataFileContent, path, roles: ColumnRoles | None) -> None:
        dataset = content.dataset
        if roles is None:
            dialog = OpenDataDialog(dataset.frame, Path(path).name, content.check, parent=self)
            if is_offscreen():
                roles = dialog.roles()  # nobody to ask: take the guess
            elif dialog.exec() != OpenDataDialog.DialogCode.Accepted:
                return
            else:
                roles = dialog.roles()
        self.load_dataset(dataset, roles, path)
        self.settings.set("last_directory", str(Path(path).parent))

    def export_data_dialog(self) -> None:
        if self.session.frame is None:
            self.show_error("there are no data to export: simulate a design or open a data file first")
            return
        start = str(Path(self.settings.get("last_directory") or ".") / "data.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export data", start, DATA_SAVE_FILTER)
        if path:
            self.export_data(path if Path(path).suffix else path + ".csv")

    def export_data(self, path: str | Path) -> Job:
        job = write_data_job(self.session.frame, path, self.session.truth)
        job.on_finished = lambda written: self.statusBar().showMessage(
            "Saved " + ", ".join(str(p) for p in written), 8000)
        return self.start_job(job)

    # ----- projects ----------------------------------------------------------------------------
    def current_project(self) -> Project:
        """The project as the form shows it now (what Save writes)."""
        project = self.session.project
        project.design = self.design_view.design
        project.seed = self.design_view.seed()
        project.model = self.model_view.spec or project.model
        project.estimators = self.model_view.estimators()
        project.intervals = self.model_view.interval_request()
        return project

    def new_project(self) -> None:
        if not self.confirm_discard():
            return
        self._install_project(Project(design=get_preset(START_PRESET), seed=1), None)

    def open_project_dialog(self) -> None:
        if not self.confirm_discard():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self.settings.get("last_directory"), PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> Job | None:
        """Load a project and bring its data back (simulate again, or read the file again)."""
        path = Path(path)
        try:
            project = Project.load(path)
        except UserInputError as error:
            self.show_error(str(error))
            return None
        self.settings.add_recent_file(path)
        return self._install_project(project, path)

    def _install_project(self, project: Project, path: Path | None) -> Job | None:
        self.job_runner.cancel()
        self._restoring = True
        try:
            self.session.replace_project(project, path)
            self.design_view.set_design(project.design, project.seed)
            self.data_view.set_data(None)
            self.model_view.set_data(None, ColumnRoles())
            self.comparison_view.set_data(None)
            self.model_view.set_estimators(project.estimators)
            self.model_view.set_interval_request(project.intervals or IntervalRequest())
            if project.model is not None:
                self.model_view.set_method(project.model.method)
            model = project.model
            self.montecarlo_view.set_models([model.to_stata()] if model is not None and not model.centering else [])
            self._pending_spec = project.model
            self.results_view.set_truth(None)
            self.results_view.set_history(project.fits)
            self._update_plots()
        finally:
            self._restoring = False
        self.session.set_modified(False)
        self.error_bar.hide()
        source = project.data_source
        job = None
        if source is not None and source.kind == "simulation" and source.design is not None:
            job = simulate_job(source.design, source.seed)
            job.on_finished = self._on_project_data_simulated
            job = self.start_job(job)
        elif source is not None and source.kind == "file" and source.path:
            job = read_data_job(source.path)
            job.on_finished = lambda content, s=source: self._on_project_data_read(content.dataset, s)
            job = self.start_job(job)
        self.tabs.setCurrentIndex(RESULTS if project.fits else DESIGN)
        if project.load_problems:  # after the data job started, which hides earlier messages
            name = path.name if path is not None else "the project"
            self.show_error(f"{name} was opened without the parts it could not read: "
                            + "; ".join(project.load_problems))
        return job

    def _on_project_data_simulated(self, simulated: SimulatedData) -> None:
        self._restore(lambda: self._set_data(simulated.frame, simulated.truth, roles_of_design(simulated.design),
                                             DataSource.simulation(simulated.design, simulated.seed)))

    def _on_project_data_read(self, dataset: Dataset, source: DataSource) -> None:
        roles = source.roles or ColumnRoles()
        self._restore(lambda: self._set_data(dataset.frame, dataset.truth, roles, DataSource.file(source.path, roles)))

    def _restore(self, put_back) -> None:
        """Put a reopened project's data back without counting it as an edit."""
        self._restoring = True
        try:
            put_back()
        finally:
            self._restoring = False

    def save_project(self) -> bool:
        if self.session.path is None:
            return self.save_project_as()
        return self.save_project_to(self.session.path)

    def save_project_as(self) -> bool:
        start = str(self.session.path or Path(self.settings.get("last_directory") or ".") / f"project{PROJECT_SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, PROJECT_FILTER)
        if not path:
            return False
        if not Path(path).suffix:
            path += PROJECT_SUFFIX
        return self.save_project_to(path)

    def save_project_to(self, path: str | Path) -> bool:
        path = Path(path)
        try:
            self.current_project().save(path)
        except UserInputError as error:
            self.show_error(str(error))
            return False
        self.session.set_path(path)
        self.session.set_modified(False)
        self.settings.add_recent_file(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        unreadable = self.design_view.unreadable_texts()
        if unreadable:  # a project holds numbers: say that the typed text was not saved
            self.show_error(f"saved {path.name}; {len(unreadable)} field(s) hold text that is not a number and were "
                            f"saved as their last number: {unreadable[0]}")
        return True

    def confirm_discard(self) -> bool:
        """Ask before unsaved work is replaced; True to go ahead."""
        if not self.session.modified or is_offscreen():
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", "Save the changes to this project first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project()
        return answer == QMessageBox.StandardButton.Discard

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for number, path in enumerate(files, start=1):
            action = self.recent_menu.addAction(f"&{number} {Path(path).name}")
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.confirm_discard() and self.open_project(p))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list").triggered.connect(self.settings.clear_recent_files)

    # ----- misc --------------------------------------------------------------------------------
    def show_guide(self) -> GuideDialog:
        dialog = GuideDialog(self)
        dialog.show()
        self._open_dialogs.append(dialog)
        return dialog

    def export_report_dialog(self):
        from gui.report_export import export_report_dialog

        return export_report_dialog(self)

    def export_report(self, path: str | Path) -> Path:
        """Write the chosen fit's report (HTML or Word by the extension), plots included."""
        from gui.report_export import export_report

        return export_report(self, path)

    def _export_shown_table(self) -> None:
        page = self.tabs.currentWidget()
        if page is self.results_view:
            self.results_view.export_current_table()
        elif page is self.data_view:
            self.data_view.table.export_with_dialog()
        elif page is self.model_view:
            self.model_view.nesting_table.export_with_dialog()
        elif page is self.montecarlo_view:
            self.montecarlo_view.summary_table.export_with_dialog()
        else:
            self.show_error("no table on this tab: open the Data, Model, Results or Monte Carlo tab")

    def _update_title(self) -> None:
        name = self.session.path.name if self.session.path is not None else "untitled"
        self.setWindowTitle(f"{name}{'*' if self.session.modified else ''} — HLM Explorer")

    def _restore_layout(self) -> None:
        geometry = self.settings.get("window/geometry")
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = self.settings.get("window/state")
        if not state.isEmpty():
            self.restoreState(state)

    def shutdown(self) -> None:
        """Stop every worker thread (cancel, quit, wait): no thread outlives the window."""
        self.model_view.stop_checks()
        for runner in (self.job_runner, self.check_runner, self.summary_runner, self.montecarlo_runner,
                       self.comparison_runner, self.margins_runner):
            runner.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.confirm_discard():
            event.ignore()
            return
        self.settings.set("window/geometry", self.saveGeometry())
        self.settings.set("window/state", self.saveState())
        self.settings.sync()
        self.shutdown()
        super().closeEvent(event)


def isolated_settings(path: str | Path) -> Settings:
    """Settings kept in an .ini file of their own (tests and the self-test)."""
    return Settings(QSettings(str(path), QSettings.Format.IniFormat))
