"""Profile-likelihood intervals of the variance parameters (`fit --ci profile`).

References, computed with R 4.2 / lme4 1.1-31 (the script is in the test's docstring below):

* ``BRUTE``: an independent computation in R on lme4's own deviance function. The deviance with
  sigma not profiled (as lme4's ``devfun2``, plus ``ldRX2`` and n - p for REML), minimised over the
  other parameters with ``minqa::bobyqa`` (rhoend 1e-11) at each trial value, limits by ``uniroot``
  (tol 1e-11). Checked here to 1e-6 relative.
* ``LME4``: ``confint(fit, method = "profile")``. lme4 always profiles the ML deviance (its
  ``devfun2`` calls ``refitML`` first, so a REML fit gets the ML fit's intervals), and it reads the
  limits off a spline through about a dozen profile points per side; its limits are off by up to
  2e-4 relative on pastes, sleepstudy and hsb (checked to 5e-4), and by 3.5e-3 for the seed
  design's district sd (checked to 5e-3). Our REML profiles use the restricted likelihood of the
  fit, and are checked against ``BRUTE``.

R, for the record::

    dev <- function(pars) { sigma <- pars[np]; th <- lme4:::Sv_to_Cv(pars, n = vlist, s = sigma)
      .Call(lme4:::lmer_Deviance, pp$ptr(), resp$ptr(), th); s2 <- sigma^2
      d <- pp$ldL2() + (resp$wrss() + pp$sqrL(1)) / s2
      if (reml) d + pp$ldRX2() + (n - p) * log(2 * pi * s2) else d + n * log(2 * pi * s2) }
"""

import json

import pandas as pd
import pytest

import main
from engine.centering import Centering
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.mixed.profile import apply_profile_intervals, profile_limits
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA

PASTES = "strength || batch: || cask:"
SLEEP = "Reaction Days || Subject: Days, covariance(unstructured)"
HSB = "mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, covariance(unstructured)"

# (lower, upper) per parameter; None: the bound of the parameter space (sd 0, correlation -1 or 1).
BRUTE = {
    ("pastes", "REML"): {"batch:sd(_cons)": (0.0, 3.2865959329), "cask:sd(_cons)": (2.1579309241, 4.1000455372),
                         "Residual:sd(Residual)": (0.6520228892, 1.0854475586)},
    ("pastes", "ML"): {"batch:sd(_cons)": (0.0, 2.9465970821), "cask:sd(_cons)": (2.1579309241, 4.0538051177),
                       "Residual:sd(Residual)": (0.6520228892, 1.0854475586)},
    ("sleep", "REML"): {"Subject:sd(_cons)": (15.0320060366, 39.5161439482),
                        "Subject:corr(Days,_cons)": (-0.4983214779, 0.6657224092),
                        "Subject:sd(Days)": (3.9268130241, 9.1519042961),
                        "Residual:sd(Residual)": (22.8982565148, 28.8579992085)},
    ("sleep", "ML"): {"Subject:sd(_cons)": (14.3813845203, 37.7160549905),
                      "Subject:corr(Days,_cons)": (-0.4814925806, 0.6850189685),
                      "Subject:sd(Days)": (3.8011772844, 8.7533919870),
                      "Residual:sd(Residual)": (22.8982565148, 28.8579992085)},
    ("hsb", "REML"): {"school:sd(_cons)": (1.3223205738, 1.7975016449),
                      "school:corr(ses_c,_cons)": (-1.0, 1.0),
                      "school:sd(ses_c)": (0.0, 0.7733142122),
                      "Residual:sd(Residual)": (5.9599301717, 6.1624792502)},
}
LME4 = {  # confint(method = "profile") of the ML fits: .sig01, .sig02, ... and .sigma
    "pastes": {"cask:sd(_cons)": (2.1579337383, 4.053588799), "batch:sd(_cons)": (0.0, 2.946591263),
               "Residual:sd(Residual)": (0.6520233563, 1.085448090)},
    "sleep": {"Subject:sd(_cons)": (14.3814811165, 37.716018740), "Subject:corr(Days,_cons)": (-0.4815004432, 0.684986139),
              "Subject:sd(Days)": (3.8011647624, 8.753366659), "Residual:sd(Residual)": (22.8982662150, 28.857997323)},
    "hsb": {"school:sd(_cons)": (1.3050216819, 1.7726462948), "school:corr(ses_c,_cons)": (-1.0, 1.0),
            "school:sd(ses_c)": (0.0, 0.7386084309), "Residual:sd(Residual)": (5.9599353636, 6.1624598895)},
}


