"""Binary and count GLMMs of kinds the other tests do not cover, against glmer (lme4 1.1-31).

Data: tests/data/unseen_*.csv, simulated by tests/r/glmm_unseen_data.R (a correlated random slope
with unbalanced groups of 3 to 40 rows, all-0 groups, a letter-coded factor and an interaction;
classes in schools with a probit link and, for y0, a class variance of zero; counts in units in
sites in regions with an exposure; successes out of 1 to 20 trials). The glmer fits are
tests/r/glmm_unseen_literals.R: bobyqa to 1e-12, PIRLS to 1e-13, refitted from the optimum; SEs
from numDeriv's Richardson Hessian of lme4's deviance in (theta, beta), a theta at zero held there
(as Stata); with nAGQ > 1 lme4's logLik leaves out the saturated model's log-likelihood for Poisson
and for trials, which the script adds back; loglik_glm is the single-level glm's. Each case's
comment is its glmer formula (its family is in ``glmer``). Tolerances: log-likelihood 1e-6
relative, coefficients and SEs 1e-4, sds 1e-3, correlations 1e-3 absolute.
tests/r/glmm_unseen_compare.py runs the same comparison through `main.py fit --json`.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from engine.glmm.family import Family
from engine.glmm.general import NestedGeneralModes
from engine.mixed import fit_mixed
from engine.mixed.covariance import LevelCovariance
from engine.mixed.hierarchy import build_hierarchy
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, relative_error

ROOT = Path(__file__).resolve().parents[1]

GLMER = {
    "slope_corr": dict(  # y ~ x + (1 + x | g)
        data="unseen_logit_slope.csv", model="melogit y x || g: x, covariance(unstructured)",
        glmer="glmer(y ~ x + (1 + x | g), family = binomial)",
        loglik=-704.068400506851, loglik_glm=-831.065534188153,
        fixed={"_cons": (-0.0944322100108, 0.194353460087), "x": (1.01266454934, 0.145377083623)},
        sd={"g:_cons": 1.34361894446, "g:x": 0.816623708911},
        corr={"g:x,_cons": 0.638356805466}),
    "slope_uncorr": dict(  # y ~ x + (1 + x || g)
        data="unseen_logit_slope.csv", model="melogit y x || g: x",
        glmer="glmer(y ~ x + (1 + x || g), family = binomial)",
        loglik=-709.47521887317, loglik_glm=-831.065534188153,
        fixed={"_cons": (-0.155198150538, 0.192411218001), "x": (1.03793468709, 0.144145570108)},
        sd={"g:_cons": 1.33459216935, "g:x": 0.789977904202}),
    "slope_factor_interaction": dict(  # y ~ x * f + (1 + x | g)
        data="unseen_logit_slope.csv", model="melogit y c.x##i.f || g: x, covariance(unstructured)",
        glmer="glmer(y ~ x * factor(f) + (1 + x | g), family = binomial)",
        loglik=-690.594285690561, loglik_glm=-823.257173908305,
        fixed={"_cons": (-0.181079004324, 0.2158906471), "x": (1.05646839055, 0.171476704779),
               "b.f": (0.537748995975, 0.167883134293), "c.f": (-0.481319999439, 0.197132594641),
               "c.x#b.f": (-0.163510258508, 0.189939174793), "c.x#c.f": (0.153953103001, 0.224531999783)},
        sd={"g:_cons": 1.40663966898, "g:x": 0.838172907376},
        corr={"g:x,_cons": 0.609685622502}),
    "slope_probit": dict(  # y ~ x + f + (1 + x | g)
        data="unseen_logit_slope.csv", model="meprobit y x i.f || g: x, covariance(unstructured)",
        glmer="glmer(y ~ x + factor(f) + (1 + x | g), family = binomial(link = \"probit\"))",
        loglik=-691.665086559122, loglik_glm=-825.333923909183,
        fixed={"_cons": (-0.109748414772, 0.127557814915), "x": (0.610958978016, 0.0856857141298),
               "b.f": (0.319511779902, 0.0993542407515), "c.f": (-0.283411453351, 0.115517579932)},
        sd={"g:_cons": 0.831853477353, "g:x": 0.485986345093},
        corr={"g:x,_cons": 0.634437773417}),
    "slope3": dict(  # y3 ~ x + w + (1 + x + w | g)
        data="unseen_logit_slope.csv", model="melogit y3 x w || g: x w, covariance(unstructured)",
        glmer="glmer(y3 ~ x + w + (1 + x + w | g), family = binomial)",
        loglik=-795.92580923221, loglik_glm=-846.413222759868,
        fixed={"_cons": (0.162555520516, 0.128443118874), "x": (0.609915150847, 0.0971774658143),
               "w": (-0.472486505321, 0.0948368644886)},
        sd={"g:_cons": 0.804331457063, "g:x": 0.431614689832, "g:w": 0.445053500604},
        corr={"g:x,_cons": -0.180837479798, "g:w,_cons": 0.235541609844, "g:w,x": -0.564033383662}),
    "probit_nested": dict(  # y ~ x + z + (1 | school/class)
        data="unseen_probit_nested.csv", model="meprobit y x z || school: || class:",
        glmer="glmer(y ~ x + z + (1 | school/class), family = binomial(link = \"probit\"))",
        loglik=-941.583956456953, loglik_glm=-997.790197093111,
        fixed={"_cons": (-0.235393700878, 0.10247207483), "x": (0.495266544309, 0.038045145394),
               "z": (-0.248041792254, 0.0800641571968)},
        sd={"class:_cons": 0.301298942154, "school:_cons": 0.484334543563}),
    "logit_nested": dict(  # y ~ x + z + (1 | school/class)
        data="unseen_probit_nested.csv", model="melogit y x z || school: || class:",
        glmer="glmer(y ~ x + z + (1 | school/class), family = binomial)",
        loglik=-941.889360156642, loglik_glm=-997.930588886709,
        fixed={"_cons": (-0.389884445426, 0.171236481118), "x": (0.821672966308, 0.0652404943648),
               "z": (-0.416773117137, 0.134291659411)},
        sd={"class:_cons": 0.50892549719, "school:_cons": 0.806827197699}),
    "probit_nested_boundary": dict(  # y0 ~ x + z + (1 | school/class)
        data="unseen_probit_nested.csv", model="meprobit y0 x z || school: || class:",
        glmer="glmer(y0 ~ x + z + (1 | school/class), family = binomial(link = \"probit\"))",
        loglik=-921.202328435841, loglik_glm=-1006.09698139395,
        fixed={"_cons": (0.144704303239, 0.118236500577), "x": (0.529258465337, 0.0379081600556),
               "z": (0.126286831942, 0.0909570444669)},
        sd={"class:_cons": 0, "school:_cons": 0.603571658937}),
    "nested_inner_slope": dict(  # y ~ x + z + (1 | school) + (1 + x | school:class)
        data="unseen_probit_nested.csv", model="melogit y x z || school: || class: x, covariance(unstructured)",
        glmer="glmer(y ~ x + z + (1 | school) + (1 + x | school:class), family = binomial)",
        loglik=-940.8984356191, loglik_glm=-997.930588886709,
        fixed={"_cons": (-0.416074490893, 0.173084071736), "x": (0.840404560445, 0.0697819469057),
               "z": (-0.405275212755, 0.133787631186)},
        sd={"class:_cons": 0.52169671944, "class:x": 0.161293525095, "school:_cons": 0.806859925365},
        corr={"class:x,_cons": -1}),
    "nested_outer_slope": dict(  # y ~ x + z + (1 + x | school) + (1 | school:class)
        data="unseen_probit_nested.csv", model="melogit y x z || school: x, covariance(unstructured) || class:",
        glmer="glmer(y ~ x + z + (1 + x | school) + (1 | school:class), family = binomial)",
        loglik=-941.712366276941, loglik_glm=-997.930588886709,
        fixed={"_cons": (-0.398850653619, 0.173605838712), "x": (0.828557137183, 0.0723510593603),
               "z": (-0.410668185297, 0.140117145536)},
        sd={"class:_cons": 0.512986288144, "school:_cons": 0.80731953585, "school:x": 0.135709508156},
        corr={"school:x,_cons": -0.169780847649}),
    "poisson_2level": dict(  # count ~ x + offset(log(t)) + (1 | region/site)
        data="unseen_counts.csv", model="mepoisson count x || region: || site:, exposure(t)",
        glmer="glmer(count ~ x + offset(log(t)) + (1 | region/site), family = poisson)",
        loglik=-663.477747159458, loglik_glm=-887.271161759059,
        fixed={"_cons": (-0.60946582753, 0.210106449071), "x": (0.401833098646, 0.0395459922486)},
        sd={"site:_cons": 0.34569167312, "region:_cons": 0.615979840613}),
    "poisson_3level": dict(  # count ~ x + offset(log(t)) + (1 | region/site/unit)
        data="unseen_counts.csv", model="mepoisson count x || region: || site: || unit:, exposure(t)",
        glmer="glmer(count ~ x + offset(log(t)) + (1 | region/site/unit), family = poisson)",
        loglik=-661.323194617946, loglik_glm=-887.271161759059,
        fixed={"_cons": (-0.620154370709, 0.209680337061), "x": (0.405451229534, 0.0412980357716)},
        sd={"unit:_cons": 0.185957932182, "site:_cons": 0.32735102662, "region:_cons": 0.613355556869}),
    "poisson_site_slope": dict(  # count2 ~ x + x2 + offset(log(t)) + (1 | region) + (1 + x | region:site)
        data="unseen_counts.csv",
        model="mepoisson count2 x x2 || region: || site: x, covariance(unstructured) exposure(t)",
        glmer="glmer(count2 ~ x + x2 + offset(log(t)) + (1 | region) + (1 + x | region:site), family = poisson)",
        loglik=-791.755663321206, loglik_glm=-1316.01260045965,
        fixed={"_cons": (-0.282985911296, 0.264554484443), "x": (0.3286915766, 0.0620078460835),
               "x2": (0.215255409991, 0.0316659081427)},
        sd={"site:_cons": 0.399409718634, "site:x": 0.286852042744, "region:_cons": 0.794523529757},
        corr={"site:x,_cons": -0.615651947289}),
    "poisson_olre": dict(  # count ~ x + offset(log(t)) + (1 | region) + (1 | obs)
        data="unseen_counts.csv", model="mepoisson count x || region: || obs:, exposure(t)",
        glmer="glmer(count ~ x + offset(log(t)) + (1 | region) + (1 | obs), family = poisson)",
        loglik=-675.138700806733, loglik_glm=-887.271161759059,
        fixed={"_cons": (-0.612715955266, 0.215132131124), "x": (0.407145519619, 0.0427673972905)},
        sd={"obs:_cons": 0.304701346891, "region:_cons": 0.654923450684}),
    "binomial_laplace": dict(  # cbind(s, n - s) ~ x + (1 | g)
        data="unseen_binomial.csv", model="melogit s x || g:, binomial(n)",
        glmer="glmer(cbind(s, n - s) ~ x + (1 | g), family = binomial)",
        loglik=-236.300669905037, loglik_glm=-295.103937672254,
        fixed={"_cons": (-0.418716478167, 0.154359728081), "x": (0.510937269323, 0.0726527063519)},
        sd={"g:_cons": 0.697018194448}),
    "binomial_agq12": dict(  # cbind(s, n - s) ~ x + (1 | g), nAGQ = 12
        data="unseen_binomial.csv", model="melogit s x || g:, binomial(n) intpoints(12)",
        glmer="glmer(cbind(s, n - s) ~ x + (1 | g), family = binomial, nAGQ = 12)",
        loglik=-236.211641971513, loglik_glm=-295.103937672254,
        fixed={"_cons": (-0.418823395253, 0.154640652705), "x": (0.51100473083, 0.0726547034965)},
        sd={"g:_cons": 0.698546919455}),
    "binomial_probit_agq7": dict(  # cbind(s, n - s) ~ x + (1 | g), nAGQ = 7
        data="unseen_binomial.csv", model="meprobit s x || g:, binomial(n) intpoints(7)",
        glmer="glmer(cbind(s, n - s) ~ x + (1 | g), family = binomial(link = \"probit\"), nAGQ = 7)",
        loglik=-236.221980448398, loglik_glm=-295.094458534271,
        fixed={"_cons": (-0.255863576291, 0.0942668324567), "x": (0.311899721212, 0.0434878368357)},
        sd={"g:_cons": 0.426683609865}),
    "logit_agq5": dict(  # y ~ x + f + (1 | g), nAGQ = 5
        data="unseen_logit_slope.csv", model="melogit y x i.f || g:, intpoints(5)",
        glmer="glmer(y ~ x + factor(f) + (1 | g), family = binomial, nAGQ = 5)",
        loglik=-712.942861009319, loglik_glm=-825.164876804538,
        fixed={"_cons": (-0.26106463739, 0.206305643506), "x": (0.938136926369, 0.0807115998595),
               "b.f": (0.515515090684, 0.160649422377), "c.f": (-0.427098659836, 0.183853526613)},
        sd={"g:_cons": 1.36875500407}),
    "logit_agq25": dict(  # y ~ x + f + (1 | g), nAGQ = 25
        data="unseen_logit_slope.csv", model="melogit y x i.f || g:, intpoints(25)",
        glmer="glmer(y ~ x + factor(f) + (1 | g), family = binomial, nAGQ = 25)",
        loglik=-712.934648999481, loglik_glm=-825.164876804538,
        fixed={"_cons": (-0.261106806657, 0.206376310592), "x": (0.938152521325, 0.0807125642812),
               "b.f": (0.515535713207, 0.160650781094), "c.f": (-0.427099697072, 0.183854712665)},
        sd={"g:_cons": 1.36935235698}),
    "probit_agq12": dict(  # y ~ x + f + (1 | g), nAGQ = 12
        data="unseen_logit_slope.csv", model="meprobit y x i.f || g:, intpoints(12)",
        glmer="glmer(y ~ x + factor(f) + (1 | g), family = binomial(link = \"probit\"), nAGQ = 12)",
        loglik=-713.941081519672, loglik_glm=-825.333923909183,
        fixed={"_cons": (-0.147991407375, 0.120518250967), "x": (0.541779173382, 0.0449070672565),
               "b.f": (0.299794303537, 0.0940106435271), "c.f": (-0.254484073963, 0.108798380145)},
        sd={"g:_cons": 0.798547990517}),
    "probit_agq25": dict(  # y ~ x + f + (1 | g), nAGQ = 25
        data="unseen_logit_slope.csv", model="meprobit y x i.f || g:, intpoints(25)",
        glmer="glmer(y ~ x + factor(f) + (1 | g), family = binomial(link = \"probit\"), nAGQ = 25)",
        loglik=-713.941072510374, loglik_glm=-825.333923909183,
        fixed={"_cons": (-0.147991299293, 0.120518350676), "x": (0.541779148438, 0.0449070679844),
               "b.f": (0.299794194394, 0.0940106430602), "c.f": (-0.254484319116, 0.108798383139)},
        sd={"g:_cons": 0.79854890821}),
    "poisson_agq5": dict(  # count ~ x + offset(log(t)) + (1 | region), nAGQ = 5
        data="unseen_counts.csv", model="mepoisson count x || region:, exposure(t) intpoints(5)",
        glmer="glmer(count ~ x + offset(log(t)) + (1 | region), family = poisson, nAGQ = 5)",
        loglik=-680.349727606852, loglik_glm=-887.271161759059,
        fixed={"_cons": (-0.5633755547, 0.215324046601), "x": (0.403185530767, 0.0371573115505)},
        sd={"region:_cons": 0.660956863966}),
    "poisson_agq12": dict(  # count ~ x + offset(log(t)) + (1 | region), nAGQ = 12
        data="unseen_counts.csv", model="mepoisson count x || region:, exposure(t) intpoints(12)",
        glmer="glmer(count ~ x + offset(log(t)) + (1 | region), family = poisson, nAGQ = 12)",
        loglik=-680.349530498872, loglik_glm=-887.271161759059,
        fixed={"_cons": (-0.563376941126, 0.215326731743), "x": (0.403185519997, 0.0371573171601)},
        sd={"region:_cons": 0.66096549305}),
    "poisson_agq25": dict(  # count ~ x + offset(log(t)) + (1 | region), nAGQ = 25
        data="unseen_counts.csv", model="mepoisson count x || region:, exposure(t) intpoints(25)",
        glmer="glmer(count ~ x + offset(log(t)) + (1 | region), family = poisson, nAGQ = 25)",
        loglik=-680.349530479531, loglik_glm=-887.271161759059,
        fixed={"_cons": (-0.563376846938, 0.215326767244), "x": (0.403185524213, 0.0371573171047)},
        sd={"region:_cons": 0.660965613383}),
    "noconstant_factor": dict(  # y ~ 0 + f + x + (1 | g)
        data="unseen_logit_slope.csv", model="melogit y ibn.f x, noconstant || g:",
        glmer="glmer(y ~ 0 + factor(f) + x + (1 | g), family = binomial)",
        loglik=-713.496544574842, loglik_glm=-825.164876804538,
        fixed={"a.f": (-0.260833728038, 0.205106668779), "b.f": (0.254935432013, 0.218476553929),
               "c.f": (-0.687935631046, 0.239162912629), "x": (0.938253357866, 0.0807035209226)},
        sd={"g:_cons": 1.35798704295}),
}


def fit(name):
    case = GLMER[name]
    return case, fit_mixed(pd.read_csv(DATA / case["data"]), ModelSpec.parse(case["model"]))


def random_row(result, level, param_names):
    rows = {(row.level, row.param): row for row in result.random}
    return next(rows[(level, name)] for name in param_names if (level, name) in rows)


@pytest.mark.parametrize("name", sorted(GLMER))
def test_matches_glmer(name):
    case, result = fit(name)
    assert result.converged
    assert result.loglik >= case["loglik"] - 1e-6 * abs(case["loglik"])  # never below glmer's optimum
    assert relative_error(result.loglik, case["loglik"]) < 1e-6
    assert len(result.fixed) == len(case["fixed"])
    for term, (coef, se) in case["fixed"].items():
        assert relative_error(result.coef(term).coef, coef) < 1e-4, term
        assert relative_error(result.coef(term).se, se) < 1e-4, term
    for key, sd in case["sd"].items():
        level, term = key.split(":")
        estimate = random_row(result, level, [f"sd({term})"]).estimate
        if sd < 1e-4:  # glmer's boundary: held at zero here too
            assert estimate < 1e-4, key
        else:
            assert relative_error(estimate, sd) < 1e-3, key
    for key, corr in case.get("corr", {}).items():
        level, pair = key.split(":")
        a, b = pair.split(",")
        assert abs(random_row(result, level, [f"corr({a},{b})", f"corr({b},{a})"]).estimate - corr) < 1e-3, key
    # the LR test against the single-level model, as melogit prints it
    assert result.lr_test.stat == pytest.approx(2 * (case["loglik"] - case["loglik_glm"]), rel=1e-5, abs=1e-5)


# (1 | region) + (1 | obs) is written as crossed in lme4; obs nests in region in the data
WRITTEN_CROSSED = ["poisson_olre"]


@pytest.mark.parametrize("name", sorted(set(GLMER) - set(WRITTEN_CROSSED)))
def test_glmer_call_is_the_same_model(name):
    """lme4's call (glmer(...), pasted as the model) parses to the model of the Stata text."""
    case = GLMER[name]
    assert ModelSpec.parse(case["glmer"]) == ModelSpec.parse(case["model"])


