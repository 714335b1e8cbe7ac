"""The design form: edits change the bound Design, problems are shown at their field in the
engine's words, and nothing typed is thrown away."""

import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from PySide6.QtCore import Qt

from engine.design import Design
from engine.errors import UserInputError
from engine.presets import get_preset
from gui.widgets.design_errors import COVARIATES, LEVELS, OCCASIONS, RESIDUAL_SD, TREATMENT, FieldLocation, locate_error
from gui.tables.design_models import LevelTableModel, parse_units
from gui.views.design_view import DesignView


@pytest.fixture
def view(qtbot):
    view = DesignView(get_preset("tutoring"), seed=3)
    qtbot.addWidget(view)
    return view


def engine_message(design: Design) -> str:
    with pytest.raises(UserInputError) as caught:
        design.validate()
    return str(caught.value)


def set_cell(view, row, column, text):
    model = view.level_model
    assert model.setData(model.index(row, column), text, Qt.ItemDataRole.EditRole)


def type_into(qtbot, field, text):
    field.selectAll()
    qtbot.keyClicks(field, text)


def test_editing_units_and_sd_updates_design_and_summary(view):
    set_cell(view, 0, LevelTableModel.UNITS, "6")
    set_cell(view, 1, LevelTableModel.SD, "2.5")
    design = view.design
    assert design.levels[0].units.n == 6 and design.levels[1].sd == 2.5
    assert view.rows_label.text() == "Expected rows: 9,600"
    assert view.summary_table.item(0, 2).text() == "6"
    assert view.is_valid() and view.simulate_button.isEnabled()


def test_invalid_sd_is_marked_at_its_cell_with_the_engine_message(view):
    set_cell(view, 1, LevelTableModel.SD, "-1")
    expected = engine_message(view.design)
    assert expected == "level school_id: sd must be >= 0, got -1"
    assert view.level_model.cell_error(1, LevelTableModel.SD) == expected
    tooltip = view.level_model.data(view.level_model.index(1, LevelTableModel.SD), Qt.ItemDataRole.ToolTipRole)
    assert expected in tooltip
    assert view.current_error() == expected and view.error_label.text() == expected
    assert not view.simulate_button.isEnabled()
    set_cell(view, 1, LevelTableModel.SD, "3")
    assert view.is_valid() and view.level_model.cell_error(1, LevelTableModel.SD) == ""


def test_text_that_is_not_a_number_is_kept_and_marked(qtbot, view):
    type_into(qtbot, view.residual_field, "six")
    assert view.residual_field.text() == "six"  # what was typed stays
    assert view.field_problem(view.residual_field) == "residual_sd must be a number, got 'six'"
    assert view.design.residual_sd == 6.0  # the design keeps its last readable value
    assert not view.simulate_button.isEnabled()
    type_into(qtbot, view.residual_field, "5")
    assert view.field_problem(view.residual_field) == "" and view.design.residual_sd == 5
    assert view.is_valid()


def test_probability_out_of_range_is_marked_at_the_field(qtbot, view):
    type_into(qtbot, view.treatment_probability_field, "1.5")
    expected = engine_message(view.design)
    assert expected == "treatment tutoring: probability must be <= 1, got 1.5"
    assert view.field_problem(view.treatment_probability_field) == expected
    assert expected in view.treatment_probability_field.toolTip()
    assert view.treatment_probability_field.toolTip().startswith("Chance that a unit is treated")


def test_units_cell_accepts_counts_ranges_and_averages(view):
    set_cell(view, 3, LevelTableModel.UNITS, "15..25")
    assert view.design.levels[3].units.distribution == "uniform"
    set_cell(view, 3, LevelTableModel.UNITS, "~20")
    assert view.design.levels[3].units.distribution == "poisson"
    set_cell(view, 3, LevelTableModel.UNITS, "lots")
    assert "units per parent: write a whole number" in view.level_model.cell_error(3, LevelTableModel.UNITS)
    assert view.level_model.data(view.level_model.index(3, LevelTableModel.UNITS)) == "lots"
    assert not view.is_valid()
    assert parse_units("20").n == 20