def _fit(name: str, method: str):
    if name == "pastes":
        frame, spec = pd.read_csv(DATA / "pastes.csv"), ModelSpec.parse(PASTES, method=method)
    elif name == "sleep":
        frame, spec = pd.read_csv(DATA / "sleepstudy.csv"), ModelSpec.parse(SLEEP, method=method)
    else:
        frame, spec = pd.read_csv(DATA / "hsb.csv"), ModelSpec.parse(HSB, method=method)
        spec.centering = [Centering.parse_center_option("ses_c=ses:group:school")]
    return frame, fit_mixed(frame, spec)


def _close(value: float, expected: float, tolerance: float) -> bool:
    return abs(value - expected) <= tolerance * max(abs(expected), 1e-300) if expected else value == 0.0


@pytest.mark.parametrize("name, method", list(BRUTE))
def test_limits_match_independent_root_finding(name, method):
    frame, result = _fit(name, method)
    limits = {limit.parameter.label: limit for limit in profile_limits(frame, result)}
    assert set(limits) == set(BRUTE[name, method])
    for label, (lower, upper) in BRUTE[name, method].items():
        limit = limits[label]
        assert _close(limit.lower, lower, 1e-6), (label, limit.lower, lower)
        assert _close(limit.upper, upper, 1e-6), (label, limit.upper, upper)
        assert limit.lower <= limit.estimate <= limit.upper
        # Limits at 0 (an sd) or +-1 (a correlation) are the parameter space's bounds, not crossings.
        assert limit.lower_at_bound == (lower in (0.0, -1.0))
        assert limit.upper_at_bound == (upper == 1.0)


@pytest.mark.parametrize("name", ["pastes", "sleep"])
def test_ml_limits_match_lme4_confint(name):
    frame, result = _fit(name, "ML")
    limits = {limit.parameter.label: limit for limit in profile_limits(frame, result)}
    for label, (lower, upper) in LME4[name].items():
        assert _close(limits[label].lower, lower, 5e-4), (label, limits[label].lower, lower)
        assert _close(limits[label].upper, upper, 5e-4), (label, limits[label].upper, upper)


HSB_ML_BRUTE = {"school:sd(_cons)": (1.3050111983, 1.7726493660), "school:corr(ses_c,_cons)": (-1.0, 1.0),
                "school:sd(ses_c)": (0.0, 0.7387443978), "Residual:sd(Residual)": (5.9599353388, 6.1624638056)}


def test_random_slope_ml_limits_match_lme4_confint():
    """lme4's profile of this fit warns a lot, but its limits agree with the direct computation:
    the slope's sd reaches 0 and its correlation +-1 without leaving the 95% region."""
    frame, result = _fit("hsb", "ML")
    limits = {limit.parameter.label: limit for limit in profile_limits(frame, result)}
    for label, (lower, upper) in HSB_ML_BRUTE.items():
        assert _close(limits[label].lower, lower, 1e-6) and _close(limits[label].upper, upper, 1e-6), label
    for label, (lower, upper) in LME4["hsb"].items():
        assert _close(limits[label].lower, lower, 5e-4), (label, limits[label].lower, lower)
        assert _close(limits[label].upper, upper, 5e-4), (label, limits[label].upper, upper)


def test_rows_take_the_profile_intervals_and_say_so():
    frame, result = _fit("sleep", "REML")
    wald = {row.param: list(row.ci) for row in result.random}
    apply_profile_intervals(result, frame)
    assert result.ci_method == "profile"
    expected = BRUTE["sleep", "REML"]
    for row in result.random:
        assert row.ci_method == "profile"
        lower, upper = expected[f"{row.level}:{row.param}"]
        assert _close(row.ci[0], lower, 1e-6) and _close(row.ci[1], upper, 1e-6)
        assert row.ci != wald[row.param]
    variances = {row.param: row for row in result.random_variances}
    lower, upper = expected["Subject:sd(Days)"]
    assert _close(variances["var(Days)"].ci[0], lower ** 2, 1e-6)
    assert _close(variances["var(Days)"].ci[1], upper ** 2, 1e-6)
    assert variances["var(Days)"].ci_method == "profile"
    # The covariance is not profiled: it keeps its Wald interval, and its row says so.
    assert variances["cov(Days,_cons)"].ci_method == "wald"
    assert all(row.ci_method == "wald" for row in result.fixed)


