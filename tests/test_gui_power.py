"""The Power tab: the engine's analytic answer for the form and for the Design tab's design."""

import os
from pathlib import Path

import numpy as np
import pytest
from test_gui_support import main_window  # noqa: F401  (fixture)

from engine.power.analytic import TrialPlan
from engine.power.from_design import plan_from_design
from engine.presets import get_preset

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_form_shows_the_engine_answer_and_curve(qtbot):
    from gui.views.power_view import PowerView

    view = PowerView()
    qtbot.addWidget(view)
    view.kind.setCurrentIndex(view.kind.findData("crt3"))
    view.units.setText("30, 4, 20")
    view.icc.setText("0.1, 0.05")
    view.r2.setText("0.4, 0.2, 0.3")
    view.covariates.setText("1")
    view.effect.setText("0.25")
    view.compute_button.click()
    expected = TrialPlan("crt3", [30, 4, 20], [0.1, 0.05], effect=0.25, r2=[0.4, 0.2, 0.3], covariates_top=1)
    assert view.plan == expected
    assert f"Power for effect 0.25 sd: {expected.power():.4f}" in view.report.toPlainText()
    assert f"MDES at power 0.8: {expected.mdes():.4f} sd" in view.report.toPlainText()
    curve = view.curve
    at = np.flatnonzero(curve.curve_x == 30)
    assert at.size == 1 and curve.curve_y[at[0]] == pytest.approx(expected.power(), rel=1e-12)
    assert np.all(np.diff(curve.curve_y) > 0)  # more schools, more power


def test_bad_field_is_reported_and_kept(qtbot):
    from gui.views.power_view import PowerView

    view = PowerView()
    qtbot.addWidget(view)
    messages = []
    view.failed.connect(messages.append)
    view.icc.setText("0.1, lots")
    view.compute_button.click()
    assert messages == ["ICC: write numbers separated by commas, got '0.1, lots'"]
    assert view.icc.text() == "0.1, lots" and view.plan is None
    assert view.report.toPlainText().startswith("error: ICC")


def test_from_the_design_uses_the_design_tab(qtbot, main_window):
    window = main_window
    window.design_view.load_preset("cluster_trial")
    window.design_view.design.level("school_id").units.n = 16
    window.tabs.setCurrentWidget(window.power_view)
    window.power_view.from_design_button.click()
    expected, _ = plan_from_design(get_preset("cluster_trial").with_units("school_id", 16))
    plan = window.power_view.plan
    assert plan.design == "crt2" and plan.units == [16, 25]
    assert plan.power() == pytest.approx(expected.power(), rel=1e-12)
    # The form now shows the plan, so Compute gives the same answer.
    window.power_view.compute_button.click()
    assert window.power_view.plan.power() == pytest.approx(expected.power(), rel=1e-3)
    if os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
        qtbot.wait(50)
        window.grab().save(str(DOCS / "screenshot-power.png"))


def test_from_the_design_explains_a_design_without_formula(qtbot, main_window):
    window = main_window
    window.power_view.from_design_button.click()  # the tutoring design: no textbook formula
    assert "no textbook formula for a treatment on individuals" in window.error_bar.text()
    assert window.power_view.report.toPlainText().startswith("error: no textbook formula")
    assert window.power_view.plan is None
