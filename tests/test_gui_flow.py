"""The whole flow, headless: design, simulate, build and check the model, fit by REML and ML,
read the tables (the engine's numbers), export, save and reopen, cancel, and see errors."""

import numpy as np
import pandas as pd
import pytest
from test_gui_support import main_window, run_job, wait_for_nesting_check  # noqa: F401  (fixture)

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.project import Project
from gui.tables.design_models import LevelTableModel
from gui.jobs import IterationReport
from gui.main_window import MainWindow, isolated_settings

ALL_LEVELS = ["dist_id", "school_id", "teach_id", "student_id"]
MODEL = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:"


def set_level_cell(window, row, column, text):
    model = window.design_view.level_model
    assert model.setData(model.index(row, column), text, Qt.ItemDataRole.EditRole)


def simulate(qtbot, window):
    return run_job(qtbot, window, window.design_view.simulate_button.click)


def table(view) -> pd.DataFrame:
    return view.table_model().frame


def assert_tables_match(window, expected):
    """The result tables hold exactly the engine's numbers, and show them rounded."""
    results = window.results_view
    fixed = table(results.fixed_table)
    assert list(fixed["Term"]) == [row.term for row in expected.fixed]
    np.testing.assert_allclose(fixed["Coef."], [row.coef for row in expected.fixed], rtol=1e-9)
    np.testing.assert_allclose(fixed["Std. Err."], [row.se for row in expected.fixed], rtol=1e-9)
    random = table(results.random_table)
    assert list(random["Parameter"]) == [row.param for row in expected.random]
    np.testing.assert_allclose(random["Estimate"], [row.estimate for row in expected.random], rtol=1e-7)
    groups = table(results.groups_table)
    assert list(groups["Groups"]) == [g.groups for g in expected.groups]
    model = results.fixed_table.table_model()
    assert model.data(model.index(0, 1)) == f"{expected.fixed[0].coef:.4f}"
    assert f"{expected.loglik:.8g}" in results.report_text.toPlainText()


def test_design_simulate_fit_export_save_and_reopen(qtbot, main_window, tmp_path):
    window = main_window
    # 1. Design: 6 districts instead of 5, a larger student sd.
    set_level_cell(window, 0, LevelTableModel.UNITS, "6")
    set_level_cell(window, 3, LevelTableModel.SD, "4.5")
    assert window.design_view.rows_label.text() == "Expected rows: 9,600"
    simulated = simulate(qtbot, window)
    frame = simulated.frame
    assert len(frame) == 9600 and window.data_view.model.rowCount() == 9600
    assert "true_u_dist_id" not in window.data_view.model.columns  # truth hidden by default
    assert simulated.truth.random["student_id:sd(_cons)"] == 4.5

    # 2. Model builder: the live commands and the nesting check.
    view = window.model_view
    check = wait_for_nesting_check(qtbot, window)
    assert [g.groups for g in check.groups] == [6, 30, 240, 4800] and check.warnings == []
    assert view.stata_text.toPlainText() == f"mixed {MODEL}, reml"
    assert view.lme4_text.toPlainText().startswith("perform ~ tutoring + (1 | dist_id) + (1 | dist_id:school_id)")

    view.set_level_order(list(reversed(ALL_LEVELS)))  # the seed's mistake
    check = wait_for_nesting_check(qtbot, window)
    assert any("nesting order looks reversed" in warning for warning in check.warnings)
    assert "looks reversed" in view.nesting_status.text()
    assert view.stata_text.toPlainText().startswith("mixed perform tutoring || student_id:")
    view.level_list.setCurrentRow(3)
    for _ in range(3):  # dist_id back to the top with the Move up button
        view.level_up_button.click()
    view.set_level_order(ALL_LEVELS)
    assert view.level_order() == ALL_LEVELS
    check = wait_for_nesting_check(qtbot, window)
    assert check.warnings == []

    # 3. Fit by REML, then ML: the tables show what fit_mixed gives for the same data and spec.
    run_job(qtbot, window, view.fit_button.click)
    assert_tables_match(window, fit_mixed(frame, ModelSpec.parse(MODEL, method="REML")))
    assert window.tabs.currentWidget() is window.results_view
    view.set_method("ML")
    assert view.stata_text.toPlainText() == f"mixed {MODEL}"
    run_job(qtbot, window, view.fit_button.click)
    expected_ml = fit_mixed(frame, ModelSpec.parse(MODEL, method="ML"))
    assert_tables_match(window, expected_ml)
    assert [r.label for r in window.session.project.fits] == [
        "#1 Mixed REML: dist_id > school_id > teach_id > student_id",
        "#2 Mixed ML: dist_id > school_id > teach_id > student_id"]
    comparison = table(window.results_view.comparison_table)
    assert "Truth" in comparison.columns

    # 4. Export a table and a plot.
    fixed_view = window.results_view.fixed_table
    written = pd.read_csv(fixed_view.export_to(tmp_path / "fixed.csv"))
    np.testing.assert_allclose(written["Coef."], [row.coef for row in expected_ml.fixed], rtol=1e-12)
    assert "\\begin{tabular}" in fixed_view.export_to(tmp_path / "fixed.tex").read_text()
    assert "<table" in fixed_view.export_to(tmp_path / "fixed.html").read_text()
    window.tabs.setCurrentWidget(window.plots_view)
    plots = window.plots_view
    for panel in plots.panels():
        plots.show_panel(panel)
        if panel is plots.margins_plot:  # computed on a worker
            qtbot.waitUntil(panel.has_plot, timeout=60_000)
        assert panel.has_plot(), f"{panel.title}: {panel.message_label.text()}"
    png = plots.sd_plot.export(tmp_path / "sd.png")
    assert not QImage(str(png)).isNull() and QImage(str(png)).width() >= 800
    assert "<svg" in plots.share_plot.export(tmp_path / "shares.svg").read_text()[:2000]
    plots.caterpillar_plot.choose_level("teach_id")
    assert "240 groups" in plots.caterpillar_plot.canvas.ci.getItem(0, 0).titleLabel.text

    # 5. Save, reopen in a new window: same design, data, model and fits.
    path = tmp_path / "study.hlmproj"
    assert window.save_project_to(path)
    assert not window.session.modified and window.windowTitle().startswith("study.hlmproj —")
    assert str(path.resolve()) in window.settings.recent_files()
    reopened = MainWindow(settings=isolated_settings(tmp_path / "other.ini"))
    try:
        run_job(qtbot, reopened, lambda: reopened.open_project(path))
        assert reopened.design_view.design == window.design_view.design
        assert reopened.design_view.seed() == window.design_view.seed()
        pd.testing.assert_frame_equal(reopened.session.frame, frame)
        assert reopened.model_view.spec == window.model_view.spec
        assert [r.label for r in reopened.session.project.fits] == [r.label for r in window.session.project.fits]
        assert_tables_match(reopened, expected_ml)
        assert Project.load(path).fits[1].result.loglik == expected_ml.loglik
    finally:
        reopened.session.set_modified(False)
        reopened.shutdown()
        reopened.close()


