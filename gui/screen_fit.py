"""Sizes that follow the screen and the font: the window's first size, and lists that show their rows.

Qt measures in device-independent pixels, so on a high-DPI screen (scale 150 %, 200 %) the same
numbers give the same layout at a finer resolution; what still has to adapt is the screen's size
(a 1366 x 768 laptop) and the font (a larger system font makes every row taller). Hence the window
takes at most the available part of its screen, and lists are sized in rows of the current font
rather than in pixels.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QStyle, QTableView, QWidget

PREFERRED_SIZE = QSize(1280, 820)  # what the views are laid out for, when the screen has room
# Room left for what the window manager draws around the window (title bar, borders): resize()
# sets the inside of the window, and the whole frame should fit on the screen.
FRAME_ALLOWANCE = QSize(16, 48)


def available_geometry(widget: QWidget) -> QRect:
    """The part of the widget's screen not taken by panels and docks (the primary screen before it is shown)."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def default_window_size(widget: QWidget) -> QSize:
    """PREFERRED_SIZE, shrunk to fit the available screen with its frame (never below the minimum size)."""
    available = available_geometry(widget)
    minimum = widget.minimumSizeHint()
    width = min(PREFERRED_SIZE.width(), available.width() - FRAME_ALLOWANCE.width())
    height = min(PREFERRED_SIZE.height(), available.height() - FRAME_ALLOWANCE.height())
    return QSize(max(width, minimum.width()), max(height, minimum.height()))


def row_height(view: QAbstractItemView) -> int:
    """The height of one row at the view's current font (a check box's height at least)."""
    if isinstance(view, QTableView):
        return view.verticalHeader().defaultSectionSize()
    text = view.fontMetrics().height() + 4
    indicator = view.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorHeight, None, view) + 2
    return max(text, indicator)


def rows_height(view: QAbstractItemView, rows: int) -> int:
    """The height that shows ``rows`` rows of ``view`` (with its header and frame) without a scroll bar."""
    height = rows * row_height(view) + 2 * view.frameWidth()
    if isinstance(view, QTableView) and not view.horizontalHeader().isHidden():
        height += view.horizontalHeader().sizeHint().height()
    return height
