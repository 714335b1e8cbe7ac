"""Stata factor-variable terms against lme4: every form makes the columns Stata makes, and the fit
agrees with lme4 1.1-31 (the numbers below were computed with R from the same files; no R here).

``tests/data/quadratic_interaction.csv`` holds 60 groups of 12 rows with a known cubic in ``x``, a
3-level factor ``a``, its interaction with ``x``, an ``x*z`` interaction and a random intercept
(``b_gap`` is ``b`` set to 0 where ``a == 3``, which leaves the cell a=3, b_gap=1 empty).
"""

import json

import pandas as pd
import pytest

import main
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, relative_error

HSB = DATA / "hsb.csv"
GENERATED = DATA / "quadratic_interaction.csv"

# model -> (data, lme4 formula, lme4 log-likelihood, {our name: (coef, se)}, lme4 residual sd)
CASES = {
    "mathach ses c.ses#c.ses || school:": (
        HSB, "mathach ~ ses + I(ses^2) + (1 | school)", -23320.0765681,
        {"ses": (2.3762766129, 0.1070567939), "c.ses#c.ses": (-0.0901079159449, 0.0976141451733),
         "_cons": (12.7127641561, 0.196320699181)}, 6.08505405103),
    "mathach c.ses##c.ses || school:": (
        HSB, "mathach ~ ses + I(ses^2) + (1 | school)", -23320.0765681,
        {"ses": (2.3762766129, 0.1070567939), "c.ses#c.ses": (-0.0901079159449, 0.0976141451733),
         "_cons": (12.7127641561, 0.196320699181)}, 6.08505405103),
    "mathach i.sector##c.ses || school:, reml": (
        HSB, "mathach ~ factor(sector) + ses + factor(sector):ses + (1 | school)", -23287.0821362,
        {"1.sector": (2.13817045745, 0.341346246078), "ses": (2.95117435423, 0.140608700753),
         "1.sector#c.ses": (-1.31284922578, 0.211995965319), "_cons": (11.7979940421, 0.228515887592)},
        6.06961208374),
    # lme4's own a:b drops a rank-deficient column; these are lme4's fit of Stata's three cells
    # (I(sector == 0 & minority == 1) + ...), whose log-likelihood equals that of factor(sector):factor(minority).
    "mathach i.sector#i.minority || school:": (
        HSB, "mathach ~ factor(sector):factor(minority) + (1 | school)", -23361.703765,
        {"0.sector#1.minority": (-5.17353429995, 0.29574242071), "1.sector#0.minority": (2.18907836581, 0.377710255747),
         "1.sector#1.minority": (-0.230000961011, 0.420941121121), "_cons": (12.7232396213, 0.252499348044)},
        6.12738657302),
    "mathach i.sector##i.minority || school:": (
        HSB, "mathach ~ factor(sector) + factor(minority) + factor(sector):factor(minority) + (1 | school)",
        -23361.703765,
        {"1.sector": (2.18907836569, 0.377710256059), "1.minority": (-5.17353429981, 0.295742420738),
         "1.sector#1.minority": (2.7544549735, 0.414930288061), "_cons": (12.7232396213, 0.252499348249)},
        6.1273865729),
    "y c.x##c.x c.x#c.x#c.x i.a##c.x c.x#c.z || g:": (
        GENERATED, "y ~ x + I(x^2) + I(x^3) + factor(a) + factor(a):x + x:z + (1 | g)", -1391.30965858,
        {"x": (1.217424903, 0.141117454314), "c.x#c.x": (-0.829399797801, 0.0430840762521),
         "c.x#c.x#c.x": (0.274872299874, 0.0264752765753), "2.a": (1.11679966336, 0.146002178828),
         "3.a": (-0.347486945478, 0.151026396932), "2.a#c.x": (0.983266847008, 0.149663373301),
         "3.a#c.x": (0.264388230411, 0.152330374294), "c.x#c.z": (0.609318562429, 0.0656629298984),
         "_cons": (2.25353145163, 0.168825405642)}, 1.5556585366),
    "y ib2.a x || g:": (
        GENERATED, 'y ~ relevel(factor(a), ref = "2") + x + (1 | g)', -1631.05128353,
        {"1.a": (-1.35860580449, 0.205392569895), "3.a": (-1.59318002007, 0.209403919432),
         "x": (2.66174232612, 0.0857014772114), "_cons": (2.65649509536, 0.193601829702)}, 2.21003906043),
    "y ibn.a x, noconstant || g:": (
        GENERATED, "y ~ 0 + factor(a) + x + (1 | g)", -1631.05128353,
        {"1.a": (1.29788929087, 0.198030265673), "2.a": (2.65649509536, 0.193601829702),
         "3.a": (1.06331507529, 0.2009975121), "x": (2.66174232612, 0.0857014772114)}, 2.21003906043),
    # Stata keeps the base level out under noconstant unless ibn. is written; lme4 needs the columns spelled out.
    "y i.a x, noconstant || g:": (
        GENERATED, "y ~ 0 + I(model.matrix(~ factor(a))[, -1, drop = FALSE]) + x + (1 | g)", -1649.32846923,
        {"2.a": (1.89600211178, 0.183945213941), "3.a": (0.308663578329, 0.191931451743),
         "x": (2.63775873637, 0.0863953717403)}, 2.22332892508),
    "y c.x#i.a#c.z x z || g:": (
        GENERATED, "y ~ x:factor(a):z + x + z + (1 | g)", -1632.33494475,
        {"c.x#1.a#c.z": (0.961698314427, 0.140895739661), "c.x#2.a#c.z": (0.689845026823, 0.175149033714),
         "c.x#3.a#c.z": (0.343214881966, 0.175740284574), "x": (2.62315826834, 0.0861693499433),
         "z": (0.0120514004897, 0.0864507494996), "_cons": (1.75322848212, 0.156383982803)}, 2.21452049556),
    # The cell a=3, b_gap=1 is empty: lme4 drops its all-zero column, as Stata does.
    "y i.a##i.b_gap x || g:": (
        GENERATED, "y ~ factor(a) + factor(b_gap) + factor(a):factor(b_gap) + x + (1 | g)", -1626.79289278,
        {"2.a": (1.3024324722, 0.286166003667), "3.a": (0.0211778350986, 0.250003500578),
         "1.b_gap": (0.575911267131, 0.297740101265), "2.a#1.b_gap": (0.0469665596394, 0.415121885495),
         "x": (2.65661924711, 0.0855165926071), "_cons": (1.04206255612, 0.238134827457)}, 2.19722522898),
    "y 2.a#c.x x || g:": (
        GENERATED, "y ~ I(as.numeric(a == 2)):x + x + (1 | g)", -1660.92154484,
        {"2.a#c.x": (0.491551768132, 0.192640857341), "x": (2.55128081291, 0.107588740805),
         "_cons": (1.69549786492, 0.159793389495)}, 2.30793148061),
}


