"""ICC (Stata's estat icc), R² (performance::r2_nakagawa) and HLM's reliabilities of every mixed fit."""

import math

import numpy as np
import pandas as pd
import pytest

from engine.centering import Centering
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.report import format_fit_report
from engine.results import FitResult
from tests.reference_cases import DATA, load_case

SEED_MODEL = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:"
SEED_LEVELS = ["dist_id", "school_id", "teach_id", "student_id"]

# R 4.2, lme4 1.1-31 (bobyqa to rhoend 1e-12), performance 0.10.2 / insight 0.19.0: r2_nakagawa(m)
R2_SEED_REML = {"marginal": 0.00500882121173976, "conditional": 0.58206202933264195}
# lmer(mathach ~ ses + sector + (ses | school), REML = FALSE): Johnson's extension, ses not centred
R2_HSB_SLOPE_ML = {"marginal": 0.127184672720351, "conditional": 0.215633230059446}
# lmer(mathach ~ meanses*ses_c + sector*ses_c + (ses_c | school), REML = TRUE), ses_c centred at school means
R2_HSB_SLOPES_REML = {"marginal": 0.179574448281757, "conditional": 0.230371950914622}


@pytest.fixture(scope="module")
def seed():
    return pd.read_csv(DATA / "seed_d5.csv")


@pytest.fixture(scope="module")
def hsb():
    return pd.read_csv(DATA / "hsb.csv")


@pytest.fixture(scope="module")
def seed_fit(seed):
    return fit_mixed(seed, ModelSpec.parse(SEED_MODEL, method="REML"))


def _icc_from_log_sds(log_sds, depth):
    variances = np.exp(2 * np.asarray(log_sds))
    return variances[: depth + 1].sum() / variances.sum()


def test_icc_of_the_seed_model_follows_statas_definitions(seed_fit):
    variances = [seed_fit.random_variances[i].estimate for i in range(5)]
    assert [row.param for row in seed_fit.random_variances] == ["var(_cons)"] * 4 + ["var(Residual)"]
    total = sum(variances)
    link = seed_fit.link_covariance
    assert link.params == [f"{name}:sd(_cons)" for name in SEED_LEVELS] + ["Residual:sd(Residual)"]
    cov = np.asarray(link.cov)
    log_sds = 0.5 * np.log(variances)
    assert [row.label for row in seed_fit.icc] == ["dist_id", "school_id|dist_id", "teach_id|school_id|dist_id",
                                                   "student_id|teach_id|school_id|dist_id"]
    for depth, row in enumerate(seed_fit.icc):
        assert row.level == SEED_LEVELS[depth]
        assert row.icc == pytest.approx(sum(variances[: depth + 1]) / total, rel=1e-12)
        # delta method with a numerical gradient in the log sds (Stata's estimation metric)
        step = 1e-6
        gradient = np.array([(_icc_from_log_sds(log_sds + step * e, depth) - _icc_from_log_sds(log_sds - step * e, depth))
                             / (2 * step) for e in np.eye(5)])
        assert row.se == pytest.approx(math.sqrt(gradient @ cov @ gradient), rel=1e-6)
        logit, half = math.log(row.icc / (1 - row.icc)), 1.959963984540054 * row.se / (row.icc * (1 - row.icc))
        assert row.ci == pytest.approx([1 / (1 + math.exp(-(logit - half))), 1 / (1 + math.exp(-(logit + half)))],
                                       rel=1e-9)
    # and from lme4's variances (the reference fit) to the tolerance of the sds
    case = load_case("seed_d5_nested4_reml")
    lme4 = [case["random"][key]["var"] for key in SEED_LEVELS + ["Residual"]]
    assert seed_fit.icc[2].icc == pytest.approx(sum(lme4[:3]) / sum(lme4), rel=2e-3)


def test_r2_of_the_seed_model_matches_performance(seed_fit):
    assert seed_fit.r2["marginal"] == pytest.approx(R2_SEED_REML["marginal"], rel=1e-5)
    assert seed_fit.r2["conditional"] == pytest.approx(R2_SEED_REML["conditional"], rel=1e-5)


def test_r2_with_a_random_slope_uses_johnsons_extension(hsb):
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses sector || school: ses, covariance(unstructured)", method="ML"))
    assert fit.r2["marginal"] == pytest.approx(R2_HSB_SLOPE_ML["marginal"], rel=1e-5)
    assert fit.r2["conditional"] == pytest.approx(R2_HSB_SLOPE_ML["conditional"], rel=1e-5)
    spec = ModelSpec.parse("mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, covariance(unstructured)",
                           method="REML")
    spec.centering = [Centering.parse_center_option("ses_c=ses:group:school")]
    fit = fit_mixed(hsb, spec)
    assert fit.r2 == pytest.approx(R2_HSB_SLOPES_REML, rel=1e-5)