def test_levels_can_be_added_removed_and_reordered(view):
    view.level_table.selectRow(3)
    view._move_level(-1)
    assert view.design.level_names == ["dist_id", "school_id", "student_id", "teach_id"]
    view.level_down_button.click()
    assert view.design.level_names == ["dist_id", "school_id", "teach_id", "student_id"]
    view.level_table.selectRow(1)
    view.add_level_button.click()
    assert view.design.level_names[2] == "level5_id" and view.is_valid()
    view.remove_level_button.click()
    assert view.design.level_names == ["dist_id", "school_id", "teach_id", "student_id"]


def test_renaming_a_level_follows_into_the_treatment(view):
    view.design.treatment.level = "school_id"
    set_cell(view, 1, LevelTableModel.NAME, "campus_id")
    assert view.design.treatment.level == "campus_id" and view.is_valid()


def test_duplicate_level_names_are_refused_at_the_name(view):
    set_cell(view, 1, LevelTableModel.NAME, "dist_id")
    assert "used twice" in view.current_error()
    assert view.level_model.cell_error(1, LevelTableModel.NAME) or view.level_model.cell_error(0, LevelTableModel.NAME)


def test_unchecking_occasions_keeps_what_was_typed(qtbot, view):
    type_into(qtbot, view.occasion_count_field, "3")
    view.occasions_box.setChecked(False)
    assert view.design.occasions is None and view.rows_label.text() == "Expected rows: 4,000"
    view.occasions_box.setChecked(True)
    assert view.design.occasions.count == 3 and view.rows_label.text() == "Expected rows: 12,000"


def test_simulate_request_carries_a_copy_and_the_seed(qtbot, view):
    with qtbot.waitSignal(view.simulate_requested) as blocker:
        view.simulate_button.click()
    design, seed = blocker.args
    assert seed == 3 and design == view.design and design is not view.design


def test_preset_loading_replaces_the_form(view):
    view.load_preset("two_level")
    assert view.design.name == "two_level" and view.covariate_model.rowCount() == 2
    assert not view.occasions_box.isChecked() and not view.treatment_box.isChecked()


@pytest.mark.parametrize("message, location", [
    ("level school_id: sd must be >= 0, got -1", FieldLocation(LEVELS, 1, "sd")),
    ("level teach_id: units must be >= 1, got 0", FieldLocation(LEVELS, 2, "units")),
    ("levels[0]: name must be a variable name (letters, digits, _), got '1x'", FieldLocation(LEVELS, 0, "name")),
    ("treatment tutoring: probability must be <= 1, got 1.5", FieldLocation(TREATMENT, None, "probability")),
    ("occasions: count must be >= 1, got 0", FieldLocation(OCCASIONS, None, "count")),
    ("residual_sd must be >= 0, got -2", FieldLocation(RESIDUAL_SD)),
    ("covariate ses: sd must be >= 0, got -1", FieldLocation(COVARIATES, None, "sd")),
    ("the design expects 200,000,000 rows; the limit is 100,000,000 (reduce units at a level such as student_id)",
     FieldLocation(LEVELS, 3, "units")),
])
def test_messages_are_located_at_their_field(message, location):
    assert locate_error(message, get_preset("tutoring")) == location


def test_a_cell_edited_through_its_editor(qtbot, view):
    from PySide6.QtWidgets import QLineEdit

    view.show()
    qtbot.waitExposed(view)
    table = view.level_table
    index = view.level_model.index(2, LevelTableModel.UNITS)
    table.setCurrentIndex(index)  # every edit trigger is on: selecting the cell opens its editor
    qtbot.waitUntil(lambda: table.state() == table.State.EditingState)
    (editor,) = table.findChildren(QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "10")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.design.levels[2].units.n == 10)  # the delegate commits queued
    assert view.rows_label.text() == "Expected rows: 10,000"
