"""Small-sample df on designs the other df tests do not cover, against lmerTest and pbkrtest.

The literals come from tests/r/ddf_unseen_literals.R (its output is tests/r/ddf_unseen_literals.out;
lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, lmer with bobyqa to rhoend 1e-12, restarted at its
optimum), which also made the data:

* tests/data/ddf_unseen_nested.csv: 9 schools, 2-5 classes each (class ids repeat across schools),
  3-15 pupils per class, 3 missing x, rows shuffled; pupil covariate x, school covariate w, class
  covariate z and a pupil factor g with text levels a/b/c (its level c is the column ``c.g``).
* tests/data/ddf_unseen_crossed.csv: 8 schools x 3 classes x 5 pupils, each rated by 3 of 7 raters.
* tests/data/ddf_unseen_boundary.csv: 10 schools, 1-4 classes each (a quarter with one pupil), no
  school slope of x (lme4 estimates its variance as exactly 0) and a rater label with no effect.

Per model and coefficient, R's ``summary(m, ddf = "Satterthwaite")`` and ``summary(m, ddf =
"Kenward-Roger")`` (which reports pbkrtest's adjusted SE), and ``anova(m, ddf = ...)``,
``contest1D`` and ``contest(..., joint = TRUE)`` for the F tests and contrasts.
The tests never need R.
"""

import numpy as np
import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.lincom import lincom
from engine.margins import Setting, contrast, margins
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.wald_tests import joint_test
from tests.reference_cases import DATA, relative_error

NESTED = "ddf_unseen_nested.csv"
CROSSED = "ddf_unseen_crossed.csv"
BOUNDARY = "ddf_unseen_boundary.csv"
METHODS = ("satterthwaite", "kroger")

