"""Estimated against true standard deviation at each level, with 95% confidence intervals."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from gui.plots.base import ESTIMATE_COLOR, TRUTH_COLOR, PlotContext, PlotPanel, new_plot


class SdPlot(PlotPanel):
    title = "SD by level"
    export_name = "sd_by_level"

    def draw(self, context: PlotContext) -> None:
        self.canvas.clear()
        record = context.record
        if record is None:
            self.show_message("Fit a model to see its estimated standard deviations.")
            return
        rows = [row for row in record.result.random if row.param.startswith("sd(")]
        if not rows:
            self.show_message("This fit estimates no random-effect standard deviations (a mixed model does); "
                              "the comparison table lists what each estimator gives.")
            return
        self.show_canvas()
        plot = new_plot(self.canvas, "Standard deviations: estimate with 95% CI, and truth", "", "standard deviation")
        legend = plot.addLegend(offset=(-10, 10))
        x = np.arange(len(rows), dtype=float)
        estimates = np.array([row.estimate for row in rows], dtype=float)
        lows = np.array([row.ci[0] if row.ci else np.nan for row in rows], dtype=float)
        highs = np.array([row.ci[1] if row.ci else np.nan for row in rows], dtype=float)
        has_ci = np.isfinite(lows) & np.isfinite(highs)
        if has_ci.any():
            plot.addItem(pg.ErrorBarItem(x=x[has_ci], y=estimates[has_ci], top=(highs - estimates)[has_ci],
                                         bottom=(estimates - lows)[has_ci], beam=0.15,
                                         pen=pg.mkPen(ESTIMATE_COLOR, width=1.5)))
        truths = [context.truth.random.get(f"{row.level}:{row.param}") for row in rows] if context.truth else []
        known = [i for i, value in enumerate(truths) if value is not None]
        if known:
            plot.plot(x[known], [truths[i] for i in known], pen=None, symbol="x", symbolSize=13,
                      symbolBrush=TRUTH_COLOR, symbolPen=pg.mkPen(TRUTH_COLOR, width=2), name="truth")
        plot.plot(x, estimates, pen=None, symbol="o", symbolSize=9, symbolBrush=ESTIMATE_COLOR,
                  symbolPen=None, name="estimate (95% CI)")
        plot.getAxis("bottom").setTicks([[(i, f"{row.level}\n{row.param}") for i, row in enumerate(rows)]])
        plot.getAxis("bottom").setHeight(40)
        plot.setXRange(-0.6, len(rows) - 0.4, padding=0)
        top = np.nanmax(np.concatenate([estimates, highs[has_ci], [truths[i] for i in known]]))
        plot.setYRange(0, top * 1.3, padding=0)  # headroom for the legend
        legend.setParentItem(plot.vb)
