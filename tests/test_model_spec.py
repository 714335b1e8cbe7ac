"""Stata `mixed` syntax in and out, and the lme4 formula."""

import pytest

from engine.errors import UserInputError
from engine.model_spec import Level, ModelSpec


def test_parses_the_seeds_model_outermost_first():
    spec = ModelSpec.parse("perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml")
    assert spec.outcome == "perform" and spec.fixed == ["tutoring"]
    assert spec.level_names == ["dist_id", "school_id", "teach_id", "student_id"]
    assert spec.method == "REML"


def test_default_method_is_ml_as_in_stata_and_argument_overrides():
    assert ModelSpec.parse("y x || g:").method == "ML"
    assert ModelSpec.parse("y x || g:, reml", method="ML").method == "ML"


def test_slopes_and_covariance_options():
    spec = ModelSpec.parse("mixed y x || school: x z, cov(un) || class: x, nocons")
    assert spec.levels[0] == Level("school", ["x", "z"], True, "unstructured")
    assert spec.levels[1].intercept is False and spec.levels[1].terms == ["x"]


def test_round_trips_through_stata_text_and_json():
    text = "mixed y c.a##c.b i.g || school: a, covariance(unstructured) || class: reml"
    spec = ModelSpec.parse(text)
    assert ModelSpec.parse(spec.to_stata()) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_lme4_formula_writes_nesting_as_interactions():
    spec = ModelSpec.parse("perform tutoring || dist_id: || school_id:")
    assert spec.to_lme4() == "perform ~ tutoring + (1 | dist_id) + (1 | dist_id:school_id)"
    slopes = ModelSpec.parse("y x || g: x, cov(un)")
    assert slopes.to_lme4() == "y ~ x + (1 + x | g)"


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("y x || school", "needs a level id"),
    ("y x || g: || g:", "more than once"),
    ("y x || g:, covariance(banded)", "not supported"),
    ("y x || _all: g", "R.name"),  # crossed factors are written R.g
    ("y x || g:, frobnicate", "unknown option"),
])
def test_bad_models_get_a_message_naming_the_problem(text, message):
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse(text)
