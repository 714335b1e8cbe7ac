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
        self._live: list[tuple[int, float]] = []  # (iteration, log-likelihood); reports may skip iterations

    def draw(self, context: PlotContext) -> None:
        self.canvas.clear()
        self._curve = None
        values = list(context.record.result.iterations) if context.record is not None else []
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
        self._live.append((iteration, loglik))
        iterations, values = zip(*self._live)
        if self._curve is None:
            self._plot(list(values), "log-likelihood (fit running)", list(iterations))
        else:
            self._curve.setData(np.asarray(iterations), np.asarray(values))

    def _plot(self, values: list[float], label: str, iterations: list[int] | None = None) -> None:
        self.show_canvas()
        self.canvas.clear()
        x = np.arange(len(values)) if iterations is None else np.asarray(iterations)
        plot = new_plot(self.canvas, f"{label.capitalize()} at each iteration of the optimiser", "iteration", label)
        self._curve = plot.plot(x, np.asarray(values), pen=ESTIMATE_COLOR, symbol="o",
                                symbolSize=6, symbolBrush=ESTIMATE_COLOR, symbolPen=None)
