"""Import checks: nesting of id columns, ids restarting within their parent, order, missing values, labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.data_io import read_data, write_data
from engine.errors import UserInputError
from engine.hierarchy_check import HierarchyReport, check_dataset, check_hierarchy
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from main import main
from tests.reference_cases import DATA


def restarted_teachers(seed: int = 7) -> pd.DataFrame:
    """25 schools with 3 to 8 teachers each, numbered 1..k inside every school; 5 to 12 pupils per teacher."""
    rng = np.random.default_rng(seed)
    rows = []
    for school in range(1, 26):
        school_effect = rng.normal(0, 2.0)
        for teacher in range(1, int(rng.integers(3, 9)) + 1):
            teacher_effect = rng.normal(0, 1.5)
            for _ in range(int(rng.integers(5, 13))):
                x = rng.normal()
                rows.append((school, teacher, x, 10 + 0.8 * x + school_effect + teacher_effect + rng.normal(0, 3)))
    return pd.DataFrame(rows, columns=["school_id", "teach_id", "x", "y"])


@pytest.fixture(scope="module")
def teachers() -> pd.DataFrame:
    return restarted_teachers()


def pair_count(frame: pd.DataFrame) -> int:
    return len(frame[["school_id", "teach_id"]].drop_duplicates())


# ----- restarting ids -------------------------------------------------------------------------
@pytest.mark.parametrize("given", [["teach_id", "school_id"], None])
def test_restarting_teacher_ids_are_found_and_explained(teachers, given):
    report = check_hierarchy(teachers, given)
    pairs = pair_count(teachers)
    assert report.order == ["school_id", "teach_id"]
    teach = report.level("teach_id")
    assert (teach.raw_values, teach.groups, teach.restarts_within) == (8, pairs, "school_id")
    assert report.level("school_id").groups == 25
    assert [level.name for level in report.restarted_ids] == ["teach_id"]
    assert (f"teach_id restarts within school_id: groups are formed as (school_id, teach_id) pairs, "
            f"{pairs} groups") in " ".join(report.findings)
    relation = next(r for r in report.relations if {r.outer, r.inner} == {"school_id", "teach_id"})
    # Unbalanced schools: every school has teachers 1..k, not every teacher number has schools 1..m.
    assert (relation.outer, relation.kind, relation.decided_by) == ("school_id", "repeats", "restart pattern")
    assert report.random_part() == "|| school_id: || teach_id:"
    assert not any("cannot tell" in w for w in report.warnings)


def test_a_fit_nests_restarting_ids_as_the_check_says(teachers):
    report = check_hierarchy(teachers, ["school_id", "teach_id"])
    nested = fit_mixed(teachers, ModelSpec.parse("y x " + report.random_part()), predict=False)
    assert [(g.level, g.groups) for g in nested.groups] == [(lv.name, lv.groups) for lv in report.levels]
    # The same data with teacher ids made unique across schools: the identical model and fit.
    unique = teachers.assign(teach_id=teachers["school_id"] * 100 + teachers["teach_id"])
    reference = fit_mixed(unique, ModelSpec.parse("y x || school_id: || teach_id:"), predict=False)
    assert [g.groups for g in reference.groups] == [g.groups for g in nested.groups]
    assert nested.loglik == pytest.approx(reference.loglik, rel=1e-10)
    # Used alone, the restarting ids lump the teachers of all schools into 8 groups: a different model.
    lumped = fit_mixed(teachers, ModelSpec.parse("y x || teach_id:"), predict=False)
    assert [g.groups for g in lumped.groups] == [report.level("teach_id").raw_values]
    assert abs(lumped.loglik - nested.loglik) > 1.0


def test_raw_nested_ids_in_the_seed_data():
    frame = pd.read_csv(DATA / "seed_d5.csv")
    report = check_hierarchy(frame)
    assert report.order == ["dist_id", "school_id", "teach_id", "student_id"]
    assert [lv.groups for lv in report.levels] == [5, 25, 200, 4000]
    assert report.restarted_ids == []
    assert "school_id nests in dist_id: each school_id value belongs to one dist_id group (25 groups)." in report.findings
    assert all(r.kind == "nested" for r in report.relations)
    assert report.warnings == []
    assert report.column("tutoring").constant_within is None
    assert report.column("student_id").constant_within == "student_id"


def test_given_order_is_checked_not_trusted():
    frame = pd.read_csv(DATA / "seed_d5.csv")
    report = check_hierarchy(frame, ["student_id", "teach_id", "school_id", "dist_id"])
    assert report.order == ["dist_id", "school_id", "teach_id", "student_id"]
    assert any("not in the order given (student_id > teach_id > school_id > dist_id)" in w for w in report.warnings)


def test_balanced_restarts_cannot_be_ordered_by_the_data_and_the_report_says_so():
    pastes = pd.read_csv(DATA / "pastes.csv")
    report = check_hierarchy(pastes)
    assert report.order == ["batch", "cask"]
    assert report.level("cask").groups == 30 and report.level("cask").restarts_within == "batch"
    assert any("sample forms the same 30 groups" in f for f in report.findings)
    assert any("cannot tell" in w and "batch and cask" in w for w in report.warnings)


def test_school_level_variables_are_not_taken_for_levels():
    frame = pd.read_csv(DATA / "hsb.csv")
    report = check_hierarchy(frame)
    assert report.candidates == ["school", "size"]
    assert report.order == ["school"]
    assert any(f.startswith("size is constant within school groups but has 149 values") for f in report.findings)
    assert report.level("school").groups == 160
    school_level = {c.name for c in report.columns if c.constant_within == "school"}
    assert school_level == {"school", "meanses", "size", "sector", "pracad", "disclim", "himinty"}
    assert report.column("ses").constant_within is None
    assert report.column("size").role == "id candidate"


def test_crossed_ids_are_flagged():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"school": np.repeat(np.arange(1, 21), 30), "rater": rng.integers(1, 11, 600),
                          "y": rng.normal(size=600)})
    given = check_hierarchy(frame, ["school", "rater"])
    assert any(w.startswith("rater looks crossed with school, not nested in it") and "do not restart" in w
               for w in given.warnings)
    assert [(e.inner, e.basis) for e in given.crossed] == [("rater", "layout")]
    automatic = check_hierarchy(frame)
    assert automatic.order == ["school"]
    assert any("rater is crossed with school" in f for f in automatic.findings)


# ----- missing values, errors, JSON ---------------------------------------------------------------
def test_missing_values_are_counted_per_column(teachers):
    frame = teachers.copy()
    frame.loc[[3, 50, 51], "x"] = np.nan
    frame.loc[10, "teach_id"] = np.nan
    report = check_hierarchy(frame, ["school_id", "teach_id"])
    assert report.missing == {name: int(count) for name, count in frame.isna().sum().items()}
    assert report.missing["x"] == 3 and report.level("teach_id").missing == 1
    assert any("teach_id has 1 missing value(s) (first at row 11)" in w for w in report.warnings)
    assert report.level("teach_id").groups == pair_count(frame.dropna(subset=["teach_id"]))
    assert ["x", "float64", "1,234", "3"] in [line.split()[:4] for line in report.format().splitlines()]


def test_unknown_and_repeated_id_columns_are_user_errors(teachers):
    with pytest.raises(UserInputError, match="unknown id column 'School_ID' \\(did you mean 'school_id'\\?\\)"):
        check_hierarchy(teachers, ["School_ID"])
    with pytest.raises(UserInputError, match="given more than once"):
        check_hierarchy(teachers, ["school_id", "school_id"])


def test_report_round_trips_through_json(teachers):
    report = check_hierarchy(teachers)
    restored = HierarchyReport.from_dict(json.loads(report.to_json()))
    assert restored == report
    assert restored.format() == report.format()


# ----- value labels ---------------------------------------------------------------------------------
@pytest.mark.parametrize("extension", [".dta", ".sav"])
def test_value_labels_are_kept_and_shown_while_models_use_the_codes(tmp_path, extension):
    frame = pd.read_csv(DATA / "hsb.csv")
    path = tmp_path / f"hsb{extension}"
    write_data(frame, path, value_labels={"sector": {0: "Public", 1: "Catholic"}},
               variable_labels={"sector": "School sector"})
    dataset = read_data(path)
    assert dataset.value_labels["sector"] == {0: "Public", 1: "Catholic"}
    report = check_dataset(dataset)
    sector = report.column("sector")
    assert sector.value_labels == {"0": "Public", "1": "Catholic"}
    assert sector.label == "School sector" and sector.constant_within == "school"
    assert '"School sector"; labels: 0 = Public, 1 = Catholic' in report.format()
    assert pd.api.types.is_integer_dtype(dataset.frame["sector"])
    from_labels = fit_mixed(dataset.frame, ModelSpec.parse("mathach i.sector || school:"), predict=False)
    from_csv = fit_mixed(frame, ModelSpec.parse("mathach i.sector || school:"), predict=False)
    assert from_labels.coef("1.sector").coef == pytest.approx(from_csv.coef("1.sector").coef, rel=1e-10)


# ----- command line ---------------------------------------------------------------------------------
def test_check_command_prints_the_report_and_writes_json(tmp_path, capsys, teachers):
    path = tmp_path / "teachers.csv"
    teachers.to_csv(path, index=False)
    out = tmp_path / "report.json"
    assert main(["check", str(path), "--levels", "teach_id", "school_id", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "teach_id restarts within school_id: groups are formed as (school_id, teach_id) pairs" in printed
    assert "model syntax: || school_id: || teach_id:" in printed
    saved = json.loads(out.read_text())
    assert saved["order"] == ["school_id", "teach_id"]
    assert saved["levels"][1]["groups"] == pair_count(teachers)


def test_check_command_reports_an_unknown_column_in_one_line(capsys):
    assert main(["check", str(DATA / "hsb.csv"), "--levels", "schol"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown id column 'schol'"


def test_restart_finding_points_to_the_crossed_model_the_engine_fits(teachers):
    # The finding used to say crossed ids are something "the engine does not fit"; it fits them.
    findings = " ".join(check_hierarchy(teachers, ["school_id", "teach_id"]).findings)
    assert "does not fit" not in findings
    assert "|| _all: R.id" in findings
    crossed = fit_mixed(teachers, ModelSpec.parse("y x || _all: R.school_id || _all: R.teach_id"), predict=False)
    assert [g.level for g in crossed.groups] == ["school_id", "teach_id"]
