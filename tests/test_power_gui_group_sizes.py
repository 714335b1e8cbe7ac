"""The window's "Plan the next study" offers the data's own group sizes, and the Design tab's units
cell shows and reads them ("observed 14, 20, ...")."""

import pytest
from test_gui_support import main_window, run_job  # noqa: F401  (fixture)

from engine.design import UnitCount
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from gui.tables.design_models import LevelTableModel, format_units, parse_units


def test_plan_the_next_study_with_the_datas_own_group_sizes(qtbot, main_window, monkeypatch):
    window = main_window
    window.design_view.load_preset("two_level")  # 100 schools of 15..35 students: unbalanced
    run_job(qtbot, window, window.design_view.simulate_button.click)
    frame = window.session.frame
    result = fit_mixed(frame, ModelSpec.parse("score ses sector || school_id:, reml"))
    questions = []

    def choose_first(parent, title, label, items, *args, **kwargs):
        questions.append((label, list(items)))
        return items[0], True  # no treatment; then the data's own group sizes

    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(choose_first))
    window._ask_plan_next_study(result)
    assert questions[-1][0] == "Units per group below the top level:"
    design = window.design_view.design
    observed = sorted(frame.groupby("school_id").size())
    assert design.level("school_id").units == UnitCount.fixed(100)
    assert design.level("obs").units == UnitCount.empirical(observed)
    model = window.design_view.level_model
    row = design.level_names.index("obs")
    shown = model.data(model.index(row, LevelTableModel.UNITS))
    assert shown == "observed " + ", ".join(map(str, observed))
    # Editing the cell back with what it shows keeps the same sizes (no error mark).
    assert model.setData(model.index(row, LevelTableModel.UNITS), shown)
    assert window.design_view.design.level("obs").units.sizes == observed


def test_units_cell_text_round_trips_and_refuses_bad_sizes():
    units = UnitCount.empirical([12, 30, 25])
    assert format_units(units) == "observed 12, 25, 30"
    assert parse_units("observed 12, 25; 30") == units
    for text in ("observed", "observed 3, 0", "observed 2.5"):
        with pytest.raises(ValueError, match="observed sizes \\(observed 12, 30, 25\\)"):
            parse_units(text)
