"""The Results tab's "Test…" dialog: the Wald test that several coefficients of the chosen fit are all
zero (Stata's ``test`` / ``testparm``), with the fit's df method (engine.wald_tests.joint_test).

Coefficients are ticked in a list, or terms typed as in the model (``i.sector``, ``c.x c.x#c.x``).
Each test is also appended to the fit's ``tests``, so the report and ``--json`` show it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout)

from engine.errors import UserInputError
from engine.report import DF_METHOD_NAMES
from engine.results import FitResult, JointTest
from engine.wald_tests import joint_test


def can_test(result: FitResult | None) -> bool:
    """True for a fit of this session that carries what the joint tests need."""
    return result is not None and getattr(result, "inference", None) is not None


def test_text(test: JointTest) -> str:
    """One test in words, as Stata prints it: F(df1, df2) or chi2(df1), and its p-value."""
    if test.F is not None:
        method = DF_METHOD_NAMES.get(test.dfmethod, test.dfmethod)
        return (f"F({test.df1}, {test.df2:.2f}) = {test.F:.3f}, Prob > F = {test.p:.4f}  ({method} df)")
    return f"chi2({test.df1}) = {test.chi2:.3f}, Prob > chi2 = {test.p:.4f}  (large-sample Wald test)"


class JointTestDialog(QDialog):
    """Pick coefficients (or type terms) of one fit and test that they are all zero."""

    tested = Signal(object)  # the JointTest, after it was appended to the fit's tests

    def __init__(self, result: FitResult, parent=None):
        super().__init__(parent)
        self.result = result
        self.setWindowTitle("Joint test of coefficients")
        method = result.dfmethod or "z"
        described = ("Wald chi2 with large-sample z statistics (no df method)" if method == "z"
                     else f"F with {DF_METHOD_NAMES.get(method, method)} denominator df")
        header = QLabel(f"<code>{html.escape(result.model)}</code><br>Test that every chosen coefficient is 0: "
                        f"{described}. The fit's df method is chosen in the Model tab.")
        header.setWordWrap(True)
        self.coefficient_list = QListWidget()
        self.coefficient_list.setToolTip("Tick the coefficients to test together.")
        for row in result.fixed:
            item = QListWidgetItem(row.term)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.coefficient_list.addItem(item)
        self.terms_edit = QLineEdit()
        self.terms_edit.setPlaceholderText("or type terms: i.sector   c.x c.x#c.x")
        self.terms_edit.setToolTip("Terms as in the model, separated by spaces; they replace the ticks. i.sector "
                                   "means all its levels (as Stata's testparm).")
        self.terms_edit.returnPressed.connect(self.run_test)
        self.test_button = QPushButton("Test")
        self.test_button.setDefault(True)
        self.test_button.clicked.connect(self.run_test)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addWidget(self.coefficient_list, 1)
        layout.addWidget(self.terms_edit)
        layout.addWidget(self.test_button)
        layout.addWidget(self.result_label)
        layout.addWidget(close)
        self.resize(560, 460)

    def chosen_terms(self) -> list[str]:
        """The typed terms, else the ticked coefficients."""
        typed = self.terms_edit.text().split()
        if typed:
            return typed
        items = (self.coefficient_list.item(i) for i in range(self.coefficient_list.count()))
        return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]

    def check(self, terms: list[str]) -> None:
        """Tick exactly these coefficients (for scripts and tests)."""
        for i in range(self.coefficient_list.count()):
            item = self.coefficient_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in terms else Qt.CheckState.Unchecked)

    def run_test(self) -> JointTest | None:
        """Test the chosen terms; the outcome (or the reason it could not run) is shown below."""
        terms = self.chosen_terms()
        try:
            if not terms:
                raise UserInputError("tick at least one coefficient, or type terms such as i.sector")
            test = joint_test(self.result, terms)
        except UserInputError as error:
            self.result_label.setText(f"<span style='color:#b00020'>{html.escape(str(error))}</span>")
            return None
        self.result_label.setText(f"<b>{html.escape(' '.join(test.columns))}</b><br>{html.escape(test_text(test))}")
        self.tested.emit(test)
        return test
