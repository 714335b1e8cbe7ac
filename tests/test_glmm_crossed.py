"""GLMMs with crossed random factors (Laplace) against glmer (lme4 1.1-31), numbers carried as literals.

R: glmer(..., control = glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12), tolPwrss = 1e-13)),
refitted from its optimum, then polished by Newton steps on lme4's own deviance function (bobyqa stops
~1e-8 short in -2 log L, which moves flat directions of the coefficients by ~1e-4); SEs from numDeriv's
Richardson Hessian of that deviance in (theta, beta) (VerbAgg), or for the Poisson cases from central
second differences with step 0.01 (lme4's PIRLS leaves noise in its deviance that Richardson's small
steps amplify; see the random-slope case). tests/r/glmm_crossed_literals.R has the R code.
Data: tests/data/verbagg.csv (lme4's VerbAgg: r2 = "Y", male = Gender "M", btype 1 curse 2 scold
3 shout, self = situ "self"), absences_crossed.csv (simulated: 1,500 students in 50 schools
crossed with 40 neighbourhoods, days at risk as exposure) and seed_moving_binary.csv (the seed's
design with a pass/fail outcome, students changing teacher with probability 0.5: nested districts
and schools, crossed teachers and students).
"""

import json

import numpy as np
import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA, relative_error

VERBAGG = "r2 anger male i.btype self || _all: R.id || _all: R.item"
GLMER = {
    "verbagg_logit": dict(  # glmer(r2 ~ anger + male + factor(btype) + self + (1|id) + (1|item), binomial)
        data="verbagg.csv", model="melogit " + VERBAGG, loglik=-4075.699859872638,
        fixed={"_cons": (0.199058134921, 0.406538888534), "anger": (0.057429612564, 0.016839032583),
               "male": (0.320710847946, 0.191927968017), "2.btype": (-1.058799983847, 0.257283787841),
               "3.btype": (-2.105402559697, 0.259467609133), "self": (-1.055464370471, 0.210782467917)},
        sd={"id": 1.339708887778, "item": 0.495303979889}),
    "verbagg_probit": dict(  # the same, binomial(link = "probit")
        data="verbagg.csv", model="meprobit " + VERBAGG, loglik=-4079.193320983793,
        fixed={"_cons": (0.124753740200, 0.239135853079), "anger": (0.033554379423, 0.009896170916),
               "male": (0.192069182027, 0.112937183959), "2.btype": (-0.625741895423, 0.151476305874),
               "3.btype": (-1.232833632796, 0.152265385786), "self": (-0.621816273915, 0.123967171786)},
        sd={"id": 0.788652534619, "item": 0.291577949988}),
    "absences_crossed_poisson": dict(  # absences ~ x + offset(log(days)) + (1|school) + (1|hood), poisson
        data="absences_crossed.csv",
        model="glmer(absences ~ x + offset(log(days)) + (1|school) + (1|hood), family = poisson)",
        loglik=-3747.467005650013,
        fixed={"_cons": (-3.033951615613, 0.0715990662), "x": (0.303547415018, 0.0098386111)},  # SEs: central, 0.01
        sd={"school": 0.373853548998, "hood": 0.296679345115}),
    "absences_crossed_slope": dict(  # ... + (1 + x|school) + (1|hood): a correlated random slope beside a crossed factor
        data="absences_crossed.csv", model="mepoisson absences x || _all: R.hood || school: x, "
                                           "covariance(unstructured) exposure(days)",
        loglik=-3691.574004175939,
        # SEs by central second differences (step 0.01) of lme4's deviance: at its optimum lme4's PIRLS leaves
        # noise of ~2e-6 in -2 log L, which the Richardson Hessian amplifies to ~1e-3 in the SE of x here
        fixed={"_cons": (-3.042719209086, 0.0710214569), "x": (0.299294608680, 0.0222039875)},
        # from lme4's theta (0.368336064531, 0.000880579234, 0.136273603443 | 0.296135579643)
        sd={"school": 0.368336064531, "hood": 0.296135579643}, slope_sd={("school", "x"): 0.136276448498},
        corr={("school", "corr(x,_cons)"): 0.006461712524}),
    "verbagg_item_slope": dict(  # VerbAgg with (1|id) + (1 + male|item): a correlated slope on the crossed factor
        data="verbagg.csv",
        model="glmer(r2 ~ anger + male + factor(btype) + self + (1|id) + (1 + male|item), family = binomial)",
        loglik=-4055.977912969962,
        fixed={"_cons": (0.186737008188, 0.398614123089), "anger": (0.057832568850, 0.016980061386),
               "male": (0.333870567934, 0.215327695053), "2.btype": (-0.914361687237, 0.177669341978),
               "3.btype": (-2.437672949394, 0.193994659395), "self": (-0.930830730917, 0.147670531188)},
        # from lme4's theta (1.351848721801 | 0.651733038249, -0.458335316417, 0.058313683862)
        sd={"id": 1.351848721801, "item": 0.651733038249}, slope_sd={("item", "male"): 0.462030029328},
        corr={("item", "corr(male,_cons)"): -0.992003305681}),
    "seed_moving_binary": dict(  # the seed's design, half the students changing teacher in semester 2, pass/fail:
        # pass ~ tutoring + (1|dist_id) + (1|dist_id:school_id) + (1|teach_id) + (1|student_id), binomial
        data="seed_moving_binary.csv",
        model="melogit pass tutoring || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id",
        loglik=-4874.399693078592,
        fixed={"_cons": (-0.491630227901, 0.257302283508), "tutoring": (0.517213371546, 0.068531615434)},
        sd={"dist_id": 0.483320258648, "school_id": 0.626488409384, "teach_id": 0.724354914094,
            "student_id": 0.737280289577}),
}


