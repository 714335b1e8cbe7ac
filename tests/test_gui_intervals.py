"""The Model tab's interval choice: Wald / profile likelihood / bootstrap (replicates, seed),
fed to the fit on the worker, with progress and Cancel; the numbers are the engine's."""

import pytest
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from engine.bootstrap import apply_bootstrap_intervals
from engine.intervals import IntervalRequest
from engine.mixed import fit_mixed
from engine.mixed.profile import apply_profile_intervals
from gui.tables.design_models import LevelTableModel


def small_data(qtbot, window):
    """The tutoring design with 3 districts and 2 schools each (2,880 rows)."""
    model = window.design_view.level_model
    for row, units in ((0, "3"), (1, "2")):
        assert model.setData(model.index(row, LevelTableModel.UNITS), units)
    return run_job(qtbot, window, window.design_view.simulate_button.click).frame


def fit_with(qtbot, window, request):
    view = window.model_view
    view.stop_checks()
    view.set_interval_request(request)
    view.set_estimators(["mixed"])
    batch = run_job(qtbot, window, view.fit_button.click)
    (result,) = batch.results
    return result


def test_interval_choice_defaults_to_wald_and_enables_the_bootstrap_fields(main_window):
    view = main_window.model_view
    box = view.interval_combo.parentWidget()  # the form is disabled until there are data
    assert view.interval_request() == IntervalRequest("wald", 1000, 1)
    assert not view.bootstrap_reps_spin.isEnabledTo(box) and not view.bootstrap_seed_spin.isEnabledTo(box)
    view.interval_combo.setCurrentIndex(view.interval_combo.findData("bootstrap"))
    assert view.bootstrap_reps_spin.isEnabledTo(box) and view.bootstrap_seed_spin.isEnabledTo(box)
    view.bootstrap_reps_spin.setValue(250)
    view.bootstrap_seed_spin.setValue(9)
    assert view.interval_request() == IntervalRequest("bootstrap", 250, 9)


def test_profile_and_bootstrap_fits_give_the_engines_intervals(qtbot, main_window):
    window = main_window
    frame = small_data(qtbot, window)
    spec = window.model_view.spec
    expected = fit_mixed(frame, spec)
    apply_profile_intervals(expected, frame)
    profiled = fit_with(qtbot, window, IntervalRequest("profile"))
    assert profiled.ci_method == "profile"
    for row, reference in zip(profiled.random, expected.random):
        assert row.ci_method == reference.ci_method
        assert row.ci == pytest.approx(reference.ci, rel=1e-6)
    assert "95% intervals: profile likelihood." in window.results_view.report_text.toPlainText()

    # The same seed gives the engine's intervals (computed here in this process).
    booted = fit_with(qtbot, window, IntervalRequest("bootstrap", reps=6, seed=4))
    expected = fit_mixed(frame, spec)
    apply_bootstrap_intervals(expected, frame, reps=6, seed=4, workers=1)
    assert booted.ci_method == "bootstrap" and booted.bootstrap.reps == 6
    for row, reference in zip(booted.fixed + booted.random, expected.fixed + expected.random):
        assert row.ci_method == "bootstrap" and row.ci == pytest.approx(reference.ci, rel=1e-9)


def test_cancel_stops_a_bootstrap(qtbot, main_window):
    window = main_window
    small_data(qtbot, window)
    view = window.model_view
    view.stop_checks()
    view.set_interval_request(IntervalRequest("bootstrap", reps=100_000, seed=1))
    with qtbot.waitSignal(window.job_runner.progress_changed, timeout=60_000,
                          check_params_cb=lambda job, message, fraction, detail: "bootstrap replicate" in message):
        view.fit_button.click()
    with qtbot.waitSignal(window.job_runner.job_cancelled, timeout=30_000):
        window.cancel_action.trigger()
    assert window.session.project.fits == []
