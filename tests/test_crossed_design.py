"""Crossed factors in a design (neighbourhoods x schools): JSON, validation, simulation, truth,
description, the crossed fit's recovery of the truth, and where nested fits put the variance."""

import json

import numpy as np
import pandas as pd
import pytest

from engine.compare import compare, crossed_model_text, default_estimators, design_model, format_comparison
from engine.design import CrossedFactor, Design, UnitCount
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.presets import get_preset
from engine.simulate import simulate


def test_old_design_files_load_unchanged_and_crossed_factors_round_trip(tmp_path):
    old = get_preset("tutoring").to_dict()
    del old["crossed"]  # a file written before crossed factors existed
    assert Design.from_dict(old).validate() == get_preset("tutoring")
    design = get_preset("neighbourhoods")
    path = tmp_path / "design.json"
    design.save(path)
    saved = json.loads(path.read_text())
    assert saved["crossed"] == [{"name": "neigh_id", "units": {"distribution": "fixed", "n": 15, "min": 15, "max": 15,
                                                               "mean": 15.0, "sizes": []}, "sd": 2.0,
                                 "within": "dist_id"}]
    assert Design.load(path) == design
    # "units": 15 is shorthand for a fixed count, as for levels.
    saved["crossed"][0]["units"] = 15
    path.write_text(json.dumps(saved))
    assert Design.load(path).crossed[0].units == UnitCount.fixed(15)


@pytest.mark.parametrize("change, message", [
    (lambda f: setattr(f, "sd", -1), "crossed factor neigh_id: sd must be >= 0"),
    (lambda f: setattr(f, "within", "student_id"), "crossed factor neigh_id: within 'student_id' must be a level "
                                                   "above the bottom level"),
    (lambda f: setattr(f, "within", "town"), "within 'town' must be a level above the bottom level"),
    (lambda f: setattr(f, "name", "school_id"), "crossed factor school_id: name 'school_id' is used twice"),
    (lambda f: setattr(f, "units", UnitCount.fixed(0)), "crossed factor neigh_id: units must be >= 1"),
    (lambda f: setattr(f, "name", "neigh id"), "crossed\\[0\\]: name must be a variable name"),
])
def test_bad_crossed_factors_are_refused_naming_the_field(change, message):
    design = get_preset("neighbourhoods")
    change(design.crossed[0])
    with pytest.raises(UserInputError, match=message):
        design.validate()


def test_a_misspelt_field_in_a_file_is_named(tmp_path):
    data = get_preset("neighbourhoods").to_dict()
    data["crossed"][0]["inside"] = "dist_id"
    with pytest.raises(UserInputError, match=r"crossed\[0\] \(neigh_id\): unknown field 'inside'"):
        Design.from_dict(data)
    del data["crossed"][0]["inside"], data["crossed"][0]["units"]
    with pytest.raises(UserInputError, match=r"crossed\[0\] \(neigh_id\): the field 'units' is missing"):
        Design.from_dict(data)


def test_each_student_lives_in_one_neighbourhood_of_its_own_district():
    design = get_preset("neighbourhoods")
    frame = simulate(design, seed=4).frame
    # 15 neighbourhoods per district, numbered 1..300, each inside one district.
    assert frame.groupby("neigh_id")["dist_id"].nunique().eq(1).all()
    assert frame.groupby("dist_id")["neigh_id"].nunique().eq(15).all()
    assert frame["neigh_id"].min() == 1 and frame["neigh_id"].max() == 300
    # Crossed with schools: a school's students come from many neighbourhoods and the reverse.
    assert frame.groupby("school_id")["neigh_id"].nunique().mean() > 10
    assert frame.groupby("neigh_id")["school_id"].nunique().mean() > 4
    # The neighbourhood's effect is the same for all its residents and enters the outcome.
    assert frame.groupby("neigh_id")["true_u_neigh_id"].nunique().eq(1).all()
    rebuilt = 50 + 2 * frame["ses"] + frame[[c for c in frame if c.startswith("true_u_")]].sum(axis=1)
    residual = frame["score"] - rebuilt
    assert abs(residual.std() - 5.0) < 0.2
    assert abs(frame.groupby("neigh_id")["true_u_neigh_id"].first().std() - 2.0) < 0.25


