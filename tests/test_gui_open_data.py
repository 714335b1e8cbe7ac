"""Open data proposes sensibly: the outcome is a numeric variable with many values (never an id
or merely the last column), it is not a predictor, and text columns are reported as text."""

import numpy as np
import pandas as pd
import pytest
import test_gui_support  # noqa: F401  (sets the offscreen platform before Qt starts)

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from engine.hierarchy_check import check_hierarchy
from gui.dialogs.open_data_dialog import OpenDataDialog, proposed_roles
from tests.reference_cases import DATA


@pytest.mark.parametrize("file, outcome, ids", [("hsb.csv", "mathach", ["school"]),
                                                ("seed_d5.csv", "perform", ["dist_id", "school_id", "teach_id",
                                                                            "student_id"]),
                                                ("pastes.csv", "strength", ["batch", "cask"])])
def test_the_proposed_outcome_is_a_numeric_variable_with_many_values(file, outcome, ids):
    frame = pd.read_csv(DATA / file)
    roles = proposed_roles(check_hierarchy(frame), frame)
    assert roles.outcome == outcome and roles.ids == ids
    assert outcome not in roles.predictors and not set(ids) & set(roles.predictors)


def test_the_outcome_is_never_an_id_nor_the_last_column_by_default():
    rng = np.random.default_rng(2)
    school = np.repeat(np.arange(1, 31), 20)
    frame = pd.DataFrame({"school": school, "score": rng.normal(50, 10, 600).round(2),
                          "hours": rng.normal(5, 1, 600), "female": rng.integers(0, 2, 600),
                          "class_id": np.tile(np.repeat(np.arange(1, 5), 5), 30)})
    roles = proposed_roles(check_hierarchy(frame), frame)
    assert roles.ids == ["school", "class_id"]
    assert roles.outcome == "score"  # named like an outcome; the last column is an id
    assert roles.predictors == ["hours", "female"]
    # Two variables alike but for their names and values: the one named like an outcome (crt10's y and x).
    twin = pd.DataFrame({"school": school, "y": rng.normal(size=600), "x": rng.normal(size=600)})
    assert proposed_roles(check_hierarchy(twin), twin).outcome == "y"
    # A group-level variable with many values is not proposed over one that varies within groups.
    grouped = pd.DataFrame({"school": school, "budget": np.repeat(rng.normal(size=30), 20),
                            "gain": rng.normal(size=600).round(1)})
    assert proposed_roles(check_hierarchy(grouped), grouped).outcome == "gain"


def test_the_dialog_keeps_the_outcome_out_of_the_predictors_and_names_text_columns(qtbot):
    frame = pd.read_csv(DATA / "hsb.csv")
    rng = np.random.default_rng(4)
    names = [f"{first} {last}" for first in ("Ann", "Bo", "Cy", "Di", "Ed") for last in ("Smith", "Jones", "Brown",
                                                                                        "Patel", "Garcia", "Ng")]
    frame["teacher"] = rng.choice(names, len(frame))  # 30 names, drawn anew in every school
    check = check_hierarchy(frame)
    assert check.order == ["school"]
    text_note = [f for f in check.findings if f.startswith("teacher ")]
    assert text_note and text_note[0].startswith("teacher is a text column (e.g. '")
    assert not any("teacher is crossed" in f for f in check.findings)
    dialog = OpenDataDialog(frame, "hsb.csv", check)
    qtbot.addWidget(dialog)
    assert dialog.outcome_combo.currentText() == "mathach"
    items = {dialog.predictor_list.item(i).text(): dialog.predictor_list.item(i)
             for i in range(dialog.predictor_list.count())}
    assert items["mathach"].checkState() == Qt.CheckState.Unchecked
    assert not items["mathach"].flags() & Qt.ItemFlag.ItemIsEnabled
    assert items["ses"].checkState() == Qt.CheckState.Checked
    dialog.outcome_combo.setCurrentText("ses")  # another outcome: ses leaves the predictors, mathach may join
    assert items["ses"].checkState() == Qt.CheckState.Unchecked and not items["ses"].flags() & Qt.ItemFlag.ItemIsEnabled
    assert items["mathach"].flags() & Qt.ItemFlag.ItemIsEnabled
    roles = dialog.roles()
    assert roles.outcome == "ses" and "ses" not in roles.predictors and roles.ids == ["school"]
    labels = [label.text() for label in dialog.findChildren(QLabel)]
    assert any("Text columns (use them as factors, i.name, or as level ids): teacher (e.g. '" in t for t in labels)