# name: (data, model (Stata syntax or lme4 formula), R's restricted log-likelihood,
#        {lme4 term: (coef, Satterthwaite se, df, p, Kenward-Roger adjusted se, df, p)})
REML_CASES = {
    # lmer(y ~ x + (1 + x | school))
    "n2_slope": (NESTED, "y x || school: x, cov(un) reml", -612.874824952657, {
        "(Intercept)": (1.22740323959, 0.402976661102, 7.95449940803, 0.0160290021359, 0.403250541175, 7.98651875711, 0.0160032353267),
        "x": (0.434798146259, 0.220555944054, 8.13962374001, 0.0835469172029, 0.220798400848, 7.97648081301, 0.0845531928966),
    }),
    # lmer(y ~ x + (1 + x | school) + (1 + x | school:class))
    "n3_slopes_both": (NESTED, "y x || school: x, cov(un) || class: x, cov(un) reml", -590.860342220394, {
        "(Intercept)": (1.22257709705, 0.39463314509, 7.81484984092, 0.0151393464079, 0.396390411029, 7.931771151, 0.0151763420341),
        "x": (0.46983173525, 0.206982434727, 8.01997362593, 0.0528182900539, 0.208591832463, 7.93301304007, 0.0546354963698),
    }),
    # lmer(y ~ x + z + g + (1 | school) + (1 + x | school:class))
    "n3_class_slope": (NESTED, "y x z i.g || school: || class: x, cov(un) reml", -584.21466030079, {
        "(Intercept)": (1.15817204891, 0.375793775334, 9.69548202393, 0.012017717481, 0.377231112181, 10.865871865, 0.0107991364871),
        "x": (0.515590719384, 0.139017196204, 30.4730149129, 0.000829943350401, 0.140035212002, 29.5552638557, 0.000922671727235),
        "z": (0.459142701943, 0.156376572638, 23.8563693547, 0.00724668300487, 0.165478879876, 26.2107506067, 0.0100554279837),
        "gb": (0.382640870822, 0.22908788605, 251.8247619, 0.0961064225078, 0.230267174336, 248.64223703, 0.0978280301862),
        "gc": (-0.597907564736, 0.238002509785, 258.567705728, 0.0126080734485, 0.239612785994, 255.593556137, 0.0132162766686),
    }),
    # lmer(y ~ x * w + z + g + (1 + x | school) + (1 | school:class)): a cross-level interaction
    "n3_crosslevel": (NESTED, "y c.x##c.w z i.g || school: x, cov(un) || class:, reml", -583.719495965203, {
        "(Intercept)": (1.01126628081, 0.381289756825, 10.6813642344, 0.0230067523267, 0.383103072298, 10.9545380655, 0.0230781408564),
        "x": (0.482754589065, 0.245738162442, 7.29002748175, 0.0885776979315, 0.245896330191, 7.09356234437, 0.0898424638093),
        "w": (0.698338577298, 0.377430979768, 8.4898968379, 0.0992975369151, 0.379867876527, 8.71661510937, 0.100244199119),
        "z": (0.436445017054, 0.165629627448, 26.2281967447, 0.0139373127442, 0.170402641318, 26.1820650058, 0.0165323786441),
        "gb": (0.278452171045, 0.231731993734, 257.619942484, 0.230616971359, 0.232264651094, 257.402120021, 0.231685958544),
        "gc": (-0.685484386178, 0.245030809665, 265.169411391, 0.00552671425068, 0.246474485128, 265.045713228, 0.00580522831034),
        "x:w": (-0.122408280651, 0.259003569959, 7.51423346892, 0.649910698847, 0.259236093715, 7.3117023933, 0.650561473339),
    }),
    # lmer(y ~ 0 + x + w + z + (1 + x | school) + (1 | school:class))
    "n3_nocons": (NESTED, "y x w z, noconstant || school: x, cov(un) || class:, reml", -593.53889700592, {
        "x": (0.509575353092, 0.212709407681, 8.09588455429, 0.0431185351467, 0.235524133882, 8.01914472069, 0.0623599865512),
        "w": (1.04030553641, 0.421563278258, 7.95547590293, 0.039007521873, 0.465527834419, 8.40863676364, 0.0543123136703),
        "z": (0.459697712969, 0.175329097577, 25.0680512122, 0.0146542985581, 0.178473012924, 25.3733389997, 0.0162009332513),
    }),
    # lmer(y2 ~ x + w + (1 + x | school) + (1 + x | school:class)): a small class-level slope sd (0.139)
    "n3_small_class_slope": (NESTED, "y2 x w || school: x, cov(un) || class: x, cov(un) reml", -582.629573068813, {
        "(Intercept)": (0.910920763199, 0.40185043439, 8.37013909361, 0.0517432306215, 0.41197150967, 8.23711457012, 0.0570347437957),
        "x": (0.463570525471, 0.182569420193, 7.73916522586, 0.0356807801025, 0.18387258994, 7.96588128337, 0.0358630810895),
        "w": (0.757201800955, 0.423412310154, 8.54650499799, 0.109125303556, 0.475943525399, 8.40741106014, 0.148456586683),
    }),
    # lmer(y3 ~ x + w + (1 + x | school) + (1 | school:class)): singular, school correlation -1
    "n3_singular": (NESTED, "y3 x w || school: x, cov(un) || class:, reml", -586.972106949495, {
        "(Intercept)": (1.02738289303, 0.391252826891, 9.97979440119, 0.0253803683876, 0.398936045169, 9.23914593651, 0.0293289450795),
        "x": (0.483588305759, 0.128692014415, 8.74176642458, 0.00474116044186, 0.130074931155, 7.82223212276, 0.00613023987423),
        "w": (0.520951061557, 0.333192574212, 24.7422854909, 0.130633226812, 0.376951836184, 10.4101524095, 0.195902412321),
    }),
    # lmer(y ~ x + trt + (1 | pupil) + (1 | rater)): pupils crossed with raters
    "c_pupil_rater": (CROSSED, "y ~ x + trt + (1 | pupil) + (1 | rater)", -697.159291757738, {
        "(Intercept)": (2.55004820453, 0.461435477624, 9.23571536094, 0.000335214487082, 0.461437381165, 9.30123214258, 0.000326894202545),
        "x": (0.492105540388, 0.166488719123, 117.125529287, 0.00377184343679, 0.166491354353, 116.754707777, 0.00377455135823),
        "trt": (0.494583752325, 0.308057668271, 117.297907823, 0.111074798811, 0.308064905375, 116.926815239, 0.111091625003),
    }),
    "c_pupil_rater_stata": (CROSSED, "y x trt || _all: R.pupil || _all: R.rater, reml", -697.159291757738, {
        "(Intercept)": (2.55004820453, 0.461435477624, 9.23571536094, 0.000335214487082, 0.461437381165, 9.30123214258, 0.000326894202545),
        "x": (0.492105540388, 0.166488719123, 117.125529287, 0.00377184343679, 0.166491354353, 116.754707777, 0.00377455135823),
        "trt": (0.494583752325, 0.308057668271, 117.297907823, 0.111074798811, 0.308064905375, 116.926815239, 0.111091625003),
    }),
    # lmer(y ~ x + trt + (1 | school / class) + (1 | rater)): raters crossed with nested levels
    "c_nested_rater": (CROSSED, "y ~ x + trt + (1 | school/class) + (1 | rater)", -720.132533056498, {
        "(Intercept)": (2.55730537003, 0.611809361299, 11.0886449965, 0.00151057571346, 0.611812874078, 11.2387178932, 0.00146778420123),
        "x": (0.529795765717, 0.0993821253882, 343.432160047, 1.77458821149e-07, 0.0997910847262, 343.394232022, 1.98288261559e-07),
        "trt": (0.48298183343, 0.664683969201, 5.99862208308, 0.494816473088, 0.664692510956, 6.00015628848, 0.494815063445),
    }),
    # lmer(y ~ x + trt + (1 | school / class / pupil) + (1 | rater))
    "c_nested_pupil_rater": (CROSSED, "y ~ x + trt + (1 | school/class/pupil) + (1 | rater)", -686.085223598957, {
        "(Intercept)": (2.5515593264, 0.622567171672, 11.3997489508, 0.00163929150913, 0.622568925511, 11.4955779268, 0.00161147609407),
        "x": (0.514532720327, 0.141668917784, 104.849252245, 0.000437151934211, 0.142842858152, 104.469167534, 0.000484983530294),
        "trt": (0.491225316228, 0.666085185389, 6.00213052906, 0.488646180442, 0.666090635486, 5.99922131706, 0.488662559854),
    }),
    # lmer(y ~ x + trt + (1 | school / class) + (1 + x | rater)): a correlated slope per crossed rater,
    # singular (correlation 1). Before, Kenward-Roger's df for x were 6.7168 (R 6.7207): central
    # differences of the covariance with a step capped at half the lifted eigenvalue.
    "c_nested_rater_slope": (CROSSED, "y ~ x + trt + (1 | school/class) + (1 + x | rater)", -719.05749907246, {
        "(Intercept)": (2.54967461308, 0.614394144041, 11.0951375835, 0.00158757602619, 0.614460471189, 11.2478469227, 0.00154364458077),
        "x": (0.526346856238, 0.115368313903, 13.0124836166, 0.00053175544642, 0.116622997973, 6.72068446109, 0.00305046234436),
        "trt": (0.484553674494, 0.667235305781, 5.99669029908, 0.495065843576, 0.667357860439, 5.99956858451, 0.495129239139),
    }),
    # lmer(y ~ x + factor(class) + (1 | school) + (1 | rater) + (1 | pupil)): a 3-level factor, crossed
    "c_factor_f": (CROSSED, "y ~ x + factor(class) + (1 | school) + (1 | rater) + (1 | pupil)", -690.543342559072, {
        "(Intercept)": (2.73442323979, 0.559425549935, 14.5496800923, 0.000214729802705, 0.559429075309, 14.7035277597, 0.000208418442597),
        "x": (0.48346078657, 0.154467011995, 109.757424285, 0.00224091093468, 0.154662302601, 109.599470365, 0.00226948149541),
        "classf2": (0.151787048948, 0.339441735641, 108.763252924, 0.655643922963, 0.339446102646, 108.610407161, 0.655649313051),
        "classf3": (0.0362008673445, 0.345151592189, 108.724869295, 0.91666113076, 0.345167869121, 108.571925015, 0.916665318105),
    }),
    # Variances estimated at zero. pbkrtest still counts a zero variance (x: 3.45 df), lmerTest's
    # Satterthwaite does not (101 df). lmer(y ~ x + z + (1 + x || school) + (1 | school:class))
    "b_slope_zero": (BOUNDARY, "y x z || school: x || class:, reml", -182.8661116114, {
        "(Intercept)": (1.10220890306, 0.452833969401, 9.17674124333, 0.0372430858428, 0.460640469294, 8.16131944851, 0.043076681226),
        "x": (0.75503417923, 0.0910238446634, 101.176765969, 4.89799291416e-13, 0.104959355294, 3.45451957861, 0.00340148066528),
        "z": (0.161718224869, 0.282027516189, 15.1710107837, 0.574767447831, 0.302793748446, 15.3111378751, 0.600950565042),
    }),
    # lmer(y ~ x + z + (1 + x | school) + (1 | school:class)): singular, correlation 1
    "b_slope_zero_un": (BOUNDARY, "y x z || school: x, cov(un) || class:, reml", -182.775536256325, {
        "(Intercept)": (1.11365339836, 0.462124851322, 8.78799680623, 0.0398831421383, 0.471369353678, 8.07104781266, 0.0455053385856),
        "x": (0.774434064027, 0.0938372371761, 24.8669340124, 1.38115718118e-08, 0.11597552802, 3.55751398015, 0.00392885795903),
        "z": (0.16874396596, 0.281426658235, 15.2468045099, 0.557577768051, 0.307662950971, 15.3301621984, 0.591267664959),
    }),
    # lmer(y ~ x + z + (1 | school / class) + (1 | rater)): the crossed rater's variance is 0. Before,
    # Kenward-Roger's df for x were 99.6226 (R 99.6077): central differences with a step capped at
    # half the lifted variance (1e-8) magnified the rounding of the crossed gradients.
    "b_rater_crossed": (BOUNDARY, "y ~ x + z + (1 | school/class) + (1 | rater)", -182.8661116114, {
        "(Intercept)": (1.10220890429, 0.452833976006, 9.17674088169, 0.0372430888427, 0.46064900518, 8.13322751227, 0.0431805746298),
        "x": (0.755034179535, 0.0910238444401, 101.176766195, 4.8979922678e-13, 0.0920899306531, 99.607676144, 8.66811922767e-13),
        "z": (0.16171822527, 0.282027520391, 15.1710102438, 0.574767452825, 0.303267111951, 15.3126937116, 0.601512858482),
    }),
}

