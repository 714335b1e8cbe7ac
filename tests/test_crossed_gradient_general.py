"""The crossed criterion's exact gradient for correlated (unstructured) and exchangeable Lambda
blocks (gradient.general_gradient) against Richardson-extrapolated central differences of the
deviance, on the dense and the sparse (SuperLU) factorisations of the Schur complement."""

import numpy as np
import pandas as pd
import pytest

from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LevelTerms
from engine.mixed.crossed import criterion as crossed_criterion
from engine.mixed.crossed.criterion import CrossedCriterion, _DenseFactor, _SparseFactor
from engine.mixed.crossed.factors import grouping_factors
from engine.mixed.crossed.gradient import general_gradient
from engine.mixed.prepare import build_work_columns, prepare_model_data
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA

MODELS = {
    # q = 2 unstructured on the smaller factor; the students (scalar) come first
    "slope_on_smaller": ("lme4", "perform ~ tutoring + (1 + tutoring|teach_id) + (1|student_id)"),
    # q = 2 unstructured on the first (largest) factor
    "slope_on_first": ("lme4", "perform ~ tutoring + (1|teach_id) + (1 + tutoring|student_id)"),
    # a correlated slope beside two intercept factors
    "mixed_with_intercepts": ("lme4", "perform ~ tutoring + (1 + tutoring|school_id) + (1|teach_id) + (1|student_id)"),
    # q = 3 unstructured (two correlated slopes) on the smaller factor
    "two_slopes": ("lme4", "perform ~ tutoring + semester + (1 + tutoring + semester|teach_id) + (1|student_id)"),
    # exchangeable block on the smaller factor, crossed with the students
    "exchangeable": ("stata", "perform tutoring || _all: R.student_id || teach_id: tutoring, covariance(exchangeable)"),
    # exchangeable block on the first factor
    "exchangeable_first": ("stata", "perform tutoring || _all: R.teach_id || student_id: tutoring, "
                                    "covariance(exchangeable)"),
}


@pytest.fixture(scope="module")
def frame():
    return pd.read_csv(DATA / "seed_d5_crossed.csv")


def _criterion(frame, name, method):
    syntax, text = MODELS[name]
    spec = ModelSpec.parse_lme4(text, method) if syntax == "lme4" else ModelSpec.parse(text, method=method)
    data = prepare_model_data(frame, spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(c, LevelCovariance(len(c), lv.covariance)) for c, lv in zip(work.level_columns, spec.levels)]
    return CrossedCriterion(work.matrix, grouping_factors(data.frame, spec), levels, work.x_columns,
                            work.y_column, method == "REML")


def _differences(criterion, theta, step=1e-3):
    """Central differences of the deviance, Richardson-extrapolated (error O(step^4))."""
    def central(i, h):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        return (criterion.evaluate(up, gradient=False).deviance
                - criterion.evaluate(down, gradient=False).deviance) / (2 * h)
    return np.array([(4 * central(i, step / 2) - central(i, step)) / 3 for i in range(theta.size)])


def _random_theta(criterion, seed):
    """Diagonal parameters in (0.3, 1.3), correlations' parameters in (-0.6, 0.6)."""
    rng = np.random.default_rng(seed)
    out = []
    for terms in criterion.levels:
        for diagonal in terms.covariance.is_diagonal_param():
            out.append(rng.uniform(0.3, 1.3) if diagonal else rng.uniform(-0.6, 0.6))
    return np.array(out)


@pytest.fixture(params=["dense", "sparse"])
def branch(request, monkeypatch):
    if request.param == "sparse":  # every Schur complement through SuperLU
        monkeypatch.setattr(crossed_criterion, "DENSE_LIMIT", 0)
        monkeypatch.setattr(crossed_criterion, "DENSE_FILL", 2.0)
    else:  # every one densely (LAPACK), whatever its size
        monkeypatch.setattr(crossed_criterion, "DENSE_LIMIT", 10 ** 6)
    return request.param


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_exact_gradient_matches_differences(frame, name, method, branch):
    criterion = _criterion(frame, name, method)
    assert not criterion.diagonal
    for seed in range(3):
        theta = _random_theta(criterion, seed)
        evaluation, blocks = criterion._evaluate(theta)
        assert isinstance(blocks.solve_rest, _SparseFactor if branch == "sparse" else _DenseFactor)
        exact = general_gradient(criterion, theta, evaluation, blocks)
        assert exact is not None
        reference = _differences(criterion, theta)
        np.testing.assert_allclose(exact, reference, rtol=1e-6, atol=1e-6 * np.abs(reference).max())
        # the criterion's own evaluation now carries it, with the pieces kept for sigma given
        evaluated = criterion.evaluate(theta)
        np.testing.assert_allclose(evaluated.gradient, exact, rtol=1e-12)
        assert evaluated.d_logdet_v is not None and evaluated.d_xtvx is not None


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_gradient_pieces_match_differences(frame, method):
    """d log|V|, d r2 and d X'V^-1X separately (the df methods and the likelihood at a given
    sigma read them), against central differences of the evaluation's own quantities."""
    criterion = _criterion(frame, "mixed_with_intercepts", method)
    theta = _random_theta(criterion, 7)
    evaluation = criterion.evaluate(theta)
    step = 1e-5
    for k in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[k] += step
        down[k] -= step
        hi, lo = criterion.evaluate(up, gradient=False), criterion.evaluate(down, gradient=False)
        assert evaluation.d_logdet_v[k] == pytest.approx((hi.logdet_v - lo.logdet_v) / (2 * step), rel=1e-6, abs=1e-5)
        assert evaluation.d_r2[k] == pytest.approx((hi.r2 - lo.r2) / (2 * step), rel=1e-6, abs=1e-5)
        np.testing.assert_allclose(evaluation.d_xtvx[k], (hi.xtvx - lo.xtvx) / (2 * step), rtol=1e-5, atol=1e-4)


