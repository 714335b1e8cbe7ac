"""The Power tab: analytic power, MDES and units needed for a trial, with the power curve.

The numbers come from ``engine.power`` (PowerUp! formulas); the tab collects the textbook
parameters, or takes them from the Design tab's design, and shows the engine's report. The
formulas are instant, so they run on the UI thread.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from engine.design import Design
from engine.errors import UserInputError
from engine.power.analytic import DESIGNS, LEVELS, TrialPlan, answer, format_answer
from engine.power.from_design import plan_from_design
from gui.plots.base import ESTIMATE_COLOR, MUTED_COLOR, PlotPanel, new_plot

DESIGN_TITLES = {
    "crt2": "crt2 — clusters randomised (2 levels)",
    "crt3": "crt3 — level-3 units randomised",
    "crt4": "crt4 — level-4 units randomised",
    "msrt2": "msrt2 — individuals randomised within sites",
    "msrt3": "msrt3 — level-2 units randomised within sites",
}


def _numbers(text: str, what: str) -> list[float]:
    pieces = [piece for piece in text.replace(";", ",").split(",") if piece.strip()]
    try:
        return [float(piece) for piece in pieces]
    except ValueError:
        raise UserInputError(f"{what}: write numbers separated by commas, got {text!r}") from None


def _whole(value: float) -> int | float:
    """``value`` as an int when it is a whole number; otherwise unchanged, for the engine to refuse."""
    return int(value) if math.isfinite(value) and value.is_integer() else value


class PowerCurvePanel(PlotPanel):
    """Power against the number of top-level units, the target line and the plan's point."""

    title = "Analytic power"
    export_name = "power-curve"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = new_plot(self.canvas, "Analytic power against the number of top-level units",
                             "Top-level units", "Power")
        self.curve_x = np.zeros(0)
        self.curve_y = np.zeros(0)
        self.show_message("Compute a plan to see its power curve.")

    def draw_plan(self, plan: TrialPlan, needed: int | None) -> None:
        self.plot.clear()
        if plan.effect is None:
            self.show_message("Give an effect size to draw the power curve.")
            return
        low = plan.covariates_top + (3 if plan.design.startswith("crt") else 2)
        high = max(plan.units[0], needed or 0) * 2 + 4
        counts = np.unique(np.linspace(low, high, 60).round().astype(int))
        self.curve_x = counts.astype(float)
        self.curve_y = np.array(plan.power_curve(counts.tolist()))
        self.plot.plot(self.curve_x, self.curve_y, pen=pg.mkPen(ESTIMATE_COLOR, width=2))
        dashed = pg.mkPen(MUTED_COLOR, style=pg.QtCore.Qt.PenStyle.DashLine)
        self.plot.addLine(y=plan.target, pen=dashed)
        self.plot.plot([plan.units[0]], [plan.power()], pen=None, symbol="o", symbolBrush=ESTIMATE_COLOR)
        if needed is not None:
            self.plot.addLine(x=needed, pen=pg.mkPen(MUTED_COLOR, style=pg.QtCore.Qt.PenStyle.DotLine))
        self.plot.setYRange(0, 1)
        self.show_canvas()

    def clear_plan(self, message: str) -> None:
        self.plot.clear()
        self.show_message(message)


