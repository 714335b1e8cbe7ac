"""The Results tab: the session's fits, and for the chosen one its report and tables.

Tables hold the engine's numbers at full precision (copy and export keep them); the screen
rounds them. The comparison table shows every fit of the same run against the truth.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontDatabase, QIcon
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPlainTextEdit,
                               QPushButton, QSplitter, QStyle, QTabWidget, QVBoxLayout, QWidget)

from engine.design import Truth
from engine.project import FitRecord
from engine.report import format_fit_report, format_joint_tests
from gui.tables import result_tables
from gui.tables.comparison import comparison_legend, comparison_of, comparison_table
from gui.tables.dataframe_model import DataFrameTableModel, number_or_text
from gui.dialogs.joint_test_dialog import JointTestDialog, can_test
from gui.views.postestimation_view import PostEstimationView
from gui.tables.table_view import CopyableTableView

RECORD_ROLE = Qt.ItemDataRole.UserRole
WARNING_COLOR = "#8a5a00"  # amber text: readable on white, distinct from the red of errors
WARNING_STYLE = f"color: {WARNING_COLOR}; background: #fff4d6; border: 1px solid #e8c66a; padding: 4px;"


def warning_icon() -> QIcon:
    from PySide6.QtWidgets import QApplication

    return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)


def _headline(warning: str, limit: int = 90) -> str:
    """The first clause of a warning (up to its first colon or full stop), for a one-line strip."""
    cut = min((i for i in (warning.find(": "), warning.find(". ")) if i > 0), default=len(warning))
    text = warning[:cut]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def warnings_tooltip(warnings: list[str]) -> str:
    return "Warnings:\n" + "\n".join(f"⚠ {warning}" for warning in warnings)


class ResultsView(QWidget):
    """History on the left; report, tables and comparison of the selected fit on the right."""

    fit_selected = Signal(object)  # FitRecord or None
    plan_requested = Signal(object)  # FitResult: plan the next study from it
    history_cleared = Signal()

    def __init__(self, parent=None, postestimation_runner=None):
        super().__init__(parent)
        self._records: list[FitRecord] = []
        self._comparisons: dict[int, object] = {}
        self._truth: Truth | None = None
        self._current: FitRecord | None = None

        self.history_list = QListWidget()
        self.history_list.setToolTip("Every fit of this session, newest last. Select one to see it.")
        self.history_list.currentItemChanged.connect(self._on_current_item_changed)
        # Several fits can be selected (Ctrl/Shift-click) to put them side by side.
        self.history_list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.history_list.itemSelectionChanged.connect(self._update_side_by_side)
        self.side_by_side_button = QPushButton("Compare side by side")
        self.side_by_side_button.setToolTip("Put the selected fits (Ctrl- or Shift-click to select several) in one "
                                            "table: coefficients, variance components, N, log-likelihood, AIC, BIC.")
        self.side_by_side_button.clicked.connect(lambda: self.show_side_by_side())
        self.side_by_side_button.setEnabled(False)
        self.model_table_dialog = None
        clear = QPushButton("Clear history")
        clear.setToolTip("Forget every fit of this session (the data and the model stay).")
        clear.clicked.connect(self.history_cleared.emit)
        history = QWidget()
        history_layout = QVBoxLayout(history)
        history_layout.setContentsMargins(0, 0, 0, 0)
        history_layout.addWidget(QLabel("Fits of this session"))
        history_layout.addWidget(self.history_list, 1)
        history_layout.addWidget(self.side_by_side_button)
        history_layout.addWidget(clear)

        self.title_label = QLabel("No fit yet: build a model in the Model tab and press Fit (Ctrl+R).")
        self.title_label.setWordWrap(True)
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warnings_label = QLabel()  # the fit's warnings, above every table (also atop the report)
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet(WARNING_STYLE)
        self.warnings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warnings_label.hide()
        self.report_text = QPlainTextEdit()
        self.report_text.setReadOnly(True)
        self.report_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.report_text.setToolTip("The full report, laid out as Stata prints it. Select and copy freely.")
        self.variances_check = QCheckBox("Variances instead of standard deviations")
        self.variances_check.setToolTip("Report the random effects as variances and covariances (Stata's "
                                        "variance option) rather than standard deviations and correlations.")
        self.variances_check.toggled.connect(lambda _: self._show(self._current))
        report_page = QWidget()
        report_layout = QVBoxLayout(report_page)
        report_layout.setContentsMargins(0, 0, 0, 0)
        report_layout.addWidget(self.variances_check)
        report_layout.addWidget(self.report_text, 1)

        self.fixed_table = self._table("fixed_effects", "The fixed effects: coefficient, standard error, test "
                                       "statistic, p-value and 95% confidence interval of each term.")
        self.random_table = self._table("random_effects", "The random-effects parameters: the standard deviation "
                                        "(or variance) of each level's effects, and the residual.")
        self.groups_table = self._table("groups", "Groups at each level and observations per group.")
        self.statistics_table = self._table("fit_statistics", "Log-likelihood, AIC and BIC (smaller is better; "
                                            "compare only ML fits of the same data).")
        self.variance_summary_table = self._table(
            "icc_r2", "Intraclass correlations (Stata's estat icc: the correlation of two observations sharing "
            "their group at a level and every level above it), marginal and conditional R² (Nakagawa & "
            "Schielzeth) and the reliability of each level's intercepts (as HLM prints it).")
        self.comparison_table = self._table("comparison", "Every estimator of this run side by side, with the "
                                            "true values the data were simulated from.")
        self.comparison_legend = QLabel()
        self.comparison_legend.setWordWrap(True)
        self.comparison_legend.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.comparison_page = comparison_page = QWidget()
        comparison_layout = QVBoxLayout(comparison_page)
        comparison_layout.setContentsMargins(0, 0, 0, 0)
        comparison_layout.addWidget(self.comparison_table, 1)
        comparison_layout.addWidget(self.comparison_legend)

        from gui.views.result_summary import FitSummaryView

        self.summary_view = FitSummaryView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.summary_view, "Summary")
        self.tabs.addTab(report_page, "Report")
        self.tabs.addTab(self.fixed_table, "Fixed effects")
        self.tabs.addTab(self.random_table, "Random effects")
        self.tabs.addTab(self.groups_table, "Groups")
        self.tabs.addTab(self.statistics_table, "Fit statistics")
        self.tabs.addTab(self.variance_summary_table, "ICC && R²")
        self.postestimation_view = PostEstimationView(postestimation_runner)
        self.tabs.addTab(self.postestimation_view, "Post-estimation")
        self.tabs.addTab(comparison_page, "Comparison with truth")
        self.tabs.currentChanged.connect(lambda _: self._update_buttons())

        self.copy_button = QPushButton("Copy table")
        self.copy_button.setToolTip("Copy the shown table (or the report) to the clipboard.")
        self.copy_button.clicked.connect(self.copy_current)
        self.export_button = QPushButton("Export table…")
        self.export_button.setToolTip("Save the shown table as CSV, LaTeX or HTML.")
        self.export_button.clicked.connect(self.export_current_table)
        self.test_button = QPushButton("Test…")
        self.test_button.setToolTip("Joint Wald test that several coefficients of this fit are all zero, with its "
                                    "df method (F) or large-sample chi2.")
        self.test_button.clicked.connect(self.open_joint_test)
        self.plan_button = QPushButton("Plan the next study")
        self.plan_button.setToolTip("Turn this mixed-model fit into a design (its sds, unit counts and effects) on "
                                    "the Design tab, for Monte Carlo and Power: how many groups does the next "
                                    "study need?")
        self.plan_button.clicked.connect(self._request_plan)
        buttons = QHBoxLayout()
        buttons.addWidget(self.test_button)
        buttons.addWidget(self.plan_button)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.export_button)

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.title_label)
        detail_layout.addWidget(self.warnings_label)
        detail_layout.addWidget(self.tabs, 1)
        detail_layout.addLayout(buttons)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(history)
        splitter.addWidget(detail)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 4)
        splitter.setSizes([300, 980])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._update_buttons()

    def _table(self, name: str, tooltip: str) -> CopyableTableView:
        view = CopyableTableView(DataFrameTableModel(parent=self), export_name=name)
        view.setToolTip(tooltip + " Ctrl+C copies; right-click to export.")
        return view

    # ----- public ----------------------------------------------------------------------------------
    @property
    def current_record(self) -> FitRecord | None:
        return self._current

    def table_views(self) -> list[CopyableTableView]:
        return [self.fixed_table, self.random_table, self.groups_table, self.statistics_table, self.comparison_table,
                self.variance_summary_table, self.postestimation_view.table]

    def set_truth(self, truth: Truth | None) -> None:
        # Runs already compared keep the truth of their data; the new truth serves new runs.
        self._truth = truth

    def set_history(self, records: list[FitRecord], comparisons: dict[int, object] | None = None) -> None:
        """Show ``records`` (the session's history) and select the newest."""
        self._records = list(records)
        self._comparisons = dict(comparisons or {})
        self.history_list.blockSignals(True)
        self.history_list.clear()
        for record in self._records:
            self.history_list.addItem(self._item(record))
        self.history_list.blockSignals(False)
        if self._records:
            self.history_list.setCurrentRow(len(self._records) - 1)
        else:
            self._show(None)
            self.fit_selected.emit(None)

    def add_run(self, records: list[FitRecord], comparison=None) -> None:
        """Append the fits of one run and select its first one."""
        if records and comparison is not None:
            self._comparisons[records[0].run] = comparison
        first_row = len(self._records)
        self._records += records
        for record in records:
            self.history_list.addItem(self._item(record))
        if records:
            self.history_list.setCurrentRow(first_row)

    def select(self, record: FitRecord) -> None:
        self.history_list.setCurrentRow(self._records.index(record))

    def selected_records(self) -> list[FitRecord]:
        """The selected fits, in the history's order."""
        rows = sorted(self.history_list.row(item) for item in self.history_list.selectedItems())
        return [self._records[row] for row in rows]

    def show_side_by_side(self, records: list[FitRecord] | None = None):
        """A window with the fits (default: the selected ones) side by side."""
        from gui.dialogs.model_table_dialog import ModelTableDialog

        records = self.selected_records() if records is None else records
        if not records:
            return None
        self.model_table_dialog = ModelTableDialog(records, self)
        self.model_table_dialog.show()
        return self.model_table_dialog

    def _update_side_by_side(self) -> None:
        count = len(self.history_list.selectedItems())
        self.side_by_side_button.setEnabled(count >= 2)
        self.side_by_side_button.setText(f"Compare {count} side by side" if count >= 2 else "Compare side by side")

    def copy_current(self) -> None:
        table = self._current_table()
        if self.tabs.currentWidget() is self.summary_view:
            self.summary_view.selectAll()
            self.summary_view.copy()
        elif table is None:
            self.report_text.selectAll()
            self.report_text.copy()
        else:
            table.clearSelection()
            table.copy_selection()

    def export_current_table(self) -> None:
        table = self._current_table()
        if table is not None:
            table.export_with_dialog()

    # ----- display ---------------------------------------------------------------------------------
    @staticmethod
    def _item(record: FitRecord) -> QListWidgetItem:
        item = QListWidgetItem(record.label)
        item.setData(RECORD_ROLE, record)
        result = record.result
        tooltip = f"{result.model}\n{result.nobs:,} observations" + (f"; {record.data_label}" if record.data_label else "")
        if result.warnings:
            item.setIcon(warning_icon())
            item.setForeground(QBrush(QColor(WARNING_COLOR)))
            tooltip += "\n\n" + warnings_tooltip(result.warnings)
        item.setToolTip(tooltip)
        return item

    def _on_current_item_changed(self, current: QListWidgetItem | None, _previous) -> None:
        record = current.data(RECORD_ROLE) if current is not None else None
        self._show(record)
        self.fit_selected.emit(record)

    def _current_table(self) -> CopyableTableView | None:
        page = self.tabs.currentWidget()
        if page is self.comparison_page:
            return self.comparison_table
        if page is self.postestimation_view:
            return self.postestimation_view.table
        return page if isinstance(page, CopyableTableView) else None

    def _update_buttons(self) -> None:
        is_table = self._current_table() is not None
        self.copy_button.setText("Copy table" if is_table else "Copy report")
        self.export_button.setEnabled(is_table and self._current is not None)
        self.copy_button.setEnabled(self._current is not None)
        self.test_button.setEnabled(can_test(self._current.result if self._current is not None else None))
        result = self._current.result if self._current is not None else None
        self.plan_button.setEnabled(result is not None and result.estimator == "mixed" and result.spec is not None
                                    and bool(result.spec.levels))

    def open_joint_test(self):
        """Open the joint-test dialog on the shown fit; each test run there is added to its report."""
        if self._current is None or not can_test(self._current.result):
            return None
        record = self._current
        dialog = JointTestDialog(record.result, self)
        dialog.tested.connect(lambda _test: self._current is record and self._show(record))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _request_plan(self) -> None:
        if self._current is not None:
            self.plan_requested.emit(self._current.result)

    def _show(self, record: FitRecord | None) -> None:
        self._current = record
        self.postestimation_view.set_fit(record.result if record is not None else None)
        self._update_buttons()
        self._show_warnings(record.result.warnings if record is not None else [])
        if record is None:
            self.title_label.setText("No fit yet: build a model in the Model tab and press Fit (Ctrl+R).")
            self.report_text.setPlainText("")
            self.summary_view.clear_fit()
            for view in self.table_views():
                view.table_model().clear()
            self.comparison_legend.setText("")
            return
        result = record.result
        self.title_label.setText(f"<b>{record.label}</b><br><code>{result.model}</code>"
                                 + (f"<br>Data: {record.data_label}" if record.data_label else ""))
        self.report_text.setPlainText(format_fit_report(result, variances=self.variances_check.isChecked())
                                      + ("\n" + format_joint_tests(result) if result.tests else ""))
        self.summary_view.show_fit(result, record.data_label, self.variances_check.isChecked())
        self._fill(self.fixed_table, result_tables.fixed_effects_table(result), result_tables.FIXED_FORMATS)
        self._fill(self.random_table,
                   result_tables.random_effects_table(result, self.variances_check.isChecked()), {})
        self._fill(self.groups_table, result_tables.groups_table(result), result_tables.GROUP_FORMATS)
        self._fill(self.statistics_table, result_tables.fit_statistics_table(result),
                   result_tables.STATISTICS_FORMATS)
        notes = [f"Model: {result.model}", *(f"Warning: {warning}" for warning in result.warnings)]
        for view in (self.fixed_table, self.random_table, self.groups_table, self.statistics_table):
            view.export_notes = notes
        self._fill(self.variance_summary_table, result_tables.variance_summary_table(result), {})
        comparison = self._comparison_of_run(record.run)
        if comparison is None:
            self.comparison_table.table_model().clear()
            self.comparison_legend.setText("No comparison for this fit.")
        else:
            table = comparison_table(comparison)
            formats = {column: number_or_text for column in table.columns if column != "Parameter"}
            self._fill(self.comparison_table, table, formats)
            self.comparison_legend.setText(comparison_legend(comparison)
                                           + ("" if comparison.truth is not None else
                                              "\nNo truth: the data were not simulated here."))

    def _show_warnings(self, warnings: list[str]) -> None:
        """A mark where the eye is: a strip above the tables and an icon on the Fixed effects tab."""
        index = self.tabs.indexOf(self.fixed_table)
        if not warnings:
            self.warnings_label.hide()
            self.tabs.setTabIcon(index, QIcon())
            self.tabs.setTabToolTip(index, "")
            self.fixed_table.setStyleSheet("")
            return
        count = f"{len(warnings)} warnings" if len(warnings) > 1 else "a warning"
        headlines = "; ".join(_headline(warning) for warning in warnings)
        self.warnings_label.setText(f"⚠ This fit has {count} (the report starts with them; hover for all): "
                                    + headlines)
        self.warnings_label.setToolTip(warnings_tooltip(warnings))
        self.warnings_label.show()
        self.tabs.setTabIcon(index, warning_icon())
        self.tabs.setTabToolTip(index, warnings_tooltip(warnings))
        self.fixed_table.setStyleSheet("QTableView { border: 2px solid #e8c66a; }")

    @staticmethod
    def _fill(view: CopyableTableView, frame, formats) -> None:
        view.table_model().set_frame(frame, formatters=formats)
        view.resizeColumnsToContents()

    def _comparison_of_run(self, run: int):
        if run not in self._comparisons:
            results = [r.result for r in self._records if r.run == run]
            predictors = results[0].spec.fixed if results and results[0].spec is not None else []
            if not predictors and results:
                predictors = [row.term for row in results[0].fixed if row.term != "_cons"]
            self._comparisons[run] = comparison_of(results, self._truth, predictors)
        return self._comparisons[run]