def test_cli_profile_report_and_json(capsys):
    args = ["fit", str(DATA / "pastes.csv"), "--model", PASTES, "--ml", "--ci", "profile", "--json", "-"]
    assert main.main(args) == 0
    out = capsys.readouterr().out
    assert "95% intervals: profile likelihood." in out
    payload = json.loads(out[out.index("\n{") + 1:])
    assert payload["ci_method"] == "profile"
    rows = {f"{row['level']}:{row['param']}": row for row in payload["random"]}
    for label, (lower, upper) in BRUTE["pastes", "ML"].items():
        assert rows[label]["ci_method"] == "profile"
        assert _close(rows[label]["ci"][0], lower, 1e-6) and _close(rows[label]["ci"][1], upper, 1e-6)


def test_cli_default_stays_wald(capsys):
    assert main.main(["fit", str(DATA / "pastes.csv"), "--model", PASTES, "--json", "-", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ci_method"] == "wald"
    assert all(row["ci_method"] == "wald" for row in payload["random"] + payload["fixed"])


@pytest.mark.parametrize("extra, message", [
    (["--reps", "50"], "--reps applies only to --ci bootstrap (--ci is wald)"),
    (["--ci", "profile", "--seed", "3"], "--seed applies only to --ci bootstrap (--ci is profile)"),
    (["--reps", "50", "--seed", "3"], "--reps and --seed apply only to --ci bootstrap (--ci is wald)"),
])
def test_bootstrap_options_need_ci_bootstrap(extra, message, capsys):
    assert main.main(["fit", str(DATA / "pastes.csv"), "--model", PASTES, *extra]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_profile_refuses_other_estimators():
    frame, result = _fit("pastes", "ML")
    result.estimator = "ols"
    with pytest.raises(UserInputError, match="profile-likelihood intervals need a mixed-model fit, not 'ols'"):
        profile_limits(frame, result)


def test_large_sample_profile_is_near_wald_and_unidentified_levels_are_skipped():
    """8,000 rows: the residual sd's profile is nearly quadratic on the log scale, so its interval
    is the Wald one to well under 1%. Levels typed in reversed order share their groups: their
    variances are not identified, and they get no interval."""
    frame = pd.read_csv(DATA / "seed_d5.csv")
    spec = ModelSpec.parse("perform tutoring || dist_id: || school_id: || student_id: || teach_id:", method="REML")
    result = fit_mixed(frame, spec)
    wald = list(result.random_param("Residual", "sd(Residual)").ci)
    limits = {limit.parameter.label: limit for limit in apply_profile_intervals(result, frame)}
    assert set(limits) == {"dist_id:sd(_cons)", "school_id:sd(_cons)", "Residual:sd(Residual)"}
    profile = result.random_param("Residual", "sd(Residual)").ci
    assert profile == pytest.approx(wald, rel=2e-3) and profile != wald
    for level in ("student_id", "teach_id"):
        row = result.random_param(level, "sd(_cons)")
        assert row.ci is None and row.ci_method == "wald"
    # Five districts: the district sd's profile reaches zero.
    assert limits["dist_id:sd(_cons)"].lower == 0.0 and limits["dist_id:sd(_cons)"].lower_at_bound


def test_shared_sd_of_an_identity_level_profiles_over_sigma_alone():
    """covariance(identity): one sd shared by the intercept and the slope. With sigma the only
    other parameter, the profile at each limit is a one-dimensional minimisation, done here
    directly on the engine's criterion: it must sit exactly at the chi2(1) cut-off."""
    import numpy as np
    from scipy import optimize, stats

    from engine.mixed.criterion import LOG_2PI
    from engine.mixed.profile import criterion_of

    frame = pd.read_csv(DATA / "sleepstudy.csv")
    result = fit_mixed(frame, ModelSpec.parse("Reaction Days || Subject: Days, covariance(identity)", method="ML"))
    limits = {limit.parameter.label: limit for limit in profile_limits(frame, result)}
    shared = limits["Subject:sd(Days _cons)"]
    criterion = criterion_of(frame, result.spec)

    def deviance(sd, sigma):
        evaluation = criterion.evaluate(np.array([sd / sigma]), gradient=False)
        return evaluation.logdet_v + criterion.n * (LOG_2PI + 2 * np.log(sigma)) + evaluation.r2 / sigma ** 2

    def profile(sd):
        return optimize.minimize_scalar(lambda log_sigma: deviance(sd, np.exp(log_sigma)),
                                        bracket=(2.5, 3.5), tol=1e-12).fun

    d_min = -2 * result.loglik
    assert profile(shared.estimate) == pytest.approx(d_min, abs=1e-7)
    for limit in (shared.lower, shared.upper):
        assert profile(limit) - d_min == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)
    assert shared.lower < shared.estimate < shared.upper


def test_variance_report_names_the_rows_that_keep_wald_intervals(capsys):
    args = ["fit", str(DATA / "sleepstudy.csv"), "--model", SLEEP, "--reml", "--ci", "profile", "--variance"]
    assert main.main(args) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "95% intervals: profile likelihood; cov(Days,_cons): Wald." in text


SEED_ML_BRUTE = {"dist_id:sd(_cons)": (0.0, 3.0825210721), "school_id:sd(_cons)": (1.7884884059, 3.9909227661),
                 "teach_id:sd(_cons)": (3.4047315078, 4.3357973335),
                 "student_id:sd(_cons)": (4.9431921599, 5.3609688019),
                 "Residual:sd(Residual)": (5.8650086742, 6.1277874984)}
SEED_ML_LME4 = {"dist_id:sd(_cons)": (0.0, 3.093200076), "school_id:sd(_cons)": (1.790025334, 3.99083301),
                "teach_id:sd(_cons)": (3.40473972, 4.335770266), "student_id:sd(_cons)": (4.943194268, 5.360967755),
                "Residual:sd(Residual)": (5.865008718, 6.127787479)}


def test_four_levels_match_direct_root_finding_and_lme4_within_its_spline_error():
    """The seed's design by ML. With 5 districts the district sd's profile is very skewed and
    lme4's spline puts its upper limit 0.35% too high: lme4's own deviance rises by 3.864 there,
    by 3.8415 at ours (checked in R with devfun2 and bobyqa)."""
    frame = pd.read_csv(DATA / "seed_d5.csv")
    spec = ModelSpec.parse("perform tutoring || dist_id: || school_id: || teach_id: || student_id:", method="ML")
    result = fit_mixed(frame, spec)
    limits = {limit.parameter.label: limit for limit in profile_limits(frame, result)}
    for label, (lower, upper) in SEED_ML_BRUTE.items():
        assert _close(limits[label].lower, lower, 1e-6) and _close(limits[label].upper, upper, 1e-6), label
    for label, (lower, upper) in SEED_ML_LME4.items():
        assert _close(limits[label].lower, lower, 5e-3) and _close(limits[label].upper, upper, 5e-3), label


def test_crossed_factors_profile_limits_match_lme4_confint():
    """Penicillin, plates crossed with samples, by ML: the profile runs on the crossed criterion (it
    used to rebuild a nested one and stop with a traceback). lme4's confint(method = "profile")
    (lme4 1.1-31, oldNames = FALSE), checked to 5e-4 as the nested cases above."""
    lme4 = {"plate:sd(_cons)": (0.6335659660, 1.1821039851), "sample:sd(_cons)": (1.0957893965, 3.5562917781),
            "Residual:sd(Residual)": (0.4858454001, 0.6294534786)}
    frame = pd.read_csv(DATA / "penicillin.csv")
    result = fit_mixed(frame, ModelSpec.parse("diameter || _all: R.plate || _all: R.sample", method="ML"))
    limits = {limit.parameter.label: limit for limit in profile_limits(frame, result)}
    assert set(limits) == set(lme4)
    for label, (lower, upper) in lme4.items():
        assert _close(limits[label].lower, lower, 5e-4) and _close(limits[label].upper, upper, 5e-4), label