def fit(name):
    case = GLMER[name]
    frame = pd.read_csv(DATA / case["data"])
    return case, frame, fit_mixed(frame, ModelSpec.parse(case["model"]))


@pytest.mark.parametrize("name", sorted(GLMER))
def test_matches_glmer(name):
    case, _, result = fit(name)
    assert result.converged
    assert any(") cross: fitted with the Laplace" in note for note in result.notes)  # the crossed criterion ran
    assert not any("nest in these data" in note for note in result.notes)
    assert result.loglik >= case["loglik"] - 1e-6 * abs(case["loglik"])
    assert relative_error(result.loglik, case["loglik"]) < 1e-6
    for term, (coef, se) in case["fixed"].items():
        assert relative_error(result.coef(term).coef, coef) < 1e-4, term
        assert relative_error(result.coef(term).se, se) < 1e-4, term
    for level, sd in case["sd"].items():
        assert relative_error(result.random_param(level, "sd(_cons)").estimate, sd) < 1e-3, level
    for (level, term), sd in case.get("slope_sd", {}).items():
        assert relative_error(result.random_param(level, f"sd({term})").estimate, sd) < 1e-3, term
    for (level, param), rho in case.get("corr", {}).items():
        assert abs(result.random_param(level, param).estimate - rho) < 1e-3


# ----- independent checks (no R) -------------------------------------------------------------------

def _small_crossed_binary(seed=3):
    """30 students x 12 items, each student answers 8 random items: a crossed binary data set."""
    rng = np.random.default_rng(seed)
    rows = []
    student_effect, item_effect = rng.normal(0, 1.0, 30), rng.normal(0, 0.6, 12)
    for student in range(30):
        x = rng.normal()
        for item in rng.choice(12, 8, replace=False):
            eta = -0.3 + 0.5 * x + student_effect[student] + item_effect[item]
            rows.append((int(rng.random() < 1 / (1 + np.exp(-eta))), x, student + 1, item + 1))
    return pd.DataFrame(rows, columns=["y", "x", "student", "item"])


def _dense_design(frame, result):
    """Z (rows x all groups) in the result's level order, and Lambda's diagonal (random intercepts)."""
    blocks, scales = [], []
    for effects, row in zip(result.level_effects, result.random):
        ids = effects.group_ids[effects.level].to_numpy()
        blocks.append((frame[effects.level].to_numpy()[:, None] == ids[None, :]).astype(float))
        scales.append(np.full(ids.size, row.estimate))
    return np.hstack(blocks), np.concatenate(scales)