@pytest.mark.parametrize("name", WRITTEN_CROSSED)
def test_glmer_call_with_an_observation_level_factor_fits_the_nested_model(name):
    case = GLMER[name]
    spec = ModelSpec.parse(case["glmer"])
    assert spec.has_crossed
    result = fit_mixed(pd.read_csv(DATA / case["data"]), spec)
    assert relative_error(result.loglik, case["loglik"]) < 1e-6
    assert relative_error(result.coef("x").se, case["fixed"]["x"][1]) < 1e-4


def test_no_intercept_formula_keeps_every_level_of_the_first_factor():
    """glmer(y ~ 0 + factor(f) + x + ...) has one coefficient per level of f; it was read as Stata's
    i.f with noconstant, which drops level a and forces its log-odds to 0 (loglik -714.30, not glmer's
    -713.50). Without an intercept the first factor is Stata's ibn.f."""
    spec = ModelSpec.parse(GLMER["noconstant_factor"]["glmer"])
    assert spec.fixed == ["ibn.f", "x"] and not spec.constant
    interaction = ModelSpec.parse("glmer(y ~ 0 + x * factor(f) + (1 | g), family = binomial)")
    assert interaction.fixed == ["c.x", "ibn.f", "c.x#i.f"] and not interaction.constant
    frame = pd.read_csv(DATA / "unseen_logit_slope.csv")
    with_constant = fit_mixed(frame, ModelSpec.parse("glmer(y ~ x * factor(f) + (1 | g), family = binomial)"))
    without = fit_mixed(frame, interaction)
    assert without.loglik == pytest.approx(with_constant.loglik, rel=1e-9)  # the same model, reparametrised
    assert without.coef("a.f").coef == pytest.approx(with_constant.coef("_cons").coef, rel=1e-5)


