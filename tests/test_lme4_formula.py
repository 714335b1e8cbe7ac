"""lme4 formulas and Stata's `_all: R.x` map to one ModelSpec; what cannot be mapped is refused."""

import pytest

from engine.errors import UserInputError
from engine.model_spec import Level, ModelSpec


def test_nested_and_crossed_terms():
    spec = ModelSpec.parse_lme4("perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)")
    assert spec.method == "REML" and spec.outcome == "perform" and spec.fixed == ["tutoring"]
    assert [(lv.name, lv.crossed) for lv in spec.levels] == [
        ("teach_id", True), ("student_id", True), ("dist_id", False), ("school_id", False)]
    assert spec.to_stata() == ("mixed perform tutoring || _all: R.teach_id || _all: R.student_id "
                               "|| dist_id: || school_id:, reml")
    assert ModelSpec.parse(spec.to_stata()) == spec  # Stata text and spec round-trip


def test_colon_grouping_extends_the_nested_chain():
    spec = ModelSpec.parse_lme4("y ~ x + (1|a) + (1|a:b)", "ML")
    assert [(lv.name, lv.crossed) for lv in spec.levels] == [("a", False), ("b", False)]
    assert spec.to_stata() == "mixed y x || a: || b:"


def test_crossed_within_a_nested_level_follows_stata():
    spec = ModelSpec.parse("y || school: || _all: R.teacher")
    teacher = spec.levels[1]
    assert teacher.crossed and teacher.nested_in == ["school"] and teacher.grouping == ["school", "teacher"]
    assert spec.to_lme4() == "y ~ 1 + (1 | school) + (1 | school:teacher)"


def test_random_slopes_correlated_and_independent():
    correlated = ModelSpec.parse_lme4("y ~ x + (1 + x | g)")
    assert correlated.levels == [Level("g", ["x"], True, "unstructured")]
    assert correlated.to_stata() == "mixed y x || g: x, covariance(unstructured) reml"
    independent = ModelSpec.parse_lme4("y ~ x + (1 | g) + (0 + x | g)")
    assert independent.levels == [Level("g", ["x"], True, "independent")]
    double_bar = ModelSpec.parse_lme4("y ~ x + (1 + x || g)")
    assert double_bar.levels == independent.levels
    slope_only = ModelSpec.parse_lme4("y ~ x + (0 + x | g)")
    assert slope_only.levels == [Level("g", ["x"], False, "independent")]


def test_fixed_terms_map_to_stata_notation():
    spec = ModelSpec.parse_lme4("y ~ 0 + x + x:z + a*b + I(x^2) + factor(sector) + (1|g)")
    assert spec.fixed == ["x", "c.x#c.z", "c.a##c.b", "c.x#c.x", "ibn.sector"]  # no intercept: R codes the first factor by all levels
    assert spec.constant is False


@pytest.mark.parametrize("formula, message", [
    ("y ~ x + (1|g) + (1 + x|g)", "block-diagonal"),
    ("y ~ log(x) + (1|g)", "functions of columns such as log"),
    ("y ~ x + (1|a:b)", "interaction of ids"),
    ("y ~ x - z + (1|g)", "removing terms"),
    ("y x (1|g)", "'~'"),
    ("y ~ x + (log(x)|g)", "cannot be mapped"),
    ("y ~ x + (1|g", "unbalanced"),
])
def test_unmappable_formulas_are_refused(formula, message):
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse_lme4(formula)


@pytest.mark.parametrize("text, message", [
    ("y || _all: teacher", "R.name"),
    ("y || _all: R.teacher x", "R.name"),
    ("y || _all: R.teacher, noconstant", "not supported"),
])
def test_bad_stata_crossed_syntax_is_refused(text, message):
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse(text)