@pytest.mark.parametrize("small_limits", [False, True])
def test_modes_deviance_and_conditional_sds_against_a_dense_computation(small_limits, monkeypatch):
    """At the estimates: the predicted effects are the conditional modes (Lambda'Z'(y - mu) = u), -2 log L
    is the Laplace formula computed densely, and the conditional sds are sqrt diag(Lambda H^-1 Lambda').
    With small limits the large-data branches run: the sparse LU of S and H^-1's entries in chunks."""
    from engine.glmm import crossed_modes

    if small_limits:
        monkeypatch.setattr(crossed_modes, "DENSE_LIMIT", 0)
        monkeypatch.setattr(crossed_modes, "DENSE_FILL", 2.0)
        monkeypatch.setattr(crossed_modes, "DENSE_PRODUCT_LIMIT", 0)
    frame = _small_crossed_binary()
    result = fit_mixed(frame, ModelSpec.parse("melogit y x || _all: R.student || _all: R.item"))
    assert result.converged
    z, lam = _dense_design(frame, result)
    b = np.concatenate([effects.estimates[:, 0] for effects in result.level_effects])
    u = b / lam
    x = np.column_stack([frame.x, np.ones(len(frame))])
    beta = np.array([result.coef("x").coef, result.coef("_cons").coef])
    eta = x @ beta + z @ b
    mu = 1 / (1 + np.exp(-eta))
    y = frame.y.to_numpy(float)
    np.testing.assert_allclose(lam * (z.T @ (y - mu)), u, atol=1e-7)
    zl = z * lam
    h = zl.T @ (zl * (mu * (1 - mu))[:, None]) + np.eye(lam.size)
    log_density = np.sum(y * eta - np.log1p(np.exp(eta)))
    deviance = -2 * log_density + u @ u + np.linalg.slogdet(h)[1]
    assert -0.5 * deviance == pytest.approx(result.loglik, rel=1e-10)
    sds = np.concatenate([effects.std_errors[:, 0] for effects in result.level_effects])
    np.testing.assert_allclose(sds, lam * np.sqrt(np.diag(np.linalg.inv(h))), rtol=1e-8)
    np.testing.assert_allclose(result.fitted, mu, rtol=1e-10)


@pytest.mark.parametrize("model, link, small_limits", [("melogit", "logit", False), ("meprobit", "probit", False),
                                                       ("mepoisson", "log", False), ("melogit", "logit", True)])
def test_exact_gradient_equals_differences(model, link, small_limits, monkeypatch):
    """The criterion's exact gradient in (theta, beta), random slope included, against central differences
    (with small limits: H21 sparse, S by SuperLU, H^-1's entries gathered pair by pair)."""
    from engine.glmm import crossed_modes

    if small_limits:
        for name, value in (("DENSE_LIMIT", 0), ("DENSE_FILL", 2.0), ("DENSE_PRODUCT_LIMIT", 0)):
            monkeypatch.setattr(crossed_modes, name, value)
    from engine.glmm.crossed_criterion import CrossedGlmmCriterion
    from engine.glmm.family import Family
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.crossed.factors import grouping_factors

    frame = _small_crossed_binary()
    spec = ModelSpec.parse(f"{model} y x || _all: R.item || student: x, covariance(unstructured)")
    factors = grouping_factors(frame, spec)
    y = frame.y.to_numpy(float)
    columns = [np.ones((len(frame), 1)), np.column_stack([np.ones(len(frame)), frame.x])]
    covariances = [LevelCovariance(1, "independent"), LevelCovariance(2, "unstructured")]
    x = np.column_stack([frame.x, np.ones(len(frame))])
    criterion = CrossedGlmmCriterion(factors, Family(spec.family, link), y, x, np.zeros(len(frame)), columns,
                                     covariances)
    params = np.array([0.7, 0.9, 0.2, 0.4, 0.3, -0.2])
    _, gradient = criterion.deviance_and_gradient(params)
    differences = np.empty(params.size)
    for j in range(params.size):
        up, down = params.copy(), params.copy()
        up[j] += 1e-5
        down[j] -= 1e-5
        differences[j] = (criterion.deviance(up) - criterion.deviance(down)) / 2e-5
    np.testing.assert_allclose(gradient, differences, rtol=1e-6, atol=1e-5)