def test_singular_slope_covariance_gets_glmer_likelihood_and_a_warning():
    """(1 | school) + (1 + x | school:class) ends at a correlation of -1. The PIRLS warm start carried
    modes from a non-singular Lambda that the singular one cannot produce, and scored them with the
    penalty of their projection: the fit reported -926.66 (LR chi2 142.5) where the likelihood
    there is glmer's -940.90."""
    case, result = fit("nested_inner_slope")
    assert relative_error(result.loglik, case["loglik"]) < 1e-6
    assert result.random_param("class", "corr(x,_cons)").estimate == pytest.approx(-1.0, abs=1e-6)
    assert any("correlation of x and _cons at level class is estimated at -1" in w for w in result.warnings)
    assert all(np.isfinite(row.se) for row in result.fixed)


def test_observation_level_effect_of_counts_is_overdispersion_not_confounded():
    """A count has no residual variance: (1 | obs), one row per group, is identified (glmer's
    poisson_olre case above); a 0/1 outcome gives no information on such a variance."""
    case, result = fit("poisson_olre")
    assert not any("confounded" in w for w in result.warnings)
    assert any("observation-level effect" in note for note in result.notes)
    frame = pd.read_csv(DATA / "unseen_counts.csv").assign(any_event=lambda d: (d["count"] > 0).astype(int))
    binary = fit_mixed(frame, ModelSpec.parse("melogit any_event x || region: || obs:"))
    assert any("Level obs has one observation per group" in w and "not identified" in w for w in binary.warnings)


