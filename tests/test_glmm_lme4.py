"""Probit and Poisson GLMMs against glmer (lme4 1.1-31), numbers carried as literals.

R: glmer(..., control = glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12),
tolPwrss = 1e-13)), refitted from its optimum until stable; SEs from numDeriv's Richardson Hessian
of lme4's deviance function in (theta, beta). Data: tests/data/cbpp_long.csv, seed_d5_binary.csv,
absences.csv (simulated counts: 20 schools x 6 classes x 5-10 students, days at risk as exposure) and
binary_slope.csv (simulated: 40 schools x 25 students, random intercept sd 0.8 and slope sd 0.5 on x).
tests/r/glmm_lme4_literals.R has the R code.
"""

import numpy as np
import pytest
from scipy.special import gammaln, xlogy

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, relative_error

import pandas as pd

GLMER = {
    "cbpp_probit_laplace": dict(
        data="cbpp_long.csv", model="meprobit sick i.period || herd:", loglik=-278.096883056946,
        fixed={"_cons": (-0.835477453949, 0.126237767671), "2.period": (-0.528034141214, 0.160605207652),
               "3.period": (-0.616886995355, 0.169478852818), "4.period": (-0.799563776574, 0.204699157402)},
        sd={"herd": 0.337991883881}),
    "cbpp_probit_agq9": dict(
        data="cbpp_long.csv", model="meprobit sick i.period || herd:, intpoints(9)", loglik=-278.042954518141,
        fixed={"_cons": (-0.832014459029, 0.126174379482), "2.period": (-0.526279068759, 0.160257016333),
               "3.period": (-0.614781159447, 0.169148390565), "4.period": (-0.797531824638, 0.204438438638)},
        sd={"herd": 0.339648085673}),
    "seed_probit_2level": dict(  # glmer(pass ~ tutoring + (1|school_id) + (1|school_id:teach_id), binomial("probit"))
        data="seed_d5_binary.csv", model="meprobit pass tutoring || school_id: || teach_id:",
        loglik=-4954.024239048298,
        fixed={"_cons": (-0.261090482350, 0.081854788490), "tutoring": (0.267931097730, 0.037628763541)},
        sd={"school_id": 0.366881404710, "teach_id": 0.452188287305}),
    "absences_poisson_laplace": dict(  # absences ~ x + offset(log(days)) + (1|school) + (1|school:class)
        data="absences.csv", model="mepoisson absences x || school: || class:, exposure(days)",
        loglik=-2375.029428082125,
        fixed={"_cons": (-2.687026543465, 0.112893192123), "x": (0.327458314950, 0.011466200874)},
        sd={"school": 0.486684526331, "class": 0.296967027122}),
    "absences_poisson_agq10": dict(
        data="absences.csv", model="mepoisson absences x || school:, exposure(days) intpoints(10)",
        loglik=None,  # lme4's logLik with nAGQ > 1 drops a constant for Poisson; see the test below
        fixed={"_cons": (-2.644058508143, 0.114199271320), "x": (0.326857885247, 0.010819279066)},
        sd={"school": 0.507785544745}),
    "binary_slope_independent": dict(  # y ~ x + (1|school) + (0 + x|school), binomial; simulated (tests/data)
        data="binary_slope.csv", model="melogit y x || school: x", loglik=-622.769436659965,
        fixed={"_cons": (0.002895095812, 0.138636815564), "x": (0.797512373898, 0.112069623320)},
        sd={"school": 0.747304071847}, slope_sd={"x": 0.441184347358}),
    "binary_slope_unstructured": dict(  # y ~ x + (1 + x|school), binomial
        data="binary_slope.csv", model="melogit y x || school: x, covariance(unstructured)",
        loglik=-622.083958444265,
        fixed={"_cons": (-0.016984243043, 0.140979971596), "x": (0.796653465226, 0.112774272970)},
        sd={"school": 0.756338773799}, slope_sd={"x": 0.447994248295}, corr=-0.335443223029),
    "binary_slope_probit": dict(  # y ~ x + (1 + x|school), binomial(link = "probit")
        data="binary_slope.csv", model="meprobit y x || school: x, covariance(unstructured)",
        loglik=-622.563285367605,
        fixed={"_cons": (-0.010490058176, 0.084999231588), "x": (0.482131975571, 0.066741911221)},
        sd={"school": 0.456334860292}, slope_sd={"x": 0.267410281654}, corr=-0.353787333468),
    "absences_poisson_class_slope": dict(  # + (1|school) + (1|school:class) + (0 + x|school:class), poisson
        data="absences.csv", model="mepoisson absences x || school: || class: x, exposure(days)",
        loglik=-2374.837717415567,
        fixed={"_cons": (-2.687175066820, 0.112872614685), "x": (0.327261120766, 0.012105108883)},
        sd={"school": 0.486616597576, "class": 0.296441196870}, slope_sd={"x": 0.031938838095},
        slope_level="class"),
}
LME4_POISSON_AGQ10_LOGLIK = -864.409182624473  # as logLik() printed it


def fit(name):
    case = GLMER[name]
    frame = pd.read_csv(DATA / case["data"])
    return case, frame, fit_mixed(frame, ModelSpec.parse(case["model"]))


@pytest.mark.parametrize("name", sorted(GLMER))
def test_matches_glmer(name):
    case, _, result = fit(name)
    assert result.converged
    if case["loglik"] is not None:
        assert result.loglik >= case["loglik"] - 1e-6 * abs(case["loglik"])
        assert relative_error(result.loglik, case["loglik"]) < 1e-6
    for term, (coef, se) in case["fixed"].items():
        assert relative_error(result.coef(term).coef, coef) < 1e-4, term
        assert relative_error(result.coef(term).se, se) < 5e-4, term
    for level, sd in case["sd"].items():
        assert relative_error(result.random_param(level, "sd(_cons)").estimate, sd) < 1e-3, level
    for term, sd in case.get("slope_sd", {}).items():
        level = case.get("slope_level", "school")
        assert relative_error(result.random_param(level, f"sd({term})").estimate, sd) < 1e-3, term
    if "corr" in case:
        assert abs(result.random_param("school", "corr(x,_cons)").estimate - case["corr"]) < 1e-3


def test_poisson_quadrature_loglik_is_the_full_one():
    """lme4's nAGQ > 1 Poisson logLik omits the saturated model's terms sum(y log y - y - log y!);
    the engine reports the full log-likelihood, as Stata (and as lme4 does for nAGQ = 1)."""
    _, frame, result = fit("absences_poisson_agq10")
    y = frame.absences.to_numpy(float)
    saturated = float(np.sum(xlogy(y, y) - y - gammaln(y + 1)))
    assert relative_error(result.loglik, LME4_POISSON_AGQ10_LOGLIK + saturated) < 1e-6


def test_incidence_rate_ratios_and_exposure_offset():
    case, frame, result = fit("absences_poisson_laplace")
    plain = result.coef("x")
    irr = ModelSpec.parse(case["model"] + " irr")
    assert irr.eform
    with_irr = fit_mixed(frame, irr)
    assert with_irr.fixed_eform[0].term == "x"
    assert with_irr.fixed_eform[0].coef == pytest.approx(np.exp(plain.coef), rel=1e-6)
    # exposure(days) is offset(ln days): the same fit as an explicit offset column
    frame = frame.assign(log_days=np.log(frame.days))
    offset = fit_mixed(frame, ModelSpec.parse("mepoisson absences x || school: || class:, offset(log_days)"))
    assert offset.loglik == pytest.approx(result.loglik, rel=1e-9)
    assert result.latent_icc == []  # no latent-scale ICC for counts
