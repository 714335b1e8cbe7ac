"""The Data tab: the current data in a table (fast with millions of rows) and column summaries."""

from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from engine.simulate import true_effect_columns
from gui.tables.dataframe_model import DataFrameTableModel, count_text
from gui.jobs import column_summary_job, predictions_job
from gui.tables.table_view import CopyableTableView
from gui.worker import Job, JobRunner

SUMMARY_FORMATS = {"Missing": count_text, "Distinct": count_text}
AUTOMATIC_PREDICTION_ROWS = 2_000_000  # above this, predictions (several columns of every row) wait to be asked for


class DataView(QWidget):
    """Shows a DataFrame. Columns of true effects (``true_u_*``) are hidden unless asked for;
    column summaries are computed on ``summary_runner``'s thread."""

    def __init__(self, summary_runner: JobRunner, parent=None):
        super().__init__(parent)
        self._runner = summary_runner
        self._frame: pd.DataFrame | None = None
        self._summary_job: Job | None = None
        self._fit = None  # the FitResult whose predictions are shown
        self._predictions: pd.DataFrame | None = None
        self._predictions_wanted = False  # waiting for the summaries to finish (one job at a time)

        self.title_label = QLabel("No data yet: simulate a design (Design tab) or open a data file (File > Open data).")
        self.title_label.setWordWrap(True)
        self.show_truth_check = QCheckBox("Show true effects")
        self.show_truth_check.setToolTip(
            "Simulated data carry each unit's true random effect (columns true_u_<level>). They are hidden "
            "because a real data set would not have them; show them to compare with the predicted effects.")
        self.show_truth_check.toggled.connect(self._apply_column_choice)
        self.show_predictions_check = QCheckBox("Show predictions")
        self.show_predictions_check.setChecked(True)
        self.show_predictions_check.setToolTip(
            "Add the predictions of the fit selected in the Results tab as columns: xb (fixed part), each "
            "level's predicted random effects (re_<level>_<term>), fitted (with all of them) and residual; "
            "in_sample is false for rows the fit dropped. Exported with the table.")
        self.show_predictions_check.toggled.connect(lambda _: self._request_predictions())
        self.predictions_status = QLabel()
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.predictions_status)
        header.addWidget(self.show_predictions_check)
        header.addWidget(self.show_truth_check)

        self.model = DataFrameTableModel(parent=self)
        self.table = CopyableTableView(self.model, export_name="data")
        self.table.setToolTip("The data, one row per observation. Ctrl+C copies the selected cells; "
                              "right-click to export.")

        self.summary_model = DataFrameTableModel(formatters=SUMMARY_FORMATS, parent=self)
        self.summary_table = CopyableTableView(self.summary_model, export_name="column_summaries")
        self.summary_table.setToolTip("One row per column: its type, missing values, distinct values and range.")
        self.summary_status = QLabel()
        summary_box = QGroupBox("Column summaries")
        summary_layout = QVBoxLayout(summary_box)
        summary_layout.addWidget(self.summary_status)
        summary_layout.addWidget(self.summary_table)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(summary_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(splitter, 1)

    @property
    def frame(self) -> pd.DataFrame | None:
        return self._frame

    def set_fit(self, record) -> None:
        """Show the predictions of ``record``'s fit (a FitRecord, or None for none)."""
        self._fit = record.result if record is not None else None
        self._request_predictions()

    def set_data(self, frame: pd.DataFrame | None, description: str = "") -> None:
        self._frame = frame
        self._predictions = None
        self._predictions_wanted = False
        self._runner.cancel()  # summaries of the previous data are no longer wanted
        if frame is None:
            self.model.clear()
            self.summary_model.clear()
            self.title_label.setText("No data yet: simulate a design (Design tab) or open a data file (File > Open data).")
            return
        truth = true_effect_columns(frame)
        self.show_truth_check.setEnabled(bool(truth))
        self.show_predictions_check.blockSignals(True)
        self.show_predictions_check.setChecked(len(frame) <= AUTOMATIC_PREDICTION_ROWS)
        self.show_predictions_check.blockSignals(False)
        self.title_label.setText(
            f"<b>{len(frame):,} rows</b> × {frame.shape[1] - len(truth)} columns"
            + (f" (+{len(truth)} of true effects)" if truth else "") + (f" — {description}" if description else ""))
        self._apply_column_choice()
        self.summary_model.clear()
        if not self._runner.is_running:  # the window is closing
            return
        self.summary_status.setText("Computing summaries…")
        self.summary_status.show()
        self._summary_job = column_summary_job(frame)
        self._summary_job.on_finished = self._show_summary
        self._summary_job.on_failed = self._on_summary_failed
        self._runner.start(self._summary_job)
        self._predictions_wanted = self._fit is not None

    def _request_predictions(self) -> None:
        """Compute the selected fit's predictions on the worker, after the column summaries."""
        self._predictions = None
        self.predictions_status.setText("")
        self._apply_column_choice()
        if self._frame is None or self._fit is None or not self.show_predictions_check.isChecked():
            return
        if self._fit.estimator != "mixed":
            self.predictions_status.setText("Predictions: mixed-model fits only")
            return
        if not self._runner.is_running:
            return
        if self._runner.is_busy and self._summary_job is not None and self._runner.current_job is self._summary_job:
            self._predictions_wanted = True
            return
        fit = self._fit
        job = predictions_job(self._frame, fit)
        job.on_finished = lambda columns: self._show_predictions(fit, columns)
        job.on_failed = lambda message: self.predictions_status.setText(f"Predictions: {message}")
        self.predictions_status.setText("Computing predictions…")
        self._runner.start(job)

    def _show_predictions(self, fit, columns: pd.DataFrame) -> None:
        if fit is not self._fit:
            return
        self._predictions = columns
        self.predictions_status.setText("")
        self._apply_column_choice()

    def _on_summary_failed(self, message: str) -> None:
        self.summary_status.setText(message)
        self._after_summaries()

    def _after_summaries(self) -> None:
        if self._predictions_wanted:
            self._predictions_wanted = False
            self._request_predictions()

    def _apply_column_choice(self) -> None:
        if self._frame is None:
            return
        hidden = set() if self.show_truth_check.isChecked() else set(true_effect_columns(self._frame))
        shown = self._frame
        if self._predictions is not None and self.show_predictions_check.isChecked():
            # a data column of the same name (say, an earlier export's 'fitted') keeps its name
            extra = self._predictions.rename(columns={c: f"{c}_predicted" for c in self._predictions.columns
                                                      if c in self._frame.columns})
            shown = pd.concat([self._frame.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)
        self.model.set_frame(shown, [c for c in shown.columns if c not in hidden])
        for column in range(self.model.columnCount()):
            self.table.setColumnWidth(column, max(90, 9 * len(self.model.columns[column]) + 20))

    def _show_summary(self, summary: pd.DataFrame) -> None:
        self.summary_status.hide()
        self.summary_model.set_frame(summary)
        self.summary_table.resizeColumnsToContents()
        self._after_summaries()