def test_icc_of_a_random_slope_model_is_at_covariates_zero_with_a_note(hsb):
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses || school: ses, covariance(unstructured)", method="REML"))
    rows = {row.param: row.estimate for row in fit.random_variances}
    (icc,) = fit.icc
    assert icc.icc == pytest.approx(rows["var(_cons)"] / (rows["var(_cons)"] + rows["var(Residual)"]), rel=1e-12)
    assert any("conditional on zero values of random-effects covariates" in note for note in fit.notes)
    # the slope's sd and the correlation do not move the ICC: only sd(_cons) and sd(Residual) enter the SE
    link = fit.link_covariance
    cov = np.asarray(link.cov)
    i, r = link.params.index("school:sd(_cons)"), link.params.index("Residual:sd(Residual)")
    v0, ve = rows["var(_cons)"], rows["var(Residual)"]
    gradient = np.array([2 * v0 * ve, -2 * v0 * ve]) / (v0 + ve) ** 2
    sub = cov[np.ix_([i, r], [i, r])]
    assert icc.se == pytest.approx(math.sqrt(gradient @ sub @ gradient), rel=1e-10)


def test_reliability_of_two_levels_is_hlms_and_raudenbush_bryks(hsb):
    null = fit_mixed(hsb, ModelSpec.parse("mathach || school:", method="REML"))
    tau = null.random_variances[0].estimate
    sigma2 = null.random_variances[1].estimate
    sizes = hsb.groupby("school").size().to_numpy()
    (reliability,) = null.reliability
    assert reliability.level == "school" and reliability.groups == 160
    assert reliability.reliability == pytest.approx(np.mean(tau / (tau + sigma2 / sizes)), rel=1e-12)
    # Raudenbush & Bryk (2002), Tables 4.2 and 4.3, as HLM prints them
    assert round(reliability.reliability, 3) == 0.901
    means = fit_mixed(hsb, ModelSpec.parse("mathach meanses || school:", method="REML"))
    assert round(means.reliability[0].reliability, 3) == 0.740


def test_reliability_of_three_levels_is_the_precision_of_each_groups_gls_mean(seed):
    data = seed[seed["dist_id"] == 1]
    fit = fit_mixed(data, ModelSpec.parse("perform || school_id: || teach_id: || student_id:", method="REML"))
    tau_school, tau_teacher, tau_student, sigma2 = (row.estimate for row in fit.random_variances)
    by_level = {row.level: row.reliability for row in fit.reliability}
    school_values, teacher_values = [], []
    for _, rows in data.groupby("school_id"):
        # covariance of a school's rows without the school's own effect, built densely
        teacher = rows["teach_id"].to_numpy()
        student = rows["student_id"].to_numpy()
        v = (tau_teacher * (teacher[:, None] == teacher[None, :])
             + tau_student * ((student[:, None] == student[None, :]) & (teacher[:, None] == teacher[None, :]))
             + sigma2 * np.eye(len(rows)))
        ones = np.ones(len(rows))
        school_values.append(tau_school / (tau_school + 1 / (ones @ np.linalg.solve(v, ones))))
        for _, in_class in rows.groupby("teach_id"):
            s = in_class["student_id"].to_numpy()
            w = tau_student * (s[:, None] == s[None, :]) + sigma2 * np.eye(len(s))
            one = np.ones(len(s))
            teacher_values.append(tau_teacher / (tau_teacher + 1 / (one @ np.linalg.solve(w, one))))
    assert by_level["school_id"] == pytest.approx(np.mean(school_values), rel=1e-10)
    assert by_level["teach_id"] == pytest.approx(np.mean(teacher_values), rel=1e-10)
    students = data.groupby(["school_id", "teach_id", "student_id"]).size().to_numpy()
    assert by_level["student_id"] == pytest.approx(np.mean(tau_student / (tau_student + sigma2 / students)), rel=1e-12)


def test_icc_and_r2_are_in_the_json_and_the_report(seed_fit):
    data = seed_fit.to_dict()
    assert [row["level"] for row in data["icc"]] == SEED_LEVELS
    assert set(data["icc"][0]) == {"level", "label", "icc", "se", "ci"}
    assert data["r2"] == seed_fit.r2 and set(data["r2"]) == {"marginal", "conditional"}
    again = FitResult.from_dict(data)
    assert again.icc == seed_fit.icc and again.reliability == seed_fit.reliability
    report = format_fit_report(seed_fit)
    assert "Intraclass correlation" in report
    assert f"student_id|teach_id|school_id|dist_id |   {seed_fit.icc[3].icc:.6f}" in report
    assert f"marginal = {R2_SEED_REML['marginal']:.4f}  conditional = {R2_SEED_REML['conditional']:.4f}" in report


def test_levels_with_the_same_groups_share_their_icc(seed):
    """The order the seed typed (student first): every level has the same 4,000 groups, so two
    observations sharing a student share the teacher, school and district level too."""
    fit = fit_mixed(seed, ModelSpec.parse("perform tutoring || student_id: || teach_id: || school_id: || dist_id:"))
    variances = [row.estimate for row in fit.random_variances]
    expected = sum(variances[:4]) / sum(variances)
    assert [row.icc for row in fit.icc] == pytest.approx([expected] * 4, rel=1e-12)
    one_level = fit_mixed(seed, ModelSpec.parse("perform tutoring || student_id:"))
    assert fit.icc[0].icc == pytest.approx(one_level.icc[0].icc, rel=1e-4)  # the identified quantity
    # the four variances have no standard errors (not separately identified), so neither has the ICC
    assert fit.link_covariance.params == ["Residual:sd(Residual)"]
    assert all(row.se is None and row.ci is None for row in fit.icc)
