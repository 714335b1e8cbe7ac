"""What every plot panel shares: a pyqtgraph canvas, a message when there is nothing to draw,
PNG/SVG export, and the data a plot is drawn from (``PlotContext``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from engine.design import Truth
from engine.errors import UserInputError
from engine.project import FitRecord

PLOT_FORMATS = {".png": "PNG image (*.png)", ".svg": "SVG drawing (*.svg)"}
PLOT_FILE_FILTER = ";;".join(PLOT_FORMATS.values())
ESTIMATE_COLOR = "#1f5fa8"
TRUTH_COLOR = "#c9302c"
MUTED_COLOR = "#8c8c8c"

pg.setConfigOptions(background="w", foreground="k", antialias=True)


@dataclass
class PlotContext:
    """What the plots draw: the chosen fit, and the truth and true variance shares of simulated data."""

    record: FitRecord | None = None
    truth: Truth | None = None
    true_shares: dict[str, float] | None = None
    frame: object = None  # the session's data (a DataFrame), for plots computed from it (margins)


class PlotPanel(QWidget):
    """A titled canvas (``self.canvas``, a GraphicsLayoutWidget) that can show a message instead."""

    title = "Plot"
    export_name = "plot"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.canvas = pg.GraphicsLayoutWidget()
        # pyqtgraph's own right-click "Export..." offers its SVG exporter, which fails with this Qt
        # (see export()); the panel's Export button is the one way to save a plot.
        self.canvas.scene().contextMenu = []
        self.message_label = QLabel()
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message_label.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(self.message_label)
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.controls)
        layout.addWidget(self.stack, 1)

    # ----- subclasses ------------------------------------------------------------------------------
    def draw(self, context: PlotContext) -> None:
        raise NotImplementedError

    def add_live_point(self, iteration: int, loglik: float) -> None:
        """Only the criterion plot follows a running fit."""

    # ----- shared ----------------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.stack.setCurrentWidget(self.message_label)

    def show_canvas(self) -> None:
        self.stack.setCurrentWidget(self.canvas)

    def has_plot(self) -> bool:
        return self.stack.currentWidget() is self.canvas

    def export(self, path: str | Path) -> Path:
        """Save the canvas as PNG or SVG (by extension) with pyqtgraph's exporters."""
        from pyqtgraph.exporters import ImageExporter, SVGExporter

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in PLOT_FORMATS:
            raise UserInputError(f"{path.name}: unknown image format; use {', '.join(PLOT_FORMATS)}")
        if not self.has_plot():
            raise UserInputError(f"nothing to export: {self.message_label.text()}")
        item = self.canvas.ci
        if suffix == ".png":
            exporter = ImageExporter(item)
            # Twice the on-screen size, for print; pyqtgraph wants whole pixels.
            exporter.parameters()["width"] = int(max(item.boundingRect().width(), 400) * 2)
        else:
            exporter = SVGExporter(item)
        try:
            exporter.export(str(path))
        except OSError as error:
            raise UserInputError(f"cannot write {path}: {error.strerror or error}") from error
        except ValueError:
            # pyqtgraph 0.14's SVG exporter cannot parse the "Z" (close path) that newer Qt writes
            # (pyqtgraph issue #3485); Qt's own SVG generator draws the same canvas instead.
            if suffix != ".svg":
                raise
            self._export_svg_with_qt(path)
        if not path.exists():
            raise UserInputError(f"cannot write {path}")
        return path


    def _export_svg_with_qt(self, path: Path) -> None:
        from PySide6.QtCore import QRectF, QSize
        from PySide6.QtGui import QPainter
        from PySide6.QtSvg import QSvgGenerator

        rect = self.canvas.ci.sceneBoundingRect()
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(QSize(int(rect.width()), int(rect.height())))
        generator.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
        generator.setTitle(self.title)
        painter = QPainter(generator)
        try:
            self.canvas.scene().render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        finally:
            painter.end()


def new_plot(canvas: pg.GraphicsLayoutWidget, title: str, x_label: str, y_label: str, **position) -> pg.PlotItem:
    plot = canvas.addPlot(title=title, **position)
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.25)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)  # "x0.001" scale labels confuse more than they help
    return plot


def evenly_spaced(count: int, limit: int):
    """Indexes of at most ``limit`` items spread over ``count`` (first and last included): plots
    show a readable subset of very long series instead of freezing the window."""
    import numpy as np

    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))
