"""Residuals against fitted values, and a normal quantile-quantile plot of the residuals."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from engine.distributions import normal_quantile
from gui.plots.base import ESTIMATE_COLOR, TRUTH_COLOR, PlotContext, PlotPanel, evenly_spaced, new_plot

MAX_SHOWN_POINTS = 3000
# The Q-Q plot sorts at most this many residuals (an evenly spaced subset of the rows beyond it):
# sorting millions on the UI thread would freeze the window for no visible difference.
MAX_SORTED_RESIDUALS = 50_000


class ResidualPlot(PlotPanel):
    title = "Residuals"
    export_name = "residuals"

    def draw(self, context: PlotContext) -> None:
        self.canvas.clear()
        result = context.record.result if context.record is not None else None
        if result is None or result.residuals is None or result.fitted is None:
            self.show_message("No residuals for this fit: they come with fits made in this session "
                              "(a reopened project keeps the estimates only; fit again to see them).")
            return
        fitted = np.asarray(result.fitted, dtype=float)
        residuals = np.asarray(result.residuals, dtype=float)
        self.show_canvas()
        # A fixed-stride subset: every row counts the same and the picture does not change between redraws.
        shown = evenly_spaced(residuals.size, MAX_SHOWN_POINTS)
        note = f" ({shown.size:,} of {residuals.size:,} shown)" if shown.size < residuals.size else ""
        scatter = new_plot(self.canvas, f"Residuals against fitted values{note}", "fitted value", "residual",
                           row=0, col=0)
        scatter.plot(fitted[shown], residuals[shown], pen=None, symbol="o", symbolSize=3,
                     symbolBrush=pg.mkBrush(31, 95, 168, 90), symbolPen=None)
        scatter.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(TRUTH_COLOR, width=1)))

        ordered = np.sort(residuals[evenly_spaced(residuals.size, MAX_SORTED_RESIDUALS)])
        ranks = evenly_spaced(ordered.size, MAX_SHOWN_POINTS)
        # Normal quantiles at the plotting positions (i - 0.5) / n of the shown order statistics.
        theoretical = normal_quantile((ranks + 0.5) / ordered.size)
        qq = new_plot(self.canvas, "Normal Q-Q plot of the residuals", "normal quantile", "residual", row=0, col=1)
        qq.plot(theoretical, ordered[ranks], pen=None, symbol="o", symbolSize=3, symbolBrush=ESTIMATE_COLOR,
                symbolPen=None)
        # The reference line through the quartiles, as R's qqline draws it.
        q1, q3 = np.quantile(ordered, [0.25, 0.75])
        z1, z3 = normal_quantile(0.25), normal_quantile(0.75)
        slope = (q3 - q1) / (z3 - z1)
        qq.addItem(pg.InfiniteLine(pos=(0.0, q1 - slope * z1), angle=float(np.degrees(np.arctan(slope))),
                                   pen=pg.mkPen(TRUTH_COLOR, width=1)))
