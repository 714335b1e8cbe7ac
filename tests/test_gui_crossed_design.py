"""The window with crossed designs: the design form edits crossed factors, and the Compare
models tab puts the nested and the crossed fits side by side against the truth. With
HLM_UPDATE_SCREENSHOTS=1 their screenshots go to docs/."""

import os
from pathlib import Path

import pytest
import test_gui_support  # noqa: F401  (offscreen platform)
from test_gui_support import run_job

from engine.design import CrossedFactor, UnitCount
from engine.presets import get_preset

DOCS = Path(__file__).resolve().parent.parent / "docs"


def save_screenshot(qtbot, window, name: str) -> None:
    if os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
        qtbot.wait(100)
        window.grab().save(str(DOCS / f"screenshot-{name}.png"))


@pytest.fixture
def design_view(qtbot):
    from gui.views.design_view import DesignView

    view = DesignView(get_preset("neighbourhoods"), 1)
    qtbot.addWidget(view)
    return view


def summary_rows(view) -> dict[str, list[str]]:
    table = view.summary_table
    return {table.item(row, 0).text(): [table.item(row, c).text() for c in range(1, table.columnCount())]
            for row in range(table.rowCount())}


def test_the_design_form_shows_and_edits_a_crossed_factor(design_view):
    from gui.tables.design_models import CHOICES_ROLE, WHOLE_SAMPLE, CrossedFactorTableModel

    view = design_view
    model = view.crossed_model
    cell = lambda column: model.index(0, column).data()  # noqa: E731
    assert [cell(c) for c in range(4)] == ["neigh_id", "15", "2", "dist_id"]
    assert model.index(0, CrossedFactorTableModel.WITHIN).data(CHOICES_ROLE) == [WHOLE_SAMPLE, "dist_id", "school_id"]
    # The summary: 300 neighbourhoods, 4/34 of the variance, ICC (1 + 4) / 34.
    assert summary_rows(view)["neigh_id"] == ["15; crossed", "300", "11.8%", "0.147"]
    assert model.setData(model.index(0, CrossedFactorTableModel.UNITS), "10")
    assert model.setData(model.index(0, CrossedFactorTableModel.SD), "3")
    assert view.design.crossed == [CrossedFactor("neigh_id", UnitCount.fixed(10), sd=3.0, within="dist_id")]
    assert summary_rows(view)["neigh_id"][:3] == ["10; crossed", "200", f"{9 / 39:.1%}"]
    assert model.setData(model.index(0, CrossedFactorTableModel.WITHIN), WHOLE_SAMPLE)
    assert view.design.crossed[0].within is None and view.is_valid()


def test_bad_crossed_factor_cells_are_marked_and_block_simulation(design_view):
    from gui.tables.design_models import CrossedFactorTableModel

    view = design_view
    model = view.crossed_model
    assert model.setData(model.index(0, CrossedFactorTableModel.SD), "lots")
    assert model.index(0, CrossedFactorTableModel.SD).data() == "lots"  # kept as typed
    assert view.current_error() == "crossed factor neigh_id: sd must be a number, got 'lots'"
    assert not view.simulate_button.isEnabled()
    assert model.setData(model.index(0, CrossedFactorTableModel.SD), "2")
    assert view.is_valid()
    assert model.setData(model.index(0, CrossedFactorTableModel.NAME), "school_id")
    assert "crossed factor school_id: name 'school_id' is used twice" in view.current_error()
    assert model.cell_error(0, CrossedFactorTableModel.NAME) == view.current_error()
    assert model.setData(model.index(0, CrossedFactorTableModel.NAME), "neigh_id")
    # Renaming a level renames the factor's Within; removing that level is refused at the cell.
    assert view.level_model.setData(view.level_model.index(0, 0), "district")
    assert view.design.crossed[0].within == "district"
    view.level_model.remove_level(0)
    assert view.current_error().startswith("crossed factor neigh_id: within 'district' must be a level above")
    assert model.cell_error(0, CrossedFactorTableModel.WITHIN) == view.current_error()


