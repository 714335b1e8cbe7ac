"""Plan the next study with the pilot's own group sizes: empirical unit counts in designs, the
``group_sizes="observed"`` option of plan-from-fit, ``montecarlo --group-sizes`` and the window.

Sampling is without replacement in rounds, so a design at the pilot's number of top-level units
reproduces the pilot's sizes exactly (as a multiset) in every replication; at k times as many it
holds each size exactly k times; in between, no size occurs more than once more than another.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from engine.design import Design, LevelDesign, TreatmentDesign, UnitCount
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.power.from_design import plan_from_design
from engine.power.from_fit import design_from_fit
from engine.simulate import simulate
from main import main

HSB = pd.read_csv("tests/data/hsb.csv")
HSB_MODEL = "mathach ses sector || school:, reml"
TRIAL3 = pd.read_csv("tests/data/trial3_unbalanced.csv").assign(
    treat=lambda frame: (frame.arm > 0).astype(int))  # schools in either active arm: a 0/1 treatment


@pytest.fixture(scope="module")
def hsb_fit():
    return fit_mixed(HSB, ModelSpec.parse(HSB_MODEL))


def sizes_of(frame: pd.DataFrame, parent: list[str], child: str | None) -> list[int]:
    grouped = frame.groupby(parent, sort=False)
    counts = grouped.size() if child is None else grouped[child].nunique()
    return sorted(counts.tolist())


# ----- the unit count ------------------------------------------------------------------------------
def two_level(sizes, schools: int) -> Design:
    return Design(outcome="y", residual_sd=1.0, levels=[
        LevelDesign("school", UnitCount.fixed(schools), sd=1.0),
        LevelDesign("student", UnitCount.empirical(sizes), sd=0.0)])


def test_as_many_parents_as_sizes_get_exactly_the_observed_sizes_in_every_replication():
    observed = [3, 7, 7, 12, 20, 1, 5]
    design = two_level(observed, schools=7)
    orders = set()
    for seed in range(25):
        counts = simulate(design, seed).frame.groupby("school").size()
        assert sorted(counts) == sorted(observed)
        orders.add(tuple(counts))
    assert len(orders) > 10  # the sizes go to the schools in a random order


def test_more_parents_draw_the_sizes_in_rounds_without_replacement():
    observed = [3, 7, 7, 12, 20, 1, 5]
    twice = Counter(simulate(two_level(observed, schools=14), 4).frame.groupby("school").size())
    assert twice == Counter({size: 2 * count for size, count in Counter(observed).items()})
    # 10 schools: one full round (every size once) and 3 sizes of a second permutation.
    ten = Counter(simulate(two_level(observed, schools=10), 5).frame.groupby("school").size())
    assert sum(ten.values()) == 10
    once = Counter(observed)
    assert all(once[size] <= ten[size] <= 2 * once[size] for size in once) and set(ten) <= set(once)


def test_draws_are_reproducible_with_the_seed():
    design = two_level([3, 7, 7, 12, 20, 1, 5], schools=30)
    first, again = simulate(design, 11).frame, simulate(design, 11).frame
    pd.testing.assert_frame_equal(first, again)
    assert not simulate(design, 12).frame.groupby("school").size().equals(first.groupby("school").size())


def test_empirical_counts_round_trip_through_design_files_and_old_files_still_load(tmp_path):
    design = two_level([4, 9, 2], schools=3)
    path = tmp_path / "design.json"
    design.save(path)
    loaded = Design.load(path)
    assert loaded.level("student").units == UnitCount.empirical([2, 4, 9])
    assert loaded.level("student").units.expected() == 5.0
    # A file written before empirical counts existed (no "sizes" field) loads as before.
    data = json.loads(path.read_text())
    data["levels"][1]["units"] = {"distribution": "uniform", "n": 15, "min": 15, "max": 35, "mean": 25.0}
    path.write_text(json.dumps(data))
    assert Design.load(path).level("student").units == UnitCount.uniform(15, 35)


@pytest.mark.parametrize("units, message", [
    ({"distribution": "empirical", "sizes": []}, "level student: empirical units need the observed group sizes"),
    ({"distribution": "empirical", "sizes": [3, 0]}, "level student: units sizes must be >= 1, got 0"),
    ({"distribution": "empirical", "sizes": [3, 2.5]}, "level student: units sizes must be a whole number"),
    ({"distribution": "empirical", "sizes": [3, "x"]}, r"units: sizes\[1\]: expected a number, got 'x'"),
    ({"distribution": "empirical", "sizes": 12}, "units: sizes: expected a list, got 12"),
])
def test_bad_sizes_are_refused_with_one_line_naming_the_level(tmp_path, units, message):
    data = two_level([4, 9, 2], schools=3).to_dict()
    data["levels"][1]["units"] = {"distribution": "empirical", "n": 1, "min": 1, "max": 1, "mean": 1.0, **units}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match=message) as error:
        Design.load(path)
    assert "\n" not in str(error.value)


def test_a_fixed_allocation_larger_than_the_smallest_observed_block_is_refused():
    design = two_level([4, 9, 2], schools=3)
    design.treatment = TreatmentDesign("t", effect=0.3, level="student", allocation="fixed", block="school", treated=3)
    with pytest.raises(UserInputError, match="treated = 3 but a block has only 2 student units"):
        design.validate()


def test_the_formulas_use_the_average_of_observed_sizes_and_say_so():
    design = two_level([10, 20, 30, 40], schools=4)
    design.treatment = TreatmentDesign("t", effect=0.3, level="school", allocation="fixed", probability=0.5)
    plan, notes = plan_from_design(design)
    assert plan.units == [4, 25]
    assert any("student: 4 observed sizes 10..40 units per parent; the formulas assume balance" in n for n in notes)


# ----- plan from a fit -------------------------------------------------------------------------
def test_observed_group_sizes_from_a_two_level_pilot(hsb_fit):
    design, model, notes = design_from_fit(hsb_fit, HSB, treatment="sector", group_sizes="observed")
    assert [level.name for level in design.levels] == ["school", "obs"]
    assert design.level("school").units == UnitCount.fixed(160)
    rows = design.level("obs")
    assert rows.sd == 0.0 and design.occasions is None
    assert rows.units.sizes == sizes_of(HSB, ["school"], None)  # 160 schools, 14..67 students
    assert any("rows per group drawn from the data's 160 group sizes (14..67, mean 44.91)" in n for n in notes)
    assert ModelSpec.parse(model) == ModelSpec.parse(HSB_MODEL)
    # At the pilot's 160 schools every replication has exactly the pilot's school sizes.
    for seed in (1, 2):
        frame = simulate(design, seed).frame
        assert sizes_of(frame, ["school"], None) == sizes_of(HSB, ["school"], None)
        assert len(frame) == len(HSB) == hsb_fit.nobs
        assert frame.groupby("school").sector.first().sum() == HSB.groupby("school").sector.first().sum()


def test_observed_sizes_at_every_level_of_a_three_level_pilot():
    fit = fit_mixed(TRIAL3, ModelSpec.parse("y treat || school: || class:, reml"))
    design, model, notes = design_from_fit(fit, TRIAL3, treatment="treat", group_sizes="observed")
    classes = sizes_of(TRIAL3, ["school"], "class")
    students = sizes_of(TRIAL3, ["school", "class"], None)
    assert design.level("class").units.sizes == classes and design.level("obs").units.sizes == students
    assert len(set(classes)) > 1 and len(set(students)) > 1  # the pilot is unbalanced at both levels
    frame = simulate(design, 7).frame
    assert sizes_of(frame, ["school"], "class") == classes
    assert sizes_of(frame, ["school", "class"], None) == students
    # The refitted model recovers the pilot's treatment effect and sds on a large simulated study.
    big = design.with_units("school", 10 * design.level("school").units.n)
    refit = fit_mixed(simulate(big, 8).frame, ModelSpec.parse(model))
    assert abs(refit.coef("treat").coef - fit.coef("treat").coef) < 3.5 * refit.coef("treat").se


def test_observed_sizes_need_the_data_and_the_right_data(hsb_fit):
    with pytest.raises(UserInputError, match="observed group sizes need the fitted data"):
        design_from_fit(hsb_fit, group_sizes="observed")
    with pytest.raises(UserInputError, match="--data does not match the fit: it has 159 school groups"):
        design_from_fit(hsb_fit, HSB[HSB.school != HSB.school.iloc[0]], group_sizes="observed")
    with pytest.raises(UserInputError, match="group sizes must be one of average, observed, got 'median'"):
        design_from_fit(hsb_fit, HSB, group_sizes="median")


def test_rows_with_a_missing_value_are_left_out_as_the_fit_left_them_out():
    data = HSB.copy()
    data.loc[data.index[:5], "ses"] = np.nan  # the first school loses 5 rows in the fit
    fit = fit_mixed(data, ModelSpec.parse(HSB_MODEL))
    design, _, _ = design_from_fit(fit, data, group_sizes="observed")
    assert design.level("obs").units.sizes == sizes_of(data.dropna(subset=["ses"]), ["school"], None)
    assert sum(design.level("obs").units.sizes) == fit.nobs == len(HSB) - 5


def test_montecarlo_from_fit_with_observed_group_sizes(tmp_path, hsb_fit, capsys):
    fit_path, out = tmp_path / "pilot.json", tmp_path / "mc.json"
    fit_path.write_text(json.dumps(hsb_fit.to_dict()))
    code = main(["montecarlo", "--from-fit", str(fit_path), "--data", "tests/data/hsb.csv", "--treatment", "sector",
                 "--group-sizes", "observed", "--sweep", "school=20,40", "--reps", "4", "--seed", "3",
                 "--workers", "1", "--json", str(out), "--quiet"])
    assert code == 0
    payload = json.loads(out.read_text())
    units = payload["study"]["design"]["levels"][1]["units"]
    assert units["distribution"] == "empirical" and units["sizes"] == sizes_of(HSB, ["school"], None)
    sector = [row for row in payload["rows"] if row["param"] == "sector"]
    assert [row["sweep"] for row in sector] == [20, 40] and all(row["n"] == 4 for row in sector)
    assert main(["montecarlo", "--preset", "cluster_trial", "--group-sizes", "observed", "--reps", "2",
                 "--models", "score treated || school_id:"]) == 2
    assert "--group-sizes apply only with --from-fit" in capsys.readouterr().err


def test_a_balanced_pilot_gives_the_same_design_either_way():
    # The seed's data: 5 districts x 5 schools x 8 teachers x 20 students x 2 semesters, all equal.
    data = pd.read_csv("tests/data/seed_d5.csv")
    fit = fit_mixed(data, ModelSpec.parse("perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"))
    observed, _, _ = design_from_fit(fit, data, treatment="tutoring", group_sizes="observed")
    average, _, _ = design_from_fit(fit, data, treatment="tutoring")
    assert observed == average
    assert [level.units for level in observed.levels] == [UnitCount.fixed(n) for n in (5, 5, 8, 20)]
    assert observed.occasions.count == 2
