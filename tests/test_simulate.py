"""Simulated data recover their design, within tolerances from sampling theory (4 standard errors)."""

import numpy as np
import pandas as pd
import pytest

from engine.design import CovariateDesign, Design, LevelDesign, Occasions, RandomSlope, TreatmentDesign, UnitCount
from engine.errors import UserInputError
from engine.presets import PRESETS, get_preset
from engine.simulate import simulate, true_effect_columns

Z = 4.0  # allowed distance from the truth, in standard errors


def _group_means(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Mean of values per id (ids are 1..N)."""
    return np.bincount(ids, weights=values)[1:] / np.bincount(ids)[1:]


def test_tutoring_has_the_seed_layout():
    data = simulate(get_preset("tutoring"), seed=1)
    frame = data.frame
    assert list(frame.columns[:7]) == ["dist_id", "school_id", "teach_id", "student_id", "semester",
                                       "tutoring", "perform"]
    assert true_effect_columns(frame) == ["true_u_dist_id", "true_u_school_id", "true_u_teach_id",
                                          "true_u_student_id"]
    assert len(frame) == 8000
    for name, count in [("dist_id", 5), ("school_id", 25), ("teach_id", 200), ("student_id", 4000)]:
        assert frame[name].dtype == np.int32
        assert sorted(frame[name].unique()) == list(range(1, count + 1))
    # Nesting: each unit sits in exactly one parent; ids are unique across the data set.
    for child, parent in [("school_id", "dist_id"), ("teach_id", "school_id"), ("student_id", "teach_id")]:
        assert frame.groupby(child)[parent].nunique().max() == 1
    assert (frame.groupby("teach_id").size() == 40).all()
    assert frame["semester"].tolist()[:4] == [1, 2, 1, 2]
    assert set(frame["tutoring"].unique()) <= {0, 1}
    assert frame["perform"].dtype == np.float64
    # Each unit's true effect is one value shared by its rows.
    for level in ["dist_id", "school_id", "teach_id", "student_id"]:
        assert frame.groupby(level)[f"true_u_{level}"].nunique().max() == 1
    # Sorted as the seed: hierarchy first, occasion last.
    assert frame[["student_id", "semester"]].apply(tuple, axis=1).is_monotonic_increasing
    assert data.truth.fixed == {"tutoring": 2.0, "_cons": 0.0}
    assert data.truth.seed == 1 and data.seed == 1


def test_same_seed_same_data_other_seed_other_data():
    design = get_preset("growth")
    first = simulate(design, seed=42).frame
    again = simulate(design, seed=42).frame
    other = simulate(design, seed=43).frame
    pd.testing.assert_frame_equal(first, again)
    assert not first["score"].equals(other["score"])


def test_no_seed_draws_one_that_reproduces():
    data = simulate(get_preset("cluster_trial"))
    pd.testing.assert_frame_equal(simulate(get_preset("cluster_trial"), data.seed).frame, data.frame)


def test_invalid_design_is_refused():
    design = get_preset("tutoring")
    design.levels[1].sd = -1
    with pytest.raises(UserInputError, match="level school_id: sd must be >= 0"):
        simulate(design, 1)


def test_nested_anova_recovers_each_level_variance_and_the_treatment_effect():
    """Balanced nested ANOVA on the 500-district tutoring design (800,000 rows).

    With k units per parent below, E[MS_level] = E[MS_below] + (rows per unit) * var_level, and
    Var(MS) = 2 E[MS]^2 / df, which gives each estimator's standard error.
    """
    design = get_preset("tutoring").with_units("dist_id", 500)
    frame = simulate(design, seed=2024).frame
    # The treatment is randomised per row; remove its true effect to leave the random part.
    y = frame["perform"].to_numpy() - 2.0 * frame["tutoring"].to_numpy()
    levels = design.level_names
    rows_per_unit = [1600, 320, 40, 2]
    true_var = {"dist_id": 4.0, "school_id": 9.0, "teach_id": 16.0, "student_id": 25.0}

    means = {level: _group_means(y, frame[level].to_numpy()) for level in levels}
    parent_of = {levels[k]: frame.groupby(levels[k])[levels[k - 1]].first().to_numpy() for k in range(1, 4)}
    mean_squares, dfs = {}, {}
    student_means = means["student_id"][frame["student_id"].to_numpy() - 1]
    mean_squares["Residual"] = np.sum((y - student_means) ** 2) / (len(y) - len(means["student_id"]))
    dfs["Residual"] = len(y) - len(means["student_id"])
    for k, level in enumerate(levels):
        unit_means = means[level]
        centre = y.mean() if k == 0 else means[levels[k - 1]][parent_of[level] - 1]
        dfs[level] = len(unit_means) - (1 if k == 0 else len(means[levels[k - 1]]))
        mean_squares[level] = rows_per_unit[k] * np.sum((unit_means - centre) ** 2) / dfs[level]

    expected_ms = {"Residual": 36.0}
    below = "Residual"
    for k in range(3, -1, -1):
        level = levels[k]
        expected_ms[level] = expected_ms[below] + rows_per_unit[k] * true_var[level]
        estimate = (mean_squares[level] - mean_squares[below]) / rows_per_unit[k]
        se = np.sqrt(2 * (expected_ms[level] ** 2 / dfs[level] + expected_ms[below] ** 2 / dfs[below])) \
            / rows_per_unit[k]
        assert abs(estimate - true_var[level]) < Z * se, (level, estimate, se)
        below = level
    se_residual = 36.0 * np.sqrt(2 / dfs["Residual"])
    assert abs(mean_squares["Residual"] - 36.0) < Z * se_residual
    assert [len(means[level]) for level in levels] == [500, 2500, 20_000, 400_000]

    # Treatment effect: within-student regression; Var(b) = sigma_e^2 / sum of centred x^2.
    x = frame["tutoring"].to_numpy().astype(float)
    student = frame["student_id"].to_numpy()
    x_centred = x - _group_means(x, student)[student - 1]
    perform = frame["perform"].to_numpy()
    y_centred = perform - _group_means(perform, student)[student - 1]
    effect = np.sum(x_centred * y_centred) / np.sum(x_centred**2)
    assert abs(effect - 2.0) < Z * 6.0 / np.sqrt(np.sum(x_centred**2))
    assert abs(x.mean() - 0.2) < Z * np.sqrt(0.2 * 0.8 / len(x))


@pytest.mark.parametrize("name", [name for name in PRESETS if get_preset(name).family == "gaussian"])
def test_fixed_part_is_recovered(name):
    """Outcome minus the true random effects = X b + residual: OLS recovers b and the residual sd."""
    design = get_preset(name)
    top = design.levels[0]
    design = design.with_units(top.name, top.units.n * 20)
    data = simulate(design, seed=11)
    frame = data.frame
    y = frame[design.outcome].to_numpy().copy()
    for level in design.levels:
        y -= frame[f"true_u_{level.name}"].to_numpy()
        for slope in level.slopes:
            y -= frame[f"true_u_{level.name}_{slope.variable}"].to_numpy() * frame[slope.variable].to_numpy()
    for factor in design.crossed:
        y -= frame[f"true_u_{factor.name}"].to_numpy()
    terms = [t for t in data.truth.fixed if t != "_cons"]
    X = np.column_stack([frame[t].to_numpy(dtype=float) for t in terms] + [np.ones(len(frame))])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    sigma = design.residual_sd
    se = sigma * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))
    for term, estimate, error in zip(terms + ["_cons"], coef, se):
        assert abs(estimate - data.truth.fixed[term]) < Z * error, (term, estimate, error)
    residual_var = np.sum((y - X @ coef) ** 2) / (len(y) - X.shape[1])
    assert abs(residual_var - sigma**2) < Z * sigma**2 * np.sqrt(2 / (len(y) - X.shape[1]))


def test_true_effects_have_the_design_sds():
    design = get_preset("tutoring").with_units("dist_id", 100)
    frame = simulate(design, seed=5).frame
    for level in design.levels:
        effects = frame.groupby(level.name)[f"true_u_{level.name}"].first().to_numpy()
        n = len(effects)
        # Var(s^2) = 2 sigma^4 / (n - 1) for normal draws.
        assert abs(effects.var(ddof=1) - level.sd**2) < Z * level.sd**2 * np.sqrt(2 / (n - 1)), level.name


def test_cluster_trial_assigns_per_school_and_recovers_the_effect():
    design = get_preset("cluster_trial").with_units("school_id", 2000)
    frame = simulate(design, seed=8).frame
    assert frame.groupby("school_id")["treated"].nunique().max() == 1
    school = frame.groupby("school_id").agg(treated=("treated", "first"), score=("score", "mean"))
    treated, control = school[school.treated == 1].score, school[school.treated == 0].score
    # A school mean varies by sd_school^2 + sigma^2 / 25.
    school_var = 2.0**2 + 5.0**2 / 25
    se = np.sqrt(school_var / len(treated) + school_var / len(control))
    assert abs(treated.mean() - control.mean() - 1.5) < Z * se
    assert abs(school.treated.mean() - 0.5) < Z * np.sqrt(0.25 / len(school))


def test_growth_recovers_the_slope_variance():
    """Students observed at all 5 waves: the OLS slope on time varies by sd_slope^2 + sigma^2 / Sxx."""
    design = get_preset("growth").with_units("school_id", 400)
    frame = simulate(design, seed=3).frame
    assert (frame["time"] == frame["wave"] - 1).all()
    complete = frame[frame.groupby("student_id")["wave"].transform("size") == 5]
    time = complete["time"].to_numpy(dtype=float).reshape(-1, 5)
    score = complete["score"].to_numpy().reshape(-1, 5)
    t_centred = time - time.mean(axis=1, keepdims=True)
    sxx = np.sum(t_centred[0] ** 2)  # 10
    slopes = np.sum(t_centred * score, axis=1) / sxx
    n = len(slopes)
    slope_var = 0.5**2 + 2.0**2 / sxx
    assert abs(slopes.mean() - 1.5) < Z * np.sqrt(slope_var / n)
    estimate = slopes.var(ddof=1) - 2.0**2 / sxx
    assert abs(estimate - 0.25) < Z * slope_var * np.sqrt(2 / (n - 1))


def test_correlated_random_slope_of_the_treatment():
    design = get_preset("tutoring").with_units("dist_id", 50)
    design.level("student_id").slopes.append(RandomSlope("tutoring", sd=1.5, corr=0.6))
    frame = simulate(design, seed=9).frame
    per_student = frame.groupby("student_id")[["true_u_student_id", "true_u_student_id_tutoring"]].first()
    n = len(per_student)
    slopes = per_student["true_u_student_id_tutoring"].to_numpy()
    assert abs(slopes.var(ddof=1) - 2.25) < Z * 2.25 * np.sqrt(2 / (n - 1))
    r = np.corrcoef(per_student.to_numpy().T)[0, 1]
    assert abs(r - 0.6) < Z * (1 - 0.6**2) / np.sqrt(n - 1)  # large-sample SE of a correlation


def test_missing_occasions_give_the_expected_counts():
    design = get_preset("tutoring").with_units("dist_id", 50)
    design.occasions.missing_prob = 0.25
    frame = simulate(design, seed=4).frame
    possible = 40_000 * 2
    assert abs(len(frame) - 0.75 * possible) < Z * np.sqrt(possible * 0.25 * 0.75)
    assert design.expected_counts().rows == pytest.approx(60_000)
    assert not frame.duplicated(["student_id", "semester"]).any()
    assert frame["semester"].between(1, 2).all()
    # A student is absent only when both semesters are missing (probability 1/16).
    missing_students = 40_000 - frame["student_id"].nunique()
    assert abs(missing_students - 40_000 / 16) < Z * np.sqrt(40_000 * (1 / 16) * (15 / 16))


def test_unbalanced_counts_uniform_and_poisson():
    design = Design(
        levels=[LevelDesign("school_id", 2000, sd=1.0), LevelDesign("class_id", UnitCount.uniform(2, 8), sd=1.0),
                LevelDesign("student_id", UnitCount.poisson(4.0))],
        residual_sd=1.0,
    )
    frame = simulate(design, seed=6).frame
    assert frame.groupby("class_id")["school_id"].nunique().max() == 1
    per_school = frame.groupby("school_id")["class_id"].nunique()
    assert per_school.min() == 2 and per_school.max() == 8
    # Discrete uniform on 2..8: variance (7^2 - 1) / 12 = 4.
    assert abs(per_school.sum() - 2000 * 5) < Z * np.sqrt(2000 * 4)
    per_class = frame.groupby("class_id").size()
    assert per_class.min() >= 1
    n_classes = len(per_class)
    # 1 + Poisson(3): mean 4, variance 3.
    assert abs(per_class.mean() - 4) < Z * np.sqrt(3 / n_classes)
    assert frame["student_id"].tolist() == list(range(1, len(frame) + 1))


def test_covariates_vary_at_their_level():
    design = Design(
        levels=[LevelDesign("school_id", 300, sd=1.0), LevelDesign("student_id", 10)],
        occasions=Occasions("wave", 3),
        residual_sd=1.0,
        treatment=TreatmentDesign("program", effect=1.0, probability=0.3, level="student_id"),
        covariates=[
            CovariateDesign("sector", level="school_id", distribution="binary", probability=0.3, coef=1.0),
            CovariateDesign("size", level="school_id", distribution="uniform", low=2.0, high=4.0, coef=0.5),
            CovariateDesign("ses", level="student_id", distribution="normal", mean=1.0, sd=2.0, coef=1.0),
            CovariateDesign("mood", level="observation", distribution="normal", coef=1.0),
        ],
    )
    frame = simulate(design, seed=12).frame
    assert frame.groupby("school_id")[["sector", "size"]].nunique().max().max() == 1
    assert frame.groupby("student_id")[["ses", "program"]].nunique().max().max() == 1
    assert frame.groupby("student_id")["mood"].nunique().min() == 3
    schools = frame.groupby("school_id")[["sector", "size"]].first()
    assert abs(schools.sector.mean() - 0.3) < Z * np.sqrt(0.21 / 300)
    assert schools["size"].between(2, 4).all()
    assert abs(schools["size"].mean() - 3) < Z * np.sqrt((2**2 / 12) / 300)
    ses = frame.groupby("student_id")["ses"].first()
    assert abs(ses.mean() - 1.0) < Z * 2.0 / np.sqrt(len(ses))
