"""Caterpillar plot: the predicted random effects of one level, sorted, with 95% intervals."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QLabel

from gui.plots.base import ESTIMATE_COLOR, MUTED_COLOR, PlotContext, PlotPanel, evenly_spaced, new_plot

MAX_SHOWN_GROUPS = 1500
Z_95 = 1.959963984540054


class CaterpillarPlot(PlotPanel):
    title = "Caterpillar"
    export_name = "caterpillar"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.level_combo = QComboBox()
        self.level_combo.setToolTip("The level whose groups' predicted effects are shown.")
        self.term_combo = QComboBox()
        self.term_combo.setToolTip("The random term: the intercept (_cons) or a random slope.")
        self.level_combo.activated.connect(lambda _: self._redraw())
        self.term_combo.activated.connect(lambda _: self._redraw())
        self.controls.addWidget(QLabel("Level:"))
        self.controls.addWidget(self.level_combo)
        self.controls.addWidget(QLabel("Term:"))
        self.controls.addWidget(self.term_combo)
        self.controls.addStretch(1)
        self._context: PlotContext | None = None

    def draw(self, context: PlotContext) -> None:
        self._context = context
        effects = context.record.result.level_effects if context.record is not None else []
        chosen = self.level_combo.currentText()
        self.level_combo.clear()
        self.level_combo.addItems([e.level for e in effects])
        if chosen in [e.level for e in effects]:
            self.level_combo.setCurrentText(chosen)
        self._redraw()

    def choose_level(self, level: str) -> None:
        self.level_combo.setCurrentText(level)
        self._redraw()

    def _redraw(self) -> None:
        self.canvas.clear()
        context = self._context
        if context is None or context.record is None:
            self.show_message("Fit a mixed model to see its predicted random effects.")
            return
        effects = {e.level: e for e in context.record.result.level_effects}
        if not effects:
            self.show_message("No predicted random effects for this fit: they come with mixed models fitted "
                              "in this session (a reopened project keeps the estimates only; fit again to see them).")
            return
        level = effects.get(self.level_combo.currentText()) or next(iter(effects.values()))
        term = self.term_combo.currentText()
        self.term_combo.clear()
        self.term_combo.addItems(level.terms)
        if term in level.terms:
            self.term_combo.setCurrentText(term)
        column = level.terms.index(self.term_combo.currentText())
        estimates = np.asarray(level.estimates)[:, column]
        errors = np.asarray(level.std_errors)[:, column]
        order = np.argsort(estimates, kind="stable")
        ranks = evenly_spaced(order.size, MAX_SHOWN_GROUPS)
        shown = order[ranks]
        self.show_canvas()
        count = f"{order.size:,} groups" + (f", {shown.size:,} shown evenly across the ranks"
                                            if shown.size < order.size else "")
        term_name = "intercepts (_cons)" if level.terms[column] == "_cons" else f"slopes on {level.terms[column]}"
        plot = new_plot(self.canvas, f"Predicted random {term_name} at {level.level} ({count}), "
                        "with 95% intervals", "rank of the group", "predicted effect")
        y = estimates[shown]
        half = Z_95 * errors[shown]
        few = shown.size <= 60
        plot.addItem(pg.ErrorBarItem(x=ranks.astype(float), y=y, top=half, bottom=half, beam=0.3 if few else 0,
                                     pen=pg.mkPen(MUTED_COLOR, width=1.5 if few else 1)))
        plot.plot(ranks.astype(float), y, pen=None, symbol="o", symbolSize=9 if few else 4,
                  symbolBrush=ESTIMATE_COLOR, symbolPen=None)
        plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("k", width=1, style=pg.QtCore.Qt.PenStyle.DashLine)))
