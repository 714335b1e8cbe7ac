"""The window fits the screen it opens on (a 1366 x 768 laptop included, at 100 % and 200 % scale)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_gui_support import main_window  # noqa: F401  (fixture)

from PySide6.QtCore import QRect, QSize

from gui import screen_fit

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "gui_screen_probe.py"
DOCS_SCREENSHOT = ROOT / "docs" / "screenshot-1366x768.png"


@pytest.mark.parametrize("available, expected", [
    (QRect(0, 0, 1366, 768), QSize(1280, 720)),      # the laptop: the height gives way
    (QRect(0, 0, 1366, 728), QSize(1280, 680)),      # the same with a 40-pixel panel
    (QRect(0, 0, 1920, 1080), QSize(1280, 820)),     # room to spare: the preferred size
    (QRect(0, 0, 1280, 1024), QSize(1264, 820)),     # narrow: the width gives way
])
def test_default_size_fits_the_available_screen(qtbot, tmp_path, monkeypatch, available, expected):
    from gui.main_window import MainWindow, isolated_settings

    monkeypatch.setattr(screen_fit, "available_geometry", lambda widget: available)
    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    try:
        assert window.size() == expected
        frame = screen_fit.FRAME_ALLOWANCE
        assert window.width() + frame.width() <= available.width()
        assert window.height() + frame.height() <= available.height()
    finally:
        window.session.set_modified(False)
        window.shutdown()
        window.close()


def test_a_screen_below_the_minimum_gets_the_minimum(qtbot, tmp_path, monkeypatch):
    from gui.main_window import MainWindow, isolated_settings

    monkeypatch.setattr(screen_fit, "available_geometry", lambda widget: QRect(0, 0, 400, 300))
    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    try:
        minimum = window.minimumSizeHint()
        assert window.size() == QSize(minimum.width(), minimum.height())
    finally:
        window.session.set_modified(False)
        window.shutdown()
        window.close()


def test_lists_are_sized_in_rows_of_their_font(main_window):
    view = main_window.model_view.level_list
    font = view.font()
    small = screen_fit.rows_height(view, 4)
    font.setPointSizeF(font.pointSizeF() * 2)
    view.setFont(font)
    assert screen_fit.rows_height(view, 4) > small + 4 * 8  # twice the font: every row taller


@pytest.mark.parametrize("scale", [1, 2])
def test_window_on_a_1366x768_screen_shows_its_buttons_rows_and_status_bar(tmp_path, scale):
    """The real window on a 1366 x 768 screen (Qt's offscreen platform, in a fresh process)."""
    screenshot = tmp_path / "screen.png"
    environment = {key: value for key, value in os.environ.items() if key != "QT_QPA_PLATFORM"}
    environment["PYTHONPATH"] = str(ROOT)
    completed = subprocess.run([sys.executable, str(PROBE), "1366", "768", str(scale), str(screenshot)],
                               cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["screen"] == [1366, 768, scale]
    assert report["window"] == [1280, 720]
    assert report["frame_fits"]
    assert report["rows"] == 8000  # the tutoring design was simulated
    assert report["simulate_inside"] and report["fit_inside"] and report["status_bar_inside"]
    assert report["scroll_bars"] == []
    assert screenshot.is_file()
    if scale == 1 and os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.write_bytes(screenshot.read_bytes())