# lmer(..., REML = FALSE): log-likelihood and {term: (coef, se)}
ML_CASES = {
    "n2_slope_ml": ("y x || school: x, cov(un)", -612.135567347084, {
        "(Intercept)": (1.22848317675, 0.380036065147), "x": (0.435803824387, 0.208260890114)}),
    "n3_slopes_both_ml": ("y x || school: x, cov(un) || class: x, cov(un)", -590.039110785197, {
        "(Intercept)": (1.22869412102, 0.371114485888), "x": (0.47334493004, 0.194966303729)}),
}


def our_term(lme4_name: str) -> str:
    return {"(Intercept)": "_cons", "gb": "b.g", "gc": "c.g", "x:w": "c.x#c.w", "classf2": "2.class",
            "classf3": "3.class"}.get(lme4_name, lme4_name)


def parse(model: str) -> ModelSpec:
    return ModelSpec.parse_lme4(model, "REML") if "~" in model else ModelSpec.parse(model)


_FITS: dict = {}


def fit(data: str, model: str, dfmethod: str | None, transform=None):
    key = (data, model, dfmethod, transform)
    if key not in _FITS:
        frame = pd.read_csv(DATA / data)
        if transform is not None:
            frame = transform(frame)
        _FITS[key] = fit_mixed(frame, parse(model).replace(dfmethod=dfmethod), predict=False)
    return _FITS[key]


