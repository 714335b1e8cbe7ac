"""The crossed criterion against independent computations: the nested path on nested data (variance
SEs included), dense linear algebra for BLUPs, and the automatic choice of path."""

import json

import numpy as np
import pandas as pd
import pytest

import main
from engine.mixed import fit_mixed
from engine.mixed.crossed import fit as crossed_fit
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, load_case, relative_error

NESTED_AS_CROSSED = "perform tutoring || _all: R.dist_id || _all: R.school_id || _all: R.teach_id || _all: R.student_id"
NESTED = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:"


@pytest.fixture(scope="module")
def seed():
    return pd.read_csv(DATA / "seed_d5.csv")  # nested: teacher and student ids are unique in the file


def test_factors_that_nest_take_the_nested_path(seed):
    crossed = fit_mixed(seed, ModelSpec.parse(NESTED_AS_CROSSED, method="REML"))
    nested = fit_mixed(seed, ModelSpec.parse(NESTED, method="REML"))
    assert any("nest in these data" in note for note in crossed.notes)
    assert crossed.model == "mixed " + NESTED_AS_CROSSED + ", reml"
    assert crossed.loglik == pytest.approx(nested.loglik, rel=1e-12)


def test_general_criterion_agrees_with_nested_path_including_variance_ses(seed, monkeypatch):
    nested = fit_mixed(seed, ModelSpec.parse(NESTED, method="ML"))
    monkeypatch.setattr(crossed_fit, "nesting_order", lambda factors: None)  # force the general criterion
    general = fit_mixed(seed, ModelSpec.parse(NESTED_AS_CROSSED, method="ML"))
    assert any("Crossed random factors" in note for note in general.notes)
    assert relative_error(general.loglik, nested.loglik) < 1e-9
    for ours, theirs in zip(general.fixed, nested.fixed):
        assert ours.term == theirs.term
        assert relative_error(ours.coef, theirs.coef) < 1e-5
        assert relative_error(ours.se, theirs.se) < 1e-5
    for ours, theirs in zip(general.random, nested.random):
        assert (ours.level, ours.param) == (theirs.level, theirs.param)
        assert relative_error(ours.estimate, theirs.estimate) < 1e-4
        assert relative_error(ours.se, theirs.se) < 1e-3, ours.level
    for ours, theirs in zip(general.level_effects, nested.level_effects):
        np.testing.assert_allclose(ours.estimates, theirs.estimates, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(ours.std_errors, theirs.std_errors, rtol=1e-3)
    np.testing.assert_allclose(general.fitted, nested.fitted, rtol=1e-6, atol=1e-6)


def test_blups_and_conditional_sds_match_dense_algebra():
    frame = pd.read_csv(DATA / "penicillin.csv")
    result = fit_mixed(frame, ModelSpec.parse("diameter || _all: R.plate || _all: R.sample, reml"))
    sigma = result.random_param("Residual", "sd(Residual)").estimate
    sds = [result.random_param(name, "sd(_cons)").estimate for name in ("plate", "sample")]
    plates = pd.factorize(frame["plate"], sort=True)[0]
    samples = pd.factorize(frame["sample"], sort=True)[0]
    z = np.hstack([np.eye(24)[plates], np.eye(6)[samples]])
    lam = np.diag(np.r_[np.full(24, sds[0]), np.full(6, sds[1])] / sigma)
    y = frame["diameter"].to_numpy(float)
    m = lam.T @ z.T @ z @ lam + np.eye(30)
    u = lam @ np.linalg.solve(m, lam.T @ z.T @ (y - result.coef("_cons").coef))
    cond_sd = sigma * np.sqrt(np.diag(lam @ np.linalg.inv(m) @ lam.T))
    effects = {e.level: e for e in result.level_effects}
    np.testing.assert_allclose(effects["plate"].estimates[:, 0], u[:24], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(effects["sample"].estimates[:, 0], u[24:], rtol=1e-6)
    np.testing.assert_allclose(effects["plate"].std_errors[:, 0], cond_sd[:24], rtol=1e-6)
    np.testing.assert_allclose(effects["sample"].std_errors[:, 0], cond_sd[24:], rtol=1e-6)
    assert effects["plate"].group_ids["plate"].tolist() == sorted(frame["plate"].unique())
    np.testing.assert_allclose(result.fitted, result.coef("_cons").coef + z @ u, rtol=1e-9)
    np.testing.assert_allclose(result.residuals, y - result.fitted)


def test_cli_formula_and_stata_layout(tmp_path, capsys):
    out = tmp_path / "fit.json"
    formula = "perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)"
    assert main.main(["fit", str(DATA / "seed_d5_crossed.csv"), "--formula", formula, "--json", str(out)]) == 0
    report = capsys.readouterr().out
    assert "Mixed-effects REML regression" in report  # lme4's default method
    assert "_all: Identity" in report and "sd(R.teach_id)" in report and "sd(R.student_id)" in report
    result = json.loads(out.read_text())
    case = load_case("crossed_seed_d5_reml")
    assert relative_error(result["loglik"], case["loglik"]) < 1e-6
    rows = {row["level"]: row for row in result["random"]}
    assert rows["teach_id"]["param"] == "sd(_cons)"
    assert relative_error(rows["teach_id"]["estimate"], case["random"]["teach_id"]["sd"]) < 1e-3
    assert {g["level"]: g["groups"] for g in result["groups"]} == case["ngroups"]
    assert result["spec"]["levels"][0]["crossed"] is True
    assert ModelSpec.from_dict(result["spec"]).to_lme4() == (
        "perform ~ tutoring + (1 | teach_id) + (1 | student_id) + (1 | dist_id) + (1 | dist_id:school_id)")


def test_cli_stata_all_syntax_with_ml(capsys):
    case = load_case("crossed_penicillin_ml")
    assert main.main(["fit", str(DATA / "penicillin.csv"), "--model", case["stata"], "--json", "-", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "ML"
    assert relative_error(result["loglik"], case["loglik"]) < 1e-6


@pytest.mark.parametrize("formula", [
    "perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)",  # scalar first block
    "perform ~ tutoring + (1|teach_id) + (1 + tutoring || student_id)",  # independent slopes in the first block
])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_exact_gradient_matches_central_differences(formula, method):
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.criterion import LevelTerms
    from engine.mixed.crossed.criterion import CrossedCriterion
    from engine.mixed.crossed.factors import grouping_factors
    from engine.mixed.prepare import build_work_columns, prepare_model_data

    spec = ModelSpec.parse_lme4(formula, method)
    data = prepare_model_data(pd.read_csv(DATA / "seed_d5_crossed.csv"), spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(c, LevelCovariance(len(c), lv.covariance)) for c, lv in zip(work.level_columns, spec.levels)]
    criterion = CrossedCriterion(work.matrix, grouping_factors(data.frame, spec), levels, work.x_columns,
                                 work.y_column, method == "REML")
    theta = np.random.default_rng(3).uniform(0.2, 1.2, criterion.n_params)
    np.testing.assert_allclose(criterion.evaluate(theta).gradient, criterion._numeric_gradient(theta),
                               rtol=1e-5, atol=1e-3)


def test_selected_inverse_is_exact_on_the_pattern():
    import scipy.sparse as sp

    from engine.mixed.crossed.criterion import _SparseFactor

    a = sp.random(400, 400, density=0.008, random_state=2)
    matrix = (a @ a.T + 2.0 * sp.identity(400)).tocsc()
    inverse = _SparseFactor(matrix).inverse()
    dense = np.linalg.inv(matrix.toarray())
    rows, cols = matrix.nonzero()
    np.testing.assert_allclose(inverse.entries(rows, cols), dense[rows, cols], atol=1e-13)
    np.testing.assert_allclose(inverse.diagonal(), np.diag(dense), rtol=1e-12)


def test_general_criterion_with_correlated_slopes_in_the_largest_block(monkeypatch):
    """Schools (random intercept and ses slope, unstructured: the first, block-diagonal factor)
    within sectors: the general criterion, forced, must give the nested path's fit."""
    frame = pd.read_csv(DATA / "hsb.csv")
    nested = fit_mixed(frame, ModelSpec.parse("mathach ses || sector: || school: ses, covariance(unstructured) reml"))
    monkeypatch.setattr(crossed_fit, "nesting_order", lambda factors: None)
    general = fit_mixed(frame, ModelSpec.parse_lme4("mathach ~ ses + (1|sector) + (1 + ses|school)"))
    assert any("Crossed random factors" in note for note in general.notes)
    assert relative_error(general.loglik, nested.loglik) < 1e-8
    for term in ("ses", "_cons"):
        assert relative_error(general.coef(term).coef, nested.coef(term).coef) < 1e-5
        assert relative_error(general.coef(term).se, nested.coef(term).se) < 1e-4
    for param in ("sd(ses)", "sd(_cons)", "corr(ses,_cons)"):
        assert relative_error(general.random_param("school", param).estimate,
                              nested.random_param("school", param).estimate) < 1e-3
    ours = {e.level: e for e in general.level_effects}["school"]
    theirs = {e.level: e for e in nested.level_effects}["school"]
    # the nested path orders schools within sectors; match them by id
    order = pd.Index(theirs.group_ids["school"]).get_indexer(ours.group_ids["school"])
    assert (order >= 0).all()
    np.testing.assert_allclose(ours.estimates, theirs.estimates[order], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.std_errors, theirs.std_errors[order], rtol=1e-3)


def test_nesting_check_proposes_the_crossed_factor():
    from engine.hierarchy_check import check_hierarchy

    report = check_hierarchy(pd.read_csv(DATA / "seed_d5_crossed.csv"))
    assert report.order == ["dist_id", "school_id", "teach_id"]
    assert any("|| _all: R.student_id" in finding and "(1|student_id)" in finding for finding in report.findings)


def test_schur_pattern_and_plain_sparse_products_agree(monkeypatch):
    from engine.mixed.crossed import criterion as crossed_criterion

    frame = pd.read_csv(DATA / "seed_d5_crossed.csv")
    spec = ModelSpec.parse_lme4("perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)")
    with_pattern = fit_mixed(frame, spec, predict=False)
    monkeypatch.setattr(crossed_criterion, "MAX_SCHUR_PAIRS", 0)
    without = fit_mixed(frame, spec, predict=False)
    assert without.loglik == pytest.approx(with_pattern.loglik, rel=1e-12)
    assert [r.estimate for r in without.random] == pytest.approx([r.estimate for r in with_pattern.random], rel=1e-6)


def test_sparse_and_dense_factorisations_agree(monkeypatch):
    """The sparse LU path (with its selected inverse) against the dense Cholesky path."""
    from engine.mixed.crossed import components
    from engine.mixed.crossed import criterion as crossed_criterion

    frame = pd.read_csv(DATA / "seed_d5_crossed.csv")
    spec = ModelSpec.parse_lme4("perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)")
    monkeypatch.setattr(components, "MAX_BLOCK", 0)  # S whole, not by its districts' blocks
    dense = fit_mixed(frame, spec)
    monkeypatch.setattr(crossed_criterion, "DENSE_LIMIT", 0)
    monkeypatch.setattr(crossed_criterion, "DENSE_FILL", 2.0)
    sparse = fit_mixed(frame, spec)
    assert relative_error(sparse.loglik, dense.loglik) < 1e-10
    for ours, theirs in zip(sparse.random, dense.random):
        assert relative_error(ours.estimate, theirs.estimate) < 1e-5
        assert relative_error(ours.se, theirs.se) < 1e-4
    for ours, theirs in zip(sparse.level_effects, dense.level_effects):
        np.testing.assert_allclose(ours.estimates, theirs.estimates, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours.std_errors, theirs.std_errors, rtol=1e-6)


def _unbalanced_districts(frame):
    """Districts of unequal size: district 1 loses two schools, district 2 the teachers 41-50."""
    keep = ~((frame.dist_id == 1) & frame.school_id.isin([1, 2])) & ~frame.teach_id.between(41, 50)
    return frame[keep].reset_index(drop=True)


@pytest.mark.parametrize("unbalanced", [False, True])
def test_schur_blocks_by_component_agree_with_the_whole_sparse_factor(unbalanced, monkeypatch):
    """Teachers cross students only within schools, so S splits into one block per district:
    factoring the blocks one by one (in batches of padded equal size) must give the whole sparse
    LU's fit, sds and BLUPs."""
    from engine.mixed.crossed import components
    from engine.mixed.crossed import criterion as crossed_criterion

    frame = pd.read_csv(DATA / "seed_d5_crossed.csv")
    if unbalanced:
        frame = _unbalanced_districts(frame)
    spec = ModelSpec.parse_lme4("perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)")
    built = []
    original = components.component_blocks
    monkeypatch.setattr(crossed_criterion, "component_blocks", lambda m: built.append(original(m)) or built[-1])
    blocked = fit_mixed(frame, spec)
    assert built and built[0] is not None and len(set(built[0].row_component)) == 5  # one block per district
    assert len(built[0].batches) == (3 if unbalanced else 1)  # blocks of 28, 35 and 46 rows: three sizes
    monkeypatch.setattr(crossed_criterion, "component_blocks", lambda m: None)
    monkeypatch.setattr(crossed_criterion, "DENSE_LIMIT", 0)
    monkeypatch.setattr(crossed_criterion, "DENSE_FILL", 2.0)
    whole = fit_mixed(frame, spec)
    assert relative_error(blocked.loglik, whole.loglik) < 1e-10
    for ours, theirs in zip(blocked.random, whole.random):
        assert relative_error(ours.estimate, theirs.estimate) < 1e-5
        assert relative_error(ours.se, theirs.se) < 1e-4
    for ours, theirs in zip(blocked.level_effects, whole.level_effects):
        np.testing.assert_allclose(ours.estimates, theirs.estimates, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours.std_errors, theirs.std_errors, rtol=1e-6)


def test_gradient_with_a_factor_at_zero_on_the_sparse_factor(monkeypatch):
    """A factor whose sd is zero leaves unit rows in S that the sparse LU drops from its pattern;
    the exact gradient must still match central differences there (it once failed outright)."""
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.criterion import LevelTerms
    from engine.mixed.crossed import criterion as crossed_criterion
    from engine.mixed.crossed.criterion import CrossedCriterion
    from engine.mixed.crossed.factors import grouping_factors
    from engine.mixed.prepare import build_work_columns, prepare_model_data

    monkeypatch.setattr(crossed_criterion, "component_blocks", lambda m: None)
    monkeypatch.setattr(crossed_criterion, "DENSE_LIMIT", 0)
    monkeypatch.setattr(crossed_criterion, "DENSE_FILL", 2.0)
    spec = ModelSpec.parse_lme4("perform ~ tutoring + (1|dist_id/school_id) + (1 + tutoring||teach_id) "
                                "+ (0 + tutoring|student_id)", "REML")
    data = prepare_model_data(pd.read_csv(DATA / "seed_d5_crossed.csv"), spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(c, LevelCovariance(len(c), lv.covariance)) for c, lv in zip(work.level_columns, spec.levels)]
    criterion = CrossedCriterion(work.matrix, grouping_factors(data.frame, spec), levels, work.x_columns,
                                 work.y_column, True)
    theta = np.array([0.3, 0.0, 0.9, 0.1, 0.7])  # the school sd at zero
    gradient = criterion.evaluate(theta).gradient
    numeric = criterion._numeric_gradient(theta)
    free = np.arange(theta.size) != 1  # the deviance is even in a zero theta: its gradient is 0 there
    np.testing.assert_allclose(gradient[free], numeric[free], rtol=1e-5, atol=1e-3)
    assert gradient[1] == 0.0


@pytest.mark.parametrize("dense_classes", [True, False])
def test_absorbed_first_factor_matches_the_per_group_blocks(dense_classes, monkeypatch):
    """The evaluation with the scalar first factor summed by classes of equal a_g (absorbed.py)
    against the per-group blocked factorisation, for deviance, beta and the exact gradient; with
    the class sums held densely and as sparse matrices."""
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.criterion import LevelTerms
    from engine.mixed.crossed import absorbed
    from engine.mixed.crossed.criterion import CrossedCriterion
    from engine.mixed.crossed.factors import grouping_factors
    from engine.mixed.crossed.gradient import analytic_gradient
    from engine.mixed.prepare import build_work_columns, prepare_model_data

    if not dense_classes:
        monkeypatch.setattr(absorbed, "MAX_DENSE_CLASS_ENTRIES", 0)
    spec = ModelSpec.parse_lme4("perform ~ tutoring + (1|dist_id/school_id) + (1 + tutoring||teach_id) "
                                "+ (0 + tutoring|student_id)", "REML")  # a slope: a_g takes several values
    data = prepare_model_data(pd.read_csv(DATA / "seed_d5_crossed.csv"), spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(c, LevelCovariance(len(c), lv.covariance)) for c, lv in zip(work.level_columns, spec.levels)]
    criterion = CrossedCriterion(work.matrix, grouping_factors(data.frame, spec), levels, work.x_columns,
                                 work.y_column, True)
    assert criterion.absorbed is not None and criterion.absorbed.a.size > 1
    for seed in range(3):
        theta = np.random.default_rng(seed).uniform(0.2, 1.2, criterion.n_params)
        fast = criterion.evaluate(theta)
        full, blocks = criterion._evaluate(theta)
        assert fast.deviance == pytest.approx(full.deviance, rel=1e-12)
        np.testing.assert_allclose(fast.beta, full.beta, rtol=1e-8)  # sums in another order: rounding
        np.testing.assert_allclose(fast.gradient, analytic_gradient(criterion, theta, full, blocks), rtol=1e-8, atol=1e-6)