def test_exchangeable_parameter_at_zero_has_zero_gradient(frame):
    """The deviance is even in each exchangeable parameter: at zero its derivative is 0 exactly,
    and the others still match differences."""
    criterion = _criterion(frame, "exchangeable", "REML")
    theta = _random_theta(criterion, 1)
    theta[1] = 0.0  # the student factor first: this is the teachers' off-ones parameter
    names = [terms.covariance.kind for terms in criterion.levels for _ in terms.covariance.basis]
    assert names[1] == "exchangeable"
    gradient = criterion.evaluate(theta).gradient
    assert gradient[1] == 0.0
    reference = _differences(criterion, theta)
    free = np.arange(theta.size) != 1
    np.testing.assert_allclose(gradient[free], reference[free], rtol=1e-6, atol=1e-6 * np.abs(reference).max())


def test_singular_unstructured_block_falls_back_to_differences(frame):
    """With a zero diagonal entry in an unstructured Lambda (a correlation of +-1) Lambda has no
    inverse: the exact formula is not used and the gradient is the central differences'."""
    criterion = _criterion(frame, "slope_on_smaller", "REML")
    theta = _random_theta(criterion, 2)
    kinds = [(terms.covariance.kind, diagonal) for terms in criterion.levels
             for diagonal in terms.covariance.is_diagonal_param()]
    last_diagonal = max(i for i, (kind, diagonal) in enumerate(kinds) if kind == "unstructured" and diagonal)
    theta[last_diagonal] = 0.0
    evaluation, blocks = criterion._evaluate(theta)
    assert general_gradient(criterion, theta, evaluation, blocks) is None
    np.testing.assert_allclose(criterion.evaluate(theta).gradient, criterion._numeric_gradient(theta), rtol=1e-12)


def test_exchangeable_block_fits_as_the_nested_path_when_factors_nest(monkeypatch):
    """An exchangeable block is full (t1 (I - J/q) + t2 J/q), not diagonal: the crossed criterion,
    forced onto nested data, must reproduce the nested path's fit (it once took only Lambda's
    diagonal, fitting a correlation of exactly 0 and a lower likelihood)."""
    from engine.mixed import fit_mixed
    from engine.mixed.crossed import fit as crossed_fit

    seed = pd.read_csv(DATA / "seed_d5.csv")  # teacher ids unique in the file: they nest in schools
    nested = fit_mixed(seed, ModelSpec.parse("perform tutoring || school_id: || teach_id: tutoring, "
                                             "covariance(exchangeable) reml"))
    monkeypatch.setattr(crossed_fit, "nesting_order", lambda factors: None)
    general = fit_mixed(seed, ModelSpec.parse("perform tutoring || _all: R.school_id || teach_id: tutoring, "
                                              "covariance(exchangeable) reml"))
    assert any("Crossed random factors" in note for note in general.notes)
    assert general.loglik == pytest.approx(nested.loglik, rel=1e-10)
    for ours, theirs in zip(general.random, nested.random):
        assert (ours.level, ours.param) == (theirs.level, theirs.param)
        assert ours.estimate == pytest.approx(theirs.estimate, rel=1e-6, abs=1e-8)
        assert ours.se == pytest.approx(theirs.se, rel=1e-5)
    assert general.random_param("teach_id", "corr(tutoring _cons)").estimate == pytest.approx(-0.2138376438, rel=1e-6)
    for ours, theirs in zip(general.level_effects, nested.level_effects):  # predictions with the full block
        np.testing.assert_allclose(ours.estimates, theirs.estimates, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(ours.std_errors, theirs.std_errors, rtol=1e-8)
    np.testing.assert_allclose(general.fitted, nested.fitted, rtol=1e-9, atol=1e-9)


def test_df_methods_read_exact_pieces_equal_to_their_differences():
    """The df code (inference_ddf.DerivativeCriterion) now takes the exact pieces for a correlated
    slope; they equal its Richardson differences of the sparse evaluation at the fitted theta."""
    from engine.mixed import fit_mixed
    from engine.mixed.crossed.inference_ddf import DerivativeCriterion

    frame = pd.read_csv(DATA / "crossed_ddf.csv")
    spec = ModelSpec.parse_lme4("y ~ x + z + factor(grp) + (1 + x | teach) + (1 | student)", "REML")
    theta = np.array(fit_mixed(frame, spec, predict=False).theta)
    data = prepare_model_data(frame, spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(c, LevelCovariance(len(c), lv.covariance)) for c, lv in zip(work.level_columns, spec.levels)]
    criterion = CrossedCriterion(work.matrix, grouping_factors(data.frame, spec), levels, work.x_columns,
                                 work.y_column, True)
    assert not criterion.diagonal
    exact = DerivativeCriterion(criterion).evaluate(theta)
    differences = DerivativeCriterion(criterion, differences_only=True).evaluate(theta)
    assert exact.gradient is not None  # the criterion's own exact evaluation, not the differences
    for piece in ("d_logdet_v", "d_logdet_x", "d_r2", "d_xtvx"):
        np.testing.assert_allclose(getattr(exact, piece), getattr(differences, piece), rtol=1e-7,
                                   atol=1e-9 * np.max(np.abs(getattr(exact, piece))))
