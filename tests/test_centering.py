"""Centring: grand-mean, group-mean and group means, applied on the spec before the fit.

The reference hsb_slopes_reml (Raudenbush & Bryk Table 4.5, fitted by lme4) uses ``ses_c``, ses
centred at its school mean; it is made here by the project's own centring, through the path a
user takes: read_data, a Centering on the spec, fit_mixed.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.centering import Centering, add_centered_columns, apply_centering, data_columns
from engine.data_io import read_data
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from main import main
from tests.reference_cases import DATA, load_case, relative_error

SLOPES_MODEL = "mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, covariance(unstructured) reml"
# lme4's names -> ours for this case
SLOPES_TERMS = {"(Intercept)": "_cons", "meanses": "meanses", "ses_c": "ses_c", "sector": "1.sector",
                "meanses:ses_c": "c.meanses#c.ses_c", "ses_c:sector": "1.sector#c.ses_c"}
SLOPES_RANDOM = {"school": ("school", "sd(_cons)"), "school:ses_c": ("school", "sd(ses_c)"),
                 "Residual": ("Residual", "sd(Residual)")}


@pytest.fixture(scope="module")
def hsb():
    return read_data(DATA / "hsb.csv")


@pytest.fixture(scope="module")
def slopes_fit(hsb):
    spec = ModelSpec.parse(SLOPES_MODEL)
    spec.centering = [Centering("ses_c", "ses", "group", "school")]
    return fit_mixed(hsb.frame, spec)


def test_slopes_model_with_group_mean_centred_ses_reproduces_lme4(slopes_fit):
    case = load_case("hsb_slopes_reml")
    result = slopes_fit
    assert result.converged and result.method == "REML" and result.nobs == case["nobs"]
    assert relative_error(result.loglik, case["loglik"]) < 1e-6
    assert len(result.fixed) == len(case["fixed"])
    for term, expected in case["fixed"].items():
        row = result.coef(SLOPES_TERMS[term])
        assert relative_error(row.coef, expected["coef"]) < 1e-4, term
        assert relative_error(row.se, expected["se"]) < 1e-4, term
    for name, (level, param) in SLOPES_RANDOM.items():
        assert relative_error(result.random_param(level, param).estimate, case["random"][name]["sd"]) < 1e-3, name
    corr = result.random_param("school", "corr(ses_c,_cons)").estimate
    assert relative_error(corr, case["random"]["school:cor((Intercept),ses_c)"]["cor"]) < 1e-3
    assert {g.level: g.groups for g in result.groups} == case["ngroups"]


def test_centring_with_the_file_s_meanses_would_not_reproduce_the_reference(hsb):
    """The reference centres at the computed school mean; the file's meanses differs slightly, and
    the fit notices: the centring really is what the reference match rests on."""
    frame = hsb.frame.assign(ses_c=hsb.frame["ses"] - hsb.frame["meanses"])
    result = fit_mixed(frame, ModelSpec.parse(SLOPES_MODEL), predict=False)
    expected = load_case("hsb_slopes_reml")["fixed"]
    assert relative_error(result.coef("_cons").coef, expected["(Intercept)"]["coef"]) > 1e-4
    assert relative_error(result.coef("1.sector").coef, expected["sector"]["coef"]) > 1e-4


def test_group_mean_centring_matches_pandas_and_leaves_the_input_alone(hsb):
    spec = ModelSpec.parse("mathach ses_c school_ses || school:")
    spec.centering = [Centering("ses_c", "ses", "group", "school"),
                      Centering("school_ses", "ses", "group_mean", "school")]
    out = apply_centering(hsb.frame, spec)
    school_mean = hsb.frame.groupby("school")["ses"].transform("mean")
    np.testing.assert_allclose(out["school_ses"], school_mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["ses_c"], hsb.frame["ses"] - school_mean, rtol=0, atol=1e-12)
    assert np.abs(out.groupby("school")["ses_c"].mean()).max() < 1e-12
    assert "ses_c" not in hsb.frame.columns


def test_grand_mean_is_taken_over_the_rows_the_fit_uses():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"g": np.repeat(np.arange(30), 10), "x": rng.normal(5, 2, 300)})
    frame["y"] = 1 + 0.5 * frame["x"] + rng.normal(size=300) + np.repeat(rng.normal(size=30), 10)
    frame.loc[::7, "y"] = np.nan  # rows the fit drops
    spec = ModelSpec.parse("y x_c || g:", method="ML")
    spec.centering = [Centering("x_c", "x", "grand")]
    out = apply_centering(frame, spec)
    used = frame["y"].notna()
    assert out.loc[used, "x_c"].mean() == pytest.approx(0.0, abs=1e-12)
    assert out.loc[~used, "x_c"].isna().all()
    assert out.loc[used, "x_c"].to_numpy() == pytest.approx(
        (frame.loc[used, "x"] - frame.loc[used, "x"].mean()).to_numpy(), abs=1e-12)
    # With x grand-mean centred, _cons is the predicted outcome at the sample mean of x.
    result = fit_mixed(frame, spec, predict=False)
    raw = fit_mixed(frame, ModelSpec.parse("y x || g:", method="ML"), predict=False)
    mean_x = frame.loc[used, "x"].mean()
    assert result.coef("x_c").coef == pytest.approx(raw.coef("x").coef, rel=1e-6)
    assert result.coef("_cons").coef == pytest.approx(raw.coef("_cons").coef + raw.coef("x").coef * mean_x, rel=1e-6)
    assert result.loglik == pytest.approx(raw.loglik, rel=1e-10)
    assert result.dropped_rows == int((~used).sum())


def test_group_means_at_a_level_use_the_nested_grouping():
    """Class ids restart within schools: the class mean is the mean of the (school, class) pair."""
    frame = pd.DataFrame({"school": np.repeat([1, 2], 6), "klass": np.tile(np.repeat([1, 2], 3), 2),
                          "x": np.arange(12, dtype=float) ** 1.5, "y": np.arange(12, dtype=float)})
    spec = ModelSpec.parse("y x_cls || school: || klass:")
    spec.centering = [Centering("x_cls", "x", "group_mean", "klass"), Centering("x_sch", "x", "group", "school")]
    out = apply_centering(frame, spec)
    pair_mean = frame.groupby(["school", "klass"])["x"].transform("mean")
    lumped = frame.groupby("klass")["x"].transform("mean")
    np.testing.assert_allclose(out["x_cls"], pair_mean, atol=1e-12)
    assert not np.allclose(out["x_cls"], lumped)
    np.testing.assert_allclose(out["x_sch"], frame["x"] - frame.groupby("school")["x"].transform("mean"), atol=1e-12)
    # A level that is not a level of the model groups by its own raw values.
    alone = add_centered_columns(frame, [Centering("m", "x", "group_mean", "klass")], level_names=[])
    np.testing.assert_allclose(alone["m"], lumped, atol=1e-12)


def test_data_columns_name_what_the_file_must_hold():
    spec = ModelSpec.parse("mathach ses_c c.school_ses#c.ses_c || school: ses_c")
    spec.centering = [Centering("ses_c", "ses", "group", "school"),
                      Centering("school_ses", "ses", "group_mean", "school")]
    assert "ses_c" in spec.variables()
    assert data_columns(spec) == ["mathach", "school", "ses"]


def test_later_centrings_may_use_earlier_columns():
    frame = pd.DataFrame({"g": [1, 1, 2, 2], "x": [1.0, 3.0, 10.0, 14.0]})
    out = add_centered_columns(frame, [Centering("gm", "x", "group_mean", "g"), Centering("gm_c", "gm", "grand")])
    assert out["gm"].tolist() == [2.0, 2.0, 12.0, 12.0]
    assert out["gm_c"].tolist() == [-5.0, -5.0, 5.0, 5.0]


def test_spec_with_centring_round_trips_through_json_and_refits_the_same(hsb, slopes_fit):
    restored = ModelSpec.from_dict(json.loads(json.dumps(slopes_fit.spec.to_dict())))
    assert restored == slopes_fit.spec
    assert restored.centering == [Centering("ses_c", "ses", "group", "school")]
    assert fit_mixed(hsb.frame, restored, predict=False).loglik == pytest.approx(slopes_fit.loglik, rel=1e-12)
    assert ModelSpec.from_dict({"outcome": "y"}).centering == []  # specs saved before centring existed


@pytest.mark.parametrize("centering, message", [
    (Centering("ses_c", "sesx", "grand"), "unknown column 'sesx'"),
    (Centering("ses_c", "ses", "group", "schol"), "level unknown column 'schol'"),
    (Centering("meanses", "ses", "group_mean", "school"), "'meanses' is already a column"),
])
def test_bad_centrings_name_the_problem(hsb, centering, message):
    spec = ModelSpec.parse("mathach || school:")
    spec.centering = [centering]
    with pytest.raises(UserInputError, match=message):
        fit_mixed(hsb.frame, spec)


def test_text_variables_cannot_be_centred():
    frame = pd.DataFrame({"g": [1, 1, 2], "s": ["a", "b", "c"], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(UserInputError, match="cannot centre 's': it is not numeric"):
        add_centered_columns(frame, [Centering("s_c", "s", "grand")])


@pytest.mark.parametrize("arguments, message", [
    (("x_c", "x", "group"), "needs a level"),
    (("x_c", "x", "grand", "g"), "takes no level"),
    (("x_c", "x", "median"), "kind must be one of"),
    (("x c", "x", "grand"), "must start with a letter"),
    (("x", "x", "grand"), "other than its variable"),
])
def test_centering_validates_itself(arguments, message):
    with pytest.raises(UserInputError, match=message):
        Centering(*arguments)


def test_command_line_options_parse_and_print_back():
    assert Centering.parse_center_option("ses_c=ses:grand") == Centering("ses_c", "ses", "grand")
    assert Centering.parse_center_option("ses_c=ses:group:school") == Centering("ses_c", "ses", "group", "school")
    assert Centering.parse_group_mean_option("m=ses:school") == Centering("m", "ses", "group_mean", "school")
    for item in (Centering("a", "b", "grand"), Centering("a", "b", "group", "g")):
        assert Centering.parse_center_option(item.to_option()) == item
    for bad in ("ses_c=ses", "ses_c=ses:group", "ses_c:ses:grand", "=ses:grand"):
        with pytest.raises(UserInputError, match="--center"):
            Centering.parse_center_option(bad)
    with pytest.raises(UserInputError, match="--group-mean"):
        Centering.parse_group_mean_option("m=ses:group:school")


def test_fit_command_centres_and_saves_the_centring(tmp_path, capsys, slopes_fit):
    out = tmp_path / "fit.json"
    code = main(["fit", str(DATA / "hsb.csv"), "--model", SLOPES_MODEL, "--center", "ses_c=ses:group:school",
                 "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Centring: ses_c = ses - mean of ses within school" in printed
    saved = json.loads(out.read_text())
    assert saved["spec"]["centering"] == [{"name": "ses_c", "variable": "ses", "kind": "group", "level": "school"}]
    assert saved["loglik"] == pytest.approx(slopes_fit.loglik, rel=1e-12)


def test_fit_command_group_mean_option(capsys, hsb):
    code = main(["fit", str(DATA / "hsb.csv"), "--model", "mathach school_ses || school:", "--reml",
                 "--group-mean", "school_ses=ses:school", "--json", "-", "--quiet"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    frame = hsb.frame.assign(school_ses=hsb.frame.groupby("school")["ses"].transform("mean"))
    direct = fit_mixed(frame, ModelSpec.parse("mathach school_ses || school:, reml"), predict=False)
    assert result["loglik"] == pytest.approx(direct.loglik, rel=1e-12)


def test_fit_command_reports_a_bad_centring_in_one_line(capsys):
    code = main(["fit", str(DATA / "hsb.csv"), "--model", "mathach ses_c || school:", "--center", "ses_c=ses:group"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --center") and "\n" not in err


def test_not_numeric_centring_shows_the_offending_value():
    frame = pd.DataFrame({"g": [1, 1, 2], "s": [1.5, "oops", 2.5], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(UserInputError, match=r"cannot centre 's': it is not numeric \(e.g. 'oops'\)"):
        add_centered_columns(frame, [Centering("s_c", "s", "grand")])
