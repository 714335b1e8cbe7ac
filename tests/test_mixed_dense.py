"""The nested O(groups) recursion against brute force with the dense n x n covariance matrix.

Small data sets, random theta: the profiled deviance (REML and ML), its gradient, the predicted
random effects and their conditional sds must equal the textbook formulas.
"""

import numpy as np
import pandas as pd
import pytest

from engine.mixed import fit_mixed
from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LevelTerms, NestedCriterion
from engine.mixed.hierarchy import build_hierarchy
from engine.mixed.predict import predict_random_effects
from engine.mixed.prepare import build_work_columns, prepare_model_data
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA


def small_unbalanced_data(seed=3):
    """Three levels, unequal group sizes, ids restarting within parents, a slope variable."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(4):
        for b in range(rng.integers(1, 4)):
            for c in range(rng.integers(1, 4)):
                for _ in range(rng.integers(1, 5)):
                    rows.append((a, b, c))
    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    n = len(frame)
    frame["x"] = rng.normal(size=n)
    frame["t"] = rng.integers(0, 3, size=n).astype(float)
    frame["y"] = 1 + 0.5 * frame.x + rng.normal(size=n) + frame.a * 0.7 + frame.b * 0.3 + frame.t * frame.c * 0.2
    return frame


def build(frame, text):
    spec = ModelSpec.parse(text)
    data = prepare_model_data(frame, spec)
    work = build_work_columns(data, spec)
    hierarchy = build_hierarchy(data.frame, spec.level_names)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    criterion = NestedCriterion(work.matrix, hierarchy, levels, work.x_columns, work.y_column,
                                spec.method == "REML")
    return spec, data, work, hierarchy, criterion


def dense_pieces(criterion, work, hierarchy, theta):
    """V = I + sum_l Z_l (I x Lambda_l Lambda_l') Z_l', with Z_l the level's columns per group."""
    W = work.matrix
    n = W.shape[0]
    V = np.eye(n)
    blocks = []
    for level, terms in enumerate(criterion.levels):
        offset = criterion.param_offsets[level]
        lam = terms.covariance.lambda_of(theta[offset: offset + terms.covariance.n_params])
        codes = hierarchy.row_codes[level]
        G = hierarchy.group_counts[level]
        q = len(terms.columns)
        Z = np.zeros((n, G * q))
        for j, column in enumerate(terms.columns):
            Z[np.arange(n), codes * q + j] = W[:, column]
        cov = np.kron(np.eye(G), lam @ lam.T)
        V += Z @ cov @ Z.T
        blocks.append((Z, cov, q))
    return V, blocks


def dense_deviance(criterion, work, hierarchy, theta):
    W = work.matrix
    X, y = W[:, criterion.x_columns], W[:, criterion.y_column]
    V, _ = dense_pieces(criterion, work, hierarchy, theta)
    Vinv = np.linalg.inv(V)
    xtvx = X.T @ Vinv @ X
    beta = np.linalg.solve(xtvx, X.T @ Vinv @ y)
    r = y - X @ beta
    r2 = r @ Vinv @ r
    n, p = X.shape
    logdet = np.linalg.slogdet(V)[1]
    if criterion.reml:
        return logdet + np.linalg.slogdet(xtvx)[1] + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))
    return logdet + n * (1 + np.log(2 * np.pi * r2 / n))


MODELS = [
    "y x || a: || b: || c:, reml",
    "y x || a: || b: || c:, ml",
    "y x || a: || b: t, covariance(unstructured) reml",
    "y x t || a: x || b: || c: t, covariance(independent) ml",
    "y || a: x t, covariance(unstructured) reml",
]


