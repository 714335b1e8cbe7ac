"""The Plots tab's margins panel draws the engine's predictive margins: one line with its 95% band per
level of a factor over a continuous predictor, computed on a worker."""

import numpy as np
import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from engine.margins import interaction_margins
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.project import FitRecord
from gui.plots.base import PlotContext
from gui.plots.margins_plot import MarginsPlot
from gui.worker import JobRunner
from tests.reference_cases import DATA


@pytest.fixture
def panel(qtbot):
    runner = JobRunner("test-margins")
    widget = MarginsPlot(runner)
    widget.resize(900, 600)
    qtbot.addWidget(widget)
    yield widget
    runner.shutdown()


def test_margins_plot_draws_one_line_per_level(qtbot, panel, tmp_path):
    hsb = pd.read_csv(DATA / "hsb.csv")
    fit = fit_mixed(hsb, ModelSpec.parse("mathach i.sector##c.ses meanses || school:"))
    panel.draw(PlotContext(record=FitRecord("interaction", fit), frame=hsb))
    assert [panel.axis_combo.itemText(i) for i in range(panel.axis_combo.count())] == ["ses", "meanses"]
    assert panel.factor_combo.currentText() == "sector"
    qtbot.waitUntil(panel.has_plot, timeout=60_000)
    expected = interaction_margins(hsb, fit, "ses", "sector")
    assert set(panel.lines) == {"sector=0", "sector=1"}
    catholic = [row for row in expected.rows if row.at["sector"] == 1]
    line = panel.lines["sector=1"]
    np.testing.assert_allclose(line["x"], [row.at["ses"] for row in catholic])
    np.testing.assert_allclose(line["estimate"], [row.estimate for row in catholic], rtol=1e-12)
    np.testing.assert_allclose(line["low"], [row.ci[0] for row in catholic], rtol=1e-12)
    assert panel.export(tmp_path / "margins.png").stat().st_size > 1000

    panel.factor_combo.setCurrentText("(none)")
    panel.factor_combo.activated.emit(0)
    qtbot.waitUntil(lambda: set(panel.lines) == {"all"}, timeout=60_000)
    overall = interaction_margins(hsb, fit, "ses", None)
    np.testing.assert_allclose(panel.lines["all"]["estimate"], [row.estimate for row in overall.rows], rtol=1e-12)


def test_margins_plot_says_why_it_draws_nothing(qtbot, panel):
    panel.draw(PlotContext())
    assert not panel.has_plot() and "Fit a mixed model" in panel.message_label.text()
    hsb = pd.read_csv(DATA / "hsb.csv")
    fit = fit_mixed(hsb, ModelSpec.parse("mathach i.sector || school:"))
    panel.draw(PlotContext(record=FitRecord("factor only", fit), frame=hsb))
    assert "no continuous predictor" in panel.message_label.text()
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses || school:"))
    panel.draw(PlotContext(record=FitRecord("other data", fit), frame=hsb.assign(mathach=hsb["mathach"] + 1)))
    qtbot.waitUntil(lambda: "other data" in panel.message_label.text(), timeout=60_000)