def test_crossed_factors_are_added_and_removed(qtbot):
    from gui.views.design_view import DesignView

    view = DesignView(get_preset("tutoring"), 1)
    qtbot.addWidget(view)
    assert view.crossed_model.rowCount() == 0
    view.add_crossed_button.click()
    assert view.design.crossed == [CrossedFactor("cross1_id", UnitCount.fixed(10), sd=1.0, within="dist_id")]
    assert view.is_valid()
    assert summary_rows(view)["cross1_id"][:2] == ["10; crossed", "50"]
    view.crossed_table.selectRow(0)
    view.remove_crossed_button.click()
    assert view.design.crossed == [] and "cross1_id" not in summary_rows(view)


def test_the_window_simulates_a_crossed_design_and_shows_its_form(qtbot, tmp_path):
    from gui.main_window import MainWindow, isolated_settings

    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    try:
        window.resize(1366, 860)
        window.design_view.load_preset("neighbourhoods")
        window.tabs.setCurrentWidget(window.design_view)
        save_screenshot(qtbot, window, "design-crossed")
        run_job(qtbot, window, window.design_view.simulate_button.click)
        frame = window.session.frame
        assert frame.groupby("dist_id")["neigh_id"].nunique().eq(15).all()
        assert window.session.truth.random["neigh_id:sd(_cons)"] == 2.0
        # The Model tab shows the crossed model (neigh_id is an id, not a predictor) and fits it.
        view = window.model_view
        assert view.spec.to_stata().startswith("mixed score ses || dist_id: || _all: R.neigh_id || school_id:")
        view.set_estimators(["mixed"])
        batch = run_job(qtbot, window, view.fit_button.click)
        groups = {g.level: g.groups for g in batch.results[0].groups}
        assert groups["neigh_id"] == 300 and groups["school_id"] == 120
    finally:
        window.session.set_modified(False)
        window.shutdown()


def test_compare_models_puts_nested_and_crossed_fits_side_by_side(qtbot, tmp_path):
    from engine.compare import nested_and_crossed_models
    from engine.model_comparison import compare_models
    from gui.main_window import MainWindow, isolated_settings
    from gui.views.model_comparison_view import components_table

    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    try:
        window.resize(1366, 860)
        window.design_view.load_preset("tutoring_moving")
        view = window.comparison_view
        assert not view.nested_crossed_button.isEnabled()  # no data yet
        run_job(qtbot, window, window.design_view.simulate_button.click)
        assert view.nested_crossed_button.isEnabled()
        view.nested_crossed_button.click()
        expected_specs = nested_and_crossed_models(get_preset("tutoring_moving"))
        assert [spec.to_stata() for spec in view.models()] == [spec.to_stata() for spec in expected_specs]
        with qtbot.waitSignal(view.comparison_finished, timeout=120_000) as blocker:
            assert view.compare() is not None
        shown = blocker.args[0]
        # The numbers shown are the engine's for the same data, models and truth.
        engine = compare_models(window.session.frame, expected_specs, truth=window.session.truth)
        table = components_table(shown)
        assert list(table.columns) == ["Parameter", "A", "B", "C", "Truth"]
        assert table["Parameter"].tolist() == ["dist_id:sd(_cons)", "school_id:sd(_cons)", "teach_id:sd(_cons)",
                                               "student_id:sd(_cons)", "Residual:sd(Residual)"]
        assert table["Truth"].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
        for row in engine.components:
            for label, value in row.estimates.items():
                shown_value = table.loc[table["Parameter"] == row.key, label].item()
                assert shown_value == pytest.approx(value, rel=1e-6), (row.key, label)
        assert table.loc[table["Parameter"] == "teach_id:sd(_cons)", "B"].isna().all()  # B has no teachers
        assert view.components_model.rowCount() == 5
        label = view.shift_label.text()
        assert "Where the teach_id variance went:" in label
        assert [shift.text for shift in shown.variance_shifts] == [shift.text for shift in engine.variance_shifts]
        assert "B has no teach_id level: its variance" in label
        window.tabs.setCurrentWidget(view)
        view.result_tabs.setCurrentWidget(view.components_page)
        save_screenshot(qtbot, window, "compare-nested-crossed")
    finally:
        window.session.set_modified(False)
        window.shutdown()
