"""Share of the unexplained variance at each level: true against estimated.

The true shares are the design's (``Design.variance_shares``). The estimated bars are the
fit's intercept and residual variances (its ``var(_cons)`` and ``var(Residual)`` rows), each
divided by their sum: a display of the engine's estimates on a common scale.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from engine.design import RESIDUAL
from gui.plots.base import ESTIMATE_COLOR, MUTED_COLOR, PlotContext, PlotPanel, new_plot

BAR_WIDTH = 0.38


class SharePlot(PlotPanel):
    title = "Variance shares"
    export_name = "variance_shares"

    def draw(self, context: PlotContext) -> None:
        self.canvas.clear()
        record = context.record
        estimated_shares = record.result.intercept_variance_shares() if record is not None else {}
        if not estimated_shares and context.true_shares is None:
            self.show_message("Fit a mixed model to see how the variance splits between levels.")
            return
        true_shares = context.true_shares or {}
        levels = list(dict.fromkeys([*[k for k in true_shares if k != RESIDUAL],
                                     *[k for k in estimated_shares if k != RESIDUAL], RESIDUAL]))
        self.show_canvas()
        has_slopes = record is not None and any(row.param.startswith("var(") and row.param not in (
            "var(_cons)", f"var({RESIDUAL})") for row in record.result.random_variances)
        title = "Share of the unexplained variance by level"
        if has_slopes:
            title += " (intercepts only; random slopes left out)"
        plot = new_plot(self.canvas, title, "", "share of variance")
        legend = plot.addLegend(offset=(10, 10))  # top left: the small top-level bars leave room there
        x = np.arange(len(levels), dtype=float)
        if true_shares:
            heights = [true_shares.get(level, 0.0) for level in levels]
            plot.addItem(pg.BarGraphItem(x=x - BAR_WIDTH / 2, height=heights, width=BAR_WIDTH, brush=MUTED_COLOR,
                                         pen=None))
            legend.addItem(pg.BarGraphItem(x=[0], height=[0], width=0, brush=MUTED_COLOR), "true")
            self._label_bars(plot, x - BAR_WIDTH / 2, heights)
        if estimated_shares:
            heights = [estimated_shares.get(level, 0.0) for level in levels]
            plot.addItem(pg.BarGraphItem(x=x + BAR_WIDTH / 2, height=heights, width=BAR_WIDTH, brush=ESTIMATE_COLOR,
                                         pen=None))
            legend.addItem(pg.BarGraphItem(x=[0], height=[0], width=0, brush=ESTIMATE_COLOR), "estimated")
            self._label_bars(plot, x + BAR_WIDTH / 2, heights)
        plot.getAxis("bottom").setTicks([[(i, level) for i, level in enumerate(levels)]])
        plot.setXRange(-0.6, len(levels) - 0.4, padding=0)
        plot.setYRange(0, 1.12 * max([*true_shares.values(), *estimated_shares.values(), 0.1]), padding=0)
        legend.setParentItem(plot.vb)

    @staticmethod
    def _label_bars(plot, xs, heights) -> None:
        for x, height in zip(xs, heights):
            label = pg.TextItem(f"{height:.0%}", anchor=(0.5, 1.0), color="k")
            label.setPos(float(x), float(height))
            plot.addItem(label)
