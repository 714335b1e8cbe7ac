"""The Monte Carlo tab: a small study runs on the worker (through the engine's process pool), its
summary fills the table and plots, a sweep gives the curves, and Cancel stops a long run."""

import os
from pathlib import Path

import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from engine.montecarlo import StudyResult
from engine.presets import get_preset
from gui.worker import JobRunner

DOCS = Path(__file__).resolve().parent.parent / "docs"
TEACHER_MODEL = "perform tutoring || teach_id:"
RUN_TIMEOUT_MS = 120_000


def small_tutoring():
    """The tutoring hierarchy with few units (216 rows): a replication fits in milliseconds."""
    design = get_preset("tutoring")
    for level, n in (("dist_id", 3), ("school_id", 3), ("teach_id", 3), ("student_id", 4)):
        design = design.with_units(level, n)
    return design


@pytest.fixture
def view(qtbot):
    from gui.views.montecarlo_view import MonteCarloView

    runner = JobRunner("montecarlo-test")
    widget = MonteCarloView(runner)
    widget.resize(1280, 820)
    widget.show()
    qtbot.addWidget(widget)
    widget.set_design(small_tutoring())
    widget.set_models([TEACHER_MODEL])
    widget.workers_spin.setValue(1)
    widget.seed_spin.setValue(7)
    yield widget
    assert runner.shutdown(30_000)


def run_to_end(qtbot, view) -> StudyResult:
    failures = []
    view.study_failed.connect(failures.append)
    with qtbot.waitSignal(view.study_finished, timeout=RUN_TIMEOUT_MS, raising=False) as blocker:
        assert view.run() is not None, view.status_label.text()
    assert not failures, failures[0]
    assert blocker.signal_triggered, "the study did not finish"
    return blocker.args[0]


def test_a_small_study_fills_the_table_and_plots(qtbot, view):
    view.reps_spin.setValue(8)
    result = run_to_end(qtbot, view)
    assert isinstance(result, StudyResult) and not result.stopped
    assert (result.completed, result.total, result.workers) == (8, 8, 1)
    assert view.result is result and not view.is_running
    table = view.summary_model.visible_frame()
    assert list(table["param"]) == ["tutoring", "_cons", "teach_id:sd(_cons)", "Residual:sd(Residual)"]
    assert set(table["model"]) == {"M1"} and set(table["model command"]) == {TEACHER_MODEL}
    assert "sweep" not in table.columns
    row = table.set_index("param").loc["tutoring"]
    assert row["truth"] == 2.0 and row["reps"] == 8
    assert "8 of 8 replications" in view.progress_label.text()
    # The treatment is chosen first; its histogram and the per-model plots are drawn.
    assert view.param_combo.currentText() == "tutoring"
    for panel in view.plot_panels():
        assert panel.has_plot(), (panel.title, panel.message_label.text())
    view.param_combo.setCurrentText("teach_id:sd(_cons)")
    view.param_combo.activated.emit(view.param_combo.currentIndex())
    assert view.histogram_plot.has_plot()
    text = view.summary_table.selection_text()
    assert text.startswith("model\tparam\ttruth") and "teach_id:sd(_cons)" in text
    assert view.save_records_button.isEnabled()


def test_a_sweep_gives_curves_against_the_swept_value(qtbot, view, tmp_path):
    view.reps_spin.setValue(8)
    view.set_models([TEACHER_MODEL, "ols"])
    view.set_sweep("sd", "dist_id", "0, 2, 4")
    assert [view.sweep_target_combo.itemText(i) for i in range(view.sweep_target_combo.count())] == [
        "dist_id", "school_id", "teach_id", "student_id", "Residual"]
    result = run_to_end(qtbot, view)
    assert result.study.sweep.values == [0.0, 2.0, 4.0] and result.completed == 24
    table = view.summary_model.visible_frame()
    assert list(table["sd:dist_id"].drop_duplicates()) == [0.0, 2.0, 4.0]
    assert list(table["model"].drop_duplicates()) == ["M1", "M2"]
    assert view.accuracy_plot.has_plot() and view.power_plot.has_plot()
    assert not view.histogram_plot.sweep_combo.isHidden()
    assert [view.histogram_plot.sweep_combo.itemText(i) for i in range(3)] == ["0", "2", "4"]
    records = view.save_records(tmp_path / "records.csv")
    assert records.exists() and records.stat().st_size > 0

    view.result_tabs.setCurrentWidget(view.accuracy_plot)
    qtbot.wait(100)
    shot = tmp_path / "screenshot-montecarlo.png"
    assert view.grab().save(str(shot))
    if os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
        view.grab().save(str(DOCS / "screenshot-montecarlo.png"))


def test_bad_sweep_values_are_marked_at_the_field(qtbot, view):
    view.set_sweep("units", "school_id", "2, three")
    assert view.run() is None
    assert "numbers separated by commas" in view.status_label.text()
    assert "numbers separated by commas" in view.sweep_values_edit.toolTip()
    view.set_sweep("units", "school_id", "2, 2.5")
    assert view.run() is None
    assert "whole numbers" in view.status_label.text()
    assert not view.is_running


def test_cancel_stops_a_long_study(qtbot, view):
    view.reps_spin.setValue(5000)
    job = view.run()
    assert job is not None and view.is_running and view.cancel_button.isEnabled()
    # Wait until replications are coming back, then stop.
    qtbot.waitUntil(lambda: view._last_progress is not None and view._last_progress.done > 0, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(view.job_runner.job_cancelled, timeout=30_000):
        view.cancel()
    assert not view.is_running and view.run_button.isEnabled()
    assert "Stopped after" in view.progress_label.text()
    done = view._last_progress.done
    assert 0 < done < 5000


def test_engine_problems_are_shown(qtbot, view):
    view.set_models(["perform tutoring nosuchcolumn || teach_id:"])
    failures = []
    view.study_failed.connect(failures.append)
    with qtbot.waitSignal(view.job_runner.busy_changed, timeout=30_000, check_params_cb=lambda busy: not busy):
        view.run()
    assert failures and "nosuchcolumn" in failures[0]
    assert "nosuchcolumn" in view.status_label.text()
