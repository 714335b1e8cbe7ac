"""Screenshots of the main views, rendered offscreen.

They are written to the test's tmp_path and checked to show something; with
HLM_UPDATE_SCREENSHOTS=1 they are also written to docs/screenshot-<view>.png (the ones in the
documentation).
"""

import os
from pathlib import Path

from test_gui_support import main_window, run_job, wait_for_nesting_check  # noqa: F401  (fixture)

from PySide6.QtCore import Qt
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
    window.model_view.set_method("REML")  # Kenward-Roger df: shown in the Model tab and the df column
    combo = window.model_view.dfmethod_combo
    combo.setCurrentIndex(combo.findData("kroger"))
    combo.activated.emit(combo.currentIndex())
    shoot("model")
    run_job(qtbot, window, window.model_view.fit_button.click)
    window.results_view.history_list.setCurrentRow(0)
    window.tabs.setCurrentWidget(window.results_view)
    window.results_view.tabs.setCurrentWidget(window.results_view.comparison_page)
    shoot("results")
    mixed_row = next(row for row in range(window.results_view.history_list.count())
                     if window.results_view.history_list.item(row).data(Qt.ItemDataRole.UserRole).result.dfmethod
                     == "kroger")
    window.results_view.history_list.setCurrentRow(mixed_row)
    window.results_view.tabs.setCurrentWidget(window.results_view.fixed_table)
    assert "df" in list(window.results_view.fixed_table.table_model().frame.columns)
    shoot("results-df")
    dialog = window.results_view.open_joint_test()
    dialog.check(["tutoring", "_cons"])
    assert dialog.run_test() is not None
    qtbot.waitExposed(dialog)
    qtbot.wait(50)
    dialog_path = tmp_path / "screenshot-test-dialog.png"
    assert dialog.grab().save(str(dialog_path))
    assert distinct_colours(dialog_path) > 10
    if update_docs:
        dialog.grab().save(str(DOCS / "screenshot-test-dialog.png"))
    dialog.close()
    window.results_view.history_list.setCurrentRow(0)
    window.tabs.setCurrentWidget(window.plots_view)
    window.plots_view.show_panel(window.plots_view.sd_plot)
    shoot("plots")
    # The model just fitted was handed to both analysis tabs.
    montecarlo = window.montecarlo_view
    assert montecarlo.model_texts() == [window.model_view.spec.to_stata()]
    montecarlo.reps_spin.setValue(12)
    montecarlo.workers_spin.setValue(1)
    window.tabs.setCurrentWidget(montecarlo)
    with qtbot.waitSignal(montecarlo.study_finished, timeout=120_000):
        assert montecarlo.run() is not None
    shoot("montecarlo")
    comparison = window.comparison_view
    assert comparison.model_list.count() == 1
    comparison.model_edit.setText("perform || dist_id: || school_id: || teach_id: || student_id:, reml")
    comparison.add_model_from_field()
    window.tabs.setCurrentWidget(comparison)
    comparison.dfmethod_combo.setCurrentIndex(comparison.dfmethod_combo.findData("kroger"))
    with qtbot.waitSignal(comparison.comparison_finished, timeout=60_000):
        comparison.compare_button.click()
    assert "Refitted by ML" in comparison.notes_label.text()
    assert comparison.fixed_tests_table.isVisibleTo(comparison)  # the Kenward-Roger F test of tutoring
    shoot("compare-models")

    for name, path in shots.items():
        image = QImage(str(path))
        assert image.width() >= 1000 and image.height() >= 700, name
        assert distinct_colours(path) > 20, f"{name} looks blank"