def test_crossed_factors_are_reproducible_and_leave_other_designs_unchanged():
    design = get_preset("neighbourhoods")
    pd.testing.assert_frame_equal(simulate(design, seed=9).frame, simulate(design.copy(), seed=9).frame)
    without = design.copy()
    without.crossed = []
    plain = simulate(without, seed=9).frame
    crossed = simulate(design, seed=9).frame
    # Crossed factors draw last: every other column is as without them; the outcome adds the effect.
    for column in plain.columns:
        if column != "score":
            pd.testing.assert_series_equal(plain[column], crossed[column])
    np.testing.assert_allclose(crossed["score"], plain["score"] + crossed["true_u_neigh_id"])


def test_a_factor_within_no_level_spans_the_whole_data():
    design = get_preset("neighbourhoods")
    design.crossed = [CrossedFactor("rater", units=7, sd=1.0)]
    frame = simulate(design, seed=2).frame
    assert sorted(frame["rater"].unique()) == list(range(1, 8))
    assert frame.groupby("rater")["dist_id"].nunique().min() > 15
    assert crossed_model_text(design) == "mixed || _all: R.rater || dist_id: || school_id:, reml"


def test_truth_counts_shares_and_description():
    design = get_preset("neighbourhoods")
    assert design.truth().random == {"dist_id:sd(_cons)": 1.0, "school_id:sd(_cons)": 2.0,
                                     "student_id:sd(_cons)": 0.0, "neigh_id:sd(_cons)": 2.0,
                                     "Residual:sd(Residual)": 5.0}
    assert design.expected_counts().units["neigh_id"] == 300
    shares = design.variance_shares()
    assert shares["neigh_id"] == pytest.approx(4 / 34)
    assert design.intraclass_correlations()["neigh_id"] == pytest.approx((1 + 4) / 34)
    text = design.describe()
    assert "Crossed, not nested: neigh_id (crossed factor)" in text
    assert "each student_id is assigned to one neigh_id within each dist_id at random" in text
    moving = get_preset("tutoring_moving").describe()
    assert "Crossed, not nested: teach_id (units move)" in moving
    assert "Crossed, not nested" not in get_preset("tutoring").describe()


def test_units_option_sets_a_crossed_factor():
    design = get_preset("neighbourhoods").with_units("neigh_id", 4)
    assert design.crossed[0].units == UnitCount.fixed(4)
    with pytest.raises(UserInputError, match="no level 'nope'"):
        design.with_units("nope", 3)


def test_power_refuses_crossed_factors():
    from engine.power.from_design import plan_from_design

    design = get_preset("neighbourhoods")
    from engine.design import TreatmentDesign

    design.treatment = TreatmentDesign(name="t", effect=1.0, level="school_id")
    with pytest.raises(UserInputError, match="neigh_id: crossed with the levels, not nested"):
        plan_from_design(design)


def test_the_crossed_fit_recovers_the_truth():
    """Simulation recovery: 20 districts, 300 neighbourhoods, 3,600 students. The true sds are
    within 3 standard errors (and 20%) of the REML estimates; the nested fit, which has no
    neighbourhood level, overstates the residual sd by most of the neighbourhood variance."""
    design = get_preset("neighbourhoods")
    data = simulate(design, seed=21)
    spec = ModelSpec.parse(crossed_model_text(design).replace("mixed", "score ses", 1))
    assert spec.to_stata() == "mixed score ses || dist_id: || _all: R.neigh_id || school_id:, reml"
    fit = fit_mixed(data.frame, spec)
    truth = data.truth.random
    for level in ("neigh_id", "school_id", "dist_id"):
        row = fit.random_param(level, "sd(_cons)")
        true_sd = truth[f"{level}:sd(_cons)"]
        assert abs(row.estimate - true_sd) < 3 * row.se, (level, row)
        if level != "dist_id":  # 20 districts: the district sd is the least precise
            assert abs(row.estimate / true_sd - 1) < 0.2, (level, row)
    residual = fit.random_param("Residual", "sd(Residual)")
    assert abs(residual.estimate - 5.0) < 3 * residual.se
    assert abs(fit.coef("ses").coef - 2.0) < 3 * fit.coef("ses").se
    groups = {g.level: g.groups for g in fit.groups}
    assert groups["neigh_id"] == 300 and groups["school_id"] == 120