def test_cancel_stops_a_long_fit(qtbot, main_window):
    window = main_window
    set_level_cell(window, 0, LevelTableModel.UNITS, "500")  # 800,000 rows
    simulate(qtbot, window)
    window.model_view.stop_checks()
    with qtbot.waitSignal(window.job_runner.progress_changed, timeout=30_000,
                          check_params_cb=lambda job, message, fraction, detail: isinstance(detail, IterationReport)):
        window.model_view.fit_button.click()
    assert window.progress_panel.isVisible() and window.cancel_action.isEnabled()
    with qtbot.waitSignal(window.job_runner.job_cancelled, timeout=10_000):
        window.cancel_action.trigger()  # Esc
    assert window.session.project.fits == [] and window.results_view.history_list.count() == 0
    assert not window.progress_panel.isVisible()
    assert "cancelled" in window.statusBar().currentMessage()
    assert window.error_bar.text() == ""


def test_levels_reorder_by_drag_and_drop(qtbot, main_window):
    window = main_window
    simulate(qtbot, window)
    view = window.model_view
    model = view.level_list.model()
    # What an internal drag of the list does: move the row within the model.
    assert model.moveRow(model.index(0, 0).parent(), 3, model.index(0, 0).parent(), 0)
    assert view.level_order() == ["student_id", "dist_id", "school_id", "teach_id"]
    assert view.spec.level_names == ["student_id", "dist_id", "school_id", "teach_id"]
    check = wait_for_nesting_check(qtbot, window)
    assert check.level_names == view.spec.level_names and check.warnings


def test_closing_during_a_fit_stops_every_thread(qtbot, tmp_path):
    window = MainWindow(settings=isolated_settings(tmp_path / "close.ini"))
    window.show()
    set_level_cell(window, 0, LevelTableModel.UNITS, "500")
    simulate(qtbot, window)
    with qtbot.waitSignal(window.job_runner.progress_changed, timeout=30_000,
                          check_params_cb=lambda job, message, fraction, detail: isinstance(detail, IterationReport)):
        window.model_view.fit_button.click()
    window.session.set_modified(False)
    window.close()
    runners = (window.job_runner, window.check_runner, window.summary_runner)
    assert not any(runner.is_running for runner in runners)


