"""Stata factor-variable notation: Stata's columns, Stata's names and order, and checked terms."""

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
    # Stata keeps the written order (## expanded in place) and lists _cons last.
    assert design.names == ["meanses", "ses", "c.meanses#c.ses", "1.sector", "1.sector#c.ses", "_cons"]
    product = design.matrix[:, design.names.index("1.sector#c.ses")]
    assert np.allclose(product, hsb.sector * hsb.ses)


def test_interaction_without_main_effects_spans_every_cell(hsb):
    # Stata codes i.a#i.b alone as every cell but the base-by-base one (the constant takes that).
    design = build_fixed_design(hsb, ["i.minority#i.female"])
    assert design.names == ["0.minority#1.female", "1.minority#0.female", "1.minority#1.female", "_cons"]
    assert np.array_equal(design.matrix[:, 1], ((hsb.minority == 1) & (hsb.female == 0)).to_numpy(float))
    cells = pd.get_dummies(hsb.minority.astype(str) + hsb.female.astype(str)).to_numpy(float)
    coefficients, *_ = np.linalg.lstsq(design.matrix, cells, rcond=None)
    assert np.allclose(design.matrix @ coefficients, cells)


def test_unprefixed_variables_in_interactions_are_categorical_as_in_stata():
    assert stata_terms_to_formula(["a##b"]) == "factor(a) + factor(b) + factor(a):factor(b)"
    assert stata_terms_to_formula(["c.a#b", "x"], constant=False) == "0 + a:factor(b) + x"


def test_string_categories_need_the_factor_prefix(hsb):
    frame = hsb.assign(kind=np.where(hsb.sector == 1, "catholic", "public"))
    assert build_fixed_design(frame, ["i.kind"]).names == ["public.kind", "_cons"]
    with pytest.raises(UserInputError, match="write i.kind"):
        build_fixed_design(frame, ["kind"])


# ----- every term produces its columns, or the model is refused naming the term -------------------
def test_a_square_is_its_own_column_never_merged_into_the_variable(hsb):
    design = build_fixed_design(hsb, ["c.ses#c.ses", "c.ses#c.ses#c.ses"])
    assert design.names == ["c.ses#c.ses", "c.ses#c.ses#c.ses", "_cons"]
    assert np.allclose(design.matrix[:, 0], hsb.ses ** 2) and np.allclose(design.matrix[:, 1], hsb.ses ** 3)


def test_a_term_that_would_collapse_is_refused_naming_it(hsb):
    # minority is 0/1, so minority squared is minority itself: the term would add nothing.
    with pytest.raises(UserInputError, match=r"'c.minority#c.minority' is collinear with '_cons', 'minority'"):
        build_fixed_design(hsb, ["minority", "c.minority#c.minority"])
    with pytest.raises(UserInputError, match="appears twice"):
        build_fixed_design(hsb, ["ses", "c.ses"])
    with pytest.raises(UserInputError, match="ibn. keeps every level"):
        build_fixed_design(hsb, ["ibn.sector"])


def test_base_levels_follow_stata_operators(hsb):
    frame = hsb.assign(grade=np.select([hsb.ses < -0.5, hsb.ses < 0.5], [1, 2], 3))
    assert build_fixed_design(frame, ["ib2.grade"]).names == ["1.grade", "3.grade", "_cons"]
    assert build_fixed_design(frame, ["ib(last).grade"]).names == ["1.grade", "2.grade", "_cons"]
    assert build_fixed_design(frame, ["ib(freq).grade"]).names == ["1.grade", "3.grade", "_cons"]
    assert build_fixed_design(frame, ["ibn.grade"], constant=False).names == ["1.grade", "2.grade", "3.grade"]
    assert build_fixed_design(frame, ["i.grade"], constant=False).names == ["2.grade", "3.grade"]
    with pytest.raises(UserInputError, match="no level 7"):
        build_fixed_design(frame, ["ib7.grade"])


