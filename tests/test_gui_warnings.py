"""Warnings where the eye is: a fit's warnings open its report, mark it in the fits list and on
the Fixed effects table; the Model tab's nesting check says when ids look crossed."""

import pandas as pd
from test_gui_support import main_window, run_job, wait_for_nesting_check  # noqa: F401  (fixture)

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.project import ColumnRoles, FitRecord
from tests.reference_cases import DATA


def test_a_fit_with_warnings_is_marked_in_the_list_and_on_the_fixed_effects_table(qtbot):
    from gui.views.results_view import ResultsView

    penicillin = pd.read_csv(DATA / "penicillin.csv")
    warned = fit_mixed(penicillin, ModelSpec.parse("diameter || plate: || sample:, reml"), predict=False)
    hsb = pd.read_csv(DATA / "hsb.csv")
    clean = fit_mixed(hsb, ModelSpec.parse("mathach ses || school:, reml"), predict=False)
    assert warned.warnings and not clean.warnings
    view = ResultsView()
    qtbot.addWidget(view)
    view.show()
    view.set_history([FitRecord(label="#1 warned", result=warned, run=1),
                      FitRecord(label="#2 clean", result=clean, run=2)])
    warned_item, clean_item = view.history_list.item(0), view.history_list.item(1)
    assert not warned_item.icon().isNull() and clean_item.icon().isNull()
    assert "⚠ sample looks crossed with plate" in warned_item.toolTip()
    assert "Warnings" not in clean_item.toolTip()
    fixed_tab = view.tabs.indexOf(view.fixed_table)
    # The clean fit (selected, newest): no mark anywhere.
    assert view.current_record.result is clean
    assert view.warnings_label.isHidden() and view.tabs.tabIcon(fixed_tab).isNull()
    # The warned fit: the strip above the tables, the tab's icon and tooltip, the report's first lines.
    view.select(view._records[0])
    assert view.warnings_label.isVisible()
    assert view.warnings_label.text() == (
        "⚠ This fit has 2 warnings (the report starts with them; hover for all): sample looks crossed with plate, "
        "not nested in it; Level sample has one observation per group")
    assert all(w in view.warnings_label.toolTip() for w in warned.warnings)
    assert not view.tabs.tabIcon(fixed_tab).isNull()
    assert all(w in view.tabs.tabToolTip(fixed_tab) for w in warned.warnings)
    assert view.report_text.toPlainText().startswith("Warning: sample looks crossed with plate")
    view.select(view._records[1])
    assert view.warnings_label.isHidden() and view.tabs.tabIcon(fixed_tab).isNull()


def test_the_model_tab_says_when_ids_look_crossed(qtbot, main_window):
    window = main_window
    roles = ColumnRoles(outcome="diameter", predictors=[], ids=["plate", "sample"])
    run_job(qtbot, window, lambda: window.open_data(DATA / "penicillin.csv", roles))
    check = wait_for_nesting_check(qtbot, window)
    assert [g.groups for g in check.groups] == [24, 144]
    assert any(w.startswith("sample looks crossed with plate, not nested in it") for w in check.warnings)
    assert "sample looks crossed with plate" in window.model_view.nesting_status.text()
    # The fit still runs, and its report starts with the warning.
    run_job(qtbot, window, window.model_view.fit_button.click)
    report = window.results_view.report_text.toPlainText()
    assert report.startswith("Warning: sample looks crossed with plate")
    assert report.index("Fit a crossed model instead") < report.index("Number of obs")
