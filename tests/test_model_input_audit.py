"""Model input that used to be dropped, misread or refused obscurely (the model-input audit).

Every term or option a user writes, in Stata syntax or as an lme4 formula / call, must either take
effect -- checked here against R (lme4 1.1-31, glm) with the numbers carried as literals -- or be
refused with one line naming the problem (the exact line is checked).
"""

import json

import pytest

import main
from engine.errors import UserInputError
from engine.model_spec import Level, ModelSpec
from tests.reference_cases import DATA

SLEEP = str(DATA / "sleepstudy.csv")
QUADRATIC = str(DATA / "quadratic_interaction.csv")
ABSENCES = str(DATA / "absences.csv")
CBPP = str(DATA / "cbpp_aggregated.csv")
CBPP_LONG = str(DATA / "cbpp_long.csv")


def fit_json(tmp_path, *arguments):
    out = tmp_path / "fit.json"
    assert main.main(["fit", *arguments, "--json", str(out), "--quiet"]) == 0
    return json.loads(out.read_text())


def refusal(capsys, *arguments):
    """The one error line of a refused command (exit code 2)."""
    assert main.main(["fit", *arguments]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    return lines[0].removeprefix("error: ")


def coef(result, term):
    return next(row for row in result["fixed"] if row["term"] == term)


def estimate(result, level, param):
    return next(row["estimate"] for row in result["random"] if row["level"] == level and row["param"] == param)


def close(value, expected, tolerance=1e-4):
    return abs(value - expected) <= tolerance * max(1.0, abs(expected))


# ----- Stata syntax --------------------------------------------------------------------------------
def test_xtmixed_fits_by_reml_as_stata_xtmixed_did(tmp_path):
    # Before: xtmixed was read as mixed and fitted by ML. Stata's xtmixed (the seed's command) printed
    # "Mixed-effects REML regression"; mle asks for ML. R: lmer(Reaction ~ Days + (1|Subject)), REML and ML.
    reml = fit_json(tmp_path, SLEEP, "--model", "xtmixed Reaction Days || Subject:")
    assert reml["method"] == "REML" and reml["model"].endswith(", reml")
    assert close(reml["loglik"], -893.232542697, 1e-8)
    assert close(estimate(reml, "Subject", "sd(_cons)"), 37.12382711, 1e-3)
    assert close(coef(reml, "Days")["se"], 0.8042214282)
    ml = fit_json(tmp_path, SLEEP, "--model", "xtmixed Reaction Days || Subject:, mle")
    assert ml["method"] == "ML" and close(ml["loglik"], -897.039321503, 1e-8)
    assert close(coef(ml, "_cons")["se"], 9.5061851784)
    assert ModelSpec.parse("mixed Reaction Days || Subject:").method == "ML"  # mixed keeps Stata 13's ML


def test_variance_option_in_the_model_reports_variances(capsys):
    # Before: ', variance' / ', var' were accepted and ignored (the report showed sds).
    assert main.main(["fit", SLEEP, "--model", "xtmixed Reaction Days || Subject:, variance"]) == 0
    report = capsys.readouterr().out
    line = next(text for text in report.splitlines() if "var(_cons)" in text)
    assert abs(float(line.split("|")[1].split()[0]) - 1378.1785392) < 0.05  # lme4's VarCorr variance
    assert "sd(_cons)" not in report
    assert main.main(["fit", SLEEP, "--model", "xtmixed Reaction Days || Subject:, stddev"]) == 0
    assert "sd(_cons)" in capsys.readouterr().out


def test_stata_abbreviations_read_as_the_full_options():
    full = ModelSpec.parse("y x, noconstant || g: x z, covariance(unstructured) noconstant")
    for text in ("y x, noc || g: x z, covari(un) noconst", "y x, nocons || g: x z, cov(unst) noconstan",
                 "y x, noconstant || g: x z, covarianc(unstructu) noc"):
        assert ModelSpec.parse(text) == full
    assert ModelSpec.parse("y x || g: x, cov(iden)").levels[0].covariance == "identity"
    assert ModelSpec.parse("y x || g: x, cov(independ)").levels[0].covariance == "independent"
    assert ModelSpec.parse("y x || g:, reml dfm(kr)").dfmethod == "kroger"


def test_identity_covariance_is_not_shown_as_an_independent_lme4_formula():
    # lme4 has no equal-variance structure: the formula says so (nlme's pdIdent fits it: logLik -707.705
    # on the audit data, the same as this program's covariance(identity)).
    spec = ModelSpec.parse("y x || g: x, cov(id)")
    assert spec.to_lme4() == ("y ~ x + (0 + x | g) + (1 | g)  # lme4 has no identity covariance: use nlme, "
                              "random = list(g = pdIdent(~ x))")


@pytest.mark.parametrize("model, message", [
    ("mixed Reaction Days if Days > 2 || Subject:",
     "'if' in the model 'mixed Reaction Days if Days > 2 || Subject:': Stata's if and in qualifiers are not "
     "supported; keep the rows you want in the data file (or a copy of it) and fit that"),
    ("mixed Reaction Days in 1/100 || Subject:",
     "'in' in the model 'mixed Reaction Days in 1/100 || Subject:': Stata's if and in qualifiers are not "
     "supported; keep the rows you want in the data file (or a copy of it) and fit that"),
    ("mixed Reaction Days [fw=Days] || Subject:",
     "weights '[fw=Days]' in the model 'mixed Reaction Days [fw=Days] || Subject:' are not supported: every row "
     "counts once"),
    ("regress Reaction Days",
     "'regress' is not a model that fit reads (OLS is fitted by main.py compare DATA --model \"y x\" --estimator "
     "ols); models are written as Stata's mixed, melogit, meprobit, mepoisson or meglm, or lme4's lmer(...) or "
     "glmer(...) call. If 'regress' is the outcome column, start with mixed: 'mixed regress ...'"),
    ("xtreg Reaction Days, fe",
     "'xtreg' is not a model that fit reads (xtreg, fe and xtreg, re are fitted by main.py compare DATA --model "
     "\"y x\" --estimator 'fe GROUP' (or 're GROUP'); the ML random-intercept model is 'mixed y x || GROUP:'); "
     "models are written as Stata's mixed, melogit, meprobit, mepoisson or meglm, or lme4's lmer(...) or "
     "glmer(...) call. If 'xtreg' is the outcome column, start with mixed: 'mixed xtreg ...'"),
    ("Reaction ~ Days + (1|Subject)",
     "the model 'Reaction ~ Days + (1|Subject)' looks like an lme4 formula ('~'): give it with --formula, or as "
     "lmer(y ~ ..., data = d) or glmer(...); Stata syntax is 'y x || school:'"),
    ("mixed Reaction Days || Subject:, dfmethod()",
     "dfmethod() in 'mixed Reaction Days || Subject:, dfmethod()' needs a method: residual, repeated, anova, "
     "satterthwaite, kroger"),
    ("mixed Reaction Days || Subject:, reml dfmethod(residual) dfmethod(kroger)",
     "the model 'mixed Reaction Days || Subject:, reml dfmethod(residual) dfmethod(kroger)' gives two df methods "
     "(residual, kroger): choose one"),
    ("mixed Reaction Days || _all: R.Subject, reml ml",
     "the model 'mixed Reaction Days || _all: R.Subject, reml ml' asks for both ml and reml: choose one"),
    ("mixed Reaction Days || Subject: R.Days",
     "'Subject: R.Days': R.Days at a level other than _all (one effect per Subject and Days cell) is not "
     "supported; make one id column for the Subject-Days combination and give it its own level, or write "
     "'|| Subject: || Days:' (which adds a Subject intercept), or '|| _all: R.Days' for a factor crossed with "
     "the levels"),
    ("mixed Reaction Days || Subject: Days cov(un)",
     "level Subject: 'cov(un)' is not a column; options such as covariance(...) go after a comma: "
     "'|| Subject: x, cov(un)'"),
    ("mixed Reaction Days || Subject:, variance stddev",
     "the model 'mixed Reaction Days || Subject:, variance stddev' asks for both variance and stddev: choose one"),
])
def test_stata_input_that_would_be_misread_is_refused_by_name(capsys, model, message):
    assert refusal(capsys, SLEEP, "--model", model) == message


def test_reml_at_a_crossed_level_that_is_not_last_is_refused():
    # Before: ', reml' after '_all: R.x' was taken wherever it stood (and 'reml ml' there meant ML).
    with pytest.raises(UserInputError, match="option 'reml' is at level _all, which is not the last"):
        ModelSpec.parse("y x || _all: R.rater, reml || school:")


def test_display_flag_and_model_option_conflict_is_refused(capsys):
    assert refusal(capsys, SLEEP, "--model", "mixed Reaction Days || Subject:, stddev", "--variance") == \
        "--variance conflicts with 'stddev' in the model: give the display once"


# ----- GLMMs in Stata syntax -------------------------------------------------------------------------
def test_odds_ratios_of_a_single_level_logit(tmp_path):
    # Before: 'melogit y x, or' (no level: Stata's logit) ignored 'or' and printed log-odds.
    # R: glm(sick ~ factor(period), binomial); exp(coef) and exp(coef) * se.
    result = fit_json(tmp_path, CBPP_LONG, "--model", "melogit sick i.period, or")
    assert close(result["loglik"], -284.504859174, 1e-8)
    ratios = {row["term"]: row for row in result["fixed_eform"]}
    for term, value, se in (("_cons", 0.2811059908, 0.04073781341), ("2.period", 0.3101303069, 0.09039297392),
                            ("3.period", 0.2721490639, 0.08515028608), ("4.period", 0.1682543247, 0.06949161622)):
        assert close(ratios[term]["coef"], value) and close(ratios[term]["se"], se)
    assert result["model"].endswith(", or")


def test_incidence_rate_ratios_of_a_single_level_poisson(tmp_path):
    # R: glm(absences ~ x + offset(log(days)), poisson)
    result = fit_json(tmp_path, ABSENCES, "--model", "mepoisson absences x, exposure(days) irr")
    assert close(result["loglik"], -3980.50542359, 1e-8)
    ratios = {row["term"]: row for row in result["fixed_eform"]}
    assert close(ratios["x"]["coef"], 1.38251409099) and close(ratios["x"]["se"], 0.0146092096612)
    assert close(ratios["_cons"]["coef"], 0.08089383227) and close(ratios["_cons"]["se"], 0.0008826133917)


def test_meglm_family_binomial_with_trials_variable(tmp_path):
    # Stata's family(binomial size) = lme4's cbind(incidence, size - incidence); R: glmer on cbpp.
    result = fit_json(tmp_path, CBPP, "--model", "meglm incidence i.period || herd:, family(binomial size) link(logit)")
    assert result["model"].startswith("melogit incidence i.period || herd:, binomial(size)")
    assert result["loglik"] >= -92.0262818715 - 1e-6
    assert close(coef(result, "_cons")["coef"], -1.398532099, 1e-3)
    assert close(coef(result, "4.period")["coef"], -1.580313728, 1e-3)
    assert close(estimate(result, "herd", "sd(_cons)"), 0.6422613613, 2e-3)


@pytest.mark.parametrize("model, message", [
    ("melogit sick i.period || herd:, intpoints(7) laplace",
     "intpoints(7) and laplace (one point) contradict each other: give one"),
    ("meglm sick i.period || herd:, family(binomial 3) link(logit)",
     "family(binomial 3): give the number of trials as a variable (family(binomial n) or binomial(n)), not a number"),
    ("xtmelogit sick i.period || herd:",
     "'xtmelogit' is not a model that fit reads (write melogit (xtmelogit's default is 7-point adaptive "
     "quadrature: add intpoints(7) for one level)); models are written as Stata's mixed, melogit, meprobit, "
     "mepoisson or meglm, or lme4's lmer(...) or glmer(...) call. If 'xtmelogit' is the outcome column, start "
     "with mixed: 'mixed xtmelogit ...'"),
])
def test_glmm_options_that_contradict_or_are_unknown_are_refused(capsys, model, message):
    assert refusal(capsys, CBPP_LONG, "--model", model) == message


# ----- lme4 formulas and calls ---------------------------------------------------------------------
@pytest.mark.parametrize("formula", ["y ~ 0 + x + 1 + (1|g)", "y ~ x - 1 + 1 + (1|g)", "y ~ -1 + x + 1 + (1|g)"])
def test_the_last_intercept_term_decides_as_in_r(tmp_path, formula):
    # Before: any 0 or -1 removed the intercept; R keeps it when 1 comes later. R: lmer(y ~ 0 + x + 1 + (1|g)).
    result = fit_json(tmp_path, QUADRATIC, "--formula", formula)
    assert [row["term"] for row in result["fixed"]] == ["x", "_cons"]
    assert close(result["loglik"], -1666.56692942, 1e-8)
    assert close(coef(result, "_cons")["coef"], 1.711871279) and close(coef(result, "x")["se"], 0.08961871107)
    assert ModelSpec.parse_lme4("y ~ 1 + x - 1 + (1|g)").constant is False


def test_an_interaction_written_twice_in_either_order_counts_once(tmp_path):
    # Before: x:z + z:x was refused ("appears twice"); R keeps one x:z. R: lmer(y ~ x + x:z + z:x + (1|g)).
    result = fit_json(tmp_path, QUADRATIC, "--formula", "y ~ x + x:z + z:x + (1|g)")
    assert [row["term"] for row in result["fixed"]] == ["x", "c.x#c.z", "_cons"]
    assert close(result["loglik"], -1640.0339328, 1e-8)
    assert close(coef(result, "c.x#c.z")["coef"], 0.7117514545) and close(coef(result, "c.x#c.z")["se"], 0.09332210697)


def test_lmer_call_honours_reml_false(tmp_path):
    # R: lmer(y ~ x + x:z + (1|g), REML = FALSE)
    for flag, text in (("--model", "lmer(y ~ x + x:z + (1|g), data = d, REML = FALSE)"),
                       ("--formula", "lme4::lmer(formula = y ~ x + x:z + (1|g), d, REML = F)")):
        result = fit_json(tmp_path, QUADRATIC, flag, text)
        assert result["method"] == "ML" and close(result["loglik"], -1636.11022586, 1e-8)
        assert close(coef(result, "x")["se"], 0.08657167601)
        assert close(estimate(result, "g", "sd(_cons)"), 1.020102380, 1e-3)
    default = fit_json(tmp_path, QUADRATIC, "--model", "lmer(y ~ x + x:z + z:x + (1|g), data = d)")
    assert default["method"] == "REML" and close(default["loglik"], -1640.0339328, 1e-8)


def test_glmer_call_with_quoted_family_offset_argument_and_positional_data(tmp_path):
    # R: glmer(absences ~ x + (1|school), data, family = "poisson", offset = log(days))
    for text in ('glmer(absences ~ x + (1|school), data = d, family = "poisson", offset = log(days))',
                 "glmer (absences ~ x + offset(log(days)) + (1|school), d, poisson)"):
        result = fit_json(tmp_path, ABSENCES, "--model", text)
        assert result["family"] == "poisson" and "exposure(days)" in result["model"]
        assert result["loglik"] >= -2611.13602701 - 1e-6
        assert close(coef(result, "x")["coef"], 0.3268579175, 1e-3)
        assert close(coef(result, "_cons")["coef"], -2.6440571750, 1e-3)
        assert close(estimate(result, "school", "sd(_cons)"), 0.5077787673, 2e-3)


def test_reml_flag_with_a_glmer_call_is_refused(capsys):
    # Before: --reml with glmer(...) was dropped silently (the fit was ML).
    message = "REML is not defined for binary and count outcomes: they are fitted by maximum likelihood"
    call = "glmer(absences ~ x + (1|school), family = poisson)"
    assert refusal(capsys, ABSENCES, "--model", call, "--reml") == message
    assert refusal(capsys, ABSENCES, "--formula", call, "--reml") == message


@pytest.mark.parametrize("formula, message", [
    ("y ~ . + (1|g)", "formula 'y ~ . + (1|g)': '.' (every other column) is not supported; name the predictors"),
    ("y ~ x^2 + (1|g)",
     "term 'x^2': in an R formula x^2 is x crossed with itself, which is just x (lme4 fits x, not its power); "
     "write I(x^2) for the power, or x"),
    ("y ~ (x + z)^2 + (1|g)",
     "term '(x+z)^2': in an R formula (a + b)^2 means all interactions of a and b up to order 2; write them out, "
     "e.g. a*b for (a + b)^2"),
    ("y ~ log(x) + (1|g)",
     "term 'log(x)': functions of columns such as log() are not applied here; make a column holding log(x) in the "
     "data file and use that column"),
    ("y ~ x:scale(z) + (1|g)",
     "term 'scale(z)': functions of columns such as scale() are not applied here; make a column holding scale(z) "
     "in the data file and use that column"),
    ("y ~ poly(x, 2) + (1|g)",
     "term 'poly(x,2)': functions of columns such as poly() are not applied here; orthogonal polynomials are not "
     "supported: write x + I(x^2) (the same fit, other coefficients)"),
    ("y ~ x + offset(z) + (1|g)",
     "term 'offset(z)': functions of columns such as offset() are not applied here; an offset in a linear model "
     "is not supported: subtract it from the outcome (a new column y - z)"),
    ("log(y) ~ x + (1|g)",
     "formula 'log(y) ~ x + (1|g)': the outcome must be one column name, not 'log(y)' (functions of the outcome "
     "are not applied: make a column holding it)"),
    ("y ~ x + (1|g), REML = FALSE",
     "formula 'y ~ x + (1|g), REML = FALSE': a formula takes no arguments after a comma; write the call "
     "lmer(y ~ ..., data = d, REML = FALSE) (or glmer(...)), or use --ml / --reml"),
    ("lmer(y ~ x + (1|g), data = d, weights = w)",
     "lmer argument 'weights' is not supported (it would change the model); give the formula with data, and "
     "REML = TRUE or FALSE"),
    ("lmer(y ~ x + (1|g), data = d, REML = maybe)", "lmer argument REML = maybe: write REML = TRUE or REML = FALSE"),
])
def test_lme4_input_that_would_be_misread_is_refused_by_name(capsys, formula, message):
    assert refusal(capsys, QUADRATIC, "--formula", formula) == message


def test_lmer_reml_argument_conflicting_with_the_flag_is_refused(capsys):
    assert refusal(capsys, QUADRATIC, "--formula", "lmer(y ~ x + (1|g), data = d, REML = FALSE)", "--reml") == \
        "--reml conflicts with REML = FALSE in the lmer call: give the method once"
    assert refusal(capsys, QUADRATIC, "--model", "lmer(y ~ x + (1|g), data = d, REML = FALSE)", "--reml") == \
        "--reml conflicts with 'ml' in the model 'lmer(y ~ x + (1|g), data = d, REML = FALSE)': give the method once"


def test_glmer_with_two_offsets_is_refused():
    message = r"^glmer: give one offset \(offset\(v\) or offset\(log\(v\)\)\), not several$"
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse("glmer(y ~ x + offset(log(t)) + (1|g), family = poisson, offset = log(t))")


def test_text_columns_without_factor_name_the_lme4_spelling(capsys):
    assert refusal(capsys, str(DATA / "penicillin.csv"), "--formula", "diameter ~ sample + (1|plate)") == \
        "column 'sample' is not numeric (e.g. 'A'); write i.sample to treat it as categorical (factor(sample) in " \
        "an lme4 formula)"


def test_unchanged_lme4_forms_still_map_exactly():
    # The forms the audit found right (fits checked against lme4 on the audit data) keep their mapping.
    assert ModelSpec.parse_lme4("y ~ x + (x||g)").levels == [Level("g", ["x"], True, "independent")]
    assert ModelSpec.parse_lme4("y ~ x + (-1 + x|g)").levels == [Level("g", ["x"], False, "independent")]
    assert ModelSpec.parse_lme4("y ~ x + (0 + 1 + x|g)").levels == [Level("g", ["x"], True, "unstructured")]
    spec = ModelSpec.parse_lme4("y ~ x*z + factor(a):x + I(x^2) + (1|s/c/p)")
    assert spec.fixed == ["c.x##c.z", "i.a#c.x", "c.x#c.x"] and spec.level_names == ["s", "c", "p"]


@pytest.mark.parametrize("model, leftover", [
    ("mixed y x || g:, reml 1", "'1' in the options 'reml 1'"),
    ("mixed y x || g:, reml = TRUE", "'=' in the options 'reml = TRUE'"),
    ("melogit y x || g:, 7 or", "'7' in the options '7 or'"),
])
def test_text_between_options_is_refused_not_skipped(model, leftover):
    # Before: whatever was no option word was skipped ('intpoints 7' lost its 7 without a word).
    with pytest.raises(UserInputError, match=f"^cannot read {leftover}: options are words"):
        ModelSpec.parse(model)


@pytest.mark.parametrize("text, where", [
    ("mixed y y x || g:", "a fixed effect"), ("mixed y c.x#c.y || g:", "a fixed effect"),
    ("mixed y x || g: y", "a random slope at level g"), ("mixed y x || y:", "a level id"),
])
def test_outcome_reused_in_the_model_is_refused(text, where):
    # Before: a slope on the outcome was refused as "the fixed effects reproduce the outcome exactly", and
    # the outcome as a level id fitted one group per distinct value.
    message = f"^the outcome 'y' is also {where} in the model: it cannot explain itself$"
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse(text)


def test_outcome_on_the_right_of_an_lme4_formula_is_refused():
    # R drops it with a warning ("the response appeared on the right-hand side and was dropped").
    with pytest.raises(UserInputError, match="^the outcome 'y' is also a fixed effect in the model"):
        ModelSpec.parse_lme4("y ~ y + x + (1|g)")


def test_number_of_trials_as_a_number_is_refused_by_name():
    message = r"^binomial\(3\): give the number of trials as a variable \(binomial\(n\)\), not a number$"
    with pytest.raises(UserInputError, match=message):
        ModelSpec.parse("melogit k x || g:, binomial(3)")


def test_variance_option_in_a_table_model_reports_variances(capsys):
    assert main.main(["table", SLEEP, "--model", "Reaction Days || Subject:, var"]) == 0
    line = next(text for text in capsys.readouterr().out.splitlines() if "var(_cons)" in text)
    assert abs(float(line.split()[-1]) - 1296.8700404) < 0.01  # lme4 ML VarCorr variance
