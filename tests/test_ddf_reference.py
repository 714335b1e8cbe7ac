"""Small-sample df against lmerTest (Satterthwaite) and pbkrtest (Kenward-Roger).

The ddf_* reference cases (tests/reference, from shared/reference) and, as literals below,
more cases computed once with R (lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2; lmer with bobyqa
to rhoend 1e-12, restarted from its optimum): random slopes with an unstructured covariance,
a three-level factor, an interaction with a slope-only level (tests/data/slopes_unbalanced.csv,
complete rows), and an unbalanced three-level trial with a three-arm school-level factor
(tests/data/trial3_unbalanced.csv). The tests never need R.
"""

import numpy as np
import pandas as pd
import pytest

from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.wald_tests import joint_test
from tests.reference_cases import DATA, load_case, load_data, relative_error

REFERENCE_MODELS = {
    "ddf_crt10_reml": "y treat x || school:, reml",
    "ddf_ergostool_reml": "effort i.Type || Subject:, reml",
    "ddf_sleepstudy_reml": "Reaction Days || Subject: Days, covariance(unstructured) reml",
    "ddf_seed_d5_reml": "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml",
}
METHODS = {"Satterthwaite": "satterthwaite", "Kenward-Roger": "kroger"}


def our_term(lme4_name: str) -> str:
    if lme4_name == "(Intercept)":
        return "_cons"
    if lme4_name.startswith("Type"):  # lme4's Type2 is Stata's 2.Type
        return f"{lme4_name[4:]}.Type"
    return lme4_name


def close(value, expected, tolerance, absolute=0.0):
    return abs(value - expected) <= max(tolerance * abs(expected), absolute)


_FITS: dict = {}


def fit_case(case_name: str, method: str):
    key = (case_name, method)
    if key not in _FITS:
        case = load_case(case_name)
        spec = ModelSpec.parse(REFERENCE_MODELS[case_name]).replace(dfmethod=method)
        _FITS[key] = fit_mixed(load_data(case), spec, predict=False)
    return _FITS[key]


@pytest.mark.parametrize("case_name", sorted(REFERENCE_MODELS))
@pytest.mark.parametrize("reference_method", sorted(METHODS))
def test_coefficients_match_reference(case_name, reference_method):
    case = load_case(case_name)
    result = fit_case(case_name, METHODS[reference_method])
    assert result.dfmethod == METHODS[reference_method]
    assert relative_error(result.loglik, case["loglik"]) < 1e-8
    for lme4_name, expected in case["ddf"][reference_method].items():
        row = result.coef(our_term(lme4_name))
        assert relative_error(row.df, expected["df"]) < 1e-4, (lme4_name, row.df, expected["df"])
        assert relative_error(row.t, expected["t"]) < 1e-4, lme4_name
        assert row.t == row.z
        assert close(row.p, expected["p"], 1e-4, 1e-12), (lme4_name, row.p, expected["p"])
        assert relative_error(row.ci[0], expected["ci_low"]) < 1e-4
        assert relative_error(row.ci[1], expected["ci_high"]) < 1e-4
        if reference_method == "Kenward-Roger":
            assert relative_error(row.se, expected["se_adj"]) < 1e-5, (lme4_name, row.se, expected["se_adj"])
        else:  # Satterthwaite keeps the usual standard error
            assert relative_error(row.se, case["fixed"][lme4_name]["se"]) < 1e-4


def test_kenward_roger_adjustment_itself_matches_pbkrtest():
    # The seed's district variance is flat in the likelihood: the plain SE of _cons agrees with
    # lme4's only to ~6e-6, so compare the adjustment (se_adj / se) as well, to 1e-7.
    case = load_case("ddf_seed_d5_reml")
    plain = fit_case("ddf_seed_d5_reml", "satterthwaite")
    adjusted = fit_case("ddf_seed_d5_reml", "kroger")
    for lme4_name, expected in case["ddf"]["Kenward-Roger"].items():
        term = our_term(lme4_name)
        ours = adjusted.coef(term).se / plain.coef(term).se
        theirs = expected["se_adj"] / case["fixed"][lme4_name]["se"]
        assert abs(ours - theirs) < 1e-7, lme4_name


@pytest.mark.parametrize("reference_method", sorted(METHODS))
def test_factor_f_test_matches_reference(reference_method):
    case = load_case("ddf_ergostool_reml")
    expected = case["ftests"][reference_method]["Type"]
    result = fit_case("ddf_ergostool_reml", METHODS[reference_method])
    test = joint_test(result, ["i.Type"])
    assert test.columns == ["2.Type", "3.Type", "4.Type"]
    assert test.df1 == expected["NumDF"]
    assert relative_error(test.df2, expected["DenDF"]) < 1e-4
    assert relative_error(test.F, expected["F"]) < 1e-4
    assert relative_error(test.p, expected["p"]) < 1e-4
    assert result.tests[-1] is test


