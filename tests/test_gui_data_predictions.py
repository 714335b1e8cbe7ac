"""The Data tab shows the selected fit's predictions as columns (computed on the worker; a fit read
from a project is refitted for them) and refuses those of a fit of other data."""

import numpy as np
import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)
from test_gui_support import main_window  # noqa: F401  (fixture)

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.predictions import row_predictions
from engine.project import FitRecord
from engine.results import FitResult
from gui.views.data_view import DataView
from gui.worker import JobRunner
from tests.reference_cases import DATA

PREDICTIONS = ["in_sample", "xb", "re_school_ses", "re_school__cons", "fitted", "residual"]


@pytest.fixture
def view(qtbot):
    runner = JobRunner("test-data-view")
    widget = DataView(runner)
    qtbot.addWidget(widget)
    yield widget
    runner.shutdown()


def test_data_tab_shows_predictions_of_the_selected_fit(qtbot, view):
    hsb = pd.read_csv(DATA / "hsb.csv")
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses || school: ses"))
    view.set_data(hsb, "hsb")
    view.set_fit(FitRecord("slopes", fit))
    qtbot.waitUntil(lambda: "fitted" in view.model.columns, timeout=60_000)
    assert view.model.columns == [*hsb.columns, *PREDICTIONS]
    shown = view.model.visible_frame()  # what copy and export write
    expected = row_predictions(hsb, fit)
    for name in PREDICTIONS[1:]:
        np.testing.assert_allclose(shown[name], expected[name], rtol=0, atol=1e-12)
    assert view.summary_model.rowCount() == hsb.shape[1]  # the summaries ran first and are kept

    view.show_predictions_check.setChecked(False)
    assert view.model.columns == list(hsb.columns)
    view.show_predictions_check.setChecked(True)

    saved = FitResult.from_dict(fit.to_dict())  # a fit read from a project carries no predictions
    view.set_fit(FitRecord("saved", saved))
    assert "fitted" not in view.model.columns
    qtbot.waitUntil(lambda: "fitted" in view.model.columns, timeout=60_000)
    np.testing.assert_allclose(view.model.visible_frame()["fitted"], expected["fitted"], rtol=0, atol=1e-6)

    other = hsb.assign(mathach=hsb["mathach"] + 1)
    view.set_data(other, "changed outcome")
    qtbot.waitUntil(lambda: "other data" in view.predictions_status.text(), timeout=60_000)
    assert "fitted" not in view.model.columns

    view.set_fit(None)
    assert view.predictions_status.text() == "" and view.model.columns == list(other.columns)


def test_prediction_columns_never_hide_data_columns_of_the_same_name(qtbot, view):
    hsb = pd.read_csv(DATA / "hsb.csv").assign(fitted=-1.0)
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses || school:"))
    view.set_data(hsb, "with a column named fitted")
    view.set_fit(FitRecord("intercepts", fit))
    qtbot.waitUntil(lambda: "fitted_predicted" in view.model.columns, timeout=60_000)
    shown = view.model.visible_frame()
    assert (shown["fitted"] == -1.0).all()
    np.testing.assert_allclose(shown["fitted_predicted"], fit.fitted, rtol=0, atol=1e-10)


def test_window_shows_predictions_of_the_fit_just_made(qtbot, main_window):
    from test_gui_support import run_job

    window = main_window
    frame = run_job(qtbot, window, window.design_view.simulate_button.click).frame
    batch = run_job(qtbot, window, window.model_view.fit_button.click)
    (fit,) = [result for result in batch.results if result.estimator == "mixed"]
    qtbot.waitUntil(lambda: "fitted" in window.data_view.model.columns, timeout=60_000)
    shown = window.data_view.model.visible_frame()
    assert len(shown) == len(frame)
    np.testing.assert_allclose(shown["fitted"], fit.fitted, rtol=0, atol=1e-10)
    np.testing.assert_allclose(shown["residual"], fit.residuals, rtol=0, atol=1e-10)
