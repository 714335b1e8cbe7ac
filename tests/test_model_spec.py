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


@pytest.mark.parametrize("text, message", [
    ("y x || g: x, covariance(unstr", r"unclosed parenthesis in the options 'covariance\(unstr'"),
    ("y x || g: x, cov(un))", r"unmatched '\)'"),
    ("y x, reml || school:", r"option 'reml' is in the fixed part: .* after the last level \(\.\.\. \|\| school:, reml\)"),
    ("y x || a:, ml || b:", "option 'ml' is at level a, which is not the last"),
    ("y x || g:, ml reml", "both ml and reml"),
    ("y x || g: x z x", "slope 'x' is given twice"),
    ("y x || g: _cons", "'_cons' is the random intercept"),
    ("y x || g: c.x#c.x", "must be a data column"),
    ("y c.x# || g:", "empty part"),
    ("y x x || g:", "appears twice"),
])
def test_misplaced_or_conflicting_options_and_bad_terms_are_refused(text, message):
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse(text)


def test_method_options_where_stata_takes_them():
    assert ModelSpec.parse("y x, reml").method == "REML"  # no levels: the fixed part is the end
    assert ModelSpec.parse("y x, noconstant reml").constant is False
    assert ModelSpec.parse("y x || a: || b: x, cov(un) reml").method == "REML"
    spec = ModelSpec.parse("y x, noconstant reml")
    assert ModelSpec.parse(spec.to_stata()) == spec


def test_stated_method_reads_only_what_the_text_says():
    from engine.model_spec import stated_method

    assert stated_method("y x || g:, reml") == "REML"
    assert stated_method("y x || g: x, cov(un) mle") == "ML"
    assert stated_method("y x || g:") is None


def test_lme4_formula_of_stata_factor_terms():
    spec = ModelSpec.parse("y c.x##c.x i.a##c.x ib2.b 1.d#c.x || g:")
    assert spec.to_lme4() == ('y ~ x + I(x^2) + factor(a) + factor(a):x + relevel(factor(b), ref = "2") '
                              '+ I(as.numeric(d == 1)):x + (1 | g)')


@pytest.mark.parametrize("text, message", [
    ("y x | g:", r"term '\|' in the fixed part looks like part of a level: write '\|\| school:'"),
    ("y x g: || h:", r"term 'g:' in the fixed part looks like part of a level: write '\|\| g:'"),
    ("y x || g: x, cov(un) cov(ind)", "more than one covariance"),
    ("y x || g::", "':' is not a column"),
    ("y ib(foo).a || g:", "write the base level as ib#."),
    ("y i.a##i.a || g:", "crosses the factor 'a' with itself"),
    ("y o.x || g:", "operator 'o.' is not supported"),
])
def test_typos_in_the_model_text_get_a_pointed_message(text, message):
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse(text)


def test_a_spec_made_directly_or_from_json_checks_its_terms_too():
    with pytest.raises(UserInputError, match="empty part"):
        ModelSpec(outcome="y", fixed=["c.x#"], levels=[Level("g")])
    with pytest.raises(UserInputError, match="given twice"):
        ModelSpec.from_dict({"outcome": "y", "fixed": ["x"], "levels": [{"name": "g", "slopes": ["x", "x"]}]})