def test_engine_errors_are_shown_in_the_command_line_words(qtbot, main_window):
    window = main_window
    frame = simulate(qtbot, window).frame
    view = window.model_view
    typed = view.spec.replace(fixed=[*view.spec.fixed, "no_such_column"])
    qtbot.keyClicks(view.extra_terms_edit, "no_such_column")
    with pytest.raises(UserInputError) as caught:
        fit_mixed(frame, typed)
    # The form knows the data's columns: the fit's words come before Fit (and Ctrl+R shows them).
    assert view.spec is None and view.current_error() == str(caught.value)
    window.fit_action.trigger()
    assert window.error_bar.text() == str(caught.value)
    assert view.extra_terms_edit.text() == "no_such_column"  # what was typed is still there


def test_model_problems_are_shown_before_fitting(qtbot, main_window):
    window = main_window
    simulate(qtbot, window)
    view = window.model_view
    view.level_list.setCurrentRow(0)
    view.intercept_check.setChecked(False)
    assert view.spec is None and "noconstant" in view.current_error()
    assert not view.fit_button.isEnabled()
    assert "noconstant" in view.intercept_check.toolTip()
    view.intercept_check.setChecked(True)
    assert view.spec is not None and view.fit_button.isEnabled()


def test_open_a_data_file_and_fit_it(qtbot, main_window, tmp_path):
    window = main_window
    source = tmp_path / "seed_d5.csv"
    source.write_text(open("tests/data/seed_d5.csv").read())
    run_job(qtbot, window, lambda: window.open_data(source))  # offscreen: the dialog's guess is taken
    assert window.session.roles.ids == ALL_LEVELS and window.session.roles.outcome == "perform"
    assert window.data_view.model.rowCount() == 8000
    view = window.model_view
    assert view.spec.level_names == ALL_LEVELS and "tutoring" in view.spec.fixed
    view.set_estimators(["mixed", "ols", "fe", "re"])
    run_job(qtbot, window, view.fit_button.click)
    assert window.results_view.history_list.count() == 4
    comparison = table(window.results_view.comparison_table)
    assert "Truth" not in comparison.columns and len(comparison.columns) == 5


def test_exported_stata_file_comes_back_with_its_truth(qtbot, main_window, tmp_path):
    window = main_window
    frame = simulate(qtbot, window).frame
    written = run_job(qtbot, window, lambda: window.export_data(tmp_path / "tutoring.dta"))
    assert [p.name for p in written] == ["tutoring.dta", "tutoring.dta.truth.json"]
    run_job(qtbot, window, lambda: window.open_data(tmp_path / "tutoring.dta"))
    assert window.session.truth is not None and window.session.roles.ids == ALL_LEVELS
    assert len(window.session.frame) == len(frame)
    assert not any(name.startswith("true_u_") for name in window.session.roles.predictors)
    # The model built on the simulated data still applies to the file: it is kept as it was.
    assert window.model_view.spec.fixed == ["tutoring"] and window.model_view.extra_terms_edit.text() == ""
    run_job(qtbot, window, window.model_view.fit_button.click)
    comparison = table(window.results_view.comparison_table)
    assert list(comparison["Truth"].dropna())[:1] == [2.0]  # the tutoring effect


def test_new_project_and_recent_files_menu(qtbot, main_window, tmp_path):
    window = main_window
    simulate(qtbot, window)
    run_job(qtbot, window, window.model_view.fit_button.click)
    path = tmp_path / "first.hlmproj"
    assert window.save_project_to(path)
    window.new_project()
    assert window.session.frame is None and window.session.project.fits == []
    assert window.results_view.history_list.count() == 0 and window.data_view.model.rowCount() == 0
    assert window.design_view.design.name == "tutoring" and window.windowTitle().startswith("untitled")
    assert not window.model_view.fit_button.isEnabled()
    window._fill_recent_menu()
    actions = [a for a in window.recent_menu.actions() if a.toolTip() == str(path.resolve())]
    assert len(actions) == 1
    run_job(qtbot, window, actions[0].trigger)  # reopens it
    assert window.session.path == path and window.results_view.history_list.count() == 1


