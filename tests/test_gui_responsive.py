"""The window stays responsive while an 800,000-row model is fitted on the worker thread."""

import gc
import time

import numpy as np
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from PySide6.QtCore import Qt, QTimer

from gui.tables.design_models import LevelTableModel

TICK_MS = 10
MAX_GAP_SECONDS = 0.100


def test_timer_keeps_ticking_during_an_800k_row_fit(qtbot, main_window):
    window = main_window
    levels = window.design_view.level_model
    # The tutoring preset with 500 districts: 500 x 5 x 8 x 20 students x 2 semesters.
    levels.setData(levels.index(0, LevelTableModel.UNITS), "500", Qt.ItemDataRole.EditRole)
    assert window.design_view.rows_label.text() == "Expected rows: 800,000"
    frame = run_job(qtbot, window, window.design_view.simulate_button.click).frame
    assert len(frame) == 800_000
    # Let the data tab's column summaries and the nesting check finish: the fit is measured alone.
    qtbot.waitUntil(lambda: not window.summary_runner.is_busy and not window.model_view.nesting_check_pending,
                    timeout=30_000)

    # As launch() does after start-up: what exists now is exempt from full garbage collections
    # (here that includes every object the earlier tests of the session left behind).
    gc.collect()
    gc.freeze()
    ticks = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    started = time.perf_counter()
    try:
        batch = run_job(qtbot, window, window.model_view.fit_button.click)
        # The results are on screen (tables, report, history) when the job reports idle.
        ticks.append(time.perf_counter())
    finally:
        timer.stop()
        gc.unfreeze()
    seconds = time.perf_counter() - started

    assert batch.results[0].nobs == 800_000
    assert window.results_view.fixed_table.table_model().rowCount() == 2
    gaps = np.diff(ticks)
    assert len(ticks) > 10, f"the fit took {seconds:.2f} s: too short to measure"
    assert gaps.max() < MAX_GAP_SECONDS, (
        f"the UI thread stalled for {gaps.max() * 1000:.0f} ms (fit {seconds:.2f} s, {len(ticks)} ticks)")
