"""Warnings a user must see: boundary variances, singleton levels, confounded levels."""

import numpy as np
import pandas as pd

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec


def clustered_data(between_sd, seed=4, groups=30, per_group=10):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    y = rng.normal(size=g.size) + between_sd * rng.normal(size=groups)[g]
    return pd.DataFrame({"g": g, "y": y, "x": rng.normal(size=g.size)})


def test_variance_on_the_boundary_is_reported_without_a_standard_error():
    # Within-group noise only, made exactly free of between-group variation.
    frame = clustered_data(0.0)
    frame["y"] -= frame.groupby("g")["y"].transform("mean")
    result = fit_mixed(frame, ModelSpec.parse("y x || g:, reml"))
    row = result.random_param("g", "sd(_cons)")
    assert row.estimate < 1e-4 and row.se is None
    assert any("estimated at zero" in w and "boundary" in w for w in result.warnings)
    assert result.lr_test.stat < 1e-6 and result.lr_test.p == 1.0


def test_level_with_one_observation_per_group_is_confounded_with_the_residual():
    frame = clustered_data(1.0)
    frame["row"] = np.arange(len(frame))
    result = fit_mixed(frame, ModelSpec.parse("y x || g: || row:"))
    assert any("one observation per group" in w and "row" in w for w in result.warnings)


def test_clean_fit_has_no_warnings_and_its_between_variance_is_found():
    result = fit_mixed(clustered_data(2.0, groups=200), ModelSpec.parse("y x || g:, reml"))
    assert result.warnings == []
    assert 1.5 < result.random_param("g", "sd(_cons)").estimate < 2.5


def test_an_outcome_without_variation_is_a_user_error():
    import pytest

    from engine.errors import UserInputError

    frame = clustered_data(1.0)
    with pytest.raises(UserInputError, match="the same .* in every row"):
        fit_mixed(frame.assign(y=3.0), ModelSpec.parse("y x || g:"))
    with pytest.raises(UserInputError, match="reproduce the outcome exactly"):
        fit_mixed(frame.assign(y=2 * frame.x + 1), ModelSpec.parse("y x || g:"))


def test_a_constant_random_slope_is_refused():
    import pytest

    from engine.errors import UserInputError

    with pytest.raises(UserInputError, match="random slope 'one' at level g .* duplicate the random intercept"):
        fit_mixed(clustered_data(1.0).assign(one=1.0), ModelSpec.parse("y x || g: one"))
