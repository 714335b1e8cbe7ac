"""dfmethod(): Stata's design-based methods, refusals, the model text, the CLI and the JSON.

The residual, repeated and anova df are checked against the classical ANOVA df of the designs
(worked out by hand in the comments): ergoStool is a randomised block (9 subjects x 4 stools),
crt10 a cluster-randomised trial (10 schools x 20 pupils, treatment at the school level), the
seed's design 5 districts > 25 schools > 200 teachers > 4,000 students > 8,000 rows.
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import main
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.results import FitResult
from engine.wald_tests import columns_for_terms, joint_test
from tests.reference_cases import DATA, load_case, relative_error

ERGO = str(DATA / "ergostool.csv")
CRT = str(DATA / "crt10.csv")


def fit(path, model, dfmethod):
    return fit_mixed(pd.read_csv(path), ModelSpec.parse(model).replace(dfmethod=dfmethod), predict=False)


@pytest.mark.parametrize("method, expected", [
    # residual: n - rank(X) = 36 - 4; repeated: between-subject 9 - 1 for _cons, within 36 - 9 - 3;
    # anova: _cons is contained in Subject, whose rank contribution to [X Z] is 12 - 4 = 8; Type
    # is contained in nothing: n - rank([X Z]) = 36 - 12 = 24 (the two-way ANOVA's error df).
    ("residual", {"_cons": 32, "2.Type": 32}),
    ("repeated", {"_cons": 8, "2.Type": 24, "4.Type": 24}),
    ("anova", {"_cons": 8, "2.Type": 24, "4.Type": 24}),
])
def test_design_df_in_a_randomised_block(method, expected):
    result = fit(ERGO, "effort i.Type || Subject:, reml", method)
    for term, df in expected.items():
        row = result.coef(term)
        assert row.df == df
        assert row.t == pytest.approx(row.coef / row.se, rel=1e-12)
        assert row.p == pytest.approx(2 * stats.t.sf(abs(row.t), df), rel=1e-10)
        half = stats.t.ppf(0.975, df) * row.se
        assert row.ci == pytest.approx([row.coef - half, row.coef + half], rel=1e-10)


def test_anova_f_test_is_the_classical_two_way_anova():
    case = load_case("ddf_ergostool_reml")
    result = fit(ERGO, "effort i.Type || Subject:, reml", "anova")
    test = joint_test(result, ["i.Type"])
    assert (test.df1, test.df2) == (3, 24)
    assert relative_error(test.F, case["ftests"]["Kenward-Roger"]["Type"]["F"]) < 1e-6
    assert relative_error(test.p, case["ftests"]["Kenward-Roger"]["Type"]["p"]) < 1e-5


def test_design_df_in_a_cluster_randomised_trial():
    # Schools: 10 groups, between-school columns _cons and treat -> 10 - 2 = 8; x varies within
    # schools -> 200 - 10 - 1 = 189 (repeated), and n - rank([X Z]) = 200 - 11 (anova).
    for method in ("repeated", "anova"):
        result = fit(CRT, "y treat x || school:, reml", method)
        assert [result.coef(t).df for t in ("treat", "x", "_cons")] == [8, 189, 8]
    residual = fit(CRT, "y treat x || school:, ml", "residual")  # residual needs no REML
    assert {row.df for row in residual.fixed} == {197}


def test_anova_df_with_four_nested_levels():
    # _cons is contained in every level; rank contributions 5 - 1, 25 - 5, ...: the smallest is 4.
    result = fit_mixed(pd.read_csv(DATA / "seed_d5.csv"), ModelSpec.parse(
        "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml dfmethod(anova)"), predict=False)
    assert result.coef("_cons").df == 4
    assert result.coef("tutoring").df == 8000 - 4001


@pytest.mark.parametrize("model, message", [
    ("effort i.Type || Subject:, dfmethod(kroger)", "requires REML"),
    ("effort i.Type || Subject:, ml dfmethod(satterthwaite)", "requires REML"),
    ("perform tutoring || school_id: || teach_id:, reml dfmethod(repeated)", "two-level"),
    ("Reaction Days || Subject: Days, reml dfmethod(anova)", "random intercepts only"),
    ("y x || s:, dfmethod(bogus)", "dfmethod(bogus) is not known"),
])
def test_refusals_name_the_problem(model, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec = ModelSpec.parse(model)
        fit_mixed(pd.DataFrame({"perform": [1.0, 2.0], "tutoring": [0, 1], "school_id": [1, 1], "teach_id": [1, 2],
                                "effort": [1.0, 2.0], "Type": [1, 2], "Subject": [1, 1], "Reaction": [1.0, 2.0],
                                "Days": [0, 1], "y": [1.0, 2.0], "x": [0.0, 1.0], "s": [1, 1]}), spec)


def test_model_text_round_trip_and_json():
    spec = ModelSpec.parse("y treat x || school:, reml dfmethod(kroger)")
    assert spec.dfmethod == "kroger"
    assert spec.to_stata() == "mixed y treat x || school:, reml dfmethod(kroger)"
    assert ModelSpec.parse(spec.to_stata()) == spec
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert ModelSpec.parse("y x, dfm(Kenward-Roger) || s:, reml").dfmethod == "kroger"
    assert ModelSpec.parse("y x || s:").dfmethod is None


def test_term_names_map_to_coefficients():
    names = ["1.sector", "c.meanses#c.ses_c", "ses_c", "1.sector#c.ses_c", "2.g", "3.g", "_cons"]
    assert columns_for_terms(names, ["i.sector"]) == ["1.sector"]
    assert columns_for_terms(names, ["c.ses_c", "c.meanses#c.ses_c"]) == ["c.meanses#c.ses_c", "ses_c"]
    assert columns_for_terms(names, ["i.sector##c.ses_c"]) == ["1.sector", "ses_c", "1.sector#c.ses_c"]
    assert columns_for_terms(names, ["3.g", "i.g"]) == ["2.g", "3.g"]
    with pytest.raises(UserInputError, match="'i.ses_c' names no coefficient"):
        columns_for_terms(names, ["i.ses_c"])


def test_z_default_gives_wald_chi2():
    result = fit(ERGO, "effort i.Type || Subject:, reml", None)
    assert result.dfmethod == "z" and all(row.df is None and row.t is None for row in result.fixed)
    test = joint_test(result, ["i.Type"])
    assert test.F is None and test.df2 is None and test.df1 == 3
    assert test.p == pytest.approx(stats.chi2.sf(test.chi2, 3))
    assert result.wald.kind == "chi2"


def test_cli_fit_json_and_report_carry_the_method(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main.main(["fit", CRT, "--model", "y treat x || school:", "--reml", "--dfmethod", "kroger",
                      "--json", str(out)]) == 0
    report = capsys.readouterr().out
    assert "DF method: Kenward-Roger" in report and "P>|t|" in report and "F(2, " in report
    data = json.loads(out.read_text())
    case = load_case("ddf_crt10_reml")["ddf"]["Kenward-Roger"]
    assert data["dfmethod"] == "kroger" and data["spec"]["dfmethod"] == "kroger"
    treat = next(row for row in data["fixed"] if row["term"] == "treat")
    assert relative_error(treat["df"], case["treat"]["df"]) < 1e-4
    assert relative_error(treat["se"], case["treat"]["se_adj"]) < 1e-5
    assert relative_error(treat["t"], case["treat"]["t"]) < 1e-4
    assert relative_error(treat["p"], case["treat"]["p"]) < 1e-4
    assert relative_error(treat["ci"][1], case["treat"]["ci_high"]) < 1e-4
    assert data["wald"]["kind"] == "F" and data["wald"]["df2"] > 0
    assert FitResult.from_dict(data).coef("treat").df == treat["df"]


def test_cli_fit_ml_with_kroger_is_one_line_exit_2(capsys):
    assert main.main(["fit", CRT, "--model", "y treat x || school:", "--dfmethod", "kroger"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "requires REML" in err


def test_cli_test_subcommand(tmp_path, capsys):
    out = tmp_path / "test.json"
    assert main.main(["test", ERGO, "i.Type", "--model", "effort i.Type || Subject:, reml dfmethod(satterthwaite)",
                      "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "F(3, 24.00)" in printed and "2.Type = 0" in printed
    tests = json.loads(out.read_text())["tests"]
    expected = load_case("ddf_ergostool_reml")["ftests"]["Satterthwaite"]["Type"]
    assert tests[0]["terms"] == ["i.Type"] and tests[0]["df1"] == 3
    assert relative_error(tests[0]["F"], expected["F"]) < 1e-5 and relative_error(tests[0]["p"], expected["p"]) < 1e-4
    assert main.main(["test", ERGO, "i.Stool", "--model", "effort i.Type || Subject:"]) == 2
    assert "names no coefficient" in capsys.readouterr().err


def test_results_saved_with_t_df_still_read():
    old = {"estimator": "ols", "method": "OLS", "nobs": 10,
           "fixed": [{"term": "x", "coef": 1.0, "se": 0.5, "z": 2.0, "p": 0.08, "ci": [0.0, 2.0], "t_df": 8}]}
    row = FitResult.from_dict(old).fixed[0]
    assert row.df == 8 and row.t == 2.0


def test_anova_ignores_levels_that_repeat_the_groups_above():
    # The seed's reversed order: every level has the same 4,000 student groups; only the first
    # contributes rank (4,000 - 1 for _cons), the others contribute 0 and are not containing levels.
    result = fit_mixed(pd.read_csv(DATA / "seed_d5.csv"), ModelSpec.parse(
        "perform tutoring || student_id: || teach_id: || school_id: || dist_id:, reml dfmethod(anova)"), predict=False)
    assert result.coef("_cons").df == 3999 and result.coef("tutoring").df == 3999