class PowerView(QWidget):
    """Form (textbook parameters) + report + power curve over the number of top-level units."""

    plan_changed = Signal(object)  # the TrialPlan shown, or None when the form has a problem
    failed = Signal(str)

    def __init__(self, design_source: Callable[[], Design | None] | None = None, parent=None):
        super().__init__(parent)
        # Read at the moment of use, so the tab always plans the design the Design tab shows.
        self.design_source = design_source or (lambda: None)
        self.plan: TrialPlan | None = None
        self.kind = QComboBox()
        for name in DESIGNS:
            self.kind.addItem(DESIGN_TITLES[name], name)
        self.units = QLineEdit("20, 25")
        self.units.setToolTip("Top-level units (clusters or sites), then units per parent at each lower level, "
                              "ending with individuals per level-2 unit; e.g. 20, 25 for 20 schools of 25 pupils.")
        self.icc = QLineEdit("0.15")
        self.icc.setToolTip("Share of the outcome's variance at each level above the individuals, top level first.")
        self.r2 = QLineEdit("")
        self.r2.setToolTip("Share of each level's variance explained by covariates, top level first and level 1 "
                           "last (empty: none).")
        self.covariates = QLineEdit("0")
        self.covariates.setToolTip("Covariates at the top level (each costs a degree of freedom).")
        self.effect = QLineEdit("0.3")
        self.effect.setToolTip("Effect size in sd units of the outcome.")
        self.share = QLineEdit("0.5")
        self.share.setToolTip("Share of units treated.")
        self.omega = QLineEdit("0")
        self.omega.setToolTip("Multisite trials: variance of the effect across sites over the sites' intercept variance.")
        self.alpha = QLineEdit("0.05")
        self.target = QLineEdit("0.8")
        form = QFormLayout()
        form.addRow("Design", self.kind)
        form.addRow("Units (top first)", self.units)
        form.addRow("ICC (top first)", self.icc)
        form.addRow("R² by level", self.r2)
        form.addRow("Top-level covariates", self.covariates)
        form.addRow("Effect (sd)", self.effect)
        form.addRow("Treated share", self.share)
        form.addRow("Omega (multisite)", self.omega)
        form.addRow("Alpha (two-sided)", self.alpha)
        form.addRow("Target power", self.target)
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("Power, MDES and the top-level units needed (PowerUp! formulas).")
        self.from_design_button = QPushButton("From the design")
        self.from_design_button.setToolTip("Take the parameters from the Design tab's hierarchy and treatment.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.compute_button)
        buttons.addWidget(self.from_design_button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(buttons)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setMinimumHeight(140)
        left.addWidget(self.report, 1)
        self.curve = PowerCurvePanel()
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addWidget(self.curve, 3)
        self.compute_button.clicked.connect(self.compute)
        self.from_design_button.clicked.connect(self.use_design)
        # The first answer once the event loop runs, so the window shows without waiting for the
        # noncentral t (scipy.special); skipped if a plan was shown meanwhile or the window is
        # not (or no longer) shown.
        QTimer.singleShot(0, self._first_compute)

    def _first_compute(self) -> None:
        if self.plan is None and self.window().isVisible():
            self.compute()

    # ----- building the plan ---------------------------------------------------------------------
    def form_plan(self) -> TrialPlan:
        kind = self.kind.currentData()
        # Whole numbers become ints; anything else goes to the engine as typed, which names it
        # (rounding 20.4 to 20 here would answer a question nobody asked).
        units = [_whole(v) for v in _numbers(self.units.text(), "units")]
        r2 = _numbers(self.r2.text(), "R²") or [0.0] * LEVELS[kind]
        return TrialPlan(kind, units, _numbers(self.icc.text(), "ICC"),
                         effect=self._one(self.effect, "effect", optional=True),
                         treated_share=self._one(self.share, "treated share"), r2=r2,
                         covariates_top=_whole(self._one(self.covariates, "top-level covariates")),
                         omega=self._one(self.omega, "omega"), alpha=self._one(self.alpha, "alpha"),
                         target=self._one(self.target, "target power"))

    @staticmethod
    def _one(field: QLineEdit, what: str, optional: bool = False) -> float | None:
        text = field.text().strip()
        if not text and optional:
            return None
        values = _numbers(text, what)
        if len(values) != 1:
            raise UserInputError(f"{what}: write one number, got {text!r}")
        return values[0]

    def show_plan(self, plan: TrialPlan, notes: list[str] | None = None) -> None:
        self.plan = plan
        result = answer(plan)
        result.notes = (notes or []) + result.notes
        self.report.setPlainText(format_answer(result))
        self.curve.draw_plan(plan, result.clusters_needed)
        self.plan_changed.emit(plan)

    def _fill_form(self, plan: TrialPlan) -> None:
        self.kind.setCurrentIndex(DESIGNS.index(plan.design))
        self.units.setText(", ".join(str(u) for u in plan.units))
        self.icc.setText(", ".join(f"{v:.4g}" for v in plan.icc))
        self.r2.setText(", ".join(f"{v:.4g}" for v in plan.r2))
        self.covariates.setText(str(plan.covariates_top))
        self.effect.setText("" if plan.effect is None else f"{plan.effect:.4g}")
        self.share.setText(f"{plan.treated_share:.4g}")
        self.omega.setText(f"{plan.omega:.4g}")

    def compute(self) -> None:
        try:
            plan = self.form_plan()
            self.show_plan(plan)
        except UserInputError as error:
            self._fail(str(error))

    def use_design(self) -> None:
        try:
            design = self.design_source()  # raises UserInputError while the Design tab has a problem
            if design is None:
                raise UserInputError("no design: fill in the Design tab first")
            plan, notes = plan_from_design(design.copy(), self._one(self.alpha, "alpha"),
                                           self._one(self.target, "target power"))
        except UserInputError as error:
            self._fail(str(error))
            return
        self._fill_form(plan)
        self.show_plan(plan, notes)

    def _fail(self, message: str) -> None:
        self.plan = None
        self.report.setPlainText(f"error: {message}")
        self.curve.clear_plan(message)
        self.plan_changed.emit(None)
        self.failed.emit(message)