def close(value, expected, tolerance, absolute=0.0):
    return abs(value - expected) <= max(tolerance * abs(expected), absolute)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(REML_CASES))
def test_coefficients_match_lmertest_and_pbkrtest(case, method):
    data, model, loglik, expected = REML_CASES[case]
    result = fit(data, model, method)
    assert relative_error(result.loglik, loglik) < 1e-8
    assert sorted(row.term for row in result.fixed) == sorted(our_term(t) for t in expected)
    for term, values in expected.items():
        coef, se, df, p = values[:4] if method == "satterthwaite" else (values[0], *values[4:])
        row = result.coef(our_term(term))
        assert relative_error(row.coef, coef) < 1e-6, term
        assert relative_error(row.se, se) < 1e-5, (term, row.se, se)
        assert relative_error(row.df, df) < 1e-5, (term, row.df, df)
        assert relative_error(row.t, coef / se) < 1e-5, term
        assert close(row.p, p, 1e-5, 1e-12), (term, row.p, p)


@pytest.mark.parametrize("case", sorted(ML_CASES))
def test_ml_fits_match_lme4(case):
    model, loglik, expected = ML_CASES[case]
    result = fit(NESTED, model, None)
    assert result.method == "ML" and relative_error(result.loglik, loglik) < 1e-8
    for term, (coef, se) in expected.items():
        assert relative_error(result.coef(our_term(term)).coef, coef) < 1e-6
        assert relative_error(result.coef(our_term(term)).se, se) < 1e-5