# ----- more cases, computed once with R -----------------------------------------------------------
# model, terms tested jointly, {term: (Satterthwaite df, KR df, SE, KR adjusted SE)},
# (Satterthwaite F, df2, p), (KR scaled F, df2, p, scaling)
R_CASES = [
    ("slopes_unbalanced.csv", "y x z || school: x, cov(un) || class:, reml", ["x", "z"],
     {"_cons": (25.83571427, 24.69613461, 0.3154904812, 0.3157323181),
      "x": (21.39002421, 23.08042627, 0.1350742459, 0.1355247991),
      "z": (453.1671969, 454.3245336, 0.0963372947, 0.09650418465)},
     (10.1921538, 39.21013318, 0.0002726799473), (10.03477175, 57.58959813, 0.0001824052946, 0.9888070066)),
    ("slopes_unbalanced.csv", "y x i.g || school: || class:, reml", ["i.g"],
     {"_cons": (27.60631864, 26.60702395, 0.3249092095, 0.3250603903),
      "x": (480.6789824, 479.5375478, 0.05453323077, 0.05459255639),
      "1.g": (477.6320155, 476.4333443, 0.1300735362, 0.130195533),
      "2.g": (481.7403942, 480.6233584, 0.1349962222, 0.1351420455)},
     (2.616541059, 478.578287, 0.07410005346), (2.610813016, 477.3893014, 0.07452371299, 0.9999996106)),
    ("slopes_unbalanced.csv", "y c.x##i.z || school: || class: x, nocons reml", ["x", "c.x#i.z"],
     {"_cons": (25.30669767, 25.2633938, 0.3200989733, 0.3201520343),
      "x": (96.2262412, 106.7150294, 0.1118915259, 0.112204384),
      "1.z": (489.0711941, 491.9850086, 0.1239551092, 0.1241827268),
      "c.x#1.z": (511.6217551, 512.1488908, 0.1341456695, 0.1347829292)},
     (11.02498847, 134.9598298, 3.67339543e-05), (10.94392277, 150.6395881, 3.649470331e-05, 0.9971559727)),
    ("trial3_unbalanced.csv", "y i.arm x || school: || class:, reml", ["i.arm"],
     {"_cons": (11.18351554, 10.70261446, 0.4725689554, 0.4731806158),
      "1.arm": (12.50292495, 11.9947736, 0.6874586631, 0.6884598788),
      "2.arm": (11.67253161, 11.16583114, 0.6793703001, 0.6812287497),
      "x": (343.7380421, 343.3842706, 0.1140134747, 0.1145375021)},
     (0.01211293748, 12.34969478, 0.9879718512), (0.0120404356, 11.83767732, 0.9880438442, 0.9998960038)),
]


@pytest.mark.parametrize("data, model, terms, coefficients, satterthwaite_f, kr_f", R_CASES,
                         ids=[case[1] for case in R_CASES])
def test_random_slopes_unbalanced_and_three_levels_match_r(data, model, terms, coefficients, satterthwaite_f, kr_f):
    frame = pd.read_csv(DATA / data)
    satterthwaite = fit_mixed(frame, ModelSpec.parse(model).replace(dfmethod="satterthwaite"), predict=False)
    kroger = fit_mixed(frame, ModelSpec.parse(model).replace(dfmethod="kroger"), predict=False)
    for term, (df_s, df_kr, se, se_adj) in coefficients.items():
        assert relative_error(satterthwaite.coef(term).df, df_s) < 1e-4, term
        assert relative_error(kroger.coef(term).df, df_kr) < 1e-4, term
        assert relative_error(satterthwaite.coef(term).se, se) < 1e-5, term
        assert relative_error(kroger.coef(term).se, se_adj) < 1e-5, term
    f_s = joint_test(satterthwaite, terms)
    assert (relative_error(f_s.F, satterthwaite_f[0]) < 1e-5 and relative_error(f_s.df2, satterthwaite_f[1]) < 1e-4
            and relative_error(f_s.p, satterthwaite_f[2]) < 1e-4)
    f_kr = joint_test(kroger, terms)
    assert (relative_error(f_kr.F, kr_f[0]) < 1e-5 and relative_error(f_kr.df2, kr_f[1]) < 1e-4
            and relative_error(f_kr.p, kr_f[2]) < 1e-4)
    scaling = kroger.inference.method.f_parts(
        np.eye(len(kroger.fixed))[[kroger.inference.names.index(c) for c in f_kr.columns]], kroger.inference.beta)[3]
    assert abs(scaling - kr_f[3]) < 1e-6


def test_both_variances_on_the_boundary_match_r():
    # 20 groups g of 10 rows, each split in two h groups; no group variation in y: lme4's theta = (0, 0).
    # lmerTest: df 198 for both (= n - p, the variances are known to be 0); pbkrtest still counts them:
    # (Intercept) 19.15381592, se_adj 0.06378446039; x 190.9055765, se_adj 0.0697653427.
    frame = pd.read_csv(DATA / "boundary_two_level.csv")
    model = ModelSpec.parse("y x || g: || h:, reml")
    satterthwaite = fit_mixed(frame, model.replace(dfmethod="satterthwaite"), predict=False)
    kroger = fit_mixed(frame, model.replace(dfmethod="kroger"), predict=False)
    assert satterthwaite.theta == [0.0, 0.0]
    assert relative_error(satterthwaite.coef("_cons").df, 198) < 1e-6
    assert relative_error(satterthwaite.coef("x").df, 198) < 1e-6
    assert relative_error(kroger.coef("_cons").df, 19.15381592) < 1e-5
    assert relative_error(kroger.coef("x").df, 190.9055765) < 1e-5
    assert relative_error(kroger.coef("_cons").se, 0.06378446039) < 1e-6
    assert relative_error(kroger.coef("x").se, 0.0697653427) < 1e-6