def test_help_shortcuts_and_tooltips(qtbot, main_window):
    from PySide6.QtWidgets import (QCheckBox, QComboBox, QLineEdit, QListWidget, QPushButton, QRadioButton,
                                   QSpinBox)

    from engine import __version__
    from gui.dialogs.help_dialogs import about_text

    window = main_window
    shortcuts = {action.text(): action.shortcut().toString() for action in window.actions()}
    assert shortcuts["&Simulate"] == "F5" and shortcuts["&Fit model"] == "Ctrl+R"
    assert shortcuts["&Save project"] == "Ctrl+S" and shortcuts["&Open project…"] == "Ctrl+O"
    assert shortcuts["&Cancel"] == "Esc"
    guide = window.show_guide()
    qtbot.addWidget(guide)
    text = guide.browser.toPlainText()
    assert "Nesting order" in text and "REML or ML" in text and "Reading the tables" in text
    assert __version__ in about_text()
    missing = []
    for view in (window.design_view, window.model_view):
        for kind in (QLineEdit, QComboBox, QCheckBox, QSpinBox, QPushButton, QRadioButton, QListWidget):
            for widget in view.findChildren(kind):
                if not widget.toolTip() and not isinstance(widget.parent(), (QComboBox, QSpinBox)):
                    missing.append(f"{type(widget).__name__} {widget.objectName() or widget.text() if hasattr(widget, 'text') else ''}")
    assert missing == []
    assert "REML" in window.model_view.method_buttons["REML"].toolTip()
    assert "above" in window.design_view.level_model.headerData(1, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)


def test_window_layout_is_remembered(qtbot, tmp_path):
    settings_path = tmp_path / "layout.ini"
    first = MainWindow(settings=isolated_settings(settings_path))
    first.resize(760, 540)  # within the offscreen screen (800 x 600), which clamps bigger windows
    first.show()
    qtbot.waitExposed(first)
    size = first.size()
    first.close()
    assert not first.settings.get("window/geometry").isEmpty()
    second = MainWindow(settings=isolated_settings(settings_path))
    fresh = MainWindow(settings=isolated_settings(tmp_path / "fresh.ini"))
    try:
        assert second.size() == size and fresh.size() != size
    finally:
        for window in (second, fresh):
            window.shutdown()
            window.close()


def test_self_test_and_no_display(monkeypatch, capsys):
    from gui import launch as launch_module

    assert launch_module.launch(self_test=True) == 0
    assert "self-test passed" in capsys.readouterr().out
    monkeypatch.setattr(launch_module.sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert launch_module.launch() == 1
    assert "xvfb-run" in capsys.readouterr().err


def test_criterion_plot_follows_a_running_fit(qtbot, main_window):
    window = main_window
    set_level_cell(window, 0, LevelTableModel.UNITS, "100")  # 160,000 rows: slow enough to watch
    simulate(qtbot, window)
    window.tabs.setCurrentWidget(window.plots_view)
    window.plots_view.show_panel(window.plots_view.iteration_plot)
    plot = window.plots_view.iteration_plot
    seen = []
    window.job_runner.progress_changed.connect(
        lambda job, message, fraction, detail: isinstance(detail, IterationReport) and seen.append(
            plot.has_plot() and "running" in plot.canvas.ci.getItem(0, 0).titleLabel.text))
    run_job(qtbot, window, window.model_view.fit_button.click)
    assert seen and all(seen)


def test_centring_in_the_model_tab_reproduces_the_hsb_slopes_reference(qtbot, main_window, tmp_path):
    """Group-mean centring chosen in the Model tab, a random slope on the new column, REML: the
    window's fit equals lme4's (tests/reference/hsb_slopes_reml.json)."""
    import json

    from engine.model_spec import ModelSpec

    window = main_window
    source = tmp_path / "hsb.csv"
    source.write_text(open("tests/data/hsb.csv").read())
    run_job(qtbot, window, lambda: window.open_data(source))
    view = window.model_view
    editor = view.centering_editor
    editor.set_row(editor.add_row(), name="ses_c", variable="ses", kind="group", level="school")
    assert view.spec is not None and [c.name for c in view.spec.centering] == ["ses_c"]
    assert "* ses_c = ses - mean of ses within school" in view.stata_text.toPlainText()
    wanted = ModelSpec.parse("mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, "
                             "covariance(unstructured) reml")
    view.set_spec(wanted.replace(centering=view.spec.centering))
    assert "ses_c" in view._candidate_variables()
    view.set_estimators(["mixed"])
    run_job(qtbot, window, view.fit_button.click)
    result = window.session.project.fits[-1].result
    reference = json.load(open("tests/reference/hsb_slopes_reml.json"))
    assert abs(result.loglik - reference["loglik"]) < 1e-6 * abs(reference["loglik"])
    slope_sd = result.random_param("school", "sd(ses_c)").estimate
    assert abs(slope_sd - reference["random"]["school:ses_c"]["sd"]) < 1e-3 * reference["random"]["school:ses_c"]["sd"]