def test_compare_shows_where_a_nested_fit_puts_the_neighbourhood_variance():
    """Any two students of a district, of one school or not, share a neighbourhood with
    probability 1/15, so a nested fit without neighbourhoods puts about 1/15 of its variance at
    the district, none at the school, and the rest in the residual (against the crossed fit)."""
    design = get_preset("neighbourhoods").with_units("dist_id", 40)
    texts = [spec.text for spec in default_estimators(design)]
    assert texts[-1] == "mixed || dist_id: || _all: R.neigh_id || school_id:, reml"
    data = simulate(design, seed=5)
    outcome, predictors = design_model(design)
    comparison = compare(data.frame, outcome, predictors, ["mixed || dist_id: || school_id:, reml", texts[-1]],
                         truth=data.truth)
    (shift,) = comparison.variance_shifts
    assert (shift.factor, shift.nested, shift.crossed, shift.kept) == ("neigh_id", "(1)", "(2)", None)
    variance = shift.crossed_variance
    assert abs(variance - 4.0) < 1.0
    assert shift.moved["Residual"] == pytest.approx(variance * 14 / 15, rel=0.25)
    assert shift.moved["dist_id"] == pytest.approx(variance / 15, abs=0.2)
    assert abs(shift.moved["school_id"]) < 0.2
    assert shift.text.startswith("(1) has no neigh_id level: its variance (")
    assert "Where the neigh_id variance went: (1) has no neigh_id level" in format_comparison(comparison)
    # The crossed fit's residual sd is the truth's; the nested one's is inflated.
    crossed_residual = comparison.summary(texts[-1]).component("Residual:sd(Residual)").estimate
    nested_residual = comparison.table[0].component("Residual:sd(Residual)").estimate
    assert abs(crossed_residual - 5.0) < 0.1 < nested_residual - 5.0


def test_nested_and_crossed_fits_of_moving_students_side_by_side():
    """16,000 rows, half the students change teacher in semester 2. The nested model without
    teachers moves the teacher variance to the residual (the teacher changes between a mover's
    rows: about 1/2 of it), the student (a stayer keeps the teacher's effect: 1/2, less what
    classmates share) and the school (two students of a school share a teacher with probability
    about 1/8). The four-level nested model, with teachers and (teacher, student) cells, keeps it
    at the teachers. The crossed fit is the one whose student and residual sds match the truth."""
    design = get_preset("tutoring_moving").with_units("dist_id", 10)
    texts = [spec.text for spec in default_estimators(design)]
    four_levels, without_teachers, crossed = texts[-4], texts[-2], texts[-1]
    assert without_teachers == "mixed || dist_id: || school_id: || student_id:, reml"
    data = simulate(design, seed=2)
    outcome, predictors = design_model(design)
    comparison = compare(data.frame, outcome, predictors, [four_levels, without_teachers, crossed], truth=data.truth)
    kept, moved = comparison.variance_shifts
    assert (kept.nested, moved.nested, moved.crossed, moved.factor) == ("(1)", "(2)", "(3)", "teach_id")
    variance = moved.crossed_variance
    assert abs(variance - 16.0) < 2.0 and moved.truth == 16.0
    assert moved.kept is None
    assert moved.moved["Residual"] / variance == pytest.approx(0.5, abs=0.12)
    assert moved.moved["student_id"] / variance == pytest.approx(0.5 - 1 / 8, abs=0.12)
    assert moved.moved["school_id"] / variance == pytest.approx(1 / 8, abs=0.06)
    assert kept.kept == pytest.approx(variance, rel=0.1)
    assert all(abs(change) < 0.1 * variance for change in kept.moved.values())
    for key, true_sd in (("student_id:sd(_cons)", 5.0), ("Residual:sd(Residual)", 6.0)):
        crossed_error = abs(comparison.summary(crossed).component(key).estimate - true_sd)
        nested_error = abs(comparison.summary(without_teachers).component(key).estimate - true_sd)
        assert crossed_error < 0.1 < nested_error, key
    rows = format_comparison(comparison).splitlines()
    teacher_row = next(row for row in rows if row.startswith("teach_id:sd(_cons)"))
    assert teacher_row.split()[1:] == [f"{comparison.table[0].component('teach_id:sd(_cons)').estimate:.4f}",
                                       f"{comparison.table[2].component('teach_id:sd(_cons)').estimate:.4f}",
                                       "4.0000"]
    assert any(row.startswith("Where the teach_id variance went: (2) has no teach_id level") for row in rows)
    # The JSON keeps the readings.
    again = type(comparison).from_dict(json.loads(comparison.to_json()))
    assert again.variance_shifts == comparison.variance_shifts


