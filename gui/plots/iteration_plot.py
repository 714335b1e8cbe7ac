"""The optimiser's criterion (log-likelihood) at each iteration; follows a running fit live."""

from __future__ import annotations

import numpy as np

from gui.plots.base import ESTIMATE_COLOR, PlotContext, PlotPanel, new_plot


class IterationPlot(PlotPanel):
    title = "Criterion"
    export_name = "criterion"

    def __init__(self, parent=None):
        super().__init__(parent)
        self._curve = None
        self._live: list[float] = []

    def draw(self, context: PlotContext) -> None:
        self.canvas.clear()
        self._curve = None
        values = list(context.record.result.iterations) if context.record is not None else []
        if not values and context.live_iterations:
            values = list(context.live_iterations)
        if not values:
            self.show_message("Fit a mixed model to see its log-likelihood at each iteration of the optimiser.")
            return
        method = context.record.result.method if context.record is not None else ""
        self._plot(values, "log restricted-likelihood" if method == "REML" else "log-likelihood")

    def start_live(self) -> None:
        self._live = []
        self.canvas.clear()
        self._curve = None

    def add_live_point(self, iteration: int, loglik: float) -> None:
        self._live.append(loglik)
        if self._curve is None:
            self._plot(self._live, "log-likelihood (fit running)")
        else:
            self._curve.setData(np.arange(len(self._live)), np.asarray(self._live))

    def _plot(self, values: list[float], label: str) -> None:
        self.show_canvas()
        self.canvas.clear()
        plot = new_plot(self.canvas, f"{label.capitalize()} at each iteration of the optimiser", "iteration", label)
        self._curve = plot.plot(np.arange(len(values)), np.asarray(values), pen=ESTIMATE_COLOR, symbol="o",
                                symbolSize=6, symbolBrush=ESTIMATE_COLOR, symbolPen=None)
