"""A True/False outcome is the 0/1 outcome it stands for (True = 1), as in R and in pooled OLS:
the fits and the nesting check give what the 0/1 column gives (they refused it before, showing
"np.False_" as the offending value)."""

import numpy as np
import pandas as pd
import pytest

from engine.hierarchy_check import check_hierarchy
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(25), 12)
    x = rng.normal(size=groups.size)
    eta = -0.3 + 0.6 * x + rng.normal(scale=0.8, size=25)[groups]
    passed = rng.random(groups.size) < 1 / (1 + np.exp(-eta))
    as_bool = pd.DataFrame({"g": groups, "x": x, "y": passed})
    return as_bool, as_bool.assign(y=passed.astype(int))


@pytest.mark.parametrize("model", ["melogit y x || g:", "meprobit y x || g:, intpoints(7)", "mixed y x || g:, reml"])
def test_true_false_outcome_fits_as_its_0_1_coding(frames, model):
    as_bool, as_int = frames
    assert as_bool["y"].dtype == bool
    spec = ModelSpec.parse(model)
    from_bool, from_int = fit_mixed(as_bool, spec), fit_mixed(as_int, spec)
    assert from_bool.loglik == pytest.approx(from_int.loglik, rel=1e-12)
    assert [row.coef for row in from_bool.fixed] == pytest.approx([row.coef for row in from_int.fixed], rel=1e-10)
    assert [row.estimate for row in from_bool.random] == pytest.approx(
        [row.estimate for row in from_int.random], rel=1e-8)
    assert from_int.fixed[0].coef != 0 and from_bool.nobs == 300


def test_nesting_check_takes_a_true_false_outcome(frames):
    as_bool, as_int = frames
    from_bool, from_int = check_hierarchy(as_bool, ["g"], outcome="y"), check_hierarchy(as_int, ["g"], outcome="y")
    from_bool.columns = from_int.columns = []  # these differ only in the dtype shown ('bool', 'int64')
    assert from_bool == from_int
