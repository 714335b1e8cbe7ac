"""The Compare Models tab: models are listed, reordered and removed; Compare runs the engine on
the worker and shows the LR test, AIC/BIC, ICCs, variance explained and the ML refit note."""

import os
from pathlib import Path

import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from engine.model_comparison import REML_FIXED_EFFECTS_NOTE, ModelComparison
from engine.model_spec import ModelSpec
from gui.worker import JobRunner

DATA = Path(__file__).resolve().parent / "data"
DOCS = Path(__file__).resolve().parent.parent / "docs"
EMPTY_MODEL = "mathach || school:, reml"
MEANSES_MODEL = "mathach meanses || school:, reml"


@pytest.fixture(scope="module")
def hsb():
    return pd.read_csv(DATA / "hsb.csv")


@pytest.fixture
def view(qtbot, hsb):
    from gui.views.model_comparison_view import ModelComparisonView

    runner = JobRunner("comparison-test")
    widget = ModelComparisonView(runner)
    widget.resize(1280, 820)
    widget.show()
    qtbot.addWidget(widget)
    widget.set_data(hsb)
    yield widget
    assert runner.shutdown(30_000)


def compare(qtbot, view) -> ModelComparison:
    failures = []
    view.comparison_failed.connect(failures.append)
    with qtbot.waitSignal(view.comparison_finished, timeout=60_000, raising=False) as blocker:
        assert view.compare() is not None, view.status_label.text()
    assert not failures, failures[0]
    assert blocker.signal_triggered
    return blocker.args[0]


def listed(view) -> list[str]:
    return [view.model_list.item(row).text() for row in range(view.model_list.count())]


def test_reml_models_with_different_fixed_effects_are_refitted_by_ml(qtbot, view, tmp_path):
    assert not view.compare_button.isEnabled()  # one model is not a comparison
    view.add_model(ModelSpec.parse(MEANSES_MODEL))
    view.model_edit.setText(EMPTY_MODEL)
    view.add_button.click()
    assert not view.add_model(ModelSpec.parse(EMPTY_MODEL))  # listed once
    assert [text.split()[0] for text in listed(view)] == ["A", "B"]
    view.move_model(1, -1)  # the smaller model first
    assert listed(view)[0] == "A   mixed mathach || school:, reml"
    comparison = compare(qtbot, view)

    assert comparison.refitted_by_ml and comparison.method == "ML" and comparison.fit_method == "REML"
    notes = view.notes_label.text()
    assert "Refitted by ML" in notes and "every model was refitted by ML" in notes and view.notes_label.isVisibleTo(view)
    models = view.models_model.visible_frame()
    assert list(models["Model"]) == ["A", "B"] and set(models["Method"]) == {"ML"}
    assert list(models.columns[:8]) == ["Model", "Command", "Method", "N", "Log-likelihood", "df", "AIC", "BIC"]
    assert models["Log-likelihood"].iloc[0] == pytest.approx(comparison.models[0].loglik)
    tests = view.tests_model.visible_frame()
    assert len(tests) == 1
    test = tests.iloc[0]
    assert (test["Restricted"], test["Full"], test["df"], test["Distribution"]) == ("A", "B", 1, "chi2(1)")
    assert test["Statistic"] == pytest.approx(156.70, abs=0.01) and test["p"] < 1e-30
    assert "fixed effect meanses" in test["Full adds"]
    icc = view.icc_model.visible_frame()
    assert list(icc["Model"]) == ["null model", "A", "B"]
    assert icc["ICC"].iloc[0] == pytest.approx(0.1804, abs=1e-4)
    assert (icc["95% CI low"] < icc["ICC"]).all() and (icc["ICC"] < icc["95% CI high"]).all()
    variance = view.variance_model.visible_frame()
    school_b = variance[(variance["Model"] == "B") & (variance["Level"] == "school")].iloc[0]
    assert school_b["Proportion explained"] == pytest.approx(0.6937, abs=1e-4)
    text = view.report_text.toPlainText()
    assert text == comparison.format() and "LR chi2(1)" in text and REML_FIXED_EFFECTS_NOTE[:40] in text
    assert "LR chi2" in text
    copied = view.tests_table.selection_text()
    assert copied.startswith("Restricted\tFull\tFull adds\tStatistic")

    qtbot.wait(50)
    assert view.grab().save(str(tmp_path / "screenshot-compare-models.png"))
    if os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
        view.grab().save(str(DOCS / "screenshot-compare-models.png"))


