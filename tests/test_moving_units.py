"""Students who change teachers: the design's move_prob, the simulation and the crossed fit."""

import numpy as np
import pandas as pd
import pytest

from engine.design import Occasions
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.power.from_design import plan_from_design
from engine.presets import get_preset
from engine.simulate import simulate


def by_semester(frame: pd.DataFrame, column: str, semester: int) -> pd.Series:
    return frame[frame["semester"] == semester].set_index("student_id")[column]


def test_half_the_students_move_to_another_teacher_of_their_school():
    frame = simulate(get_preset("tutoring_moving"), seed=3).frame
    moved = by_semester(frame, "teach_id", 1) != by_semester(frame, "teach_id", 2)
    assert abs(moved.mean() - 0.5) < 4 * np.sqrt(0.25 / moved.size)
    assert (by_semester(frame, "school_id", 1) == by_semester(frame, "school_id", 2)).all()
    # A teacher's effect goes with the teacher, whichever students it has in a semester.
    assert (frame.groupby("teach_id")["true_u_teach_id"].nunique() == 1).all()
    movers = moved[moved].index
    assert frame[frame["student_id"].isin(movers)].groupby("student_id")["true_u_teach_id"].nunique().eq(2).all()


def test_without_moves_the_draws_are_unchanged():
    design = get_preset("tutoring")
    assert simulate(design, seed=5).frame.equals(simulate(get_preset("tutoring_moving").copy(), seed=5).frame) is False
    design.level("teach_id").move_prob = 0.0
    pd.testing.assert_frame_equal(simulate(design, seed=5).frame, simulate(get_preset("tutoring"), seed=5).frame)


def test_the_crossed_fit_recovers_the_teacher_and_student_sds():
    design = get_preset("tutoring_moving").with_units("dist_id", 10)
    frame = simulate(design, seed=11).frame
    spec = ModelSpec.parse_lme4("perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)")
    fit = fit_mixed(frame, spec)
    truth = design.truth().random
    for level in ("teach_id", "student_id"):
        row = fit.random_param(level, "sd(_cons)")
        assert abs(row.estimate - truth[f"{level}:sd(_cons)"]) < 4 * row.se, (level, row)
    assert abs(fit.coef("tutoring").coef - 2.0) < 4 * fit.coef("tutoring").se


def test_describe_says_which_levels_are_crossed_and_power_refuses_them():
    text = get_preset("tutoring_moving").describe()
    assert "Crossed: each student_id moves to another teach_id of the same school_id with probability 0.5" in text
    with pytest.raises(UserInputError, match="levels are crossed, not nested"):
        plan_from_design(get_preset("tutoring_moving"))


@pytest.mark.parametrize("change, message", [
    (lambda d: setattr(d.level("teach_id"), "move_prob", 1.5), "move_prob must be <= 1"),
    (lambda d: setattr(d.level("dist_id"), "move_prob", 0.2), "applies to a level between the top and the bottom"),
    (lambda d: setattr(d, "occasions", None), "move_prob needs occasions"),
])
def test_bad_moves_are_refused_naming_the_field(change, message):
    design = get_preset("tutoring_moving")
    change(design)
    with pytest.raises(UserInputError, match=message):
        design.validate()


def test_the_design_tab_shows_which_level_units_move_between(qtbot):
    import test_gui_support  # noqa: F401  (offscreen platform)
    from gui.views.design_view import DesignView

    view = DesignView(get_preset("tutoring_moving"), 1)
    qtbot.addWidget(view)
    cells = [view.summary_table.item(row, 1).text() for row in range(view.summary_table.rowCount())]
    assert "8; moves 0.5" in cells


def test_compare_puts_the_crossed_model_beside_the_nested_ones():
    from engine.compare import compare, default_estimators, design_model

    design = get_preset("tutoring_moving")
    texts = [spec.text for spec in default_estimators(design)]
    crossed = "mixed || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id, reml"
    assert texts[-1] == crossed
    data = simulate(design, seed=1)
    outcome, predictors = design_model(design)
    comparison = compare(data.frame, outcome, predictors, [texts[-3], crossed], truth=data.truth)
    nested_fit, crossed_fit = comparison.estimators
    # The nested fit is warned that the ids look crossed; the crossed fit is not, and it counts
    # each teacher and student once.
    assert any("looks crossed" in warning for warning in nested_fit.warnings)
    assert not any("looks crossed" in warning for warning in crossed_fit.warnings)
    groups = {g.level: g.groups for g in crossed_fit.groups}
    assert groups["teach_id"] == 200 and groups["student_id"] == 4000
    row = crossed_fit.random_param("teach_id", "sd(_cons)")
    assert abs(row.estimate - 4.0) < 4 * row.se


def test_the_model_tab_builds_and_fits_the_crossed_model(qtbot, tmp_path):
    from test_gui_support import run_job

    from gui.main_window import MainWindow, isolated_settings

    window = MainWindow(settings=isolated_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    try:
        window.design_view.load_preset("tutoring_moving")
        run_job(qtbot, window, window.design_view.simulate_button.click)
        view = window.model_view
        names = [view.level_list.item(i).text() for i in range(view.level_list.count())]
        for name in ("teach_id", "student_id"):
            view.level_list.setCurrentRow(names.index(name))
            view.crossed_check.setChecked(True)
        assert view.spec.to_stata().startswith(
            "mixed perform tutoring || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id")
        assert "(1 | dist_id:school_id:teach_id)" in view.spec.to_lme4()
        import os

        if os.environ.get("HLM_UPDATE_SCREENSHOTS") == "1":
            from pathlib import Path

            window.resize(1280, 820)
            window.tabs.setCurrentWidget(view)
            qtbot.wait(100)
            window.grab().save(str(Path(__file__).resolve().parent.parent / "docs" / "screenshot-crossed-model.png"))
        view.set_estimators(["mixed"])
        batch = run_job(qtbot, window, view.fit_button.click)
        groups = {g.level: g.groups for g in batch.results[0].groups}
        assert groups["teach_id"] == 200 and groups["student_id"] == 4000
    finally:
        window.session.set_modified(False)
        window.shutdown()


def test_the_design_form_edits_how_often_units_move(qtbot):
    import test_gui_support  # noqa: F401  (offscreen platform)
    from gui.tables.design_models import LevelTableModel
    from gui.views.design_view import DesignView

    view = DesignView(get_preset("tutoring"), 1)
    qtbot.addWidget(view)
    model = view.level_model
    row = view.design.level_names.index("teach_id")
    assert model.setData(model.index(row, LevelTableModel.MOVES), "0.5")
    assert view.design.level("teach_id").move_prob == 0.5
    cells = [view.summary_table.item(r, 1).text() for r in range(view.summary_table.rowCount())]
    assert "8; moves 0.5" in cells
    # A level that cannot have movers is refused at the form, naming the reason.
    assert model.setData(model.index(0, LevelTableModel.MOVES), "0.3")
    assert "applies to a level between the top and the bottom" in view.current_error()
    assert model.setData(model.index(row, LevelTableModel.MOVES), "lots")
    assert model.index(row, LevelTableModel.MOVES).data() == "lots"  # kept as typed, marked
