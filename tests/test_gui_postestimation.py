"""The Results tab's post-estimation pane runs a typed command on the selected fit, on a worker."""

import numpy as np
import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from engine.margins import Setting, contrast
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.project import FitRecord
from gui.views.results_view import ResultsView
from gui.worker import JobRunner
from tests.reference_cases import DATA


@pytest.fixture
def view(qtbot):
    runner = JobRunner("test-postestimation")
    widget = ResultsView(postestimation_runner=runner)
    qtbot.addWidget(widget)
    yield widget
    runner.shutdown()


def test_pane_shows_the_commands_table(qtbot, view):
    hsb = pd.read_csv(DATA / "hsb.csv")
    hsb["band"] = np.digitize(hsb["ses"], [-0.5, 0.5])
    fit = fit_mixed(hsb, ModelSpec.parse("mathach i.band c.ses || school:"))
    pane = view.postestimation_view
    view.set_history([FitRecord("bands", fit)])
    pane.set_data(hsb)
    pane.command_edit.setText("contrast pw.band, mcompare(bonferroni)")
    with qtbot.waitSignal(pane._runner.job_finished, timeout=60_000):
        pane.run_button.click()
    shown = pane.model.frame
    expected = contrast(hsb, fit, "band", pairwise=True, adjustment="bonferroni")
    assert list(shown.columns) == ["", "Estimate", "Std. Err.", "z", "P>|z|", "P (bonferroni)", "95% CI low",
                                   "95% CI high"]
    assert list(shown[""]) == ["1 vs 0", "2 vs 0", "2 vs 1"]
    np.testing.assert_allclose(shown["Estimate"], [row.estimate for row in expected.rows], rtol=0, atol=0)
    np.testing.assert_allclose(shown["P (bonferroni)"], [row.p_adjusted for row in expected.rows], rtol=0, atol=0)
    assert "Bonferroni" in pane.notes_label.text()
    view.tabs.setCurrentWidget(pane)
    assert view._current_table() is pane.table  # Copy and Export act on it

    pane.command_edit.setText("contrast band")
    with qtbot.waitSignal(pane._runner.job_failed, timeout=60_000):
        pane.run()
    assert "r.FACTOR" in pane.status_label.text() and pane.model.rowCount() == 0

    other = fit_mixed(hsb, ModelSpec.parse("mathach c.ses || school:"))
    view.set_history([FitRecord("other", other)])  # a new fit clears the old table
    assert pane.model.rowCount() == 0 and pane.table_result is None
