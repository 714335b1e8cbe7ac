"""The window's planning pieces: the Monte Carlo power plot draws the formula's curve and rings the
points that disagree with it, the study form takes a precision target and states where it
stopped, and "Plan the next study" turns a fit into the Design tab's design."""

import pytest
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from engine.design import UnitCount
from engine.errors import UserInputError
from engine.montecarlo import Study, Sweep
from engine.power.study_curve import analytic_power_curve
from engine.presets import get_preset
from gui.worker import JobRunner

Z_MODEL = "score treated || school_id:, reml"


@pytest.fixture
def view(qtbot):
    from gui.views.montecarlo_view import MonteCarloView

    runner = JobRunner("plan14-test")
    widget = MonteCarloView(runner)
    widget.resize(1280, 820)
    widget.show()
    qtbot.addWidget(widget)
    design = get_preset("cluster_trial").with_units("school_id", 6)
    design.level("student_id").units = UnitCount.fixed(5)
    widget.set_design(design)
    widget.set_models([Z_MODEL])
    widget.workers_spin.setValue(1)
    widget.seed_spin.setValue(3)
    yield widget
    assert runner.shutdown(30_000)


def run_to_end(qtbot, view):
    with qtbot.waitSignal(view.study_finished, timeout=180_000) as blocker:
        assert view.run() is not None, view.status_label.text()
    return blocker.args[0]


def test_power_plot_draws_the_formula_and_rings_disagreements(qtbot, view, tmp_path):
    view.reps_spin.setValue(12)
    view.set_sweep("units", "school_id", "6, 12")
    view.precision_edit.setText("power=0.45")
    result = run_to_end(qtbot, view)
    expected = analytic_power_curve(Study(view.design, [Z_MODEL], sweep=Sweep("units", "school_id", [6, 12])))
    data = view._plot_data
    assert data.analytic.power == pytest.approx(expected.power)
    assert [c.sweep for c in data.comparisons] == [6.0, 12.0]
    names = [item.name() for item in view.power_plot.canvas.ci.items if hasattr(item, "name")]
    plot = next(iter(view.power_plot.canvas.ci.items))
    legend = [label.text for _, label in plot.legend.items]
    assert "crt2 formula" in legend, (legend, names)
    if any(c.disagree for c in data.comparisons):
        assert "differs from the formula by > 2 MC SEs" in legend
    # The rule is stated where the study ended.
    assert result.study.precision.targets[0].target == 0.45
    assert "Stopping rule: stop when the Monte Carlo SE of power <= 0.45" in view.status_label.text()
    view.result_tabs.setCurrentWidget(view.power_plot)
    qtbot.wait(100)
    assert view.grab().save(str(tmp_path / "power.png"))


def test_a_bad_precision_target_is_marked_at_the_field(qtbot, view):
    view.precision_edit.setText("power=abc")
    assert view.run() is None
    assert "must be a number > 0" in view.status_label.text()
    with pytest.raises(UserInputError):
        view.stopping_rule()


def test_plan_the_next_study_puts_the_fits_design_on_the_design_tab(qtbot, main_window, monkeypatch):
    window = main_window
    run_job(qtbot, window, window.design_view.simulate_button.click)
    run_job(qtbot, window, window.model_view.fit_button.click)
    record = window.results_view.current_record
    result = record.result
    assert window.results_view.plan_button.isEnabled()
    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *args, **kwargs: ("tutoring", True)))
    window.results_view.plan_button.click()
    design = window.design_view.design
    assert design.name == "planned from a fit"
    for level in design.levels:
        assert level.sd == result.random_param(level.name, "sd(_cons)").estimate
    assert design.treatment.name == "tutoring" and design.treatment.effect == result.coef("tutoring").coef
    assert window.montecarlo_view.design.levels[0].sd == design.levels[0].sd
    assert window.montecarlo_view.model_texts()[0].startswith("perform tutoring || dist_id:")
    assert window.tabs.currentWidget() is window.design_view