def test_factors_that_nest_in_the_data_go_to_the_nested_path():
    frame = pd.read_csv(DATA / "absences.csv")
    frame["classroom"] = frame.school * 100 + frame["class"]  # class ids unique across schools: they nest
    crossed = fit_mixed(frame, ModelSpec.parse(
        "mepoisson absences x || _all: R.school || _all: R.classroom, exposure(days)"))
    nested = fit_mixed(frame, ModelSpec.parse("mepoisson absences x || school: || classroom:, exposure(days)"))
    assert crossed.loglik == pytest.approx(nested.loglik, rel=1e-10)
    assert crossed.coef("x").se == pytest.approx(nested.coef("x").se, rel=1e-8)
    assert any("nest in these data" in note for note in crossed.notes)


def test_adaptive_quadrature_is_refused_for_crossed_factors():
    with pytest.raises(UserInputError, match="crossed random factors.*Laplace"):
        ModelSpec.parse("melogit " + VERBAGG + ", intpoints(7)")
    with pytest.raises(UserInputError, match="crossed random factors.*Laplace"):
        ModelSpec.parse("glmer(r2 ~ anger + (1|id) + (1|item), family = binomial, nAGQ = 5)")


def test_report_json_and_predicted_effects_of_a_crossed_fit():
    """Stata's layout for crossed terms (_all, var(R.x)); JSON rows keep level = the factor and
    param = sd(_cons); groups per factor; predicted effects per factor, fitted probabilities."""
    from engine.glmm.report import format_glmm_report

    case, frame, result = fit("verbagg_logit")
    text = format_glmm_report(result)
    assert "var(R.item)" in text and "var(R.id)" in text and "\n_all         |" in text
    assert "Integration method: laplace" in text
    payload = json.loads(result.to_json())
    assert [(row["level"], row["param"]) for row in payload["random"]] == [("id", "sd(_cons)"), ("item", "sd(_cons)")]
    assert payload["family"] == "binomial" and payload["link"] == "logit" and payload["nagq"] == 1
    assert [(g["level"], g["groups"], g["min"], g["max"]) for g in payload["groups"]] == [("id", 316, 24, 24),
                                                                                         ("item", 24, 316, 316)]
    items = result.level_effects[1]
    assert items.level == "item" and items.estimates.shape == (24, 1)
    assert list(items.group_ids["item"]) == list(range(1, 25))
    # the fitted probabilities are the fixed part plus both factors' effects, through the inverse logit
    x = np.column_stack([frame.anger, frame.male, frame.btype == 2, frame.btype == 3, frame.self,
                         np.ones(len(frame))]).astype(float)
    beta = np.array([row.coef for row in result.fixed])
    eta = x @ beta
    for effects in result.level_effects:
        lookup = dict(zip(effects.group_ids[effects.level], effects.estimates[:, 0]))
        eta = eta + frame[effects.level].map(lookup).to_numpy()
    np.testing.assert_allclose(result.fitted, 1 / (1 + np.exp(-eta)), rtol=1e-10)
    # the effects' spread: their sds are below the factors' sds (shrinkage), and not zero
    assert 0 < np.std(items.estimates) < case["sd"]["item"]
    assert np.all((items.std_errors > 0) & (items.std_errors < case["sd"]["item"]))


