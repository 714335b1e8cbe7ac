"""Predicted against observed outcomes by decile of the prediction: probabilities (binary fits),
counts (Poisson fits) or the outcome (linear fits)."""

from __future__ import annotations

import pyqtgraph as pg

from engine.glmm.calibration import prediction_bins
from gui.plots.base import ESTIMATE_COLOR, TRUTH_COLOR, PlotContext, PlotPanel, new_plot


class ProbabilityPlot(PlotPanel):
    title = "Predicted probabilities"
    export_name = "predicted-probabilities"

    def draw(self, context: PlotContext) -> None:
        self.canvas.clear()
        result = context.record.result if context.record is not None else None
        bins = prediction_bins(result) if result is not None else None
        if bins is None:
            self.show_message("No predictions for this fit: they come with fits made in this session "
                              "(a reopened project keeps the estimates only; fit again to see them).")
            return
        self.show_canvas()
        what = {"binomial": "probability", "poisson": "count"}.get(result.family, "outcome")
        plot = new_plot(self.canvas, f"Observed against predicted {what}, by decile of the prediction",
                        f"predicted {what}", f"observed {'share' if what == 'probability' else 'mean'}")  # noqa: E501
        plot.addLegend(offset=(10, 10))
        series = [bins.predicted, bins.observed] + ([bins.predicted_fixed_only] if bins.predicted_fixed_only is not None else [])
        low = min(0.0, *(float(s.min()) for s in series))
        top = max(float(s.max()) for s in series)
        plot.plot([low, top], [low, top], pen=pg.mkPen(TRUTH_COLOR, width=1, style=pg.QtCore.Qt.DashLine),
                  name="observed = predicted")
        plot.plot(bins.predicted, bins.observed, pen=pg.mkPen(ESTIMATE_COLOR, width=2), symbol="o", symbolSize=8,
                  symbolBrush=ESTIMATE_COLOR, name="with predicted random effects")
        if bins.predicted_fixed_only is not None:
            plot.plot(bins.predicted_fixed_only, bins.observed, pen=None, symbol="t", symbolSize=8,
                      symbolBrush=pg.mkBrush(200, 120, 30), name="random effects at 0")
