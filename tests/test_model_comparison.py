"""Model comparison: LR tests (ML refits, chi-bar-square), AIC/BIC, ICCs and variance explained."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine.centering import Centering
from engine.data_io import read_data
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_comparison import (ModelComparison, chibar2_p_value, compare_models, intraclass_correlations,
                                     likelihood_ratio_test)
from engine.model_spec import ModelSpec
from main import main
from tests.reference_cases import DATA, LME4_TERM, load_case, relative_error

NULL = "mathach || school:, reml"
MEANSES = "mathach meanses || school:, reml"
SLOPES = "mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, covariance(unstructured) reml"
SES_C = Centering("ses_c", "ses", "group", "school")


@pytest.fixture(scope="module")
def hsb() -> pd.DataFrame:
    return read_data(DATA / "hsb.csv").frame


@pytest.fixture(scope="module")
def null_vs_meanses(hsb) -> ModelComparison:
    return compare_models(hsb, [NULL, MEANSES], labels=["null", "meanses"])


@pytest.fixture(scope="module")
def intercept_vs_slope(hsb) -> ModelComparison:
    slopes = ModelSpec.parse(SLOPES)
    slopes.centering = [SES_C]
    intercepts = slopes.replace(levels=ModelSpec.parse("mathach || school:").levels)
    return compare_models(hsb, [intercepts, slopes], labels=["intercept", "slope"])


def one_way(k: int, n: int, sd_between: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(k), n)
    y = 3 + np.repeat(rng.normal(0, sd_between, k), n) + rng.normal(0, 2.0, k * n)
    return pd.DataFrame({"g": groups, "y": y})


# ----- the fits behind the comparison reproduce lme4 -------------------------------------------------
@pytest.mark.parametrize("index, name", [(0, "hsb_null_reml"), (1, "hsb_meanses_reml")])
def test_reml_fits_reproduce_lme4(null_vs_meanses, index, name):
    case = load_case(name)
    fit = null_vs_meanses.fits[index]
    assert fit.method == "REML" and fit.nobs == case["nobs"]
    assert relative_error(fit.loglik, case["loglik"]) < 1e-6
    for term, expected in case["fixed"].items():
        row = fit.coef(LME4_TERM.get(term, term))
        assert relative_error(row.coef, expected["coef"]) < 1e-4 and relative_error(row.se, expected["se"]) < 1e-4
    assert relative_error(fit.random_param("school", "sd(_cons)").estimate, case["random"]["school"]["sd"]) < 1e-3
    assert relative_error(fit.random_param("Residual", "sd(Residual)").estimate,
                          case["random"]["Residual"]["sd"]) < 1e-3


def test_slope_fit_in_the_comparison_reproduces_lme4(intercept_vs_slope):
    case = load_case("hsb_slopes_reml")
    fit = intercept_vs_slope.fits[1]
    assert relative_error(fit.loglik, case["loglik"]) < 1e-6
    assert relative_error(fit.coef("1.sector#c.ses_c").coef, case["fixed"]["ses_c:sector"]["coef"]) < 1e-4
    assert relative_error(fit.random_param("school", "sd(ses_c)").estimate, case["random"]["school:ses_c"]["sd"]) < 1e-3


# ----- LR tests -----------------------------------------------------------------------------------------
def test_reml_models_with_different_fixed_effects_are_refitted_by_ml(hsb, null_vs_meanses):
    comparison = null_vs_meanses
    assert comparison.refitted_by_ml and comparison.method == "ML" and comparison.fit_method == "REML"
    assert any("Use ML instead" in note and "refitted by ML" in note for note in comparison.notes)
    assert [fit.method for fit in comparison.test_fits] == ["ML", "ML"]
    direct = [fit_mixed(hsb, ModelSpec.parse(text, method="ML"), predict=False) for text in (NULL, MEANSES)]
    for model, fit in zip(comparison.models, direct):
        assert model.method == "ML"
        assert model.loglik == pytest.approx(fit.loglik, rel=1e-9)
    # An independent ML fit of the larger model (statsmodels) agrees.
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        statsmodels_fit = smf.mixedlm("mathach ~ meanses", hsb, groups=hsb["school"]).fit(reml=False)
    assert relative_error(comparison.models[1].loglik, statsmodels_fit.llf) < 1e-6
    test = comparison.tests[0]
    stat = 2 * (direct[1].loglik - direct[0].loglik)
    assert (test.restricted, test.full, test.df, test.distribution) == ("null", "meanses", 1, "chi2")
    assert test.stat == pytest.approx(stat, rel=1e-9)
    assert test.p == pytest.approx(stats.chi2.sf(stat, 1), rel=1e-9, abs=1e-300)
    assert test.difference == "fixed effect meanses"
    assert "refitted by ML" in comparison.format()


def test_lr_test_on_reml_fits_with_different_fixed_effects_refuses(null_vs_meanses):
    restricted, full = null_vs_meanses.fits
    with pytest.raises(UserInputError, match="You're comparing the mean structure of models estimated using REML. "
                                             "Use ML instead."):
        likelihood_ratio_test(restricted, full)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_one_variance_component_gets_half_the_chi2_p_value(seed):
    frame = one_way(40, 8, 0.25, seed)
    comparison = compare_models(frame, ["y", "y || g:"], method="ML", null_model=None)
    test = comparison.tests[0]
    linear, mixed = comparison.test_fits
    stat = 2 * (mixed.loglik - linear.loglik)
    assert stat > 0.1  # these seeds leave the variance off the boundary: the mixture matters
    assert test.distribution == "chibar2" and test.mixture == [[0.5, 0.0], [0.5, 1.0]]
    assert test.stat == pytest.approx(stat, rel=1e-9)
    assert test.p == pytest.approx(0.5 * stats.chi2.sf(stat, 1), rel=1e-9)
    assert mixed.lr_test.p == pytest.approx(test.p, rel=1e-6)  # the fit's own "LR test vs. linear model"
    assert "chibar2(01)" in comparison.format()


def test_adding_a_correlated_slope_to_one_effect_mixes_chi2_1_and_chi2_2(intercept_vs_slope):
    comparison = intercept_vs_slope
    assert not comparison.refitted_by_ml and comparison.method == "REML"  # same fixed effects: REML is fine
    test = comparison.tests[0]
    intercepts, slopes = comparison.test_fits
    stat = 2 * (slopes.loglik - intercepts.loglik)
    assert (test.df, test.distribution, test.mixture) == (2, "chibar2", [[0.5, 1.0], [0.5, 2.0]])
    assert test.p == pytest.approx(0.5 * stats.chi2.sf(stat, 1) + 0.5 * stats.chi2.sf(stat, 2), rel=1e-9)
    assert test.p < stats.chi2.sf(stat, 2)  # less conservative than the naive chi2(2)
    assert test.difference == "random ses_c at school, unstructured"


def test_chibar2_mixture_arithmetic():
    assert chibar2_p_value(0.0, [[0.5, 0], [0.5, 1]]) == 1.0
    assert chibar2_p_value(2.71, [[0.5, 0], [0.5, 1]]) == pytest.approx(0.5 * stats.chi2.sf(2.71, 1))
    assert chibar2_p_value(5.0, [[0.5, 2], [0.5, 3]]) == pytest.approx(
        0.5 * stats.chi2.sf(5.0, 2) + 0.5 * stats.chi2.sf(5.0, 3))


def test_covariance_only_change_is_a_plain_chi2_test(hsb):
    base = "mathach ses_c || school: ses_c"
    independent, unstructured = (ModelSpec.parse(base, method="ML"),
                                 ModelSpec.parse(base + ", covariance(unstructured)", method="ML"))
    for spec in (independent, unstructured):
        spec.centering = [SES_C]
    test = compare_models(hsb, [independent, unstructured], null_model=None).tests[0]
    assert (test.df, test.distribution, test.difference) == (1, "chi2", "unstructured covariance at school")
    assert test.p == pytest.approx(stats.chi2.sf(test.stat, 1), rel=1e-9)


def test_models_that_are_not_nested_get_no_test_but_information_criteria(hsb):
    comparison = compare_models(hsb, ["mathach meanses || school:", "mathach ses || school:"], null_model=None)
    assert comparison.tests == []
    assert any("A and B are not nested (fixed effect meanses is not in the larger model)" in n
               for n in comparison.notes)
    assert len(comparison.models) == 2


# ----- information criteria --------------------------------------------------------------------------
def test_aic_and_bic_follow_their_definitions(null_vs_meanses, intercept_vs_slope):
    expected_k = {"null": 1 + 1 + 1, "meanses": 2 + 1 + 1, "intercept": 6 + 1 + 1, "slope": 6 + 3 + 1}
    for comparison in (null_vs_meanses, intercept_vs_slope):
        for model in comparison.models:
            k, n = expected_k[model.label], model.nobs
            assert model.n_params == k
            assert model.aic == pytest.approx(-2 * model.loglik + 2 * k, rel=1e-12)
            assert model.bic == pytest.approx(-2 * model.loglik + k * math.log(n), rel=1e-12)


# ----- intraclass correlations -------------------------------------------------------------------------
def test_icc_and_its_standard_error_match_the_balanced_one_way_anova():
    """Balanced data: REML is the ANOVA estimator and its information is known in closed form.

    With lambda1 = sigma2 + n tau (estimated by MSB, variance 2 lambda1^2 / (k-1)) and
    lambda2 = sigma2 (by MSW, variance 2 lambda2^2 / (k(n-1))), icc = (l1 - l2) / (l1 + (n-1) l2).
    """
    k, n = 40, 8
    frame = one_way(k, n, 1.0, 11)
    fit = fit_mixed(frame, ModelSpec.parse("y || g:, reml"), predict=False)
    (icc,) = intraclass_correlations(fit)
    y, groups = frame["y"].to_numpy(), frame["g"].to_numpy()
    means = np.bincount(groups, weights=y) / n
    msb = n * ((means - y.mean()) ** 2).sum() / (k - 1)
    msw = ((y - means[groups]) ** 2).sum() / (k * (n - 1))
    denominator = msb + (n - 1) * msw
    assert icc.estimate == pytest.approx((msb - msw) / denominator, rel=1e-6)
    se = n * msb * msw / denominator ** 2 * math.sqrt(2 * (1 / (k - 1) + 1 / (k * (n - 1))))
    assert icc.se == pytest.approx(se, rel=1e-4)
    logit, half = math.log(icc.estimate / (1 - icc.estimate)), 1.959964 * se / (icc.estimate * (1 - icc.estimate))
    assert icc.ci == pytest.approx([1 / (1 + math.exp(-(logit - half))), 1 / (1 + math.exp(-(logit + half)))], rel=1e-4)
    assert icc.ci[0] > 0 and icc.ci[1] < 1


def test_hsb_icc_is_the_school_share_of_the_variance(null_vs_meanses):
    case = load_case("hsb_null_reml")["random"]
    row = next(r for r in null_vs_meanses.intraclass if r.model == "null" and r.level == "school")
    share = case["school"]["var"] / (case["school"]["var"] + case["Residual"]["var"])
    assert relative_error(row.estimate, share) < 1e-3
    assert row.ci[0] < row.estimate < row.ci[1]


def test_three_level_icc_accumulates_the_levels_above():
    frame = pd.read_csv(DATA / "seed_d5.csv")
    fit = fit_mixed(frame, ModelSpec.parse("perform tutoring || school_id: || teach_id:, reml"), predict=False)
    rows = intraclass_correlations(fit, "m")
    school, teacher = (fit.random_param(level, "sd(_cons)").estimate ** 2 for level in ("school_id", "teach_id"))
    total = school + teacher + fit.random_param("Residual", "sd(Residual)").estimate ** 2
    assert [r.label for r in rows] == ["school_id", "teach_id|school_id"]
    assert rows[0].estimate == pytest.approx(school / total, rel=1e-12)
    assert rows[1].estimate == pytest.approx((school + teacher) / total, rel=1e-12)
    assert all(r.se > 0 for r in rows)


# ----- variance explained ----------------------------------------------------------------------------
def test_variance_explained_matches_raudenbush_and_bryk(null_vs_meanses, intercept_vs_slope):
    null = load_case("hsb_null_reml")["random"]
    for comparison, label, case in ((null_vs_meanses, "meanses", "hsb_meanses_reml"),
                                    (intercept_vs_slope, "slope", "hsb_slopes_reml")):
        reference = load_case(case)["random"]
        rows = {r.level: r for r in comparison.variance_explained if r.model == label}
        for level in ("school", "Residual"):
            expected = (null[level]["var"] - reference[level]["var"]) / null[level]["var"]
            assert rows[level].proportion == pytest.approx(expected, abs=2e-3), (case, level)
    slope_rows = {r.level: r.proportion for r in intercept_vs_slope.variance_explained if r.model == "slope"}
    # Raudenbush & Bryk (2002), Table 4.5: 72% of the intercept variance and 6% of the residual.
    assert round(slope_rows["school"], 2) == 0.72 and round(slope_rows["Residual"], 2) == 0.06


def test_models_use_the_same_rows(hsb):
    frame = hsb.copy()
    frame.loc[:99, "meanses"] = np.nan  # only the second model reads meanses
    comparison = compare_models(frame, ["mathach || school:", "mathach meanses || school:"], method="ML")
    assert {model.nobs for model in comparison.models} == {len(frame) - 100}
    assert comparison.null_fit.nobs == len(frame) - 100
    assert any("100 rows" in note for note in comparison.notes)


def test_bad_comparisons_are_user_errors(hsb):
    with pytest.raises(UserInputError, match="at least two models"):
        compare_models(hsb, ["mathach || school:"])
    with pytest.raises(UserInputError, match="different outcomes"):
        compare_models(hsb, ["mathach || school:", "ses || school:"])


# ----- command line -------------------------------------------------------------------------------------
def test_lrtest_command_prints_and_writes_json(tmp_path, capsys, null_vs_meanses):
    out = tmp_path / "lr.json"
    code = main(["lrtest", str(DATA / "hsb.csv"), "--model", "mathach || school:", "--model",
                 "mathach meanses || school:", "--reml", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Use ML instead." in printed and "LR chi2(1) =" in printed and "Intraclass correlations" in printed
    restored = ModelComparison.from_dict(json.loads(out.read_text()))
    assert restored.refitted_by_ml
    assert restored.tests[0].stat == pytest.approx(null_vs_meanses.tests[0].stat, rel=1e-9)


def test_lrtest_command_with_centring(capsys, intercept_vs_slope):
    code = main(["lrtest", str(DATA / "hsb.csv"), "--model",
                 "mathach c.meanses##c.ses_c i.sector##c.ses_c || school:", "--model", SLOPES.replace(" reml", ""),
                 "--reml", "--center", "ses_c=ses:group:school", "--json", "-", "--quiet"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tests"][0]["distribution"] == "chibar2"
    assert result["tests"][0]["p"] == pytest.approx(intercept_vs_slope.tests[0].p, rel=1e-9)


def test_lrtest_command_needs_two_models(capsys):
    assert main(["lrtest", str(DATA / "hsb.csv"), "--model", "mathach || school:"]) == 2
    assert capsys.readouterr().err.strip() == "error: lrtest needs at least two models (--model or --formula options)"
