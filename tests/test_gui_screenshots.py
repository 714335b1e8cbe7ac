"""Screenshots of the five main views, rendered offscreen.

They are written to the test's tmp_path and checked to show something; with
HLM_UPDATE_SCREENSHOTS=1 they are also written to docs/screenshot-<view>.png (the ones in the
documentation).
"""

import os
from pathlib import Path

from test_gui_support import main_window, run_job, wait_for_nesting_check  # noqa: F401  (fixture)

from PySide6.QtGui import QImage

DOCS = Path(__file__).resolve().parent.parent / "docs"


def distinct_colours(path: Path) -> int:
    image = QImage(str(path)).scaled(160, 100)
    return len({image.pixel(x, y) for x in range(image.width()) for y in range(image.height())})


def test_screenshots_of_each_view(qtbot, main_window, tmp_path):
    window = main_window
    update_docs = os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1"
    shots = {}

    def shoot(name: str) -> None:
        qtbot.wait(50)  # let layouts and paints settle
        path = tmp_path / f"screenshot-{name}.png"
        assert window.grab().save(str(path))
        shots[name] = path
        if update_docs:
            DOCS.mkdir(exist_ok=True)
            window.grab().save(str(DOCS / f"screenshot-{name}.png"))

    window.tabs.setCurrentWidget(window.design_view)
    shoot("design")
    run_job(qtbot, window, window.design_view.simulate_button.click)
    window.tabs.setCurrentWidget(window.data_view)
    qtbot.waitUntil(lambda: window.data_view.summary_model.rowCount() > 0, timeout=10_000)
    shoot("data")
    window.tabs.setCurrentWidget(window.model_view)
    wait_for_nesting_check(qtbot, window)
    window.model_view.set_estimators(["mixed", "ols", "fe", "re"])
    shoot("model")
    run_job(qtbot, window, window.model_view.fit_button.click)
    window.results_view.history_list.setCurrentRow(0)
    window.tabs.setCurrentWidget(window.results_view)
    window.results_view.tabs.setCurrentWidget(window.results_view.comparison_page)
    shoot("results")
    window.tabs.setCurrentWidget(window.plots_view)
    window.plots_view.show_panel(window.plots_view.sd_plot)
    shoot("plots")

    for name, path in shots.items():
        image = QImage(str(path))
        assert image.width() >= 1000 and image.height() >= 700, name
        assert distinct_colours(path) > 20, f"{name} looks blank"
