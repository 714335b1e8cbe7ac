"""The Results tab's ICC & R² table holds the fit's intraclass correlations, R² and reliabilities."""

import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.project import FitRecord
from engine.panel import fit_ols
from gui.views.results_view import ResultsView
from tests.reference_cases import DATA


def test_icc_r2_tab_shows_the_fits_numbers(qtbot):
    hsb = pd.read_csv(DATA / "hsb.csv")
    fit = fit_mixed(hsb, ModelSpec.parse("mathach meanses || school:", method="REML"))
    view = ResultsView()
    qtbot.addWidget(view)
    view.set_history([FitRecord("meanses", fit)])
    frame = view.variance_summary_table.table_model().frame
    assert list(frame["Statistic"]) == ["ICC", "R² marginal", "R² conditional", "Reliability"]
    tau, sigma2 = (row.estimate for row in fit.random_variances)
    icc = frame.iloc[0]
    assert icc["Level"] == "school" and icc["Estimate"] == pytest.approx(tau / (tau + sigma2), rel=1e-12)
    assert icc["Std. Err."] == fit.icc[0].se and [icc["95% CI low"], icc["95% CI high"]] == fit.icc[0].ci
    assert frame.iloc[1]["Estimate"] == fit.r2["marginal"] and frame.iloc[2]["Estimate"] == fit.r2["conditional"]
    assert round(frame.iloc[3]["Estimate"], 3) == 0.740  # Raudenbush & Bryk (2002), Table 4.3
    assert view.variance_summary_table in view.table_views()

    ols = fit_ols(hsb, "mathach", ["ses"])  # its R² is the OLS one, not Nakagawa's: no rows
    view.set_history([FitRecord("ols", ols)])
    assert view.variance_summary_table.table_model().frame.empty