def test_row_predictions_of_crossed_and_nested_count_models():
    """predict after mepoisson: xb includes ln(exposure), eta adds each factor's effect, fitted = exp(eta)
    (the fit's own means), fitted_fixed = exp(xb); a row with a missing value keeps its ids, no numbers."""
    from engine.predictions import random_effects_table, row_predictions

    frame = pd.read_csv(DATA / "absences_crossed.csv")
    frame.loc[3, "x"] = np.nan
    result = fit_mixed(frame, ModelSpec.parse("mepoisson absences x || _all: R.school || _all: R.hood, exposure(days)"))
    rows = row_predictions(frame, result)
    kept = rows[rows.in_sample]
    data = frame.drop(index=3)
    xb = np.log(data.days) + result.coef("_cons").coef + result.coef("x").coef * data.x
    np.testing.assert_allclose(kept.xb, xb, rtol=1e-12)
    table = random_effects_table(result)
    for level in ("school", "hood"):
        lookup = table[table.level == level].set_index(level)["estimate"]
        np.testing.assert_allclose(kept[f"re_{level}__cons"], data[level].map(lookup), rtol=1e-12)
    np.testing.assert_allclose(kept.eta, xb + kept.re_school__cons + kept.re_hood__cons, rtol=1e-12)
    np.testing.assert_allclose(kept.fitted, np.exp(kept.eta), rtol=1e-12)
    np.testing.assert_allclose(kept.fitted, result.fitted, rtol=1e-10)
    np.testing.assert_allclose(kept.fitted_fixed, np.exp(xb), rtol=1e-12)
    np.testing.assert_allclose(kept.residual, data.absences - kept.fitted, rtol=1e-12)
    assert not rows.in_sample[3] and np.isnan(rows.fitted[3]) and rows.school[3] == frame.school[3]
    nested = pd.read_csv(DATA / "absences.csv")
    fit = fit_mixed(nested, ModelSpec.parse("mepoisson absences x || school: || class:, exposure(days)"))
    np.testing.assert_allclose(row_predictions(nested, fit).fitted, fit.fitted, rtol=1e-10)


def test_without_the_inverse_the_fit_takes_differences_and_agrees(monkeypatch):
    """When S is too large to invert, derivatives come from differences of the deviance: the same fit,
    and the predicted effects come without conditional sds (said in a note)."""
    from engine.glmm import crossed_modes

    frame = _small_crossed_binary()
    spec = ModelSpec.parse("melogit y x || _all: R.student || _all: R.item")
    exact = fit_mixed(frame, spec)
    monkeypatch.setattr(crossed_modes, "INVERSE_LIMIT", 0)
    numeric = fit_mixed(frame, spec)
    assert numeric.converged
    assert numeric.loglik == pytest.approx(exact.loglik, rel=1e-9)
    for a, b in zip(numeric.fixed, exact.fixed):
        assert a.coef == pytest.approx(b.coef, abs=2e-4) and a.se == pytest.approx(b.se, rel=1e-3)
    for a, b in zip(numeric.random, exact.random):
        assert a.estimate == pytest.approx(b.estimate, rel=1e-3)
    assert np.all(np.isnan(numeric.level_effects[0].std_errors))
    assert any("Conditional standard errors" in note for note in numeric.notes)


LME4_RANEF = {  # VerbAgg logit: ranef(m, condVar = TRUE), tests/r/glmm_crossed_ranef.R: (mode, conditional sd)
    ("item", 1): (-0.2330775695, 0.1464493037), ("item", 2): (0.1655014477, 0.1386329802),
    ("item", 3): (0.7103190925, 0.1368736297), ("item", 24): (-0.1666139918, 0.1642970552),
    ("id", 1): (-0.6735992150, 0.4407105548), ("id", 2): (-2.2395569289, 0.6395204932),
    ("id", 3): (-0.0430009932, 0.4378981075), ("id", 316): (-0.5896866523, 0.4725282761),
}


def test_predicted_effects_and_conditional_sds_match_lme4():
    _, _, result = fit("verbagg_logit")
    effects = {level_effects.level: level_effects for level_effects in result.level_effects}
    for (level, group), (mode, sd) in LME4_RANEF.items():
        row = list(effects[level].group_ids[level]).index(group)
        assert effects[level].estimates[row, 0] == pytest.approx(mode, rel=1e-3, abs=1e-5), (level, group)
        assert effects[level].std_errors[row, 0] == pytest.approx(sd, rel=1e-4), (level, group)