@pytest.mark.parametrize("model, expected", [
    # A singular fit (lme4: theta's last diagonal entry 0): three correlated effects at one level.
    ("y x z || school: z x, cov(un) reml",
     {"_cons": (24.00224178, 23.95135342, 0.3138582335, 0.3142538054),
      "x": (20.43401866, 22.40854068, 0.1252745133, 0.1264678592),
      "z": (281.9826435, 19.70404476, 0.1265251475, 0.1304937047)}),
    # Independent random intercept and slope (lme4's ||) above a random intercept.
    ("y x z || school: x || class:, reml",
     {"_cons": (25.83783268, 24.69801982, 0.3158072818, 0.3159888199),
      "x": (21.55218593, 23.06912528, 0.1355424521, 0.1358000812),
      "z": (453.2665959, 453.9758305, 0.09633100117, 0.09645458472)}),
], ids=["singular unstructured", "independent slope"])
def test_singular_and_independent_slopes_match_r(model, expected):
    frame = pd.read_csv(DATA / "slopes_unbalanced.csv")
    fits = {method: fit_mixed(frame, ModelSpec.parse(model).replace(dfmethod=method), predict=False)
            for method in ("satterthwaite", "kroger")}
    for term, (df_s, df_kr, se, se_adj) in expected.items():
        assert relative_error(fits["satterthwaite"].coef(term).df, df_s) < 1e-4, term
        assert relative_error(fits["kroger"].coef(term).df, df_kr) < 1e-4, term
        assert relative_error(fits["satterthwaite"].coef(term).se, se) < 1e-5, term
        assert relative_error(fits["kroger"].coef(term).se, se_adj) < 1e-5, term


def test_real_data_with_a_near_boundary_slope():
    # High School and Beyond, first 40 schools (1,785 pupils), group-mean centred ses with an
    # unstructured random slope whose sd is nearly 0 (lme4 theta 0.2097, 0.0111, 0.0025).
    # pbkrtest's Kenward-Roger is analytic: we match it. lmerTest's Satterthwaite takes a numerical
    # Hessian of lme4's deviance, which is unstable near the boundary (numDeriv with d = 1e-4,
    # 1e-2, 5e-2 gives 1652, -139 and 70 df for ses_c); it printed 40.79 for ses_c, where the
    # converged Hessian of the exact gradient gives 41.21. We match lmerTest where its Hessian is
    # stable (_cons, meanses, sector) and check that ours does not move with the step.
    from engine.centering import Centering
    import engine.mixed.variance_derivatives as derivatives

    frame = pd.read_csv(DATA / "hsb.csv")
    frame = frame[frame["school"].isin(sorted(frame["school"].unique())[:40])]
    spec = ModelSpec.parse("mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, covariance(unstructured) reml")
    spec.centering = [Centering.parse_center_option("ses_c=ses:group:school")]
    kroger = fit_mixed(frame, spec.replace(dfmethod="kroger"), predict=False)
    expected_kr = {"_cons": (39.71162498, 0.3315942819), "meanses": (35.80331055, 0.5489415111),
                   "ses_c": (39.30545775, 0.3097766887), "1.sector": (35.2004771, 0.5293636065),
                   "c.meanses#c.ses_c": (30.95660248, 0.4914168747), "1.sector#c.ses_c": (30.86154273, 0.4749899942)}
    for term, (df, se_adj) in expected_kr.items():
        assert relative_error(kroger.coef(term).df, df) < 1e-4, term
        assert relative_error(kroger.coef(term).se, se_adj) < 1e-5, term
    f_kr = joint_test(kroger, ["i.sector", "i.sector#c.ses_c"])
    assert relative_error(f_kr.F, 18.13854788) < 1e-5 and relative_error(f_kr.df2, 32.10714187) < 1e-4
    satterthwaite = fit_mixed(frame, spec.replace(dfmethod="satterthwaite"), predict=False)
    for term, df in {"_cons": 40.73887035, "meanses": 36.73157335, "1.sector": 36.11350825}.items():
        assert relative_error(satterthwaite.coef(term).df, df) < 1e-4, term
    default_step = derivatives.RELATIVE_STEP
    try:
        derivatives.RELATIVE_STEP = default_step / 10
        finer = fit_mixed(frame, spec.replace(dfmethod="satterthwaite"), predict=False)
    finally:
        derivatives.RELATIVE_STEP = default_step
    for row in satterthwaite.fixed:
        assert relative_error(finer.coef(row.term).df, row.df) < 1e-6, row.term
