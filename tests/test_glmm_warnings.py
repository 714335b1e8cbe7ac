"""Warnings of binary and count fits: quasi-separation, groups without variation, boundary variances."""

import numpy as np
import pandas as pd

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec


def _frame(seed, groups=30, size=20, sd=0.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), size)
    x = rng.normal(size=g.size)
    eta = -0.2 + 0.8 * x + rng.normal(0, sd, groups)[g] if sd else -0.2 + 0.8 * x
    return pd.DataFrame({"g": g, "x": x, "y": (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(int)})


def test_quasi_separation_is_named():
    frame = _frame(1)
    frame["flag"] = (np.arange(len(frame)) % 7 == 0).astype(int)
    frame.loc[frame.flag == 1, "y"] = 1  # every flagged row passes
    result = fit_mixed(frame, ModelSpec.parse("melogit y x flag || g:"))
    assert any("Quasi-separation" in w and "flag = 1" in w for w in result.warnings)
    assert result.coef("flag").coef > 5  # drifting towards infinity


def test_zero_variance_is_on_the_boundary_without_se():
    import statsmodels.api as sm

    frame = _frame(3, sd=0.0)
    result = fit_mixed(frame, ModelSpec.parse("melogit y x || g:"))
    sd = result.random_param("g", "sd(_cons)")
    assert sd.estimate < 1e-4 and sd.se is None
    assert any("estimated at zero" in w for w in result.warnings)
    assert result.lr_test.stat < 1e-6
    # the fixed effects then equal the plain logistic regression's
    glm = sm.GLM(frame.y, sm.add_constant(frame.x), family=sm.families.Binomial()).fit()
    assert abs(result.coef("x").coef - glm.params["x"]) < 1e-4
    assert abs(result.coef("x").se - glm.bse["x"]) < 1e-4
    assert abs(result.loglik - glm.llf) < 1e-6


def test_groups_without_variation_are_reported():
    frame = _frame(5, groups=20, size=10, sd=3.0)
    result = fit_mixed(frame, ModelSpec.parse("melogit y x || g:"))
    counts = frame.groupby("g").y.agg(["sum", "count"])
    zeros, ones = int((counts["sum"] == 0).sum()), int((counts["sum"] == counts["count"]).sum())
    assert zeros and ones
    expected = f"At level g, {zeros} of 20 groups have y = 0 in every row and {ones} have y = 1 in every row."
    assert any(m.startswith(expected) for m in result.notes)
