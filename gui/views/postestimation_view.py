"""The Results tab's post-estimation pane: type lincom, margins, contrast or pwcompare as in Stata,
read the engine's table (computed on a worker) and its notes."""

from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from gui.tables.dataframe_model import DataFrameTableModel, decimals_formatter
from gui.tables.table_view import CopyableTableView

EXAMPLES = ("lincom ses + ses#sector    margins sector, dydx(ses)    margins, at(ses=(-1 0 1))    "
            "contrast r.sector, at(ses=0)    contrast pw.band, mcompare(holm)")
P_FORMAT = decimals_formatter(4)


def estimates_frame(table) -> pd.DataFrame:
    """A PostEstimation's rows as a table (full precision; the screen rounds)."""
    statistic = "t" if any(row.df is not None for row in table.rows) else "z"
    columns = ["", "Estimate", "Std. Err.", statistic, f"P>|{statistic}|"]
    adjusted = table.adjustment != "none"
    if adjusted:
        columns.append(f"P ({table.adjustment})")
    columns += ["95% CI low", "95% CI high"]
    if statistic == "t":
        columns.append("df")
    records = []
    for row in table.rows:
        record = [row.label, row.estimate, row.se, row.stat, row.p]
        if adjusted:
            record.append(row.p_adjusted)
        record += [row.ci[0], row.ci[1]]
        if statistic == "t":
            record.append(row.df)
        records.append(record)
    return pd.DataFrame(records, columns=columns)


class PostEstimationView(QWidget):
    """A command line, Run, the table and notes. ``set_fit`` and ``set_data`` say what it runs on."""

    def __init__(self, runner=None, parent=None):
        super().__init__(parent)
        self._runner = runner
        self._result = None
        self._frame = None
        self._job = None
        self.table_result = None  # the last PostEstimation shown
        self.command_edit = QLineEdit()
        self.command_edit.setPlaceholderText("e.g. margins sector, dydx(ses)")
        self.command_edit.setToolTip("Stata syntax: " + EXAMPLES + ". Enter runs it.")
        self.command_edit.returnPressed.connect(self.run)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Compute the command from the selected fit's coefficients and covariance.")
        self.run_button.clicked.connect(self.run)
        line = QHBoxLayout()
        line.addWidget(QLabel("Command:"))
        line.addWidget(self.command_edit, 1)
        line.addWidget(self.run_button)
        self.status_label = QLabel("Linear combinations, predictive margins and contrasts of the selected fit.")
        self.status_label.setWordWrap(True)
        self.model = DataFrameTableModel(parent=self)
        self.table = CopyableTableView(self.model, export_name="postestimation")
        self.table.setToolTip("The estimates with standard errors, tests and 95% intervals. Ctrl+C copies; "
                              "right-click to export.")
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.notes_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(line)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.notes_label)

    def set_fit(self, result) -> None:
        if result is not self._result:
            self._result = result
            self._clear("Linear combinations, predictive margins and contrasts of the selected fit.")

    def set_data(self, frame) -> None:
        self._frame = frame

    def run(self):
        """Start the typed command on the worker; returns the job (None when nothing can run)."""
        from gui.jobs import postestimation_job

        text = self.command_edit.text().strip()
        if not text:
            self._clear("Type a command, e.g. " + EXAMPLES.split("    ")[1])
            return None
        if self._result is None:
            self._clear("Select a fit first.")
            return None
        if self._frame is None:
            self._clear("No data: margins and contrasts need the data the model was fitted to.")
            return None
        if self._runner is None or not self._runner.is_running:
            return None
        job = postestimation_job(text, self._frame, self._result)
        job.on_finished = lambda table: self._show(job, text, table)
        job.on_failed = lambda message: self._clear(f"{text}: {message}") if job is self._job else None
        self._job = job
        self.status_label.setText(f"Computing {text}…")
        self._runner.start(job)
        return job

    def _show(self, job, text: str, table) -> None:
        if job is not self._job:
            return
        self.table_result = table
        frame = estimates_frame(table)
        formats = {column: P_FORMAT for column in frame.columns if column.startswith("P")}
        formats.update({column: decimals_formatter(2) for column in ("z", "t", "df") if column in frame.columns})
        self.model.set_frame(frame, formatters=formats)
        self.table.resizeColumnsToContents()
        self.status_label.setText(f"<b>{table.title}</b>: {text}")
        self.notes_label.setText("\n".join(table.notes))

    def _clear(self, message: str) -> None:
        self.table_result = None
        self.model.clear()
        self.notes_label.setText("")
        self.status_label.setText(message)
