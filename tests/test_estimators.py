"""Estimator strings ('ols', 'fe student_id', 'mixed || student_id:, reml') and run_estimator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import Cancelled, UserInputError
from engine.estimators import EstimatorSpec, parse_model_terms, run_estimator
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.panel import fit_fe, fit_ols

HERE = Path(__file__).parent
NESTED = "mixed || dist_id: || school_id: || teach_id: || student_id:"


@pytest.fixture(scope="module")
def seed() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "seed_d5.csv")


# ----- parsing: good strings ------------------------------------------------------------------
@pytest.mark.parametrize("text, estimator, group, vce, cluster", [
    ("ols", "ols", None, "conventional", None),
    ("regress", "ols", None, "conventional", None),
    ("OLS", "ols", None, "conventional", None),
    ("ols, vce(robust)", "ols", None, "robust", None),
    ("ols, vce(cluster school_id)", "ols", None, "cluster", "school_id"),
    ("ols, robust", "ols", None, "robust", None),
    ("fe student_id", "fe", "student_id", "conventional", None),
    ("fe student_id, vce(r)", "fe", "student_id", "robust", None),
    ("fe student_id, cluster(school_id)", "fe", "student_id", "cluster", "school_id"),
    ("re student_id", "re", "student_id", "conventional", None),
    ("  re teach_id ,  vce( cl dist_id ) ", "re", "teach_id", "cluster", "dist_id"),
])
def test_panel_estimators_parse(text, estimator, group, vce, cluster):
    spec = EstimatorSpec.parse(text)
    assert (spec.estimator, spec.group, spec.vce, spec.cluster) == (estimator, group, vce, cluster)
    assert spec.text == text.strip()
    assert spec.random_part == ""


@pytest.mark.parametrize("text, method, levels", [
    ("mixed || student_id:", "ML", ["student_id"]),
    (NESTED + ", ml", "ML", ["dist_id", "school_id", "teach_id", "student_id"]),
    (NESTED + ", reml", "REML", ["dist_id", "school_id", "teach_id", "student_id"]),
    ("mixed||school_id: ses, covariance(unstructured) reml", "REML", ["school_id"]),
    ("mixed, reml", "REML", []),
])
def test_mixed_estimators_parse(text, method, levels):
    spec = EstimatorSpec.parse(text)
    assert spec.estimator == "mixed"
    assert spec.method == method
    assert spec.level_names == levels
    assert spec.vce == "conventional" and spec.group is None


def test_mixed_spec_combines_with_outcome_and_predictors_through_model_spec():
    spec = EstimatorSpec.parse("mixed || school_id: || student_id: ses, covariance(unstructured) reml")
    model = spec.model_spec("score", ["ses", "i.sector"])
    expected = ModelSpec.parse("score ses i.sector || school_id: || student_id: ses, covariance(unstructured) reml")
    assert model == expected
    assert model.method == "REML" and model.levels[1].covariance == "unstructured"
    with pytest.raises(UserInputError, match="not a mixed model"):
        EstimatorSpec.parse("ols").model_spec("score", ["ses"])


def test_spec_round_trips_through_json():
    for text in ("ols, vce(cluster school_id)", "fe student_id", NESTED + ", reml"):
        spec = EstimatorSpec.parse(text)
        data = json.loads(json.dumps(spec.to_dict()))
        assert data["text"] == text
        assert EstimatorSpec.from_dict(data) == spec


# ----- parsing: bad strings -------------------------------------------------------------------
@pytest.mark.parametrize("text, hint", [
    ("xtgee", "expected 'ols', 'fe <group>'"),
    ("logit student_id", "logit takes no group variable or options here"),
    ("probit, vce(robust)", "probit takes no group variable or options here"),
    ("melogit pass || student_id:", "write only the random part after 'melogit'"),
    ("melogit || student_id:, reml", "reml is not available for binary and count outcomes"),
    ("melogit || a: || b:, intpoints(7)", "needs a single level with a random intercept only"),
    ("melogit || student_id:, vce(robust)", "melogit reports model-based standard errors"),
    ("xtlogit student_id, fe", "xtlogit, fe (the conditional model) is not offered"),
    ("xtlogit", "xtlogit needs the panel variable"),
    ("xtpoisson school_id, vce(robust)", "unknown option"),
    ("olsx", "expected 'ols', 'fe <group>'"),
    ("fe", "needs the panel variable"),
    ("re a b", "one panel variable"),
    ("ols student_id", "ols takes no group variable"),
    ("ols vce(robust)", "options go after a comma"),
    ("ols, vce(bogus)", "expected vce(robust) or vce(cluster <column>)"),
    ("ols, vce(cluster)", "needs one cluster column"),
    ("fe student_id, robustness", "unknown option"),
    ("fe student_id, vce(robust) vce(robust)", "one vce() option at most"),
    ("mixed tutoring || student_id:", "write only the random part"),
    ("mixed || student_id", "needs a level id followed by ':'"),
    ("mixed || student_id:, vce(robust)", "vce() is taken by ols, fe and re"),
    ("mixed || school_id: || school_id:", "appears more than once"),
    ("mixed || school_id:, bogus", "unknown option 'bogus'"),
])
def test_bad_strings_name_the_string_and_what_is_expected(text, hint):
    with pytest.raises(UserInputError) as caught:
        EstimatorSpec.parse(text)
    message = str(caught.value)
    assert repr(text) in message
    assert hint in message


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_string_is_refused(text):
    with pytest.raises(UserInputError, match="empty estimator"):
        EstimatorSpec.parse(text)


def test_from_dict_refuses_an_object_without_text():
    with pytest.raises(UserInputError, match="'text'"):
        EstimatorSpec.from_dict({"estimator": "ols"})


# ----- the --model text -----------------------------------------------------------------------
def test_model_terms_are_outcome_first():
    assert parse_model_terms("perform tutoring") == ("perform", ["tutoring"])
    assert parse_model_terms(" score ses i.sector ") == ("score", ["ses", "i.sector"])
    assert parse_model_terms("perform") == ("perform", [])


@pytest.mark.parametrize("text, hint", [
    ("", "is empty"),
    ("perform tutoring || student_id:", "the random part belongs to the estimator"),
    ("perform tutoring, noconstant", "options are not taken here"),
])
def test_bad_model_terms(text, hint):
    with pytest.raises(UserInputError, match=hint):
        parse_model_terms(text)


# ----- fitting --------------------------------------------------------------------------------
def test_run_estimator_names_the_result_by_the_string_as_given(seed):
    result = run_estimator("ols, vce(robust)", seed, "perform", ["tutoring"])
    assert result.name == "ols, vce(robust)"
    assert result.estimator == "ols"
    assert result.model == "regress perform tutoring, vce(robust)"
    direct = fit_ols(seed, "perform", ["tutoring"], vce="robust")
    assert result.coef("tutoring").se == pytest.approx(direct.coef("tutoring").se, rel=1e-12)
    assert result.coef("tutoring").se != pytest.approx(fit_ols(seed, "perform", ["tutoring"]).coef("tutoring").se,
                                                       rel=1e-3)
    assert result.fit_seconds > 0


def test_run_estimator_fe_with_clusters(seed):
    result = run_estimator("fe student_id, vce(cluster teach_id)", seed, "perform", ["tutoring"])
    direct = fit_fe(seed, "perform", ["tutoring"], "student_id", vce="cluster", cluster="teach_id")
    assert result.name == "fe student_id, vce(cluster teach_id)"
    assert result.model == "xtset student_id; xtreg perform tutoring, fe vce(cluster teach_id)"
    assert result.coef("tutoring").se == pytest.approx(direct.coef("tutoring").se, rel=1e-12)


def test_run_estimator_mixed_uses_the_method_of_the_string(seed):
    result = run_estimator(EstimatorSpec.parse("mixed || student_id:, reml"), seed, "perform", ["tutoring"])
    direct = fit_mixed(seed, ModelSpec.parse("perform tutoring || student_id:, reml"), predict=False)
    assert result.name == "mixed || student_id:, reml"
    assert result.method == "REML" and result.estimator == "mixed"
    assert result.coef("tutoring").coef == pytest.approx(direct.coef("tutoring").coef, rel=1e-10)
    assert result.random_param("student_id", "sd(_cons)").estimate == pytest.approx(
        direct.random_param("student_id", "sd(_cons)").estimate, rel=1e-8)


def test_run_estimator_can_be_stopped(seed):
    with pytest.raises(Cancelled):
        run_estimator("ols", seed, "perform", ["tutoring"], should_stop=lambda: True)


def within_and_between_frame() -> pd.DataFrame:
    """x varies within groups; z is constant within each group."""
    rng = np.random.default_rng(4)
    group = np.repeat(np.arange(30), 4)
    x = rng.normal(size=group.size)
    z = rng.normal(size=30)[group]
    y = 1.0 + 0.5 * x + 2.0 * z + rng.normal(size=30)[group] + rng.normal(size=group.size)
    return pd.DataFrame({"g": group, "x": x, "z": z, "y": y})


def test_fe_drops_a_predictor_constant_within_groups_with_a_note():
    frame = within_and_between_frame()
    result = run_estimator("fe g", frame, "y", ["x", "z"])
    assert [row.term for row in result.fixed] == ["x", "_cons"]
    assert "z omitted because of collinearity" in result.notes


def test_fe_with_no_predictor_left_says_so_and_names_the_estimator():
    frame = within_and_between_frame()
    with pytest.raises(UserInputError) as caught:
        run_estimator("fe g", frame, "y", ["z"])
    message = str(caught.value)
    assert message.startswith("fe g: ")
    assert "no predictor varies within g" in message


def test_unknown_column_names_the_estimator(seed):
    with pytest.raises(UserInputError, match=r"^re studentid: unknown column 'studentid'"):
        run_estimator("re studentid", seed, "perform", ["tutoring"])
