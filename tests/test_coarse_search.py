"""The nested fit's coarse search (L-BFGS-B stopped early, Newton's method finishing) reaches the
optimum of the strict search; where the Newton polish cannot finish, the strict search goes on."""

import numpy as np
import pandas as pd
import pytest

from engine.mixed import optimize
from engine.mixed.covariance import LevelCovariance
from engine.mixed.criterion import LevelTerms, NestedCriterion
from engine.mixed.hierarchy import build_hierarchy
from engine.mixed.prepare import build_work_columns, prepare_model_data
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA


def criterion_for(frame, text):
    spec = ModelSpec.parse(text)
    data = prepare_model_data(frame, spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    return NestedCriterion(work.matrix, build_hierarchy(data.frame, spec.level_names), levels, work.x_columns,
                           work.y_column, spec.method == "REML")


CASES = [
    ("sleepstudy.csv", "Reaction Days || Subject: Days, cov(un) reml"),
    ("sleepstudy.csv", "Reaction Days || Subject: Days, cov(ind) ml"),
    ("hsb.csv", "mathach ses || school: ses, cov(un) reml"),
    ("pastes.csv", "strength || batch: || cask:, reml"),
]


@pytest.mark.parametrize("name, text", CASES)
def test_coarse_search_reaches_the_strict_optimum_in_fewer_evaluations(name, text):
    criterion = criterion_for(pd.read_csv(DATA / name), text)
    strict = optimize.minimise_deviance(criterion)
    coarse = optimize.minimise_deviance(criterion, coarse_search=True)
    assert coarse.converged
    assert coarse.deviance == pytest.approx(strict.deviance, rel=1e-13, abs=1e-9)
    np.testing.assert_allclose(coarse.theta, strict.theta, rtol=1e-6, atol=1e-7)
    assert coarse.evaluations <= strict.evaluations


def test_where_the_polish_cannot_finish_the_strict_search_goes_on(monkeypatch):
    criterion = criterion_for(pd.read_csv(DATA / "sleepstudy.csv"), "Reaction Days || Subject: Days, cov(un) reml")
    strict = optimize.minimise_deviance(criterion)
    calls = []

    def no_polish(objective, theta, value, gradient, bounds, steps=3):
        calls.append(value)
        return theta, value, gradient

    monkeypatch.setattr(optimize, "_newton_polish", no_polish)
    monkeypatch.setattr(optimize, "COARSE_OPTIONS", dict(optimize.STRICT_OPTIONS, ftol=1e-6))
    coarse = optimize.minimise_deviance(criterion, coarse_search=True)
    assert len(calls) == 2  # the first polish left the gradient large: the strict search ran, then a polish
    assert calls[1] < calls[0]
    assert coarse.deviance == pytest.approx(strict.deviance, rel=1e-12)
