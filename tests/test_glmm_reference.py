"""The GLMM engine reproduces every glmm_* lme4 reference case (shared/reference): log-likelihood
within 1e-6 relative, fixed effects 1e-4, their SEs 5e-4, latent sds 1e-3; through the model text
and through `main.py fit`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, LME4_TERM, load_case, load_data, relative_error

ROOT = Path(__file__).resolve().parents[1]
GLMM_CASES = ["glmm_cbpp_laplace", "glmm_cbpp_agq12", "glmm_seed_d5_logit_laplace"]
# lme4 names factor levels period2; Stata 2.period
TERM = dict(LME4_TERM, **{f"period{k}": f"{k}.period" for k in (2, 3, 4)})


def check_against_case(result, case):
    assert result.loglik >= case["loglik"] - 1e-6 * abs(case["loglik"])  # never worse than lme4
    assert relative_error(result.loglik, case["loglik"]) < 1e-6
    assert len(result.fixed) == len(case["fixed"])
    for term, expected in case["fixed"].items():
        row = result.coef(TERM.get(term, term))
        assert relative_error(row.coef, expected["coef"]) < 1e-4, term
        assert relative_error(row.se, expected["se"]) < 5e-4, term
    for level, expected in case["random"].items():
        assert relative_error(result.random_param(level, "sd(_cons)").estimate, expected["sd"]) < 1e-3, level
    assert {g.level: g.groups for g in result.groups} == case["ngroups"]


@pytest.mark.parametrize("name", GLMM_CASES)
def test_reproduces_glmer(name):
    case = load_case(name)
    spec = ModelSpec.parse(case["stata"])
    assert (spec.family, spec.link, spec.nagq) == (case["family"], case["link"], case["nAGQ"])
    result = fit_mixed(load_data(case), spec)
    assert result.converged
    check_against_case(result, case)
    # the reference is tighter than lme4's default, whose PIRLS stops early
    assert result.loglik >= case["lme4_default_loglik"] - 1e-9


def test_cli_fit_and_json_match_the_seed_binary_case(tmp_path):
    case = load_case("glmm_seed_d5_logit_laplace")
    out = tmp_path / "fit.json"
    completed = subprocess.run(
        [sys.executable, "main.py", "fit", str(DATA / case["data"]), "--json", str(out),
         "--model", "melogit pass tutoring || dist_id: || school_id: || teach_id: || student_id:"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    report = completed.stdout
    assert "Mixed-effects logistic regression" in report
    assert "Integration method: laplace" in report
    assert "LR test vs. logistic model: chi2(4)" in report
    payload = json.loads(out.read_text())
    assert (payload["family"], payload["link"], payload["nagq"]) == ("binomial", "logit", 1)
    assert relative_error(payload["loglik"], case["loglik"]) < 1e-6
    rows = {row["term"]: row for row in payload["fixed"]}
    assert relative_error(rows["tutoring"]["coef"], case["fixed"]["tutoring"]["coef"]) < 1e-4
    assert relative_error(rows["_cons"]["se"], case["fixed"]["(Intercept)"]["se"]) < 5e-4
    variances = {row["level"]: row["estimate"] for row in payload["random_variances"]}
    for level, expected in case["random"].items():
        assert relative_error(variances[level], expected["var"]) < 2e-3
    assert payload["model"].startswith("melogit pass tutoring || dist_id:")


def test_odds_ratios_are_exponentiated_with_delta_method_ses():
    case = load_case("glmm_cbpp_agq12")
    result = fit_mixed(load_data(case), ModelSpec.parse("melogit sick i.period || herd:, intpoints(12) or"))
    for plain, ratio in zip(result.fixed, result.fixed_eform):
        assert ratio.coef == pytest.approx(np.exp(plain.coef), rel=1e-12)
        assert ratio.se == pytest.approx(np.exp(plain.coef) * plain.se, rel=1e-12)  # Stata's delta method
        assert ratio.ci == pytest.approx(list(np.exp(plain.ci)), rel=1e-12)
        assert ratio.p == plain.p
    expected = np.exp(case["fixed"]["period2"]["coef"])
    assert relative_error(result.coef("2.period").coef, case["fixed"]["period2"]["coef"]) < 1e-4
    assert relative_error(result.fixed_eform[0].coef, expected) < 1e-4


def test_latent_icc_and_lr_test_vs_glm():
    """ICC = var / (var + pi^2/3); the LR test compares with the plain logistic regression (statsmodels)."""
    import statsmodels.api as sm

    case = load_case("glmm_cbpp_laplace")
    frame = load_data(case)
    result = fit_mixed(frame, ModelSpec.parse(case["stata"]))
    variance = case["random"]["herd"]["var"]
    assert result.latent_icc[0].estimate == pytest.approx(variance / (variance + np.pi ** 2 / 3), rel=2e-3)
    design = sm.add_constant(np.column_stack([(frame.period == k).astype(float) for k in (2, 3, 4)]))
    glm = sm.GLM(frame.sick, design, family=sm.families.Binomial()).fit()
    assert result.lr_test.kind == "chibar2"
    assert result.lr_test.stat == pytest.approx(2 * (case["loglik"] - glm.llf), rel=1e-5)


def test_predictions_with_and_without_random_effects():
    case = load_case("glmm_cbpp_laplace")
    frame = load_data(case)
    result = fit_mixed(frame, ModelSpec.parse(case["stata"]))
    beta = {row.term: row.coef for row in result.fixed}
    eta_fixed = beta["_cons"] + sum(beta[f"{k}.period"] * (frame.period == k) for k in (2, 3, 4))
    assert np.allclose(result.fitted_fixed_only, 1 / (1 + np.exp(-eta_fixed)))
    effects = result.level_effects[0]
    herd_effect = dict(zip(effects.group_ids["herd"], effects.estimates[:, 0]))
    eta = eta_fixed + frame.herd.map(herd_effect)
    assert np.allclose(result.fitted, 1 / (1 + np.exp(-eta)))
    # the modes solve the penalised score equations: sum over a herd of (y - p) = b / sd^2
    sd = result.random[0].estimate
    scores = (frame.sick - result.fitted).groupby(frame.herd).sum()
    assert np.allclose(scores.to_numpy(), effects.estimates[:, 0] / sd ** 2, atol=1e-7)
    assert np.all(effects.std_errors > 0) and np.all(effects.std_errors < sd)


def test_lrtest_between_binary_models_uses_the_latent_icc():
    from engine.model_comparison import compare_models

    case = load_case("glmm_cbpp_laplace")
    comparison = compare_models(load_data(case), ["melogit sick || herd:", case["stata"]])
    (test,) = comparison.tests
    full = fit_mixed(load_data(case), ModelSpec.parse(case["stata"]))
    empty = fit_mixed(load_data(case), ModelSpec.parse("melogit sick || herd:"))
    assert test.df == 3 and test.stat == pytest.approx(2 * (full.loglik - empty.loglik), rel=1e-6)
    variance = case["random"]["herd"]["var"]
    icc = [row for row in comparison.intraclass if row.model == "B"][0]
    assert icc.estimate == pytest.approx(variance / (variance + np.pi ** 2 / 3), rel=2e-3)


def test_report_shows_odds_ratios_and_variance_components():
    from engine.report import format_fit_report

    case = load_case("glmm_cbpp_agq12")
    result = fit_mixed(load_data(case), ModelSpec.parse(case["stata"] + " or"))
    report = format_fit_report(result)
    assert "Integration method: mcaghermite" in report and "Integration pts.  =         12" in report
    assert "Odds Ratio" in report
    ratio = np.exp(case["fixed"]["period2"]["coef"])
    line = next(line for line in report.splitlines() if line.strip().startswith("2.period"))
    assert abs(float(line.split("|")[1].split()[0]) - ratio) < 1e-5
    variance_line = next(line for line in report.splitlines() if "var(_cons)" in line)
    assert abs(float(variance_line.split("|")[1].split()[0]) - case["random"]["herd"]["var"]) < 1e-5
    assert "LR test vs. logistic model: chibar2(01)" in report


@pytest.mark.parametrize("name", ["glmm_cbpp_laplace", "glmm_cbpp_agq12"])
def test_successes_out_of_trials_give_the_same_fit(name):
    """lme4's cbpp in its aggregated form (incidence of size per herd and period; Stata's
    binomial(size), lme4's cbind(incidence, size - incidence)): the same estimates, and a
    log-likelihood higher by sum(lchoose(size, incidence)) = 185.4757 (the reference's note)."""
    from scipy.special import gammaln

    case = load_case(name)
    frame = pd.read_csv(DATA / "cbpp_aggregated.csv")
    spec = ModelSpec.parse(case["stata"].replace("sick", "incidence") + " binomial(size)")
    assert spec.binomial == "size" and "binomial(size)" in spec.to_stata()
    result = fit_mixed(frame, spec)
    n, k = frame["size"].to_numpy(float), frame["incidence"].to_numpy(float)
    lchoose = float(np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))
    assert lchoose == pytest.approx(185.4757, abs=1e-4)
    shifted = dict(case, loglik=case["loglik"] + lchoose, ngroups=case["ngroups"])
    check_against_case(result, shifted)
    assert np.allclose(result.fitted + result.residuals, k)  # fitted are expected counts out of size
    glmer = ModelSpec.parse(f"glmer(cbind(incidence, size - incidence) ~ factor(period) + (1|herd), family = binomial, "
                            f"nAGQ = {case['nAGQ']})")
    assert glmer == spec