@pytest.mark.parametrize("case, words", [("n3_singular", ("singular", "school")), ("b_slope_zero_un", ("singular", "school")),
                                         ("b_slope_zero", ("variance of x", "zero")),
                                         ("b_rater_crossed", ("rater", "zero")),
                                         ("c_nested_rater_slope", ("singular", "rater"))])
def test_boundary_fits_are_reported(case, words):
    # lme4 prints "boundary (singular) fit" for each of these. Before, a crossed fit said nothing of
    # a singular covariance (c_nested_rater_slope: correlation 1, no standard errors, no warning).
    data, model = REML_CASES[case][:2]
    result = fit(data, model, "kroger")
    assert any(all(word in warning for word in words) for warning in result.warnings), result.warnings
    assert not any("singular" in warning or "zero" in warning
                   for warning in fit(NESTED, REML_CASES["n3_slopes_both"][1], "kroger").warnings)


# anova(m, ddf = ...): (NumDF, DenDF, F, p) of the factor g (text levels a/b/c) and of x:w
F_TESTS = [
    ("n3_class_slope", ["i.g"], {"satterthwaite": (2, 256.993922231, 9.24773023933, 0.00013234362058),
                                 "kroger": (2, 254.418204516, 9.08597192066, 0.000154370517782)}),
    ("n3_crosslevel", ["i.g"], {"satterthwaite": (2, 264.039376405, 8.8648895623, 0.000187835225609),
                                "kroger": (2, 264.040700229, 8.74534085227, 0.000210111361299)}),
    ("n3_crosslevel", ["c.x#c.w"], {"satterthwaite": (1, 7.51423346892, 0.223362414374, 0.649910698847),
                                    "kroger": (1, 7.3117023933, 0.222961900894, 0.650561473339)}),
    # contest(m, L, joint = TRUE, ddf = ...) for x, w and x:w together, and for every coefficient but
    # the constant (the report header's F)
    ("c_factor_f", ["i.class"], {"satterthwaite": (2, 108.754628387, 0.108766152016, 0.897037583068),
                                 "kroger": (2, 108.601701246, 0.10876247159, 0.897041014994)}),
    ("n3_crosslevel", ["x", "w", "c.x#c.w"], {"satterthwaite": (3, 8.0082497811, 2.41103685774, 0.14210926934),
                                              "kroger": (3, 7.65456277996, 2.13026915329, 0.177816127223)}),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case, terms, expected", F_TESTS, ids=[f"{c}-{'+'.join(t)}" for c, t, _ in F_TESTS])
def test_f_tests_match_anova_and_kr(case, terms, expected, method):
    data, model = REML_CASES[case][:2]
    result = fit(data, model, method)
    test = joint_test(result, terms)
    num_df, den_df, f_value, p = expected[method]
    assert test.df1 == num_df  # i.g: both b.g and c.g (c.g is not a continuous c.g)
    assert relative_error(test.df2, den_df) < 1e-5
    assert relative_error(test.F, f_value) < 1e-5
    assert relative_error(test.p, p) < 1e-5


@pytest.mark.parametrize("method, expected", [("satterthwaite", (6, 15.8010661253, 5.73354140503, 0.00247697908679)),
                                              ("kroger", (6, 21.5688121874, 5.01975381811, 0.00232805528168))])
def test_overall_f_matches_contest_joint(method, expected):
    result = fit(NESTED, REML_CASES["n3_crosslevel"][1], method)
    num_df, den_df, f_value, p = expected
    assert result.wald.kind == "F" and result.wald.df == num_df
    assert relative_error(result.wald.df2, den_df) < 1e-5
    assert relative_error(result.wald.stat, f_value) < 1e-5
    assert relative_error(result.wald.p, p) < 1e-5


# contest1D(m, L, ddf = ...): (estimate, se, df, p) of c.g - b.g and of the predictive margin at g = a
# (L = column means of X with g's indicators set to 0: Stata's margins, other predictors as observed)
CONTRASTS = {
    "satterthwaite": {"lincom": (-0.963936557224, 0.232219075502, 270.080715399, 4.44187306665e-05),
                      "margin_a": (1.46163334512, 0.346027424049, 9.84821656772, 0.00182109845829)},
    "kroger": {"lincom": (-0.963936557224, 0.233667925438, 269.995242673, 4.93620505146e-05),
               "margin_a": (1.46163334512, 0.346953286175, 10.0733636971, 0.00176339247559)},
}


@pytest.mark.parametrize("method", METHODS)
def test_lincom_and_margins_match_contest1d(method):
    result = fit(NESTED, REML_CASES["n3_crosslevel"][1], method)
    rows = {"lincom": lincom(result, ["c.g - b.g"]).rows[0]}
    frame = pd.read_csv(DATA / NESTED)
    at_levels = margins(frame, result, [Setting("g")]).rows
    assert [row.at["g"] for row in at_levels] == ["a", "b", "c"]  # g is a factor (its level c included)
    rows["margin_a"] = at_levels[0]
    for name, (estimate, se, df, p) in CONTRASTS[method].items():
        row = rows[name]
        assert relative_error(row.estimate, estimate) < 1e-6, name
        assert relative_error(row.se, se) < 1e-5, name
        assert relative_error(row.df, df) < 1e-5, name
        assert relative_error(row.p, p) < 1e-5, name


def test_text_factor_with_level_c_only():
    # g with levels a and c: its one coefficient is named c.g. Before, `test i.g` found no coefficient
    # (with levels a/b/c it silently tested b.g alone), and contrast/margins took g for continuous.
    def only_a_and_c(frame):
        return frame.assign(g=frame["g"].replace("b", "a"))

    result = fit(NESTED, "y x z i.g || school: || class: x, cov(un) reml", "kroger", only_a_and_c)
    assert [row.term for row in result.fixed] == ["x", "z", "c.g", "_cons"]
    test = joint_test(result, ["i.g"])
    assert test.columns == ["c.g"]
    row = result.coef("c.g")
    assert relative_error(test.F, (row.coef / row.se) ** 2) < 1e-10 and relative_error(test.df2, row.df) < 1e-10
    with pytest.raises(UserInputError, match="names no coefficient"):
        joint_test(result, ["g"])  # g is not continuous in this model
    frame = only_a_and_c(pd.read_csv(DATA / NESTED))
    versus = contrast(frame, result, "g").rows
    assert len(versus) == 1 and relative_error(versus[0].estimate, row.coef) < 1e-10
    assert relative_error(versus[0].se, row.se) < 1e-10 and relative_error(versus[0].df, row.df) < 1e-10
    assert [r.at["g"] for r in margins(frame, result, [Setting("g")]).rows] == ["a", "c"]


# ----- units and origin of a random slope ---------------------------------------------------------
# The same model with x in other units (x * 1000, x / 1000) or another origin (x + 100, beside a
# correlated intercept) is a reparametrisation: x's t, df and p must stay R's (its coefficient and
# SE scale), and so must everything with x only rescaled. Before, the df for x in n3_slopes_both
# (R: 7.93 Kenward-Roger, 8.02 Satterthwaite) were 12,221 (Kenward-Roger) with x + 100 and -10.06
# (Satterthwaite) with x * 10,000: the difference steps, the boundary lift and the inverse
# information were not unit-free.
UNIT_CHANGES = {"x*1000": (lambda f: f.assign(x=f["x"] * 1000.0), 1000.0),
                "x/1000": (lambda f: f.assign(x=f["x"] / 1000.0), 0.001),
                "x+100": (lambda f: f.assign(x=f["x"] + 100.0), None)}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("change", sorted(UNIT_CHANGES))
@pytest.mark.parametrize("case", ["n2_slope", "n3_slopes_both"])
def test_df_do_not_depend_on_the_units_or_origin_of_a_slope(case, change, method):
    data, model, _, expected = REML_CASES[case]
    transform, factor = UNIT_CHANGES[change]
    result = fit(data, model, method, transform)
    for term, values in expected.items():
        if factor is None and term != "x":
            continue  # a new origin changes what the intercept means
        coef, se, df, p = values[:4] if method == "satterthwaite" else (values[0], *values[4:])
        scale = factor if term == "x" and factor is not None else 1.0
        row = result.coef(our_term(term))
        assert relative_error(row.coef * scale, coef) < 1e-6, term
        assert relative_error(row.se * scale, se) < 1e-5, term
        assert relative_error(row.df, df) < 1e-5, (term, row.df, df)
        assert close(row.p, p, 1e-5, 1e-12), term


# tests/r/crossed_ddf_literals.out, model crossed_unstructured (tests/test_crossed_ddf.py):
# lmer(y ~ x + z + factor(grp) + (1 + x | teach) + (1 | student)) on tests/data/crossed_ddf.csv
CROSSED_SLOPE = ("y ~ x + z + factor(grp) + (1 + x | teach) + (1 | student)", -625.412138814941,
                 {"satterthwaite": (0.606797788674, 0.168690038092, 11.7379889583, 0.00379087859492),
                  "kroger": (0.606797788674, 0.169246844319, 11.2740911818, 0.00411944488389)})


@pytest.mark.parametrize("method", METHODS)
def test_crossed_slope_in_other_units(method):
    # x * 1000: before, the crossed optimiser (searching in theta) stopped with the teacher slope's
    # variance at zero and a log-likelihood 8 below the optimum, without a warning.
    formula, loglik, expected = CROSSED_SLOPE
    result = fit("crossed_ddf.csv", formula, method, UNIT_CHANGES["x*1000"][0])
    # REML: rescaling a column of X by c changes log|X'V^-1X| by 2 log c
    assert abs(result.loglik - (loglik - np.log(1000.0))) < 1e-6 * abs(loglik)
    coef, se, df, p = expected[method]
    row = result.coef("x")
    assert relative_error(row.coef * 1000.0, coef) < 1e-6 and relative_error(row.se * 1000.0, se) < 1e-5
    assert relative_error(row.df, df) < 1e-4 and close(row.p, p, 1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_dotted_factor_levels_and_names(method):
    # R-style names (grp.v) and levels with dots (Dr.X, St. Mary): columns St. Mary.grp.v and
    # none.grp.v. Before, `test i.grp.v` kept none.grp.v alone (1 df, silently), and contrast and
    # margins took grp.v for a continuous variable. The same model as n3_class_slope (levels in the
    # same order, so the same coefficients): R's anova F for g.
    def dotted(frame):
        labels = {"a": "Dr.X", "b": "St. Mary", "c": "none"}
        return frame.assign(**{"grp.v": frame["g"].map(labels)}).drop(columns="g")

    result = fit(NESTED, "y x z i.grp.v || school: || class: x, cov(un) reml", method, dotted)
    test = joint_test(result, ["i.grp.v"])
    assert test.columns == ["St. Mary.grp.v", "none.grp.v"]
    num_df, den_df, f_value, p = F_TESTS[0][2][method]
    assert test.df1 == num_df and relative_error(test.df2, den_df) < 1e-5 and relative_error(test.F, f_value) < 1e-5
    frame = dotted(pd.read_csv(DATA / NESTED))
    versus = contrast(frame, result, "grp.v").rows
    assert [row.label for row in versus] == ["St. Mary vs Dr.X", "none vs Dr.X"]
    expected = REML_CASES["n3_class_slope"][3]
    for row, lme4_name in zip(versus, ["gb", "gc"]):
        coef, se = expected[lme4_name][0], expected[lme4_name][1 if method == "satterthwaite" else 4]
        assert relative_error(row.estimate, coef) < 1e-6 and relative_error(row.se, se) < 1e-5
    assert [row.at["grp.v"] for row in margins(frame, result, [Setting("grp.v")]).rows] == ["Dr.X", "St. Mary", "none"]
