"""Compare models with a df method: the F test of the fixed effects a model adds, as pbkrtest's KRmodcomp."""

from pathlib import Path

import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.model_comparison import ModelComparison, compare_models

DATA = Path(__file__).resolve().parent / "data" / "crt10.csv"
SMALL, LARGE = "y x || school:, reml", "y treat x || school:, reml"
# pbkrtest (tests/reference/ddf_crt10_reml.json): treat's Kenward-Roger t and df in the larger model.
KR_T, KR_DF, KR_P = 0.109978304429505, 8.02232952201739, 0.915128026255278


@pytest.fixture(scope="module")
def frame():
    return pd.read_csv(DATA)


def test_kroger_f_of_an_added_treatment_is_pbkrtests(frame):
    comparison = compare_models(frame, [SMALL, LARGE], dfmethod="kroger", null_model=None)
    (test,) = comparison.fixed_tests
    assert (test.restricted, test.full, test.columns, test.df1) == ("A", "B", ["treat"], 1)
    assert test.F == pytest.approx(KR_T ** 2, rel=1e-4)
    assert test.df2 == pytest.approx(KR_DF, rel=1e-3)
    assert test.p == pytest.approx(KR_P, rel=1e-4)
    assert comparison.dfmethod == "kroger"
    assert "F(1, 8.02)" in comparison.format()
    again = ModelComparison.from_dict(comparison.to_dict())
    assert again.fixed_tests[0].F == pytest.approx(test.F)
    # The LR test still uses ML refits (REML cannot compare mean structures).
    assert comparison.refitted_by_ml and comparison.tests[0].method == "ML"


def test_no_df_method_no_f_tests(frame):
    comparison = compare_models(frame, [SMALL, LARGE], null_model=None)
    assert comparison.fixed_tests == [] and comparison.dfmethod is None


def test_different_random_parts_get_no_f_test(frame):
    comparison = compare_models(frame, ["y treat x || school:, reml", "y treat x || school: x, reml"],
                                dfmethod="satterthwaite", null_model=None)
    assert comparison.fixed_tests == [] and any("No F test" in note for note in comparison.notes)


def test_ml_model_refused_by_label(frame):
    with pytest.raises(UserInputError, match=r"model A .*dfmethod\(kroger\) requires REML"):
        compare_models(frame, ["y x || school:", LARGE], dfmethod="kroger", null_model=None)