@pytest.fixture(scope="module")
def frames():
    return {HSB: pd.read_csv(HSB), GENERATED: pd.read_csv(GENERATED)}


@pytest.mark.parametrize("model", list(CASES))
def test_every_factor_variable_form_matches_lme4(frames, model):
    path, formula, loglik, fixed, residual_sd = CASES[model]
    spec = ModelSpec.parse(model)
    assert spec.to_lme4() == formula
    result = fit_mixed(frames[path], spec)
    assert relative_error(result.loglik, loglik) < 1e-6
    assert [row.term for row in result.fixed] == list(fixed)  # Stata's names and order, _cons last
    for row in result.fixed:
        coef, se = fixed[row.term]
        assert abs(row.coef - coef) < 1e-4 * max(1.0, abs(coef)), row.term
        assert relative_error(row.se, se) < 1e-4, row.term
    assert relative_error(result.random[-1].estimate, residual_sd) < 1e-4


def test_the_empty_cell_is_left_out_with_a_note(frames):
    result = fit_mixed(frames[GENERATED], ModelSpec.parse("y i.a##i.b_gap x || g:"))
    assert any("3.a#1.b_gap" in note and "empty cell" in note for note in result.notes)


def test_squared_term_reaches_the_cli_json(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main.main(["fit", str(HSB), "--model", "mathach c.ses##c.ses || school:", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert relative_error(result["loglik"], -23320.0765681) < 1e-6
    square = next(row for row in result["fixed"] if row["term"] == "c.ses#c.ses")
    assert relative_error(square["coef"], -0.0901079159449) < 1e-4
    assert "c.ses#c.ses" in capsys.readouterr().out


# ----- awkward column names and codings (issue 11, item 10) -----------------------------------------
# lme4: mathach ~ meanses + (1 | school), REML (tests/reference/hsb_meanses_reml.json)
MEANSES_REML = (-23480.6424223386, 5.86353847310113, 0.361458015999315, 12.6494353911501)
# lme4: mathach ~ factor(female) + factor(sector) + (1 | school), ML
FEMALE_SECTOR_ML = (-23507.48072, {"1.flag": (-1.37171896362, 0.170602466259),
                                   "1.sector": (2.79070896838, 0.423208361288),
                                   "_cons": (12.1136205958, 0.296288625619)})


def _fit_json(tmp_path, frame, model):
    data, out = tmp_path / "data.csv", tmp_path / "fit.json"
    frame.to_csv(data, index=False)
    code = main.main(["fit", str(data), "--model", model, "--quiet", "--json", str(out)])
    return code, (json.loads(out.read_text()) if code == 0 else None)


def test_a_predictor_named_intercept_is_fitted_like_any_other(tmp_path, frames):
    frame = frames[HSB].rename(columns={"meanses": "Intercept"})
    code, result = _fit_json(tmp_path, frame, "mathach Intercept || school:, reml")
    loglik, coef, se, cons = MEANSES_REML
    assert code == 0 and relative_error(result["loglik"], loglik) < 1e-6
    rows = {row["term"]: row for row in result["fixed"]}
    assert list(rows) == ["Intercept", "_cons"]
    assert relative_error(rows["Intercept"]["coef"], coef) < 1e-4 and relative_error(rows["Intercept"]["se"], se) < 1e-4
    assert relative_error(rows["_cons"]["coef"], cons) < 1e-4


def test_a_predictor_named_cons_is_refused_in_one_line(tmp_path, frames, capsys):
    code, _ = _fit_json(tmp_path, frames[HSB].rename(columns={"meanses": "_cons"}), "mathach _cons || school:")
    err = capsys.readouterr().err
    assert code == 2 and "'_cons' is the name of the constant" in err and len(err.strip().splitlines()) == 1


def test_bool_and_float_levels_and_a_column_named_C(tmp_path, frames):
    frame = frames[HSB].assign(flag=frames[HSB].female == 1, sector=frames[HSB].sector.astype(float),
                               C=frames[HSB].ses)
    assert frame.to_csv(index=False).splitlines()[1].split(",")[-2:] == ["True", "-1.528"]
    code, result = _fit_json(tmp_path, frame, "mathach i.flag i.sector || school:")
    loglik, fixed = FEMALE_SECTOR_ML
    assert code == 0 and relative_error(result["loglik"], loglik) < 1e-6
    assert [row["term"] for row in result["fixed"]] == list(fixed)
    for row in result["fixed"]:
        assert relative_error(row["coef"], fixed[row["term"]][0]) < 1e-4
        assert relative_error(row["se"], fixed[row["term"]][1]) < 1e-4


def test_not_numeric_messages_show_the_offending_value(tmp_path, frames, capsys):
    frame = frames[HSB].head(300).astype({"mathach": object, "ses": object})
    frame.loc[120, "mathach"] = "high"
    code, _ = _fit_json(tmp_path, frame, "mathach ses || school:")
    assert code == 2 and "outcome 'mathach' is not numeric (e.g. 'high')" in capsys.readouterr().err
    frame = frames[HSB].head(300).astype({"ses": object})
    frame.loc[77, "ses"] = "low"
    code, _ = _fit_json(tmp_path, frame, "mathach ses || school:")
    assert code == 2 and "column 'ses' is not numeric (e.g. 'low')" in capsys.readouterr().err


# model -> (lme4 formula fitted by ML, its log-likelihood, our columns in Stata's order)
MORE_FORMS = {
    "y i.a##i.b##c.x || g:": ("factor(a)*factor(b)*x", -1620.56078869,
                              ["2.a", "3.a", "1.b", "2.a#1.b", "3.a#1.b", "x", "2.a#c.x", "3.a#c.x", "1.b#c.x",
                               "2.a#1.b#c.x", "3.a#1.b#c.x", "_cons"]),
    "y i.a#i.b || g:": ("factor(a):factor(b)", -1927.23032968,
                        ["1.a#1.b", "2.a#0.b", "2.a#1.b", "3.a#0.b", "3.a#1.b", "_cons"]),
    "y i.a i.a#i.b || g:": ("factor(a) + factor(a):factor(b)", -1927.23032968,
                            ["2.a", "3.a", "1.a#1.b", "2.a#1.b", "3.a#1.b", "_cons"]),
    "y ib3.a##i.b || g:": ("relevel(factor(a), ref='3')*factor(b)", -1927.23032968,
                           ["1.a", "2.a", "1.b", "1.a#1.b", "2.a#1.b", "_cons"]),
    "y c.x i.a#c.x || g:": ("x + factor(a):x", -1660.22540953, ["x", "2.a#c.x", "3.a#c.x", "_cons"]),
    # the main effect written after its interaction: the same model (R orders terms by degree)
    "y i.a#c.x x || g:": ("factor(a):x + x", -1660.22540953, ["2.a#c.x", "3.a#c.x", "x", "_cons"]),
    "y i.a#c.x#c.x || g:": ("factor(a):I(x^2)", -1850.76265023,
                            ["1.a#c.x#c.x", "2.a#c.x#c.x", "3.a#c.x#c.x", "_cons"]),
    "y i.a##i.b_gap##c.x || g:": ("factor(a)*factor(b_gap)*x", -1621.56739457,
                                  ["2.a", "3.a", "1.b_gap", "2.a#1.b_gap", "x", "2.a#c.x", "3.a#c.x", "1.b_gap#c.x",
                                   "2.a#1.b_gap#c.x", "_cons"]),
}


@pytest.mark.parametrize("model", list(MORE_FORMS))
def test_more_interaction_forms_reach_lme4s_likelihood(frames, model):
    _, loglik, names = MORE_FORMS[model]
    result = fit_mixed(frames[GENERATED], ModelSpec.parse(model))
    assert relative_error(result.loglik, loglik) < 1e-6
    assert [row.term for row in result.fixed] == names
