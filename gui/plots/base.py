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
from gui.plots.svg_output import portable_svg

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
        """Save the canvas as PNG (pyqtgraph's image exporter, twice the size on screen) or SVG
        (drawn with Qt's SVG generator, see :meth:`_export_svg`), chosen by the extension."""
        from pyqtgraph.exporters import ImageExporter

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in PLOT_FORMATS:
            raise UserInputError(f"{path.name}: unknown image format; use {', '.join(PLOT_FORMATS)}")
        if not self.has_plot():
            raise UserInputError(f"nothing to export: {self.message_label.text()}")
        item = self.canvas.ci
        try:
            if suffix == ".png":
                exporter = ImageExporter(item)
                # Twice the on-screen size, for print; pyqtgraph wants whole pixels.
                exporter.parameters()["width"] = int(max(item.boundingRect().width(), 400) * 2)
                exporter.export(str(path))
            else:
                self._export_svg(path)
        except OSError as error:
            raise UserInputError(f"cannot write {path}: {error.strerror or error}") from error
        if not path.exists() or path.stat().st_size == 0:
            raise UserInputError(f"cannot write {path}")
        return path

    def _export_svg(self, path: Path) -> None:
        """Draw the canvas into Qt's SVG generator.

        pyqtgraph 0.14's SVG exporter fails on newer Qt (it cannot parse the "Z" Qt writes,
        pyqtgraph issue #3485), and a plain render of the scene is garbled: the axes are
        cached QPictures recorded at the screen's dpi, which the generator (72 dpi by default)
        replays scaled, and scatter symbols are pixmap fragments. So the generator gets the
        screen's dpi, and every item is put in pyqtgraph's export mode (symbols drawn as paths)
        while it draws, as pyqtgraph's own exporters do. Finally the data's coordinates are put
        in pixels (gui/plots/svg_output.py) for renderers without cosmetic pens.
        """
        from pyqtgraph.exporters import ImageExporter
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, QSize
        from PySide6.QtGui import QColor, QGuiApplication, QPainter
        from PySide6.QtSvg import QSvgGenerator

        item = self.canvas.ci
        source = item.sceneBoundingRect()
        width, height = source.width(), source.height()
        buffer = QBuffer()
        content = QByteArray()
        buffer.setBuffer(content)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        generator = QSvgGenerator()
        generator.setOutputDevice(buffer)
        generator.setResolution(int(round(QGuiApplication.primaryScreen().logicalDotsPerInchX())))
        generator.setSize(QSize(int(round(width)), int(round(height))))
        generator.setViewBox(QRectF(0, 0, width, height))
        generator.setTitle(self.title)
        items = ImageExporter(item)  # only for its list of the items that paint, in order
        painter = QPainter(generator)
        try:
            painter.fillRect(QRectF(0, 0, width, height), QColor("white"))
            items.setExportMode(True, {"antialias": True, "background": QColor("white"), "painter": painter})
            self.canvas.scene().render(painter, QRectF(0, 0, width, height), source)
        finally:
            items.setExportMode(False)
            painter.end()
            buffer.close()
        path.write_bytes(portable_svg(bytes(content.data()), width, height))


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
