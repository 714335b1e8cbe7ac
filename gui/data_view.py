"""The Data tab: the current data in a table (fast with millions of rows) and column summaries."""

from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from engine.simulate import true_effect_columns
from gui.dataframe_model import DataFrameTableModel, count_text
from gui.jobs import column_summary_job
from gui.table_view import CopyableTableView
from gui.worker import Job, JobRunner

SUMMARY_FORMATS = {"Missing": count_text, "Distinct": count_text}


class DataView(QWidget):
    """Shows a DataFrame. Columns of true effects (``true_u_*``) are hidden unless asked for;
    column summaries are computed on ``summary_runner``'s thread."""

    def __init__(self, summary_runner: JobRunner, parent=None):
        super().__init__(parent)
        self._runner = summary_runner
        self._frame: pd.DataFrame | None = None
        self._summary_job: Job | None = None

        self.title_label = QLabel("No data yet: simulate a design (Design tab) or open a data file (File > Open data).")
        self.title_label.setWordWrap(True)
        self.show_truth_check = QCheckBox("Show true effects")
        self.show_truth_check.setToolTip(
            "Simulated data carry each unit's true random effect (columns true_u_<level>). They are hidden "
            "because a real data set would not have them; show them to compare with the predicted effects.")
        self.show_truth_check.toggled.connect(self._apply_column_choice)
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
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

    def set_data(self, frame: pd.DataFrame | None, description: str = "") -> None:
        self._frame = frame
        self._runner.cancel()  # summaries of the previous data are no longer wanted
        if frame is None:
            self.model.clear()
            self.summary_model.clear()
            self.title_label.setText("No data yet: simulate a design (Design tab) or open a data file (File > Open data).")
            return
        truth = true_effect_columns(frame)
        self.show_truth_check.setEnabled(bool(truth))
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
        self._summary_job.on_failed = lambda message: self.summary_status.setText(message)
        self._runner.start(self._summary_job)

    def _apply_column_choice(self) -> None:
        if self._frame is None:
            return
        hidden = set() if self.show_truth_check.isChecked() else set(true_effect_columns(self._frame))
        self.model.set_frame(self._frame, [c for c in self._frame.columns if c not in hidden])
        for column in range(self.model.columnCount()):
            self.table.setColumnWidth(column, max(90, 9 * len(self.model.columns[column]) + 20))

    def _show_summary(self, summary: pd.DataFrame) -> None:
        self.summary_status.hide()
        self.summary_model.set_frame(summary)
        self.summary_table.resizeColumnsToContents()
