"""The centring editor: rows become the engine's Centering objects; problems are marked at the
field that has them, with the reason."""

import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from engine.centering import CENTERING_KINDS, Centering
from gui.widgets.centering_editor import KIND, LEVEL, NAME, VARIABLE, CenteringEditor
from gui.widgets.fields import invalid_reason

HSB_COLUMNS = ["school", "minority", "female", "ses", "mathach", "meanses", "size", "sector"]


@pytest.fixture
def editor(qtbot):
    widget = CenteringEditor()
    qtbot.addWidget(widget)
    widget.set_columns(HSB_COLUMNS, ["school"])
    widget.resize(900, 260)
    widget.show()
    return widget


def test_rows_become_centering_objects(qtbot, editor):
    row = editor.add_row()
    with qtbot.waitSignal(editor.centerings_changed) as blocker:
        editor.set_row(row, name="ses_grand", variable="ses", kind="grand")
    assert blocker.args[0] == [Centering("ses_grand", "ses", "grand")]
    editor.set_row(editor.add_row(), name="ses_within", variable="ses", kind="group", level="school")
    editor.set_row(editor.add_row(), name="school_ses", variable="ses", kind="group_mean", level="school")
    expected = [Centering("ses_grand", "ses", "grand"), Centering("ses_within", "ses", "group", "school"),
                Centering("school_ses", "ses", "group_mean", "school")]
    assert editor.centerings() == expected
    assert editor.problems() == []
    assert editor.field(1, 4).text() == "ses_within = ses - mean of ses within school"
    assert not editor.field(0, LEVEL).isEnabled() and editor.field(1, LEVEL).isEnabled()
    # The menu offers the engine's kinds, each with plain-words help.
    kinds = editor.field(0, KIND)
    assert [kinds.itemData(i) for i in range(kinds.count())] == list(CENTERING_KINDS)
    from PySide6.QtCore import Qt
    assert "within groups only" in kinds.itemData(1, Qt.ItemDataRole.ToolTipRole)
    assert "intercept" in kinds.itemData(0, Qt.ItemDataRole.ToolTipRole)

    # set_centerings shows a list back; the signal carries the valid rows.
    editor.set_centerings(expected[::-1])
    assert editor.centerings() == expected[::-1]
    editor.table.setCurrentCell(0, 0)
    editor.remove_selected_row()
    assert editor.centerings() == expected[::-1][1:]


def test_a_missing_level_and_other_problems_are_marked_at_their_field(qtbot, editor, tmp_path):
    row = editor.add_row()
    editor.set_row(row, name="ses_within", variable="ses", kind="group", level="")
    assert editor.centerings() == []
    assert "needs a level" in invalid_reason(editor.field(row, LEVEL))
    assert "needs a level" in editor.field(row, LEVEL).toolTip()
    assert not invalid_reason(editor.field(row, NAME)) and not invalid_reason(editor.field(row, VARIABLE))
    assert editor.problems() == ["row 1: group-mean centred needs a level whose groups give the means"]
    assert "needs a level" in editor.problem_label.text()
    editor.set_row(row, level="school")
    assert editor.centerings() == [Centering("ses_within", "ses", "group", "school")]
    assert not invalid_reason(editor.field(row, LEVEL))

    editor.set_row(row, name="2bad")
    assert "must start with a letter" in invalid_reason(editor.field(row, NAME))
    editor.set_row(row, name="ses")
    assert "have a column ses already" in invalid_reason(editor.field(row, NAME))
    editor.set_row(row, name="ses_c")
    second = editor.add_row()
    editor.set_row(second, name="ses_c", variable="mathach", kind="grand")
    assert "earlier row" in invalid_reason(editor.field(second, NAME))
    editor.grab().save(str(tmp_path / "centering-editor.png"))
    assert editor.centerings() == [Centering("ses_c", "ses", "group", "school")]

    # New data without the level: the choice is kept and marked rather than lost.
    editor.set_columns(HSB_COLUMNS, ["district"])
    assert editor.field(row, LEVEL).currentText() == "school"
    assert "not a level of the data" in invalid_reason(editor.field(row, LEVEL))