def test_a_random_intercept_test_uses_the_chibar2_mixture(qtbot, view):
    view.set_models([ModelSpec.parse("mathach ses"), ModelSpec.parse("mathach ses || school:")])
    comparison = compare(qtbot, view)
    assert not comparison.refitted_by_ml
    test = view.tests_model.visible_frame().iloc[0]
    assert test["Distribution"] == "chibar2 = 0.5 chi2(0) + 0.5 chi2(1)"


def test_list_editing_and_problems(qtbot, view):
    view.model_edit.setText("mathach ||| school")
    view.add_button.click()
    assert view.model_list.count() == 0 and "⚠" in view.model_edit.toolTip()
    view.set_models([ModelSpec.parse(EMPTY_MODEL), ModelSpec.parse(MEANSES_MODEL),
                     ModelSpec.parse("mathach meanses ses || school:, reml")])
    view.model_list.setCurrentRow(1)
    view.remove_button.click()
    assert [text.split(None, 1)[1] for text in listed(view)] == [
        "mixed mathach || school:, reml", "mixed mathach meanses ses || school:, reml"]
    assert [text.split()[0] for text in listed(view)] == ["A", "B"]
    view.set_data(None)
    assert not view.compare_button.isEnabled()
    assert view.compare() is None and "no data" in view.status_label.text()
    view.set_data(pd.DataFrame({"mathach": [1.0, 2.0], "school": [1, 1]}))
    view.set_models([ModelSpec.parse(EMPTY_MODEL), ModelSpec.parse(MEANSES_MODEL)])
    failures = []
    view.comparison_failed.connect(failures.append)
    with qtbot.waitSignal(view.job_runner.busy_changed, timeout=30_000, check_params_cb=lambda busy: not busy):
        view.compare()
    assert failures and "meanses" in failures[0] and failures[0] in view.status_label.text()


def test_nested_vs_crossed_lists_the_glmms_of_a_binary_design(qtbot):
    """A pass/fail design with neighbourhoods crossed with schools: the button lists melogit models
    (ML, Laplace), not linear REML ones, and the tab shows the engine's numbers for them."""
    from engine.compare import nested_and_crossed_models
    from engine.model_comparison import compare_models
    from engine.simulate import simulate
    from gui.views.model_comparison_view import ModelComparisonView, components_table
    from test_compare_binary import binary_neighbourhoods

    design = binary_neighbourhoods()
    data = simulate(design, seed=2)
    runner = JobRunner("comparison-binary-test")
    view = ModelComparisonView(runner)
    qtbot.addWidget(view)
    try:
        view.set_data(data.frame, data.truth)
        view.nested_crossed_button.click()
        assert [spec.to_stata() for spec in view.models()] == [
            "melogit score ses || dist_id: || school_id:, intpoints(1)",
            "melogit score ses || dist_id: || _all: R.neigh_id || school_id:, intpoints(1)"]
        shown = compare(qtbot, view)
        engine = compare_models(data.frame, nested_and_crossed_models(design), truth=data.truth)
        table = components_table(shown)
        assert table["Truth"].tolist() == [0.3, 0.5, 0.0, 0.7]  # latent-scale sds; no residual row
        for row in engine.components:
            for label, value in row.estimates.items():
                assert table.loc[table["Parameter"] == row.key, label].item() == pytest.approx(value, rel=1e-8)
        assert shown.tests[0].stat == pytest.approx(engine.tests[0].stat, rel=1e-8)
    finally:
        assert runner.shutdown(30_000)