@pytest.mark.parametrize("text", MODELS)
def test_deviance_and_gradient_match_dense_formulas(text):
    frame = small_unbalanced_data()
    _, _, work, hierarchy, criterion = build(frame, text)
    rng = np.random.default_rng(11)
    for _ in range(3):
        theta = np.abs(rng.normal(size=criterion.n_params)) + 0.1
        evaluation = criterion.evaluate(theta)
        expected = dense_deviance(criterion, work, hierarchy, theta)
        assert evaluation.deviance == pytest.approx(expected, rel=1e-10)
        step = 1e-6
        numeric = [(dense_deviance(criterion, work, hierarchy, theta + step * e)
                    - dense_deviance(criterion, work, hierarchy, theta - step * e)) / (2 * step)
                   for e in np.eye(theta.size)]
        assert np.allclose(evaluation.gradient, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text", MODELS)
def test_predicted_effects_match_dense_formulas(text):
    frame = small_unbalanced_data()
    _, _, work, hierarchy, criterion = build(frame, text)
    theta = np.linspace(0.4, 1.3, criterion.n_params)
    evaluation = criterion.evaluate(theta, keep=True)
    sigma = 1.7
    predicted = predict_random_effects(criterion, evaluation, theta, sigma)
    W = work.matrix
    X, y = W[:, criterion.x_columns], W[:, criterion.y_column]
    V, blocks = dense_pieces(criterion, work, hierarchy, theta)
    Vinv = np.linalg.inv(V)
    r = y - X @ evaluation.beta
    for (estimates, sds), (Z, cov, q) in zip(predicted, blocks):
        blup = cov @ Z.T @ Vinv @ r
        conditional = sigma ** 2 * (cov - cov @ Z.T @ Vinv @ Z @ cov)
        assert np.allclose(estimates.ravel(), blup, atol=1e-10)
        assert np.allclose(sds.ravel(), np.sqrt(np.diag(conditional)), atol=1e-10)


def test_fitted_values_and_residuals_add_up():
    frame = small_unbalanced_data()
    result = fit_mixed(frame, ModelSpec.parse("y x || a: || b: t, reml"))
    assert np.allclose(result.fitted + result.residuals, frame.y)
    # Fitted values include the predicted effects, so they beat the fixed part alone.
    fixed_only = frame.x * result.coef("x").coef + result.coef("_cons").coef
    assert np.sum(result.residuals ** 2) < np.sum((frame.y - fixed_only) ** 2)


def test_row_order_does_not_matter():
    frame = pd.read_csv(DATA / "pastes.csv")
    spec = ModelSpec.parse("strength || batch: || cask:, reml")
    shuffled = frame.sample(frac=1.0, random_state=5)
    a, b = fit_mixed(frame, spec), fit_mixed(shuffled, spec)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    assert [r.estimate for r in a.random] == pytest.approx([r.estimate for r in b.random], rel=1e-6)


def test_ids_restarting_within_parents_nest_by_position():
    frame = small_unbalanced_data()
    result = fit_mixed(frame, ModelSpec.parse("y x || a: || b: || c:"))
    expected = [frame.a.nunique(), len(frame.groupby(["a", "b"])), len(frame.groupby(["a", "b", "c"]))]
    assert [g.groups for g in result.groups] == expected
    # ... and says so, naming the combination that forms the groups.
    assert any(f"(a, b, c) combination, {expected[2]} groups from {frame.c.nunique()} distinct c values" in note
               for note in result.notes)


def test_predicted_effects_match_lme4_ranef_with_condvar():
    # lme4 1.1 (Debian's r-cran-lme4), ranef(lmer(strength ~ 1 + (1|batch/cask), Pastes, REML=TRUE),
    # condVar=TRUE): estimates and sqrt(postVar) for batches A, B, C and cask a in batch A.
    frame = pd.read_csv(DATA / "pastes.csv")
    result = fit_mixed(frame, ModelSpec.parse("strength || batch: || cask:, reml"))
    batch, cask = result.level_effects
    assert list(batch.group_ids["batch"][:3]) == ["A", "B", "C"]
    assert batch.estimates[:3, 0] == pytest.approx([0.8006450, -0.2725087, 0.7222686], abs=2e-6)
    assert batch.std_errors[:3, 0] == pytest.approx([1.028494] * 3, abs=2e-6)
    assert list(cask.group_ids.iloc[0]) == ["A", "a"]
    assert cask.estimates[0, 0] == pytest.approx(1.7746863, abs=2e-6)
    assert cask.std_errors[0, 0] == pytest.approx(1.141721, abs=2e-6)