def test_a_continuous_by_factor_interaction_alone_has_a_slope_per_level(hsb):
    design = build_fixed_design(hsb, ["i.sector#c.ses"])
    assert design.names == ["0.sector#c.ses", "1.sector#c.ses", "_cons"]
    assert np.allclose(design.matrix[:, 0], (hsb.sector == 0) * hsb.ses)


def test_an_empty_interaction_cell_is_left_out_with_a_note(hsb):
    frame = hsb.assign(catholic_minority=np.where(hsb.sector == 1, 0, hsb.minority))
    design = build_fixed_design(frame, ["i.sector##i.catholic_minority"])
    assert design.names == ["1.sector", "1.catholic_minority", "_cons"]
    assert "1.sector#1.catholic_minority omitted" in design.notes[0] and "empty cell" in design.notes[0]


@pytest.mark.parametrize("term, message", [
    ("c.ses#", "empty part"),
    ("i.(sector minority)", "parentheses"),
    ("L.ses", "operator 'L.' is not supported"),
    ("c.i.ses", "two operators"),
    ("i.sector##c.ses#c.ses", "mixes '#' and '##'"),
])
def test_bad_terms_are_refused_naming_them(hsb, term, message):
    with pytest.raises(UserInputError, match=message):
        build_fixed_design(hsb, [term])


# ----- names and awkward columns (issue 11, item 10) --------------------------------------------------
def test_a_column_named_intercept_is_an_ordinary_predictor(hsb):
    renamed = build_fixed_design(hsb.rename(columns={"ses": "Intercept"}), ["Intercept"])
    original = build_fixed_design(hsb, ["ses"])
    assert renamed.names == ["Intercept", "_cons"]
    assert np.array_equal(renamed.matrix, original.matrix)


def test_a_column_named_cons_is_refused(hsb):
    with pytest.raises(UserInputError, match="'_cons' is the name of the constant"):
        build_fixed_design(hsb.rename(columns={"ses": "_cons"}), ["_cons"])


def test_a_column_named_C_does_not_break_factors(hsb):
    design = build_fixed_design(hsb.assign(C=hsb.ses), ["i.sector", "C"])
    assert design.names == ["1.sector", "C", "_cons"]
    assert np.array_equal(design.matrix[:, 0], hsb.sector.to_numpy(float))


def test_bool_and_float_coded_levels_get_stata_names(hsb):
    frame = hsb.assign(flag=hsb.female == 1, sector=hsb.sector.astype(float))
    design = build_fixed_design(frame, ["i.flag", "i.sector", "c.flag#c.ses"])
    assert design.names == ["1.flag", "1.sector", "c.flag#c.ses", "_cons"]
    assert np.array_equal(design.matrix[:, 0], hsb.female.to_numpy(float))
    with pytest.raises(UserInputError, match="has the value 0.5; a factor's levels must be whole numbers"):
        build_fixed_design(frame.assign(half=hsb.sector / 2), ["i.half"])


def test_not_numeric_message_shows_an_offending_value(hsb):
    frame = hsb.assign(score=hsb.ses.astype(object))
    frame.loc[17, "score"] = "n/a"
    with pytest.raises(UserInputError, match=r"column 'score' is not numeric \(e.g. 'n/a'\)"):
        build_fixed_design(frame, ["score"])


def test_an_infinite_predictor_is_refused_naming_the_column(hsb):
    frame = hsb.assign(ses=hsb.ses.where(hsb.index != 5, np.inf))
    with pytest.raises(UserInputError, match=r"column 'ses' has an infinite value \(inf in data row 6\)"):
        build_fixed_design(frame, ["ses"])


def test_a_factor_with_one_level_is_refused_naming_it(hsb):
    with pytest.raises(UserInputError, match="term 'i.sector' adds no column: 'sector' has a single value"):
        build_fixed_design(hsb[hsb.sector == 1], ["ses", "i.sector"])