def test_probit_rows_beyond_underflow_do_not_stop_the_modes():
    """A probit row predicted at |eta| ~ 45 has weight and score 0 (both underflow); the working
    response divided one by the other and the fit stopped with 'the fixed effects reproduce the
    outcome exactly' at such trial points. Those rows carry no information: the Laplace deviance is
    that of the other rows alone."""
    frame = pd.read_csv(DATA / "unseen_logit_slope.csv")
    y = frame.y.to_numpy(float)
    fixed = np.where(y == 1, 45.0, -45.0)
    informative = np.arange(y.size) < 300
    fixed[informative] = 0.5 * frame.x.to_numpy()[informative]
    covariance = LevelCovariance(2, "unstructured")
    theta = covariance.theta_of_lambda(np.array([[0.8, 0.0], [0.2, 0.5]]))

    def laplace(rows):
        part = frame[rows]
        modes = NestedGeneralModes(build_hierarchy(part, ["g"]), Family("binomial", "probit"), y[rows],
                                   [np.column_stack([np.ones(int(rows.sum())), part.x])], [covariance])
        return modes.solve(theta, fixed[rows])

    state = laplace(np.ones(y.size, dtype=bool))
    assert state.converged
    assert state.laplace_deviance == pytest.approx(laplace(informative).laplace_deviance, abs=1e-8)


