"""A one-level random-intercept model agrees with statsmodels' MixedLM."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA


@pytest.mark.parametrize("reml", [True, False])
def test_one_level_model_matches_statsmodels(reml):
    frame = pd.read_csv(DATA / "hsb.csv")
    ours = fit_mixed(frame, ModelSpec.parse("mathach ses || school:", method="REML" if reml else "ML"))
    # Powell converges here; statsmodels' default gradient methods stop short of the optimum.
    theirs = smf.mixedlm("mathach ~ ses", frame, groups=frame["school"]).fit(reml=reml, method="powell")
    assert theirs.converged
    assert ours.loglik == pytest.approx(theirs.llf, rel=1e-8)
    assert ours.loglik >= theirs.llf - 1e-6
    assert ours.coef("ses").coef == pytest.approx(theirs.fe_params["ses"], rel=1e-4)
    assert ours.coef("_cons").coef == pytest.approx(theirs.fe_params["Intercept"], rel=1e-4)
    # Standard errors are not compared: statsmodels inverts the joint Hessian of fixed and
    # variance parameters, lme4 and Stata use sigma^2 (X'V^-1X)^-1 (checked in test_mixed_reference).
    school_variance = ours.random_param("school", "sd(_cons)").estimate ** 2
    assert school_variance == pytest.approx(float(theirs.cov_re.iloc[0, 0]), rel=1e-3)
    assert ours.random_param("Residual", "sd(Residual)").estimate ** 2 == pytest.approx(theirs.scale, rel=1e-4)
    # Predicted school effects agree too.
    effects = ours.level_effects[0]
    theirs_effects = np.array([float(theirs.random_effects[s].iloc[0]) for s in effects.group_ids["school"]])
    assert np.allclose(effects.estimates[:, 0], theirs_effects, rtol=1e-3, atol=1e-4)


def test_model_without_levels_is_ordinary_regression_by_ml():
    frame = pd.read_csv(DATA / "seed_d5.csv")
    ours = fit_mixed(frame, ModelSpec.parse("perform tutoring"))
    theirs = smf.ols("perform ~ tutoring", frame).fit()
    assert ours.loglik == pytest.approx(theirs.llf, rel=1e-10)
    assert ours.coef("tutoring").coef == pytest.approx(theirs.params["tutoring"], rel=1e-10)
    sigma = ours.random_param("Residual", "sd(Residual)")
    assert sigma.estimate == pytest.approx(np.sqrt(theirs.ssr / theirs.nobs), rel=1e-8)
    assert sigma.se == pytest.approx(sigma.estimate / np.sqrt(2 * theirs.nobs), rel=1e-4)
    assert ours.lr_test is None and ours.groups == []
