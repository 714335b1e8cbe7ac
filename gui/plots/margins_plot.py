"""Interaction plot (Stata's marginsplot): predicted means with 95% intervals over a continuous
predictor, one line per level of a factor. The margins are computed by the engine on a worker."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QLabel

from engine.margins import predictor_kinds
from gui.plots.base import PlotContext, PlotPanel, new_plot

NO_FACTOR = "(none)"
LINE_COLORS = ["#1f5fa8", "#c9302c", "#2e8b57", "#8e44ad", "#d68910", "#17a2b8", "#6c757d", "#e83e8c"]


class MarginsPlot(PlotPanel):
    title = "Margins"
    export_name = "margins"

    def __init__(self, runner=None, parent=None):
        super().__init__(parent)
        self._runner = runner
        self._context: PlotContext | None = None
        self._job = None
        self.lines: dict[str, dict[str, np.ndarray]] = {}  # drawn: label -> x, estimate, low, high
        self.axis_combo = QComboBox()
        self.axis_combo.setToolTip("The continuous predictor along the horizontal axis (its observed range).")
        self.factor_combo = QComboBox()
        self.factor_combo.setToolTip("One line per level of this factor (the model's i. predictors).")
        self.axis_combo.activated.connect(lambda _: self._compute())
        self.factor_combo.activated.connect(lambda _: self._compute())
        self.controls.addWidget(QLabel("Axis:"))
        self.controls.addWidget(self.axis_combo)
        self.controls.addWidget(QLabel("Lines by:"))
        self.controls.addWidget(self.factor_combo)
        self.controls.addStretch(1)

    def draw(self, context: PlotContext) -> None:
        self._context = context
        result = context.record.result if context.record is not None else None
        continuous, factors = predictor_kinds(result) if result is not None and result.estimator == "mixed" else ([], [])
        _refill(self.axis_combo, continuous)
        had_choice = self.factor_combo.currentText() in factors
        _refill(self.factor_combo, [NO_FACTOR, *factors])
        if factors and not had_choice:
            self.factor_combo.setCurrentIndex(1)  # an interaction plot by the first factor
        self._compute()

    def _compute(self) -> None:
        from gui.jobs import interaction_margins_job

        self.canvas.clear()
        self.lines = {}
        context = self._context
        result = context.record.result if context is not None and context.record is not None else None
        if result is None or result.estimator != "mixed":
            self.show_message("Fit a mixed model to see its predicted means (margins) over a predictor.")
            return
        if context.frame is None or self._runner is None or not self._runner.is_running:
            self.show_message("Margins need the data the model was fitted to.")
            return
        if self.axis_combo.count() == 0:
            self.show_message("The model has no continuous predictor to draw the margins over.")
            return
        covariate = self.axis_combo.currentText()
        factor = self.factor_combo.currentText()
        factor = None if factor in ("", NO_FACTOR) else factor
        self.show_message("Computing the margins…")
        job = interaction_margins_job(context.frame, result, covariate, factor)
        job.on_finished = lambda table: self._draw_lines(job, table, covariate, factor)
        job.on_failed = lambda message: self.show_message(f"No margins: {message}") if job is self._job else None
        self._job = job
        self._runner.start(job)

    def _draw_lines(self, job, table, covariate: str, factor: str | None) -> None:
        if job is not self._job:
            return
        groups: dict[str, list] = {}
        for row in table.rows:
            label = f"{factor}={_text(row.at[factor])}" if factor else "all"
            groups.setdefault(label, []).append(row)
        self.show_canvas()
        title = f"Predicted {table.depvar} (fixed part) with 95% intervals" + (f", by {factor}" if factor else "")
        plot = new_plot(self.canvas, title, covariate, f"predicted {table.depvar}")
        if factor:
            plot.addLegend(offset=(10, 10))
        for index, (label, rows) in enumerate(groups.items()):
            x = np.array([row.at[covariate] for row in rows], dtype=float)
            estimate = np.array([row.estimate for row in rows])
            low = np.array([row.ci[0] for row in rows])
            high = np.array([row.ci[1] for row in rows])
            self.lines[label] = {"x": x, "estimate": estimate, "low": low, "high": high}
            color = pg.mkColor(LINE_COLORS[index % len(LINE_COLORS)])
            band_color = pg.mkColor(color)
            band_color.setAlpha(50)
            lower = pg.PlotDataItem(x, low, pen=pg.mkPen(None))
            upper = pg.PlotDataItem(x, high, pen=pg.mkPen(None))
            plot.addItem(lower)
            plot.addItem(upper)
            plot.addItem(pg.FillBetweenItem(lower, upper, brush=pg.mkBrush(band_color)))
            plot.plot(x, estimate, pen=pg.mkPen(color, width=2), name=label if factor else None)


def _refill(combo: QComboBox, items: list[str]) -> None:
    chosen = combo.currentText()
    combo.clear()
    combo.addItems(items)
    if chosen in items:
        combo.setCurrentText(chosen)


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
