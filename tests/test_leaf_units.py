"""The lowest level absorbed from merged, theta-independent unit sums (engine/mixed/leaf_units.py).

Leaf groups under one parent with the same Z'Z (students measured at the same occasions) share
one unit; the criterion must still equal the dense n x n formulas, merged or not, for every
number of random effects at the leaf (closed forms for 1 and 2, the general one above).
"""

import numpy as np
import pandas as pd
import pytest

from engine.mixed.predict import predict_random_effects
from tests.test_mixed_dense import build, dense_deviance, dense_pieces


def growth_data(seed=5, continuous_time=False):
    """Schools > students > occasions 0..3, some occasions missing; or times that all differ."""
    rng = np.random.default_rng(seed)
    rows = []
    for school in range(5):
        for student in range(rng.integers(3, 7)):
            waves = [w for w in range(4) if rng.random() > 0.25] or [0]
            for wave in waves:
                rows.append((school, student, float(wave)))
    frame = pd.DataFrame(rows, columns=["school", "student", "time"])
    n = len(frame)
    if continuous_time:
        frame["time"] += rng.uniform(-0.3, 0.3, size=n)
    frame["x"] = rng.normal(size=n)
    frame["y"] = 10 + 1.5 * frame.time + 0.5 * frame.x + rng.normal(size=n) + rng.normal(size=5)[frame.school]
    return frame


def check_against_dense(frame, text, seed=7):
    _, _, work, hierarchy, criterion = build(frame, text)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        theta = rng.normal(size=criterion.n_params) * 0.6
        theta[[i for i, (low, _) in enumerate(criterion.bounds()) if low is not None]] = np.abs(
            theta[[i for i, (low, _) in enumerate(criterion.bounds()) if low is not None]]) + 0.1
        evaluation = criterion.evaluate(theta)
        assert evaluation.deviance == pytest.approx(dense_deviance(criterion, work, hierarchy, theta), rel=1e-10)
        step = 1e-6
        numeric = [(dense_deviance(criterion, work, hierarchy, theta + step * e)
                    - dense_deviance(criterion, work, hierarchy, theta - step * e)) / (2 * step)
                   for e in np.eye(theta.size)]
        np.testing.assert_allclose(evaluation.gradient, numeric, rtol=1e-5, atol=1e-6)
    return criterion


def test_students_with_the_same_occasions_are_merged_and_the_criterion_is_exact():
    frame = growth_data()
    criterion = check_against_dense(frame, "y time x || school: || student: time, cov(un) reml")
    units = criterion.leaf_units
    n_students = criterion.hierarchy.group_counts[1]
    # Occasions 0..3 give at most 15 patterns of Z'Z; far fewer units than students.
    assert units.pattern_count.size <= 15
    assert units.n_units < n_students
    assert units.pattern_count.sum() == n_students


def test_times_that_all_differ_are_not_merged_and_the_criterion_is_exact():
    frame = growth_data(continuous_time=True)
    criterion = check_against_dense(frame, "y time x || school: || student: time, cov(un) ml")
    multi_row = int(np.sum(criterion.hierarchy.rows_per_group(1) > 1))
    # Only students with a single row at the same (rounded-off) time could share Z'Z.
    assert criterion.leaf_units.n_units >= multi_row


@pytest.mark.parametrize("text", [
    "y time x || school: || student: time x, cov(un) reml",  # q = 3: the general formulas
    "y time x || school: || student: time x, cov(exchangeable) reml",
    "y time x || school: time, cov(un) || student: time, cov(ind) ml",
    "y time x || school: || student: time, cov(identity) reml",  # one parameter for two effects
])
def test_other_leaf_covariances_match_dense_formulas(text):
    check_against_dense(growth_data(), text)


def test_a_slope_without_intercept_at_the_leaf_matches_dense_formulas():
    # The model syntax always gives a level its intercept; the criterion also takes a lone slope.
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.criterion import LevelTerms, NestedCriterion

    _, _, work, hierarchy, built = build(growth_data(), "y time x || school: || student: time, reml")
    ones, time = built.levels[1].columns
    levels = [LevelTerms([ones], LevelCovariance(1, "identity")), LevelTerms([time], LevelCovariance(1, "identity"))]
    criterion = NestedCriterion(work.matrix, hierarchy, levels, work.x_columns, work.y_column, True)
    theta = np.array([0.8, 0.6])
    evaluation = criterion.evaluate(theta)
    assert evaluation.deviance == pytest.approx(dense_deviance(criterion, work, hierarchy, theta), rel=1e-10)
    step = 1e-6
    numeric = [(dense_deviance(criterion, work, hierarchy, theta + step * e)
                - dense_deviance(criterion, work, hierarchy, theta - step * e)) / (2 * step) for e in np.eye(2)]
    np.testing.assert_allclose(evaluation.gradient, numeric, rtol=1e-5, atol=1e-6)


def test_leaf_predictions_with_merged_units_match_dense_formulas():
    frame = growth_data()
    _, _, work, hierarchy, criterion = build(frame, "y time x || school: || student: time, cov(un) reml")
    theta = np.array([0.7, 1.1, -0.3, 0.4])
    evaluation = criterion.evaluate(theta, keep=True)
    sigma = 1.3
    predicted = predict_random_effects(criterion, evaluation, theta, sigma)
    W = work.matrix
    X, y = W[:, criterion.x_columns], W[:, criterion.y_column]
    V, blocks = dense_pieces(criterion, work, hierarchy, theta)
    Vinv = np.linalg.inv(V)
    r = y - X @ evaluation.beta
    for (estimates, sds), (Z, cov, _) in zip(predicted, blocks):
        np.testing.assert_allclose(estimates.ravel(), cov @ Z.T @ Vinv @ r, atol=1e-10)
        conditional = sigma ** 2 * (cov - cov @ Z.T @ Vinv @ Z @ cov)
        np.testing.assert_allclose(sds.ravel(), np.sqrt(np.diag(conditional)), atol=1e-10)
