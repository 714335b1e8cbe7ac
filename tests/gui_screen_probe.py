"""Open the real window on a screen of a given size (Qt's offscreen platform) and report what shows.

Run by tests/test_gui_screen_fit.py in a fresh process, because a process has one QApplication
and its screens are fixed when it starts:

    python tests/gui_screen_probe.py WIDTH HEIGHT SCALE [SCREENSHOT.png]

WIDTH x HEIGHT is the screen in device-independent pixels, SCALE its device pixel ratio (2 for
a 200 % high-DPI screen). Prints one JSON object: the window's size, whether Simulate, Fit and the
status bar lie inside the window, and the lists and tables that show a vertical scroll bar.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    width, height, scale = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    screenshot = sys.argv[4] if len(sys.argv) > 4 else None
    folder = Path(tempfile.mkdtemp(prefix="hlm-screen-"))
    config = folder / "screens.json"
    config.write_text(json.dumps({"screens": [{
        "name": "probe", "x": 0, "y": 0, "width": width, "height": height,
        "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": scale}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={config}"

    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView

    from gui.main_window import MainWindow, isolated_settings

    app = QApplication(sys.argv[:1])
    window = MainWindow(settings=isolated_settings(folder / "settings.ini"))
    window.show()
    app.processEvents()
    window.simulate(window.design_view.design.copy(), window.design_view.seed())
    deadline = time.monotonic() + 120
    while (window.data_view.model.rowCount() == 0 or window.job_runner.is_busy) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(30):  # the nesting check and the summaries finish on their own threads
        app.processEvents()
        time.sleep(0.02)

    def inside(widget) -> bool:
        top_left = widget.mapTo(window, QPoint(0, 0))
        bottom_right = widget.mapTo(window, QPoint(widget.width() - 1, widget.height() - 1))
        return (widget.isVisible() and window.rect().contains(top_left) and window.rect().contains(bottom_right))

    report = {"screen": [app.primaryScreen().availableGeometry().width(),
                         app.primaryScreen().availableGeometry().height(),
                         app.primaryScreen().devicePixelRatio()],
              "window": [window.width(), window.height()],
              "frame_fits": window.frameGeometry().height() <= height and window.frameGeometry().width() <= width,
              "rows": window.data_view.model.rowCount(), "scroll_bars": []}
    window.tabs.setCurrentWidget(window.design_view)
    app.processEvents()
    report["simulate_inside"] = inside(window.design_view.simulate_button)
    report["status_bar_inside"] = inside(window.statusBar())
    for index in (0, 2):  # Design and Model: the tabs with short lists and tables
        window.tabs.setCurrentIndex(index)
        app.processEvents()
        for view in window.tabs.widget(index).findChildren(QAbstractItemView):
            if isinstance(view, QHeaderView) or not view.isVisible() or view.model() is None:
                continue
            if 0 < view.model().rowCount() <= 6 and view.verticalScrollBar().isVisible():
                report["scroll_bars"].append(f"{window.tabs.tabText(index)}: {view.toolTip()[:40] or type(view).__name__}"
                                             f" ({view.model().rowCount()} rows)")
    fit_buttons = [button for button in window.model_view.findChildren(type(window.design_view.simulate_button))
                   if button.text().replace("&", "") == "Fit"]
    window.tabs.setCurrentWidget(window.model_view)
    app.processEvents()
    report["fit_inside"] = bool(fit_buttons) and all(inside(button) for button in fit_buttons)
    if screenshot:
        app.processEvents()
        window.grab().save(screenshot)
    print(json.dumps(report))
    window.session.set_modified(False)
    window.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
