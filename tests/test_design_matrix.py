"""Stata factor-variable notation through formulaic, with Stata's column names."""

import numpy as np
import pandas as pd
import pytest

from engine.design_matrix import build_fixed_design, stata_terms_to_formula
from engine.errors import UserInputError
from tests.reference_cases import DATA


@pytest.fixture(scope="module")
def hsb():
    return pd.read_csv(DATA / "hsb.csv")


def test_factor_and_interaction_columns_are_named_as_stata_names_them(hsb):
    design = build_fixed_design(hsb, ["c.meanses##c.ses", "i.sector##c.ses"])
    assert design.names == ["meanses", "ses", "1.sector", "c.meanses#c.ses", "1.sector#c.ses", "_cons"]
    product = design.matrix[:, design.names.index("1.sector#c.ses")]
    assert np.allclose(product, hsb.sector * hsb.ses)


def test_interaction_without_main_effects_spans_every_cell(hsb):
    # Stata codes i.a#i.b as the non-base cells; formulaic picks another basis of the same space.
    design = build_fixed_design(hsb, ["i.minority#i.female"])
    assert design.matrix.shape[1] == 4
    cells = pd.get_dummies(hsb.minority.astype(str) + hsb.female.astype(str)).to_numpy(float)
    coefficients, *_ = np.linalg.lstsq(design.matrix, cells, rcond=None)
    assert np.allclose(design.matrix @ coefficients, cells)


def test_unprefixed_variables_in_interactions_are_categorical_as_in_stata():
    assert stata_terms_to_formula(["a##b"]) == "C(a)*C(b)"
    assert stata_terms_to_formula(["c.a#b", "x"], constant=False) == "0 + a:C(b) + x"


def test_string_categories_need_the_factor_prefix(hsb):
    frame = hsb.assign(kind=np.where(hsb.sector == 1, "catholic", "public"))
    assert build_fixed_design(frame, ["i.kind"]).names == ["public.kind", "_cons"]
    with pytest.raises(UserInputError, match="write i.kind"):
        build_fixed_design(frame, ["kind"])
