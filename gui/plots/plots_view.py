"""The Plots tab: one sub-tab per plot of the chosen fit; only the visible plot is drawn."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QTabWidget, QVBoxLayout, QWidget

from engine.errors import UserInputError
from gui.plots.base import PLOT_FILE_FILTER, PlotContext, PlotPanel
from gui.plots.caterpillar_plot import CaterpillarPlot
from gui.plots.iteration_plot import IterationPlot
from gui.plots.margins_plot import MarginsPlot
from gui.plots.probability_plot import ProbabilityPlot
from gui.plots.residual_plot import ResidualPlot
from gui.plots.sd_plot import SdPlot
from gui.plots.share_plot import SharePlot


class PlotsView(QWidget):
    """Draws lazily: a new context marks every plot stale and redraws only the one in view."""

    plot_exported = Signal(str)
    export_failed = Signal(str)

    def __init__(self, parent=None, margins_runner=None):
        super().__init__(parent)
        self.sd_plot = SdPlot()
        self.share_plot = SharePlot()
        self.caterpillar_plot = CaterpillarPlot()
        self.residual_plot = ResidualPlot()
        self.iteration_plot = IterationPlot()
        self.margins_plot = MarginsPlot(margins_runner)
        self.probability_plot = ProbabilityPlot()
        self.tabs = QTabWidget()
        tips = {self.sd_plot: "Estimated standard deviation of each level's effects with its 95% confidence "
                              "interval; crosses mark the true values of simulated data.",
                self.share_plot: "How the unexplained variance of the outcome splits between the levels.",
                self.caterpillar_plot: "Each group's predicted effect, sorted, with its 95% interval.",
                self.residual_plot: "Residuals should scatter evenly around zero and follow the line in the "
                                    "Q-Q plot if they are normal.",
                self.iteration_plot: "The criterion the optimiser maximised, iteration by iteration.",
                self.margins_plot: "Predicted means (fixed part, other predictors as observed) with 95% "
                                   "intervals over a continuous predictor, one line per level of a factor "
                                   "(Stata's margins and marginsplot).",
                self.probability_plot: "The observed outcome (share of 1s, mean count) against the prediction, by "
                                       "decile; binary and count fits also with the random effects at 0."}
        for panel in self.panels():
            index = self.tabs.addTab(panel, panel.title)
            self.tabs.setTabToolTip(index, tips[panel])
        self.tabs.currentChanged.connect(lambda _: self._draw_current())
        self.export_button = QPushButton("Export plot…")
        self.export_button.setToolTip("Save the shown plot as PNG or SVG.")
        self.export_button.clicked.connect(self.export_with_dialog)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(buttons)
        self._context = PlotContext()
        self._stale: set[PlotPanel] = set(self.panels())
        self.last_directory = ""

    def panels(self) -> list[PlotPanel]:
        return [self.sd_plot, self.share_plot, self.caterpillar_plot, self.residual_plot, self.iteration_plot,
                self.margins_plot,
                self.probability_plot]

    def current_panel(self) -> PlotPanel:
        return self.tabs.currentWidget()

    def set_context(self, context: PlotContext) -> None:
        self._context = context
        self._stale = set(self.panels())
        if self.isVisible():
            self._draw_current()

    def show_panel(self, panel: PlotPanel) -> None:
        self.tabs.setCurrentWidget(panel)
        self._draw_current()

    def fit_started(self) -> None:
        self.iteration_plot.start_live()

    def add_live_point(self, iteration: int, loglik: float) -> None:
        self.iteration_plot.add_live_point(iteration, loglik)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._draw_current()

    def _draw_current(self) -> None:
        panel = self.current_panel()
        if panel in self._stale:
            self._stale.discard(panel)
            panel.draw(self._context)

    def export_with_dialog(self) -> None:
        panel = self.current_panel()
        start = str(Path(self.last_directory or ".") / f"{panel.export_name}.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", start, PLOT_FILE_FILTER)
        if not path:
            return
        if not Path(path).suffix:
            path += ".png"
        try:
            written = panel.export(path)
        except UserInputError as error:
            self.export_failed.emit(str(error))
            return
        self.last_directory = str(Path(path).parent)
        self.plot_exported.emit(str(written))
