"""The Results tab's Test… dialog (joint Wald test of coefficients with the fit's df method) and the
Monte Carlo form's df-method choice."""

import pytest
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from engine.presets import get_preset
from gui.worker import JobRunner


def fit_with_kroger(qtbot, window):
    run_job(qtbot, window, window.design_view.simulate_button.click)
    view = window.model_view
    view.set_method("REML")
    combo = view.dfmethod_combo
    combo.setCurrentIndex(combo.findData("kroger"))
    combo.activated.emit(combo.currentIndex())
    run_job(qtbot, window, view.fit_button.click)
    return window.results_view.current_record.result


def test_test_dialog_gives_the_kenward_roger_f_of_the_ticked_coefficients(qtbot, main_window):
    window = main_window
    result = fit_with_kroger(qtbot, window)
    results_view = window.results_view
    assert results_view.test_button.isEnabled()
    # The comparison with the truth shows the mixed fit's Kenward-Roger t, df and p.
    table = results_view.comparison_table.table_model().frame
    treatment = result.fixed[0]
    df_row = table[table["Parameter"] == f"df of {treatment.term}"].iloc[0]
    mixed_column = next(column for column in table.columns if "Mixed" in column)
    assert df_row[mixed_column] == pytest.approx(treatment.df, rel=1e-9)
    dialog = results_view.open_joint_test()
    qtbot.addWidget(dialog)
    first = result.fixed[0]
    dialog.check([first.term])
    test = dialog.run_test()
    # One coefficient: Kenward-Roger's F is the square of its t, on (1, its df).
    assert test.F == pytest.approx(first.t ** 2, rel=1e-6)
    assert (test.df1, test.df2) == (1, pytest.approx(first.df, rel=1e-6))
    assert test.p == pytest.approx(first.p, rel=1e-6)
    assert f"F(1, {first.df:.2f})" in dialog.result_label.text() and "Kenward-Roger" in dialog.result_label.text()
    assert "Test of" in results_view.report_text.toPlainText()  # added to the shown report
    assert result.tests[-1] is test

    dialog.terms_edit.setText("nosuchterm")
    assert dialog.run_test() is None and "nosuchterm" in dialog.result_label.text()


def test_montecarlo_form_passes_its_df_method(qtbot):
    from gui.views.montecarlo_view import MonteCarloView

    runner = JobRunner("montecarlo-ddf-test")
    view = MonteCarloView(runner)
    qtbot.addWidget(view)
    design = get_preset("cluster_trial").with_units("school_id", 4).with_units("student_id", 3)
    view.set_design(design)
    view.set_models(["score treated || school_id:"])  # ML: Kenward-Roger refuses it
    combo = view.dfmethod_combo
    assert combo.currentData() is None and view.study().dfmethod is None
    combo.setCurrentIndex(combo.findData("kroger"))
    assert view.study().dfmethod == "kroger"
    failures = []
    view.study_failed.connect(failures.append)
    with qtbot.waitSignal(runner.busy_changed, timeout=30_000, check_params_cb=lambda busy: not busy):
        view.run()
    assert failures and "requires REML" in failures[0] and "score treated || school_id:" in failures[0]
    assert runner.shutdown(30_000)


def test_compare_models_tab_shows_the_f_test_of_the_chosen_df_method(qtbot):
    from pathlib import Path

    import pandas as pd

    from engine.model_spec import ModelSpec
    from gui.views.model_comparison_view import ModelComparisonView

    runner = JobRunner("comparison-ddf-test")
    view = ModelComparisonView(runner)
    qtbot.addWidget(view)
    view.set_data(pd.read_csv(Path(__file__).resolve().parent / "data" / "crt10.csv"))
    view.set_models([ModelSpec.parse("y x || school:, reml"), ModelSpec.parse("y treat x || school:, reml")])
    view.dfmethod_combo.setCurrentIndex(view.dfmethod_combo.findData("kroger"))
    with qtbot.waitSignal(view.comparison_finished, timeout=60_000) as blocker:
        assert view.compare() is not None, view.status_label.text()
    assert blocker.args[0].fixed_tests
    table = view.fixed_tests_model.frame
    # pbkrtest's Kenward-Roger t of treat in the larger model (tests/reference/ddf_crt10_reml.json), squared.
    assert list(table["Added"]) == ["treat"]
    assert table["F"].iloc[0] == pytest.approx(0.109978304429505 ** 2, rel=1e-4)
    assert table["df2"].iloc[0] == pytest.approx(8.02232952201739, rel=1e-3)
    assert runner.shutdown(30_000)
