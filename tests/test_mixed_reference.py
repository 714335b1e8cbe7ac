"""The engine reproduces lme4's fits (shared/reference) within the README's tolerances:
log-likelihood 1e-6 relative, fixed effects and SEs 1e-4, random-effect sds 1e-3."""

import pytest

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import LME4_TERM, load_case, load_data, relative_error

INTERCEPT_CASES = [
    "pastes_reml", "pastes_ml", "hsb_null_reml", "hsb_meanses_reml",
    "seed_d5_nested4_reml", "seed_d5_nested4_ml", "seed_d5_student_reml", "seed_d5_student_ml",
]
REVERSED_CASES = ["seed_d5_reversed_reml", "seed_d5_reversed_ml"]


def fit_case(name):
    case = load_case(name)
    return case, fit_mixed(load_data(case), ModelSpec.parse(case["stata"]))


def assert_loglik(result, case):
    # A higher log-likelihood than lme4's is allowed (the engine found a better optimum).
    assert result.loglik >= case["loglik"] - 1e-6 * abs(case["loglik"])
    assert relative_error(result.loglik, case["loglik"]) < 1e-6


def assert_fixed(result, case):
    assert len(result.fixed) == len(case["fixed"])
    for term, expected in case["fixed"].items():
        row = result.coef(LME4_TERM.get(term, term))
        assert relative_error(row.coef, expected["coef"]) < 1e-4, term
        assert relative_error(row.se, expected["se"]) < 1e-4, term


@pytest.mark.parametrize("name", INTERCEPT_CASES)
def test_reproduces_lme4(name):
    case, result = fit_case(name)
    assert result.converged
    assert result.method == case["method"]
    assert result.nobs == case["nobs"]
    assert_loglik(result, case)
    assert_fixed(result, case)
    for level, expected in case["random"].items():
        param = "sd(Residual)" if level == "Residual" else "sd(_cons)"
        row = result.random_param(level, param)
        assert relative_error(row.estimate, expected["sd"]) < 1e-3, level
    groups = {g.level: g.groups for g in result.groups}
    assert groups == case["ngroups"]
    assert result.warnings == []


@pytest.mark.parametrize("name", REVERSED_CASES)
def test_reversed_nesting_reproduces_loglik_and_total_variance_and_warns(name):
    case, result = fit_case(name)
    assert_loglik(result, case)
    assert_fixed(result, case)
    levels = ["student_id", "teach_id", "school_id", "dist_id"]
    ours = sum(result.random_param(level, "sd(_cons)").estimate ** 2 for level in levels)
    theirs = sum(case["random"][level]["var"] for level in levels)
    assert relative_error(ours, theirs) < 1e-3
    assert relative_error(result.random_param("Residual", "sd(Residual)").estimate,
                          case["random"]["Residual"]["sd"]) < 1e-3
    text = " ".join(result.warnings)
    assert "same 4000 groups" in text and "not separately identified" in text
    assert "|| dist_id: || school_id: || teach_id: || student_id:" in text
    # Unidentified split: no standard errors pretend otherwise.
    assert all(result.random_param(level, "sd(_cons)").se is None for level in levels)


def test_reversed_and_one_level_models_agree():
    _, reversed_fit = fit_case("seed_d5_reversed_reml")
    _, one_level = fit_case("seed_d5_student_reml")
    assert relative_error(reversed_fit.loglik, one_level.loglik) < 1e-9


def test_correct_order_has_no_nesting_warning():
    _, result = fit_case("seed_d5_nested4_reml")
    assert not any("reversed" in w for w in result.warnings)
