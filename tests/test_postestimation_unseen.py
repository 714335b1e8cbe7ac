"""Predictions, margins, contrasts and tests after linear mixed models and GLMMs on data the engine
was not tuned on, against R (lme4 1.1.31, lmerTest, pbkrtest, emmeans 1.8.4).

The R is tests/r/postestimation_unseen_literals.R, its output tests/r/postestimation_unseen_literals.out;
the numbers are carried here as literals (the tests never need R). Data: a factor g with three
levels, a continuous x and their interaction; 12 schools x 4 classes x 8 rows.

Linear margins are compared with emmeans: with x entering linearly, Stata's asobserved margin at a
level of g (mean over the rows) equals emmeans' margin at the mean of x, and the average slope of x
with the observed shares of g equals emtrends(weights = "proportional"). GLMM margins on the
probability or count scale (Stata's predict(mu fixedonly): the mean over the rows of each row's
g^-1(x'b)) are not what emmeans reports (g^-1 of the mean linear prediction), so R computes them by
hand from fixef() and vcov(), with a finite-difference delta method.

Tolerances: the linear fit matches lmer to 1e-6; the GLMM estimates differ from glmer's by up to 3e-4
(log-likelihoods agree to 2e-4) and the GLMM SEs by up to 0.2% (the observed information of all
parameters, as Stata, against lme4's Hessian), so GLMM numbers are held to those gaps; the same
quantities computed independently here from the fit's own coefficients and covariance must agree to 1e-7.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import special

from engine.errors import UserInputError
from engine.lincom import lincom
from engine.margins import Setting, contrast, margins
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.postestimation_command import run_postestimation
from engine.predictions import row_predictions
from tests.reference_cases import DATA

LINEAR = "y i.g##c.x || school: || cls: x, cov(unstructured) reml"
BINARY = "melogit yb i.g##c.x || school: || cls:"
COUNT = "mepoisson yc i.g##c.x || school: || cls:"


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(DATA / "postestimation_unseen.csv")


def _fit(data, text, dfmethod=None):
    return fit_mixed(data, ModelSpec.parse(text + (f" dfmethod({dfmethod})" if dfmethod else "")), predict=True)


@pytest.fixture(scope="module")
def kroger(data):
    return _fit(data, LINEAR, "kroger")


@pytest.fixture(scope="module")
def satterthwaite(data):
    return _fit(data, LINEAR, "satterthwaite")


@pytest.fixture(scope="module")
def binary(data):
    return _fit(data, BINARY)


@pytest.fixture(scope="module")
def count(data):
    return _fit(data, COUNT)


def _rows(table):
    return [(r.label, r.estimate, r.se, r.df) for r in table.rows]


# --- linear mixed model: predictions, margins, contrasts, test (lmer, emmeans, pbkrtest) ---

def test_linear_predictions_match_predict_merMod(data, kroger):
    rows = row_predictions(data, kroger)
    # predict(m, re.form = NA) and predict(m) at rows 1, 200, 384
    np.testing.assert_allclose(rows["xb"].to_numpy()[[0, 199, 383]],
                               [-0.0240961890274, 1.0021756102988, 1.2927966263247], atol=1e-6)
    np.testing.assert_allclose(rows["fitted"].to_numpy()[[0, 199, 383]],
                               [-1.30612755904, 1.39325827723, -0.93799356247], atol=2e-6)


@pytest.mark.parametrize("which, expected", [
    # emmeans(m, ~g, lmer.df = ...): emmean, SE, df
    ("kroger", [(0.3978963, 0.20075891, 16.98), (0.8326874, 0.19664001, 15.66), (-0.0469269, 0.19917819, 16.47)]),
    ("satterthwaite", [(0.3978963, 0.20029339, 16.64), (0.8326874, 0.19618648, 15.35),
                       (-0.0469269, 0.19874618, 16.13)]),
])
def test_linear_margins_of_the_factor_match_emmeans(data, which, expected, request):
    table = margins(data, request.getfixturevalue(which), at=[Setting("g")])
    for (label, value, se, df), (r_value, r_se, r_df) in zip(_rows(table), expected):
        assert value == pytest.approx(r_value, abs=1e-6)
        assert se == pytest.approx(r_se, rel=1e-5)
        assert df == pytest.approx(r_df, abs=0.01)
    assert table.title == "Predictive margins (linear prediction, fixed portion)"


def test_linear_average_and_simple_slopes_match_emtrends(data, kroger):
    # emtrends(m, ~1, var = "x", weights = "proportional"), Kenward-Roger
    overall = margins(data, kroger, dydx="x").rows[0]
    assert (overall.estimate, overall.se, overall.df) == pytest.approx((0.845186, 0.07182867, 41.88), rel=1e-4)
    # emtrends(m, ~g, var = "x"): the simple slopes
    slopes = margins(data, kroger, dydx="x", at=[Setting("g")])
    expected = [(0.6635893, 0.11439634, 127.16), (1.3037673, 0.10676548, 121.92), (0.4993337, 0.12339468, 162.33)]
    for (label, value, se, df), (r_value, r_se, r_df) in zip(_rows(slopes), expected):
        assert (value, se, df) == pytest.approx((r_value, r_se, r_df), rel=1e-4)


def test_linear_pairwise_contrasts_at_x_match_emmeans_pairs(data, satterthwaite):
    # pairs(emmeans(m, ~g|x, at = list(x = c(-1, 1)), lmer.df = "satterthwaite")): a - b, a - c, b - c;
    # the project reports b - a, c - a, c - b
    table = contrast(data, satterthwaite, "g", pairwise=True, at=[Setting("x", [-1.0, 1.0])])
    expected = [(-0.2181120, 0.20085841, 330.94), (-0.2773026, 0.21647592, 337.45), (-0.0591905, 0.20568179, 293.99),
                (1.0622438, 0.20340206, 336.20), (-0.6058138, 0.21156885, 329.90), (-1.6680576, 0.21119982, 339.52)]
    for (label, value, se, df), (r_value, r_se, r_df) in zip(_rows(table), expected):
        assert value == pytest.approx(r_value, abs=2e-6)
        assert se == pytest.approx(r_se, rel=1e-5)
        assert df == pytest.approx(r_df, abs=0.01)


def test_linear_lincom_matches_lmertest_contest(data, kroger):
    # contest(m, L, ddf = "Kenward-Roger"): gb + 2 gb:x and x - gc:x
    table = lincom(kroger, ["b.g + 2*b.g#c.x", "_b[x] - _b[c.g#c.x]"])
    expected = [(1.702421716, 0.3291930604, 332.5971181), (0.8278449733, 0.2496124114, 272.5787775)]
    for (label, value, se, df), (r_value, r_se, r_df) in zip(_rows(table), expected):
        assert (value, se, df) == pytest.approx((r_value, r_se, r_df), rel=1e-5)


# --- GLMMs: the scale of the margins, predictions, test ---

def test_glmm_predictions_are_the_inverse_link_of_xb_and_eta(data, binary, count):
    for fit, inverse in ((binary, special.expit), (count, np.exp)):
        rows = row_predictions(data, fit)
        random = rows.filter(like="re_").sum(axis=1).to_numpy()
        np.testing.assert_allclose(rows["eta"], rows["xb"] + random, atol=1e-12)
        np.testing.assert_allclose(rows["fitted"], inverse(rows["eta"]), rtol=1e-12)
        np.testing.assert_allclose(rows["fitted_fixed"], inverse(rows["xb"]), rtol=1e-12)


def test_glmm_margins_say_their_scale(data, binary, count):
    """A GLMM's default margins are log-odds / log counts: the title and a note must say so, since
    Stata users expect probabilities or counts after melogit / mepoisson."""
    logit = margins(data, binary, at=[Setting("g")])
    assert logit.title == "Predictive margins (linear prediction: log-odds, fixed portion)"
    assert any("not probabilities" in note and "--predict mu" in note for note in logit.notes)
    log = margins(data, count, dydx="x")
    assert "log of the expected count" in log.title
    # emmeans(gm, ~g) on the link scale (x linear: equal to the asobserved margin), glmer's fit
    expected = [(-0.3028006, 0.28873233), (0.6903800, 0.28926711), (-0.4273385, 0.27894880)]
    for (label, value, se, df), (r_value, r_se) in zip(_rows(logit), expected):
        assert value == pytest.approx(r_value, abs=5e-4)
        assert se == pytest.approx(r_se, rel=3e-3)
        assert df is None


# glmer fits, computed by hand in R: (estimate, SE) of the mean predicted probability / count
R_MU = {
    "binary": {
        "g": [(0.4352051151, 0.0604282735), (0.6342338486, 0.0531536825), (0.3962086569, 0.0657348663)],
        "dydx_x": (0.1564604656, 0.0229236310),
        "dydx_g_at_x_0.5": [(0.2406263234, 0.0765948930), (-0.1108431400, 0.0809815389)],
        "pairs": [(0.1990287335, 0.0605998466), (-0.0389964583, 0.0662739999), (-0.2380251917, 0.0642269534)],
        "chi2": 21.24145715,
    },
    "count": {
        "g": [(1.3898432167, 0.1138132359), (1.7316606463, 0.1250866024), (1.1569653400, 0.1003289742)],
        "dydx_x": (0.3932110469, 0.0696232798),
        "dydx_g_at_x_0.5": [(0.4829010561, 0.1773123121), (-0.2846811430, 0.1618393991)],
        "pairs": [(0.3418174296, 0.1598065443), (-0.2328778767, 0.1459098845), (-0.5746953062, 0.1527338140)],
        "chi2": 31.61200539,
    },
}


def _mu_tables(data, fit):
    return {
        "g": margins(data, fit, at=[Setting("g")], scale="mu"),
        "dydx_x": margins(data, fit, dydx="x", scale="mu"),
        "dydx_g_at_x_0.5": margins(data, fit, dydx="g", at=[Setting("x", [0.5])], scale="mu"),
        "pairs": contrast(data, fit, "g", pairwise=True, scale="mu"),
    }


@pytest.mark.parametrize("which", ["binary", "count"])
def test_glmm_margins_on_the_response_scale_match_glmer_by_hand(data, which, request):
    fit = request.getfixturevalue(which)
    tables = _mu_tables(data, fit)
    expected = R_MU[which]
    for key, table in tables.items():
        wanted = expected[key] if isinstance(expected[key], list) else [expected[key]]
        assert len(table.rows) == len(wanted)
        for row, (r_value, r_se) in zip(table.rows, wanted):
            assert row.estimate == pytest.approx(r_value, abs=5e-5), (key, row.label)
            assert row.se == pytest.approx(r_se, rel=3e-3), (key, row.label)
    word = "probability" if which == "binary" else "count"
    assert tables["g"].title == f"Predictive margins (predicted {word}, fixed portion)"
    assert any("predict(mu fixedonly)" in note for note in tables["g"].notes)


@pytest.mark.parametrize("which", ["binary", "count"])
def test_glmm_response_margins_equal_an_independent_computation_from_the_fit(data, which, request):
    """The same margins from the fit's own coefficients and covariance, with a finite-difference
    gradient in b (the engine differentiates analytically in b, numerically in x; here the slope in x
    is written out): agreement to 1e-7."""
    fit = request.getfixturevalue(which)
    names = [row.term for row in fit.fixed]
    beta = np.array([row.coef for row in fit.fixed])
    cov = np.asarray(fit.vcov)
    inverse = special.expit if which == "binary" else np.exp

    def design(g=None, x=None):
        level = data["g"] if g is None else pd.Series([g] * len(data))
        xs = data["x"].to_numpy() if x is None else np.broadcast_to(x, len(data))
        columns = {"b.g": (level == "b") * 1.0, "c.g": (level == "c") * 1.0, "x": xs,
                   "b.g#c.x": (level == "b") * xs, "c.g#c.x": (level == "c") * xs, "_cons": np.ones(len(data))}
        return np.column_stack([np.asarray(columns[n], dtype=float) for n in names])

    def mean_mu(b, **at):
        return float(np.mean(inverse(design(**at) @ b)))

    def value_and_se(function):
        step = 1e-6
        gradient = np.array([(function(beta + step * e) - function(beta - step * e)) / (2 * step)
                             for e in np.eye(len(beta))])
        return function(beta), float(np.sqrt(gradient @ cov @ gradient))

    def mean_slope(b):  # d mean(mu) / dx written out: mean(dmu/deta * (b_x + b_g#x of the row's level))
        eta = design() @ b
        slope = inverse(eta) * (1 - inverse(eta)) if which == "binary" else np.exp(eta)
        coefficient = dict(zip(names, b))
        per_row = coefficient["x"] + np.select([data["g"] == "b", data["g"] == "c"],
                                               [coefficient["b.g#c.x"], coefficient["c.g#c.x"]], 0.0)
        return float(np.mean(slope * per_row))

    expected = {
        "g": [value_and_se(lambda b, g=g: mean_mu(b, g=g)) for g in "abc"],
        "dydx_x": [value_and_se(mean_slope)],
        "dydx_g_at_x_0.5": [value_and_se(lambda b, g=g: mean_mu(b, g=g, x=0.5) - mean_mu(b, g="a", x=0.5))
                            for g in "bc"],
        "pairs": [value_and_se(lambda b, p=p: mean_mu(b, g=p[1]) - mean_mu(b, g=p[0]))
                  for p in (("a", "b"), ("a", "c"), ("b", "c"))],
    }
    for key, table in _mu_tables(data, fit).items():
        for row, (value, se) in zip(table.rows, expected[key]):
            assert row.estimate == pytest.approx(value, abs=1e-7), (key, row.label)
            assert row.se == pytest.approx(se, rel=1e-6), (key, row.label)


@pytest.mark.parametrize("which", ["binary", "count"])
def test_glmm_wald_test_of_several_terms(data, which, request):
    from engine.wald_tests import joint_test

    fit = request.getfixturevalue(which)
    test = joint_test(fit, ["i.g", "i.g#c.x"])
    names = [row.term for row in fit.fixed]
    index = [names.index(n) for n in ("b.g", "c.g", "b.g#c.x", "c.g#c.x")]
    beta = np.array([row.coef for row in fit.fixed])[index]
    cov = np.asarray(fit.vcov)[np.ix_(index, index)]
    assert test.chi2 == pytest.approx(float(beta @ np.linalg.solve(cov, beta)), rel=1e-10)
    assert test.df1 == 4
    assert test.chi2 == pytest.approx(R_MU[which]["chi2"], rel=5e-3)  # b' V^-1 b with glmer's fixef and vcov


def test_response_scale_refused_for_a_linear_model_and_reached_from_the_window_command(data, kroger, binary):
    with pytest.raises(UserInputError, match="binary and count models"):
        margins(data, kroger, at=[Setting("g")], scale="mu")
    with pytest.raises(UserInputError, match="xb .* or mu"):
        margins(data, binary, scale="probability")
    typed = run_postestimation("margins g, predict(mu)", data, binary)
    direct = margins(data, binary, at=[Setting("g")], scale="mu")
    assert [r.estimate for r in typed.rows] == [r.estimate for r in direct.rows]
    pairs = run_postestimation("pwcompare g, predict(mu fixedonly)", data, binary)
    assert pairs.rows[0].estimate == pytest.approx(R_MU["binary"]["pairs"][0][0], abs=5e-5)


def test_exposure_left_out_of_margins_is_said(data):
    frame = data.assign(days=np.linspace(50, 150, len(data)).round())
    fit = fit_mixed(frame, ModelSpec.parse("mepoisson yc x || school:, exposure(days)"), predict=False)
    for scale in ("xb", "mu"):
        table = margins(frame, fit, scale=scale)
        assert any("exposure days is left out" in note and "per unit of days" in note for note in table.notes)
    # the margin itself is per day: mean of exp(x'b) without log(days)
    beta = {row.term: row.coef for row in fit.fixed}
    per_day = np.mean(np.exp(beta["_cons"] + beta["x"] * frame["x"]))
    assert margins(frame, fit, scale="mu").rows[0].estimate == pytest.approx(per_day, rel=1e-12)


def test_glmm_lincom_says_its_scale_and_gives_the_odds_ratio_of_an_or_fit(data, binary):
    """After 'melogit ..., or' the fit shows odds ratios but lincom combines coefficients: the
    output says so and gives exp(estimate) with its interval (Stata's lincom, or)."""
    shown_as_ratios = fit_mixed(data, ModelSpec.parse(BINARY + ", or"), predict=False)
    table = lincom(shown_as_ratios, ["x", "b.g + 2*b.g#c.x"])
    assert "Combinations of coefficients on the log-odds scale, not odds ratios." in table.notes
    ratio_of_x = next(row for row in shown_as_ratios.fixed_eform if row.term == "x")
    assert f"(1) as an odds ratio: exp = {ratio_of_x.coef:.6g} [{ratio_of_x.ci[0]:.6g}, {ratio_of_x.ci[1]:.6g}]" \
        in table.notes
    # glmer: exp(gb + 2 gb:x) = exp(1.434208), SE of the sum 0.7588036 (contest-style arithmetic on vcov(gm))
    second = table.rows[1]
    assert (second.estimate, second.se) == pytest.approx((1.434208, 0.7588036), rel=2e-3)
    assert not any("odds ratio:" in note for note in lincom(binary, ["x"]).notes)  # no ratios unless asked


def test_response_margins_of_successes_out_of_trials_are_per_trial_probabilities():
    frame = pd.read_csv(DATA / "cbpp_aggregated.csv")
    fit = fit_mixed(frame, ModelSpec.parse("melogit incidence i.period || herd:, binomial(size)"), predict=False)
    table = margins(frame, fit, at=[Setting("period")], scale="mu")
    assert any("per trial, not expected successes out of size trials" in note for note in table.notes)
    beta = {row.term: row.coef for row in fit.fixed}
    # one intercept per period and no other predictor: every row's probability is expit(_cons + period)
    assert table.rows[0].estimate == pytest.approx(special.expit(beta["_cons"]), rel=1e-12)
    assert table.rows[1].estimate == pytest.approx(special.expit(beta["_cons"] + beta["2.period"]), rel=1e-12)
