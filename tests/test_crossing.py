"""Ids that look crossed rather than nested: caught by the check, the fit and the window's nesting check.

The rule (engine/crossing.py): an inner id whose values recur across its parent's groups looks
crossed when, with an outcome, equal values share an effect across the parent groups (an F test
of the id's main effect after the parents against the cell-to-cell variation), or, without one,
when the recurring values do not restart 1..k in each parent and the cells hold several rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from engine.crossing import shared_effect_test
from engine.hierarchy_check import check_hierarchy
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.report import format_fit_report
from main import main
from tests.reference_cases import DATA
from tests.test_hierarchy_check import restarted_teachers

SEED_LEVELS = ["dist_id", "school_id", "teach_id", "student_id"]


@pytest.fixture(scope="module")
def penicillin() -> pd.DataFrame:
    return pd.read_csv(DATA / "penicillin.csv")


@pytest.fixture(scope="module")
def seed_crossed() -> pd.DataFrame:
    return pd.read_csv(DATA / "seed_d5_crossed.csv")


def crossed_warnings(result) -> list[str]:
    return [w for w in result.warnings if "looks crossed" in w]


def raters_by_items(shared_sd: float, seed: int = 3) -> pd.DataFrame:
    """20 items, each scored twice by each of the same 6 raters (raters 1..6 everywhere, balanced)."""
    rng = np.random.default_rng(seed)
    rater_effect = rng.normal(0, shared_sd, 6)
    rows = []
    for item in range(1, 21):
        item_effect = rng.normal(0, 2)
        for rater in range(1, 7):
            cell = rng.normal(0, 0.5)
            for _ in range(2):
                rows.append((item, rater, 10 + item_effect + rater_effect[rater - 1] + cell + rng.normal()))
    return pd.DataFrame(rows, columns=["item", "rater", "score"])


def restarting_rows(seed: int = 5) -> pd.DataFrame:
    """40 schools with students numbered 1..k (k = 10..25) inside each, one row per student."""
    rng = np.random.default_rng(seed)
    rows = []
    for school in range(1, 41):
        school_effect = rng.normal(0, 2)
        for student in range(1, int(rng.integers(10, 26)) + 1):
            rows.append((school, student, 50 + school_effect + rng.normal(0, 5)))
    return pd.DataFrame(rows, columns=["school", "student", "y"])


# ----- the test statistic against an independent two-way ANOVA --------------------------------------------
def test_shared_effect_test_is_the_type_ii_anova_with_cells_as_error(penicillin):
    # One row per cell: the interaction is the residual, so statsmodels' additive type II ANOVA is the same test.
    codes = {name: pd.factorize(penicillin[name], sort=True)[0] for name in ("plate", "sample")}
    f_stat, df, p = shared_effect_test(codes["plate"], codes["sample"], penicillin["diameter"].to_numpy(float))
    table = anova_lm(smf.ols("diameter ~ C(plate) + C(sample)", data=penicillin).fit(), typ=2)
    assert df == [5, 115]
    assert f_stat == pytest.approx(table.loc["C(sample)", "F"], rel=1e-9)
    assert p == pytest.approx(table.loc["C(sample)", "PR(>F)"], rel=1e-6)


def test_shared_effect_test_with_replicates_uses_the_cells_as_denominator():
    frame = restarted_teachers()  # unbalanced and incomplete: 3..8 teachers per school, 5..12 pupils each
    f_stat, df, p = shared_effect_test(frame["school_id"].to_numpy(), frame["teach_id"].to_numpy(),
                                       frame["y"].to_numpy())
    # Independently: residual sums of squares and ranks of the three nested least-squares fits.
    y = frame["y"].to_numpy()
    school = pd.get_dummies(frame["school_id"]).to_numpy(float)
    teacher = pd.get_dummies(frame["teach_id"]).to_numpy(float)
    cells = pd.get_dummies(frame["school_id"].astype(str) + ":" + frame["teach_id"].astype(str)).to_numpy(float)

    def fit(design):
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        return float(np.sum((y - design @ coef) ** 2)), int(np.linalg.matrix_rank(design))

    (ss_school, r_school), (ss_additive, r_additive), (ss_cells, r_cells) = (
        fit(school), fit(np.hstack([school, teacher])), fit(cells))
    expected_df = [r_additive - r_school, r_cells - r_additive]
    expected_f = ((ss_school - ss_additive) / expected_df[0]) / ((ss_additive - ss_cells) / expected_df[1])
    assert df == expected_df
    assert f_stat == pytest.approx(expected_f, rel=1e-8)
    assert p == pytest.approx(stats.f.sf(expected_f, *expected_df), rel=1e-8)


# ----- real data: caught ------------------------------------------------------------------------------------
@pytest.mark.parametrize("order, inner, parent", [("|| plate: || sample:", "sample", "plate"),
                                                  ("|| sample: || plate:", "plate", "sample")])
def test_penicillin_plates_and_samples_look_crossed_and_the_fit_still_runs(penicillin, order, inner, parent):
    result = fit_mixed(penicillin, ModelSpec.parse(f"diameter {order}, reml"), predict=False)
    found = crossed_warnings(result)
    assert len(found) == 1
    message = found[0]
    assert message.startswith(f"{inner} looks crossed with {parent}, not nested in it")
    assert f"A nested fit treats every ({parent}, {inner}) combination as a separate unit" in message
    assert f"Fit a crossed model instead: {inner} as a random effect of its own, || _all: R.{inner}" in message
    assert f"(1|{parent}) + (1|{inner})" in message
    assert result.loglik < 0 and result.converged  # the fit still runs
    # ... and the report shows the warning before the tables.
    report = format_fit_report(result)
    assert report.index(f"{inner} looks crossed") < report.index("Number of obs")


def test_students_who_change_teacher_look_crossed(seed_crossed):
    spec = ModelSpec.parse("perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml")
    result = fit_mixed(seed_crossed, spec, predict=False)
    found = crossed_warnings(result)
    assert len(found) == 1 and found[0].startswith("student_id looks crossed with teach_id")
    moved = int((seed_crossed.groupby("student_id")["teach_id"].nunique() > 1).sum())
    assert f"{moved:,} of its 4,000 values occur in more than one teach_id group" in found[0]


def test_the_check_catches_crossed_ids_by_layout_and_by_a_shared_effect(seed_crossed, penicillin):
    by_layout = check_hierarchy(seed_crossed, SEED_LEVELS)
    assert [(e.inner, e.parent, e.basis) for e in by_layout.crossed] == [("student_id", "teach_id", "layout")]
    assert any(w.startswith("student_id looks crossed with teach_id") for w in by_layout.warnings)
    by_effect = check_hierarchy(seed_crossed, SEED_LEVELS, outcome="perform")
    assert [(e.inner, e.basis) for e in by_effect.crossed] == [("student_id", "shared effect")]
    assert by_effect.crossed[0].p_value < 1e-10
    # Penicillin's layout is balanced (every plate has samples A..F): only the outcome tells.
    assert check_hierarchy(penicillin, ["plate", "sample"]).crossed == []
    with_outcome = check_hierarchy(penicillin, ["plate", "sample"], outcome="diameter")
    assert [e.inner for e in with_outcome.crossed] == ["sample"]
    # The outcome is never taken for an id (diameter has 10 repeated integer values).
    assert "diameter" not in check_hierarchy(penicillin, outcome="diameter").candidates


def test_the_automatic_check_leaves_crossed_ids_out_and_says_why(seed_crossed):
    report = check_hierarchy(seed_crossed)
    assert report.order == ["dist_id", "school_id", "teach_id"]
    found = [f for f in report.findings if f.startswith("student_id is crossed with dist_id, school_id, teach_id")]
    assert len(found) == 1
    assert "each (dist_id, school_id, teach_id, student_id) combination would be a unit of its own" in found[0]
    assert "|| _all: R.student_id before the nested levels (lme4: (1|student_id))" in found[0]


def test_the_check_command_takes_an_outcome(capsys):
    assert main(["check", str(DATA / "penicillin.csv"), "--levels", "plate", "sample", "--outcome", "diameter"]) == 0
    assert "sample looks crossed with plate, not nested in it" in capsys.readouterr().out
    assert main(["check", str(DATA / "penicillin.csv"), "--outcome", "plate"]) == 2
    assert "the outcome 'plate' is not numeric (e.g. 'a')" in capsys.readouterr().err


def test_raters_scoring_every_item_twice_look_crossed_only_when_they_share_an_effect():
    crossed = raters_by_items(shared_sd=1.5)
    spec = ModelSpec.parse("score || item: || rater:, reml")
    assert [w.split(",")[0] for w in crossed_warnings(fit_mixed(crossed, spec, predict=False))] == [
        "rater looks crossed with item"]
    # The same balanced layout without a rater effect is what restarting ids look like: not flagged.
    assert crossed_warnings(fit_mixed(raters_by_items(shared_sd=0.0), spec, predict=False)) == []


# ----- nested data: never flagged -------------------------------------------------------------------------
def test_nested_real_data_are_not_flagged():
    hsb = pd.read_csv(DATA / "hsb.csv")
    assert crossed_warnings(fit_mixed(hsb, ModelSpec.parse("mathach ses || school:"), predict=False)) == []
    assert check_hierarchy(hsb, outcome="mathach").crossed == []
    seed = pd.read_csv(DATA / "seed_d5.csv")
    spec = ModelSpec.parse("perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml")
    assert crossed_warnings(fit_mixed(seed, spec, predict=False)) == []
    assert check_hierarchy(seed, SEED_LEVELS, outcome="perform").crossed == []
    pastes = pd.read_csv(DATA / "pastes.csv")  # casks a, b, c restart in every batch, two samples each
    assert crossed_warnings(fit_mixed(pastes, ModelSpec.parse("strength || batch: || cask:"), predict=False)) == []


def test_restarting_ids_are_not_flagged_with_one_or_many_rows_per_cell():
    teachers = restarted_teachers()  # teachers 1..k in every school, 5..12 pupils each
    result = fit_mixed(teachers, ModelSpec.parse("y x || school_id: || teach_id:"), predict=False)
    assert crossed_warnings(result) == []
    assert check_hierarchy(teachers, ["school_id", "teach_id"], outcome="y").crossed == []
    students = restarting_rows()  # students 1..k in every school, one row each
    result = fit_mixed(students, ModelSpec.parse("y || school: || student:"), predict=False)
    assert crossed_warnings(result) == []
    assert check_hierarchy(students, ["school", "student"]).crossed == []
    assert check_hierarchy(students, ["school", "student"], outcome="y").crossed == []
