"""Random slopes, unbalanced groups and missing values against lme4.

tests/data/slopes_unbalanced.csv: 547 rows, 25 schools with 2-5 classes of 2-11 pupils, 5
missing x. The numbers below are lme4 1.1 (Debian's r-cran-lme4, optimizer bobyqa) on the
complete rows: the log-likelihood and the residual sd, computed once with R; the tests never
need R.
"""

import pandas as pd
import pytest

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, relative_error

CASES = [
    # (Stata syntax, lme4 formula for the record, lme4 logLik, lme4 residual sd)
    ("y x z || school: || class:, reml", "y ~ x + z + (1|school/class)", -950.223427, 1.168965),
    ("y x z || school: || class:", "y ~ x + z + (1|school/class), REML=FALSE", -946.679205, 1.166468),
    ("y x z || school: x, cov(un) || class:, reml", "y ~ x + z + (1+x|school) + (1|school:class)",
     -909.428339, 1.019432),
    ("y x z || school: x, cov(un) || class: x, cov(un) reml", "y ~ x + z + (1+x|school) + (1+x|school:class)",
     -904.853765, 0.979511),
    ("y x z || school: x || class:, reml", "y ~ x + z + (1+x||school) + (1|school:class)", -909.838408, 1.019137),
    ("y x i.g || school: x, cov(un)", "y ~ x + factor(g) + (1+x|school), REML=FALSE", -998.578460, 1.378373),
    ("y c.x##i.z || school: || class: x, nocons reml", "y ~ x*factor(z) + (1|school) + (0+x|school:class)",
     -1001.478967, 1.330297),
    ("y x z || school: z x, cov(un) reml", "y ~ x + z + (1+z+x|school)", -1000.428261, 1.379976),
    ("y x || school: || class: || g:, reml", "y ~ x + (1|school/class/g)", -954.569208, 1.160983),
]


@pytest.fixture(scope="module")
def frame():
    return pd.read_csv(DATA / "slopes_unbalanced.csv")


@pytest.mark.parametrize("model, formula, loglik, residual_sd", CASES, ids=[c[0] for c in CASES])
def test_matches_lme4(frame, model, formula, loglik, residual_sd):
    result = fit_mixed(frame, ModelSpec.parse(model))
    assert result.nobs == 542 and result.dropped_rows == 5
    assert result.loglik >= loglik - 1e-6 * abs(loglik)
    assert relative_error(result.loglik, loglik) < 1e-6
    assert relative_error(result.random_param("Residual", "sd(Residual)").estimate, residual_sd) < 1e-3


def test_three_correlated_effects_reported_in_stata_order(frame):
    # lme4: sds (Intercept) 1.511356, z 0.084122, x 0.517010; cors 0.793505 (Intercept,z),
    # -0.274204 (Intercept,x), -0.802820 (z,x). A singular fit: said so, no SEs invented.
    result = fit_mixed(frame, ModelSpec.parse("y x z || school: z x, cov(un) reml"))
    rows = {row.param: row for row in result.random if row.level == "school"}
    assert list(rows) == ["sd(z)", "sd(x)", "sd(_cons)", "corr(z,x)", "corr(z,_cons)", "corr(x,_cons)"]
    expected = {"sd(z)": 0.084122, "sd(x)": 0.517010, "sd(_cons)": 1.511356,
                "corr(z,x)": -0.802820, "corr(z,_cons)": 0.793505, "corr(x,_cons)": -0.274204}
    for param, value in expected.items():
        assert rows[param].estimate == pytest.approx(value, abs=2e-3), param
    assert any("singular" in w for w in result.warnings)
    assert all(row.se is None for row in rows.values())
