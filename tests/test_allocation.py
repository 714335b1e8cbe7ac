"""Fixed treatment allocation: exactly the stated counts per block, in every replication."""

import json
import subprocess
import sys

import numpy as np
import pytest

from engine.design import Design, LevelDesign, Occasions, TreatmentDesign, UnitCount
from engine.errors import UserInputError
from engine.presets import get_preset
from engine.simulate import simulate


def _treated_per_block(frame, unit_columns, block_columns, treatment):
    units = frame.groupby(unit_columns)[treatment].agg(["min", "max", "first"])
    assert (units["min"] == units["max"]).all(), "a unit's rows disagree on treatment"
    return units["first"].groupby(level=block_columns).sum() if block_columns else units["first"].sum()


def test_cluster_trial_preset_treats_exactly_half_of_the_schools_every_time():
    design = get_preset("cluster_trial").with_units("school_id", 10)
    for seed in range(200):
        frame = simulate(design, seed).frame
        assert _treated_per_block(frame, ["school_id"], None, "treated") == 5


def test_blocked_allocation_treats_k_teachers_in_every_school():
    design = get_preset("tutoring")
    design.treatment = TreatmentDesign("tutoring", effect=2.0, level="teach_id", allocation="fixed", treated=3,
                                       block="school_id")
    for seed in range(20):
        counts = _treated_per_block(simulate(design, seed).frame, ["school_id", "teach_id"], ["school_id"],
                                    "tutoring")
        assert len(counts) == 25 and (counts == 3).all()


def test_observation_level_allocation_within_students_and_rounded_share():
    design = get_preset("tutoring")
    design.treatment = TreatmentDesign("tutoring", effect=2.0, probability=0.5, level="observation",
                                       allocation="fixed", block="student_id")
    frame = simulate(design, 5).frame
    assert (frame.groupby("student_id").tutoring.sum() == 1).all()  # one of two semesters
    # A share rounds half up per block: 0.25 of 10 = 2.5 -> 3 treated in every block of 10.
    unequal = Design(levels=[LevelDesign("school", UnitCount.fixed(6)), LevelDesign("pupil", UnitCount.fixed(10))],
                     treatment=TreatmentDesign("t", probability=0.25, level="pupil", allocation="fixed",
                                               block="school"))
    counts = simulate(unequal, 1).frame.groupby("school").t.sum()
    assert (counts == 3).all()


def test_allocation_varies_between_replications_and_is_reproducible():
    design = get_preset("cluster_trial")
    first = simulate(design, 11).frame.groupby("school_id").treated.first()
    again = simulate(design, 11).frame.groupby("school_id").treated.first()
    other = simulate(design, 12).frame.groupby("school_id").treated.first()
    assert first.equals(again)
    assert not first.equals(other)


def test_unequal_blocks_with_too_few_units_are_refused_naming_the_block():
    design = Design(levels=[LevelDesign("district", UnitCount.fixed(3)),
                            LevelDesign("school", UnitCount.uniform(1, 4))],
                    treatment=TreatmentDesign("t", level="school", allocation="fixed", treated=2, block="district"))
    with pytest.raises(UserInputError, match=r"treated = 2 but a block has only 1 school units"):
        design.validate()


@pytest.mark.parametrize("change, message", [
    ({"allocation": "alternate"}, "allocation must be one of bernoulli, fixed"),
    ({"block": "school_id"}, "apply to a fixed allocation"),
    ({"allocation": "fixed", "block": "nowhere"}, "block 'nowhere' is not a level"),
    ({"allocation": "fixed", "level": "school_id", "block": "student_id"}, "must be above the treatment level"),
    ({"allocation": "fixed", "treated": -1}, "treated must be >= 0"),
])
def test_bad_allocations_name_the_field(change, message):
    design = get_preset("tutoring")
    for key, value in change.items():
        setattr(design.treatment, key, value)
    with pytest.raises(UserInputError, match=message):
        design.validate()


def test_design_file_round_trip_keeps_the_allocation(tmp_path):
    design = get_preset("cluster_trial")
    design.treatment.treated = 7
    path = tmp_path / "d.json"
    design.save(path)
    loaded = Design.load(path)
    assert (loaded.treatment.allocation, loaded.treatment.treated, loaded.treatment.block) == ("fixed", 7, None)
    assert "exactly 7 of the school_id units in the whole sample" in loaded.describe()


def test_simulate_command_applies_allocation_options(tmp_path):
    out = tmp_path / "trial.csv"
    result = subprocess.run(
        [sys.executable, "main.py", "simulate", "--preset", "tutoring", "--allocation", "fixed", "--treated", "4",
         "--block", "dist_id", "--seed", "3", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import pandas as pd

    frame = pd.read_csv(out)
    assert (frame.groupby("dist_id").tutoring.sum() == 4).all()
    refused = subprocess.run(
        [sys.executable, "main.py", "simulate", "--preset", "tutoring", "--allocation", "bernoulli", "--treated", "4",
         "--describe"], capture_output=True, text=True)
    assert refused.returncode == 2 and "apply to --allocation fixed" in refused.stderr


def test_the_design_form_sets_an_exact_allocation_per_block(qtbot):
    import test_gui_support  # noqa: F401  (offscreen platform)
    from gui.views.design_view import DesignView

    view = DesignView(get_preset("tutoring"), 1)
    qtbot.addWidget(view)
    view.treatment_level_combo.setCurrentText("teach_id")
    view.treatment_level_combo.activated.emit(view.treatment_level_combo.currentIndex())
    view.treatment_allocation_combo.setCurrentIndex(view.treatment_allocation_combo.findData("fixed"))
    view.treatment_allocation_combo.activated.emit(view.treatment_allocation_combo.currentIndex())
    view.treatment_block_combo.setCurrentIndex(view.treatment_block_combo.findData("school_id"))
    view.treatment_block_combo.activated.emit(view.treatment_block_combo.currentIndex())
    qtbot.keyClicks(view.treatment_treated_edit, "3")
    treatment = view.design.treatment
    assert (treatment.allocation, treatment.treated, treatment.block, treatment.level) == \
        ("fixed", 3, "school_id", "teach_id")
    assert view.current_error() == ""
    frame = simulate(view.design, 2).frame
    per_school = frame.groupby(["school_id", "teach_id"]).tutoring.first().groupby("school_id").sum()
    assert (per_school == 3).all()
    # Back to a probability: the exact fields are set aside (kept as typed), the design is valid.
    view.treatment_allocation_combo.setCurrentIndex(view.treatment_allocation_combo.findData("bernoulli"))
    view.treatment_allocation_combo.activated.emit(view.treatment_allocation_combo.currentIndex())
    assert (view.design.treatment.treated, view.design.treatment.block) == (None, None)
    assert view.treatment_treated_edit.text() == "3" and view.current_error() == ""
