"""Crossed random factors reproduce lme4 (shared/reference crossed_* cases and a random-slope
model computed with lme4 1.1-31, bobyqa to 1e-12 and restarted at the optimum), written both in
Stata syntax (`_all: R.x`) and as the lme4 formula."""

import numpy as np
import pandas as pd
import pytest

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, LME4_TERM, load_case, load_data, relative_error

CASES = ["crossed_penicillin_reml", "crossed_penicillin_ml", "crossed_seed_d5_reml"]


def _specs(case):
    return {"stata": ModelSpec.parse(case["stata"]), "lme4": ModelSpec.parse_lme4(case["lme4_formula"], case["method"])}


@pytest.mark.parametrize("written", ["stata", "lme4"])
@pytest.mark.parametrize("name", CASES)
def test_crossed_case_reproduces_lme4(name, written):
    case = load_case(name)
    spec = _specs(case)[written]
    assert spec.has_crossed
    result = fit_mixed(load_data(case), spec)
    assert result.converged
    assert result.method == case["method"]
    assert result.nobs == case["nobs"]
    assert result.loglik >= case["loglik"] - 1e-6 * abs(case["loglik"])
    assert relative_error(result.loglik, case["loglik"]) < 1e-6
    assert len(result.fixed) == len(case["fixed"])
    for term, expected in case["fixed"].items():
        row = result.coef(LME4_TERM.get(term, term))
        assert relative_error(row.coef, expected["coef"]) < 1e-4, term
        assert relative_error(row.se, expected["se"]) < 1e-4, term
    for level, expected in case["random"].items():
        param = "sd(Residual)" if level == "Residual" else "sd(_cons)"
        assert relative_error(result.random_param(level, param).estimate, expected["sd"]) < 1e-3, level
    assert {g.level: g.groups for g in result.groups} == case["ngroups"]
    assert result.warnings == []
    assert any("Crossed random factors" in note for note in result.notes)


def _slopes_data():
    return pd.read_csv(DATA / "crossed_slopes.csv")


# lme4: y ~ x + (1 + x | teach_id) + (1 | student_id) on tests/data/crossed_slopes.csv (30 teachers
# crossed with 300 students, 4 rows each); BLUPs and condVar sds of teacher 1 and student 1.
SLOPES_LME4 = {
    "REML": dict(loglik=-2778.5818165356, cons=(3.1629569767, 0.3457340625), x=(1.1837428404, 0.2378085030),
                 sd_cons=1.8026775585, sd_x=1.2514153500, corr=0.4403067657, sd_student=1.5385383896,
                 sigma=1.9527957923, teach1=(-3.18172676, 0.79849117), teach1_sd=(0.34842219, 0.29187330),
                 student1=(-0.44516283, 0.84091563)),
    "ML": dict(loglik=-2777.8161589655, cons=(3.1629674003, 0.3405925997), x=(1.1837748659, 0.2338701511),
               sd_cons=1.7731084587, sd_x=1.2289608753, corr=0.4405348757, sd_student=1.5381489649,
               sigma=1.9528096222, teach1=(-3.17631873, 0.79468443), teach1_sd=(0.34814800, 0.29152773),
               student1=(-0.44574069, 0.84082933)),
}


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_crossed_correlated_random_slope_reproduces_lme4(method):
    expected = SLOPES_LME4[method]
    spec = ModelSpec.parse_lme4("y ~ x + (1 + x | teach_id) + (1 | student_id)", method)
    result = fit_mixed(_slopes_data(), spec)
    assert relative_error(result.loglik, expected["loglik"]) < 1e-6
    for term, key in (("_cons", "cons"), ("x", "x")):
        assert relative_error(result.coef(term).coef, expected[key][0]) < 1e-4
        assert relative_error(result.coef(term).se, expected[key][1]) < 1e-4
    assert relative_error(result.random_param("teach_id", "sd(_cons)").estimate, expected["sd_cons"]) < 1e-3
    assert relative_error(result.random_param("teach_id", "sd(x)").estimate, expected["sd_x"]) < 1e-3
    assert relative_error(result.random_param("teach_id", "corr(x,_cons)").estimate, expected["corr"]) < 1e-3
    assert relative_error(result.random_param("student_id", "sd(_cons)").estimate, expected["sd_student"]) < 1e-3
    assert relative_error(result.random_param("Residual", "sd(Residual)").estimate, expected["sigma"]) < 1e-3
    effects = {e.level: e for e in result.level_effects}
    teach, student = effects["teach_id"], effects["student_id"]
    assert teach.terms == ["_cons", "x"] and teach.group_ids.iloc[0, 0] == 1
    np.testing.assert_allclose(teach.estimates[0], expected["teach1"], rtol=1e-4)
    np.testing.assert_allclose(teach.std_errors[0], expected["teach1_sd"], rtol=1e-4)
    assert student.group_ids.iloc[0, 0] == 1
    np.testing.assert_allclose([student.estimates[0, 0], student.std_errors[0, 0]], expected["student1"], rtol=1e-4)


def test_crossed_independent_slope_reproduces_lme4():
    # lme4: y ~ x + (1 | teach_id) + (0 + x | teach_id) + (1 | student_id), REML
    spec = ModelSpec.parse_lme4("y ~ x + (1 | teach_id) + (0 + x | teach_id) + (1 | student_id)")
    assert spec.levels[1].covariance == "independent"
    result = fit_mixed(_slopes_data(), spec)
    assert relative_error(result.loglik, -2781.3480669066) < 1e-6
    assert relative_error(result.coef("x").coef, 1.1817941307) < 1e-4
    assert relative_error(result.coef("x").se, 0.2373731562) < 1e-4
    assert relative_error(result.coef("_cons").se, 0.3454705612) < 1e-4
    assert relative_error(result.random_param("teach_id", "sd(x)").estimate, 1.248874863) < 1e-3
    assert relative_error(result.random_param("teach_id", "sd(_cons)").estimate, 1.801015005) < 1e-3
    assert relative_error(result.random_param("student_id", "sd(_cons)").estimate, 1.540185933) < 1e-3