def _laplace_poisson_loglik(frame, params):
    """Independent Laplace log-likelihood of count ~ x + offset(log t) + (1 | region): one scalar
    Newton solve per region for the mode, then log p(y | u) + log phi(u; 0, s^2) + log(2 pi / H) / 2."""
    s, beta = params[0], params[1:]
    y, x = frame["count"].to_numpy(float), frame.x.to_numpy()
    eta0 = beta[0] + beta[1] * x + np.log(frame.t.to_numpy())
    total = 0.0
    for rows in frame.groupby("region").indices.values():
        u = 0.0
        for _ in range(100):
            mu = np.exp(eta0[rows] + u)
            step = (np.sum(y[rows] - mu) - u / s ** 2) / (np.sum(mu) + 1 / s ** 2)
            u += step
            if abs(step) < 1e-14:
                break
        mu = np.exp(eta0[rows] + u)
        total += (np.sum(y[rows] * np.log(mu) - mu - gammaln(y[rows] + 1)) - u ** 2 / (2 * s ** 2)
                  - 0.5 * np.log(s ** 2 * (np.sum(mu) + 1 / s ** 2)))
    return total


def test_poisson_laplace_one_level_against_glmer_and_an_exact_hessian():
    """glmer(count ~ x + offset(log(t)) + (1 | region), poisson): its deviance is rough at the 1e-6
    level near the optimum (there 7.7e-7 below the Laplace value, 1e-3 away equal to it), so numerical
    SEs from it move by 1e-3 with the step (0.03719 at d = 0.1, 0.03705 at d = 0.01 and in glmer's
    vcov, for x). The engine's log-likelihood is that Laplace value, higher than glmer's; its
    SEs are checked against the Hessian of an independent Laplace computation."""
    frame = pd.read_csv(DATA / "unseen_counts.csv")
    result = fit_mixed(frame, ModelSpec.parse("mepoisson count x || region:, exposure(t)"))
    glmer_loglik = -680.36350348046
    assert result.loglik >= glmer_loglik and relative_error(result.loglik, glmer_loglik) < 1e-6
    assert relative_error(result.coef("_cons").coef, -0.563329545249) < 1e-4
    assert relative_error(result.coef("x").coef, 0.403186141785) < 1e-4
    assert relative_error(result.random_param("region", "sd(_cons)").estimate, 0.660639546934) < 1e-3
    params = np.array([result.random_param("region", "sd(_cons)").estimate, result.coef("_cons").coef,
                       result.coef("x").coef])
    assert _laplace_poisson_loglik(frame, params) == pytest.approx(result.loglik, abs=1e-8)
    h, n = 1e-3, params.size
    hessian = np.empty((n, n))

    def loglik(point):
        return _laplace_poisson_loglik(frame, point)

    for i in range(n):
        for j in range(n):
            di, dj = np.eye(n)[i] * h, np.eye(n)[j] * h
            hessian[i, j] = (loglik(params + di + dj) - loglik(params + di - dj) - loglik(params - di + dj)
                             + loglik(params - di - dj)) / (4 * h * h)
    se = np.sqrt(np.diag(np.linalg.inv(-hessian)))
    assert relative_error(result.coef("_cons").se, se[1]) < 1e-5
    assert relative_error(result.coef("x").se, se[2]) < 1e-5