def test_compare_models_puts_the_variance_components_side_by_side_against_the_truth():
    from engine.compare import nested_and_crossed_models
    from engine.model_comparison import ModelComparison, compare_models

    design = get_preset("tutoring_moving")
    specs = nested_and_crossed_models(design)
    assert [spec.to_stata() for spec in specs] == [
        "mixed perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml",
        "mixed perform tutoring || dist_id: || school_id: || student_id:, reml",
        "mixed perform tutoring || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id, reml"]
    assert nested_and_crossed_models(get_preset("tutoring")) == []
    data = simulate(design, seed=1)
    comparison = compare_models(data.frame, specs[1:], truth=data.truth)
    rows = {row.key: row for row in comparison.components}
    assert list(rows) == ["dist_id:sd(_cons)", "school_id:sd(_cons)", "teach_id:sd(_cons)", "student_id:sd(_cons)",
                          "Residual:sd(Residual)"]
    nested, crossed = comparison.fits
    assert rows["teach_id:sd(_cons)"].estimates == {"B": crossed.random_param("teach_id", "sd(_cons)").estimate}
    assert rows["student_id:sd(_cons)"].estimates == {
        "A": nested.random_param("student_id", "sd(_cons)").estimate,
        "B": crossed.random_param("student_id", "sd(_cons)").estimate}
    assert [row.truth for row in rows.values()] == [2.0, 3.0, 4.0, 5.0, 6.0]
    (shift,) = comparison.variance_shifts
    assert (shift.nested, shift.crossed, shift.kept) == ("A", "B", None)
    assert shift.crossed_variance == pytest.approx(crossed.random_param("teach_id", "sd(_cons)").estimate ** 2)
    assert shift.moved["student_id"] == pytest.approx(nested.random_param("student_id", "sd(_cons)").estimate ** 2
                                                      - crossed.random_param("student_id", "sd(_cons)").estimate ** 2)
    text = comparison.format()
    assert "Where the teach_id variance went: A has no teach_id level: its variance" in text
    assert ModelComparison.from_dict(json.loads(comparison.to_json())).components == comparison.components


def test_monte_carlo_models_may_read_a_crossed_factor():
    from engine.montecarlo.study import design_columns

    assert design_columns(get_preset("neighbourhoods")) == ["dist_id", "school_id", "student_id", "neigh_id", "ses",
                                                            "score"]


def test_monte_carlo_sweeps_a_crossed_factor_units_and_sd():
    from engine.montecarlo.study import Sweep

    design = get_preset("neighbourhoods")
    assert Sweep.parse("neigh_id=5,10").apply(design, 5).crossed[0].units == UnitCount.fixed(5)
    changed = Sweep.parse("sd:neigh_id=1,3").apply(design, 3)
    assert changed.crossed[0].sd == 3.0 and changed.truth().random["neigh_id:sd(_cons)"] == 3.0
    assert design.crossed[0].sd == 2.0  # the design itself is left alone


def test_a_project_keeps_its_crossed_factors(tmp_path):
    from engine.project import Project

    project = Project(design=get_preset("neighbourhoods"))
    project.save(tmp_path / "study.hlmproj")
    assert Project.load(tmp_path / "study.hlmproj").design.crossed == get_preset("neighbourhoods").crossed
