"""melogit / meprobit / mepoisson / meglm in the model text: parsed, printed back, refused when wrong."""

import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.results import FitResult


def test_melogit_with_options_after_the_last_level():
    spec = ModelSpec.parse("melogit pass tutoring || dist_id: || school_id:, intpoints(1) or")
    assert (spec.family, spec.link, spec.nagq, spec.eform) == ("binomial", "logit", 1, True)
    assert spec.level_names == ["dist_id", "school_id"]
    assert spec.fixed == ["tutoring"]
    assert spec.to_stata() == "melogit pass tutoring || dist_id: || school_id:, intpoints(1) or"


@pytest.mark.parametrize("text, family, link, nagq", [
    ("meprobit y x || g:, intpoints(7)", "binomial", "probit", 7),
    ("mepoisson n x || g:, exposure(days) irr", "poisson", "log", 1),
    ("meglm y x || g:, family(bernoulli) link(probit)", "binomial", "probit", 1),
    ("meglm n x || g:, family(poisson)", "poisson", "log", 1),
    ("melogit y x || g:, intmethod(laplace)", "binomial", "logit", 1),
])
def test_commands_and_families(text, family, link, nagq):
    spec = ModelSpec.parse(text)
    assert (spec.family, spec.link, spec.nagq) == (family, link, nagq)
    again = ModelSpec.parse(spec.to_stata())
    assert again == spec  # the printed command means the same model


def test_linear_models_are_unchanged():
    spec = ModelSpec.parse("mixed perform tutoring || school_id:, reml")
    assert (spec.family, spec.link, spec.nagq, spec.offset) == ("gaussian", "identity", 1, None)
    assert spec.to_stata() == "mixed perform tutoring || school_id:, reml"


def test_offset_and_exposure_are_read_columns_and_printed():
    spec = ModelSpec.parse("mepoisson absences x || school:, exposure(days)")
    assert spec.exposure == "days" and "days" in spec.variables()
    assert spec.to_stata() == "mepoisson absences x || school:, exposure(days) intpoints(1)"
    assert "offset(log(days))" in spec.to_lme4() and "family = poisson" in spec.to_lme4()


def test_spec_and_result_survive_json():
    spec = ModelSpec.parse("meprobit y x || g:, intpoints(5)")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    frame = pd.DataFrame({"y": [0, 1, 1, 0, 1, 0, 1, 1, 0, 0] * 3, "x": list(range(30)), "g": [1, 2, 3] * 10})
    result = fit_mixed(frame, ModelSpec.parse("melogit y x || g:"))
    restored = FitResult.from_dict(result.to_dict())
    assert (restored.family, restored.link, restored.nagq) == ("binomial", "logit", 1)
    assert restored.spec == result.spec


@pytest.mark.parametrize("text, message", [
    ("melogit y x || a: || b:, intpoints(7)", "single level"),
    ("melogit y x || g:, reml", "maximum likelihood"),
    ("melogit y x || g:, exposure(t)", "Poisson"),
    ("mepoisson y x || g:, offset(a) exposure(b)", "not both"),
    ("melogit y x || g:, intpoints(0)", "whole number"),
    ("meglm y x || g:", "family"),
    ("meglm y x || g:, family(poisson) link(logit)", "link"),
    ("melogit y x || g:, dfmethod(kroger)", "dfmethod"),
])
def test_refusals(text, message):
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse(text)


def test_reml_option_of_the_command_line_is_refused():
    with pytest.raises(UserInputError, match="REML"):
        ModelSpec.parse("melogit y x || g:", method="REML")


def test_outcome_checks():
    frame = pd.DataFrame({"y": [0, 1, 2, 0], "x": [1.0, 2.0, 3.0, 4.0], "g": [1, 1, 2, 2]})
    with pytest.raises(UserInputError, match="0 or 1"):
        fit_mixed(frame, ModelSpec.parse("melogit y x || g:"))
    frame["y"] = [0.5, 1, 2, 0]
    with pytest.raises(UserInputError, match="count"):
        fit_mixed(frame, ModelSpec.parse("mepoisson y x || g:"))
    frame["y"] = [0, 1, 2, 0]
    frame["t"] = [1.0, 0.0, 2.0, 1.0]
    with pytest.raises(UserInputError, match="exposure"):
        fit_mixed(frame, ModelSpec.parse("mepoisson y x || g:, exposure(t)"))


@pytest.mark.parametrize("call, stata", [
    ("glmer(sick ~ factor(period) + (1|herd), family = binomial)", "melogit sick i.period || herd:, intpoints(1)"),
    ("glmer(sick ~ factor(period) + (1|herd), family = binomial, nAGQ = 12)",
     "melogit sick i.period || herd:, intpoints(12)"),
    ("glmer(pass ~ tutoring + (1|dist_id/school_id), family = binomial(link = \"probit\"))",
     "meprobit pass tutoring || dist_id: || school_id:, intpoints(1)"),
    ("glmer(n ~ x + offset(log(days)) + (1|school) + (1|school:class), family = poisson)",
     "mepoisson n x || school: || class:, exposure(days) intpoints(1)"),
])
def test_glmer_calls(call, stata):
    assert ModelSpec.parse(call) == ModelSpec.parse(stata)


def test_glmer_call_refusals():
    # Crossed factors are read (as || _all: R.b) and fitted by the crossed GLMM criterion
    # (tests/test_glmm_crossed.py); adaptive quadrature is refused for them.
    crossed = ModelSpec.parse("glmer(y ~ x + (1|a) + (1|b), family = binomial)")
    assert crossed.has_crossed
    with pytest.raises(UserInputError, match="crossed random factors are fitted by the Laplace"):
        ModelSpec.parse("glmer(y ~ x + (1|a) + (1|b), family = binomial, nAGQ = 3)")
    with pytest.raises(UserInputError, match="family"):
        ModelSpec.parse("glmer(y ~ x + (1|a), family = Gamma)")