def test_cli_glmer_call_json_with_icc_and_lr_test(tmp_path):
    """`main.py fit --model "glmer(...)" --json`: the nested probit case's numbers, its latent ICCs
    (residual variance 1: school, then class|school cumulating both variances) and the LR test."""
    case = GLMER["probit_nested"]
    out = tmp_path / "fit.json"
    completed = subprocess.run([sys.executable, "main.py", "fit", str(DATA / case["data"]), "--model", case["glmer"],
                                "--json", str(out)], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "Mixed-effects probit regression" in completed.stdout
    assert "LR test vs. probit model: chi2(2)" in completed.stdout
    payload = json.loads(out.read_text())
    assert (payload["family"], payload["link"], payload["nagq"]) == ("binomial", "probit", 1)
    assert relative_error(payload["loglik"], case["loglik"]) < 1e-6
    school, cls = case["sd"]["school:_cons"] ** 2, case["sd"]["class:_cons"] ** 2
    icc = {row["level"]: row["estimate"] for row in payload["latent_icc"]}
    assert relative_error(icc["school"], school / (school + cls + 1)) < 2e-3
    assert relative_error(icc["class|school"], (school + cls) / (school + cls + 1)) < 2e-3
    assert payload["lr_test"]["stat"] == pytest.approx(2 * (case["loglik"] - case["loglik_glm"]), rel=1e-5)


def test_slope_model_ses_are_as_exact_as_glmer():
    """The random-slope path takes SEs from second differences of the deviance (step 1e-4), which
    are only as exact as the modes inside it: with PIRLS stopped at 1e-11 the intercept's SE of this
    Poisson slope model was 8.5e-5 off glmer's (and off an independent Laplace Hessian, 0.2645546)."""
    case, result = fit("poisson_site_slope")
    for term, (_, se) in case["fixed"].items():
        assert relative_error(result.coef(term).se, se) < 1e-5, term


@pytest.mark.parametrize("data, model, message", [
    ("unseen_binomial.csv", "melogit s x || g:, binomial(20)", "binomial(20): give the number of trials as a variable"),
    ("unseen_binomial.csv", "glmer(cbind(s, n) ~ x + (1 | g), family = binomial)", "cbind(successes, trials - successes)"),
    ("unseen_binomial.csv", "glmer(s / n ~ x + (1 | g), family = binomial, weights = n)", "'weights' is not supported"),
    ("unseen_logit_slope.csv", "glmer(y ~ x + (1 | g), family = binomial(link = \"cloglog\"))", "not 'cloglog'"),
    ("unseen_logit_slope.csv", "melogit y x || g: x, intpoints(7)", "needs a single level with a random intercept"),
    ("unseen_logit_slope.csv", "melogit y x || g:, intmethod(mvaghermite)", "intmethod(mvaghermite) is not supported"),
    ("unseen_counts.csv", "melogit count x || region:", "must be 0 or 1 for a logit model"),
    ("unseen_counts.csv", "mepoisson count x || region:, offset(log(t))", "nested parentheses"),
])
def test_unsupported_models_are_refused_with_one_line(data, model, message, capsys):
    """Binary and count models the engine does not fit: `main.py fit` prints one line naming the
    problem and exits with code 2 (no traceback, nothing fitted without the term)."""
    from engine.cli import build_parser, run_command

    code = run_command(build_parser().parse_args(["fit", str(DATA / data), "--model", model]))
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


@pytest.mark.parametrize("method", ["profile", "bootstrap"])
def test_profile_and_bootstrap_intervals_are_refused_for_binary_and_count_fits(method, capsys):
    """Both work on the linear model's likelihood (profile stopped with a RuntimeError, bootstrap with a
    KeyError on the residual sd): a GLMM keeps its Wald intervals and the request is refused."""
    from engine.cli import build_parser, run_command

    arguments = ["fit", str(DATA / "unseen_binomial.csv"), "--model", "melogit s x || g:, binomial(n)", "--ci", method]
    code = run_command(build_parser().parse_args(arguments + (["--reps", "20"] if method == "bootstrap" else [])))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines()[-1].startswith(f"error: {method}")
    assert "binary and count fits (melogit, meprobit, mepoisson) report Wald intervals" in captured.err


def test_wald_test_of_a_letter_coded_factor_after_a_glmm():
    """Stata's `test` after melogit: the fit carries what the test needs (it said "no test
    information"), and i.f takes every level's column. A level named c is the column c.f, which the
    term matcher took for c. (continuous) f and left out: chi2(1) instead of chi2(2), also for
    linear fits. glmer: t(b) solve(vcov) b over fb, fc of y ~ x + f + (1 | g) = 22.749782."""
    from engine.wald_tests import joint_test

    frame = pd.read_csv(DATA / "unseen_logit_slope.csv")
    result = fit_mixed(frame, ModelSpec.parse("melogit y x i.f || g:"))
    test = joint_test(result, ["i.f"])
    assert test.columns == ["b.f", "c.f"] and test.df1 == 2
    assert test.chi2 == pytest.approx(22.749782, rel=2e-4)
    interaction = fit_mixed(frame, ModelSpec.parse("mixed y c.x##i.f || g:"))
    assert joint_test(interaction, ["i.f"]).columns == ["b.f", "c.f"]
    assert joint_test(interaction, ["c.x#i.f"]).columns == ["c.x#b.f", "c.x#c.f"]


def test_quadrature_loglik_with_trials_is_the_full_one():
    """With nAGQ > 1 glmer's logLik for successes out of trials is minus half its deviance, which
    leaves out the saturated model's log-likelihood sum(log C(n, s) + s log(s/n) + (n - s) log(1 - s/n))
    (as for Poisson): logLik printed -82.737265027181. The engine reports the full one, as Stata."""
    case, result = fit("binomial_agq12")
    frame = pd.read_csv(DATA / case["data"])
    n, s = frame["n"].to_numpy(float), frame["s"].to_numpy(float)
    share = s / n
    saturated = float(np.sum(gammaln(n + 1) - gammaln(s + 1) - gammaln(n - s + 1)
                             + np.where(s > 0, s * np.log(np.where(s > 0, share, 1)), 0)
                             + np.where(s < n, (n - s) * np.log(np.where(s < n, 1 - share, 1)), 0)))
    assert relative_error(result.loglik, -82.737265027181 + saturated) < 1e-6
