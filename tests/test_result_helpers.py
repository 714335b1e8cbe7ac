"""Small engine helpers the window uses: variance shares of a fit, column summaries."""

import numpy as np
import pandas as pd
import pytest

from engine.column_summary import column_summaries
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA


def test_intercept_variance_shares_of_a_fit_sum_to_one():
    frame = pd.read_csv(DATA / "pastes.csv")
    result = fit_mixed(frame, ModelSpec.parse("strength || batch: || cask:, reml"))
    shares = result.intercept_variance_shares()
    variances = {"batch": 1.2873650 ** 2, "cask": 2.9040775 ** 2, "Residual": 0.8234076 ** 2}
    total = sum(variances.values())
    assert set(shares) == set(variances)
    for level, value in variances.items():
        assert shares[level] == pytest.approx(value / total, rel=1e-5)


def test_column_summaries_describe_numbers_and_text():
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 5.0], "g": ["a", "b", "a", None]})
    table = column_summaries(frame).set_index("Column")
    assert table.loc["x", "Missing"] == 1 and table.loc["x", "Distinct"] == 3
    assert table.loc["x", "Mean"] == pytest.approx(8 / 3) and table.loc["x", "Max"] == 5.0
    assert table.loc["g", "Missing"] == 1 and pd.isna(table.loc["g", "Mean"])
