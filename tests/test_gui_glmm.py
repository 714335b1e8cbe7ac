"""The window fits a binary outcome: family and link in the model builder, odds ratios in the
table, the predicted-probability plot; the numbers are the engine's (which match lme4)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec

MODEL = "melogit pass tutoring || dist_id: || school_id: || teach_id: || student_id:"


def test_binary_fit_from_the_model_tab(qtbot, main_window, tmp_path):
    window = main_window
    source = tmp_path / "seed_d5_binary.csv"
    source.write_text(open("tests/data/seed_d5_binary.csv").read())
    run_job(qtbot, window, lambda: window.open_data(source))
    view = window.model_view
    view.set_spec(ModelSpec.parse("mixed pass tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"))
    view.family_combo.setCurrentIndex(view.family_index("binomial", "logit"))
    view._on_family_changed()  # what choosing it with the mouse (activated) does
    assert view.method_buttons["ML"].isChecked()  # binary outcomes: maximum likelihood only
    assert not view.estimator_checks["fe"].isEnabled() and not view.estimator_checks["re"].isEnabled()
    assert view.estimator_checks["ols"].text() == "Pooled logit"  # the single-level model of the family
    # Profile and bootstrap intervals are for linear fits: only Wald can be chosen.
    items = view.interval_combo.model()
    assert [items.item(row).isEnabled() for row in range(view.interval_combo.count())] == [True, False, False]
    assert view.interval_combo.currentData() == "wald"
    view.eform_check.setChecked(True)
    assert view.spec.to_stata() == MODEL + ", intpoints(1) or"
    assert view.stata_text.toPlainText() == MODEL + ", intpoints(1) or"
    view.nagq_spin.setValue(7)  # quadrature needs one level: refused at the field
    assert view.spec is None and "intpoints" in view.nagq_spin.toolTip()
    view.nagq_spin.setValue(1)
    run_job(qtbot, window, view.fit_button.click)
    expected = fit_mixed(pd.read_csv(source), ModelSpec.parse(MODEL + ", or"))
    fixed = window.results_view.fixed_table.table_model().frame
    assert "Odds ratio" in fixed.columns
    np.testing.assert_allclose(fixed["Odds ratio"], [row.coef for row in expected.fixed_eform], rtol=1e-6)
    assert "Mixed-effects logistic regression" in window.results_view.report_text.toPlainText()
    window.results_view.history_list.setCurrentRow(0)
    window.tabs.setCurrentWidget(window.results_view)
    tabs = window.results_view.tabs
    tabs.setCurrentIndex([tabs.tabText(i) for i in range(tabs.count())].index("Fixed effects"))
    shoot(qtbot, window, tmp_path, "binary-results")
    plots = window.plots_view
    window.tabs.setCurrentWidget(plots)
    plots.show_panel(plots.probability_plot)
    plots.probability_plot.draw(plots._context)
    assert plots.probability_plot.has_plot()
    shoot(qtbot, window, tmp_path, "binary-plot")


def shoot(qtbot, window, folder, name):
    """A screenshot in the test's folder; with HLM_UPDATE_SCREENSHOTS=1 also in docs/ (the README's)."""
    qtbot.wait(50)
    assert window.grab().save(str(folder / f"{name}.png"))
    if os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
        window.grab().save(str(Path(__file__).resolve().parent.parent / "docs" / f"screenshot-{name}.png"))


def test_design_form_simulates_a_binary_outcome(qtbot, main_window):
    window = main_window
    design_view = window.design_view
    design_view.load_preset("tutoring_binary")
    assert design_view.family_combo.currentText() == "Binary (logit)"
    assert not design_view.residual_field.isEnabled()
    frame = run_job(qtbot, window, design_view.simulate_button.click).frame
    assert set(frame["pass"].unique()) == {0, 1}
    spec = window.model_view.spec  # the model follows the design's outcome type
    assert (spec.family, spec.link, spec.method) == ("binomial", "logit", "ML")
    assert window.model_view.family_combo.currentText().startswith("Binary 0/1, logit")
    # Monte Carlo's model is the model builder's: the GLMM, not a linear model of the 0/1 outcome
    assert window.montecarlo_view.model_texts() == [spec.to_stata()]
    assert spec.to_stata().startswith("melogit pass tutoring || ")
    design_view.family_combo.setCurrentIndex(3)
    design_view._set_family(3)  # what choosing it with the mouse (activated) does
    assert (design_view.design.family, design_view.design.link) == ("poisson", "log")
    frame = run_job(qtbot, window, design_view.simulate_button.click).frame
    assert frame["pass"].max() > 1


def test_results_comparison_of_binary_fits_holds_only_glmms_against_the_latent_truth():
    """The Results tab's comparison of a binary fit: the GLMM is named by its estimator string
    and compared with the latent-scale truth; a linear fit of the same 0/1 outcome gets no truth."""
    from engine.compare import comparison_of_results
    from engine.panel import fit_ols
    from engine.presets import get_preset
    from engine.simulate import simulate
    from gui.jobs import estimator_text
    from gui.tables.comparison import comparison_legend, comparison_of, comparison_table

    data = simulate(get_preset("tutoring_binary").with_units("dist_id", 2), seed=3)
    spec = ModelSpec.parse("melogit pass tutoring || school_id: || student_id:")
    assert estimator_text(spec, "mixed") == "melogit || school_id: || student_id:, intpoints(1)"
    assert estimator_text(ModelSpec.parse("meprobit pass tutoring"), "mixed") == "probit"
    glmm = fit_mixed(data.frame, spec, predict=False)
    glmm.name = estimator_text(spec, "mixed")
    ols = fit_ols(data.frame, "pass", ["tutoring"])
    ols.name = "ols"
    comparison = comparison_of([glmm, ols], data.truth, ["tutoring"])
    assert comparison is not None
    table = comparison_table(comparison)
    coverage = table.loc[table["Parameter"] == "95% CI covers truth"].iloc[0]
    low, high = glmm.coef("tutoring").ci
    assert coverage["(1) melogit"] == ("yes" if low <= 0.5 <= high else "no")
    assert pd.isna(coverage["(2) OLS"])  # blank, not "no"
    assert table.loc[table["Parameter"] == "tutoring", "(1) melogit"].item() == glmm.coef("tutoring").coef
    assert "Note (2): linear probability model: not comparable" in comparison_legend(comparison)
    assert comparison_of_results([glmm], data.truth, ["tutoring"]).table[0].truth_note is None


def test_pooled_model_beside_the_mixed_one_is_the_family_s_single_level_model(qtbot, main_window, tmp_path):
    """Ticking the pooled estimator for a binary outcome fits Stata's logit (probit) of the same
    predictors, whose numbers are statsmodels' maximum-likelihood fit; back on a continuous
    outcome the same box is OLS again."""
    import statsmodels.api as sm

    window = main_window
    source = tmp_path / "seed_d5_binary.csv"
    source.write_text(open("tests/data/seed_d5_binary.csv").read())
    run_job(qtbot, window, lambda: window.open_data(source))
    view = window.model_view
    view.set_spec(ModelSpec.parse("mixed pass tutoring || school_id:"))
    frame = pd.read_csv(source)
    design = sm.add_constant(frame[["tutoring"]])
    for family_link, label, name, glm in [(("binomial", "probit"), "Pooled probit", "probit", sm.Probit),
                                          (("binomial", "logit"), "Pooled logit", "logit", sm.Logit)]:
        view.family_combo.setCurrentIndex(view.family_index(*family_link))
        view._on_family_changed()
        assert view.estimator_checks["ols"].text() == label
        view.estimator_checks["ols"].setChecked(True)
        batch = run_job(qtbot, window, view.fit_button.click)
        mixed, pooled = batch.results
        assert mixed.name.startswith(f"me{name} || school_id:") and pooled.name == name
        expected = glm(frame["pass"], design).fit(disp=0)
        np.testing.assert_allclose([row.coef for row in pooled.fixed], expected.params.values[::-1], rtol=1e-6)
        np.testing.assert_allclose([row.se for row in pooled.fixed], expected.bse.values[::-1], rtol=1e-5)
        np.testing.assert_allclose(pooled.loglik, expected.llf, rtol=1e-9)
        assert not pooled.random
    view.family_combo.setCurrentIndex(view.family_index("gaussian", "identity"))
    view._on_family_changed()
    assert view.estimator_checks["ols"].text() == "OLS" and view.estimator_checks["fe"].isEnabled()
    items = view.interval_combo.model()
    assert all(items.item(row).isEnabled() for row in range(view.interval_combo.count()))
