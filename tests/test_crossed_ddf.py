"""Small-sample df (dfmethod) for crossed random factors, against lmerTest (Satterthwaite) and
pbkrtest (Kenward-Roger, through lmerTest's ddf = "Kenward-Roger").

The literals come from tests/r/crossed_ddf_literals.R (its output is tests/r/crossed_ddf_literals.out;
lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, lmer with bobyqa to rhoend 1e-12, restarted at its
optimum): lme4's Penicillin, a simulated crossed design with a teacher covariate, a student factor
and a random slope per teacher (tests/data/crossed_ddf.csv, made by that script), and the seed's
moving-teacher design (Satterthwaite only: pbkrtest forms 8,000 x 8,000 matrices there). The design
df (residual, anova) are checked against ranks computed here with dense matrices. The tests never need R.
"""

import numpy as np
import pandas as pd
import pytest

import main
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.mixed.crossed.inference_ddf import DerivativeCriterion
from engine.model_spec import ModelSpec
from engine.wald_tests import joint_test
from tests.reference_cases import DATA, relative_error

# R's (se, df, t, p, ci_low, ci_high) per method and coefficient; "F <method>": (NumDF, DenDF, F, p) of grp.
R = {
    "penicillin": {
        "Satterthwaite": {
            "(Intercept)": (0.808573419992, 5.48709175773, 28.4108055672, 3.61921400504e-07, 20.9480072488, 24.9964371956),
        },
        "Kenward-Roger": {
            "(Intercept)": (0.808573419992, 5.48709216882, 28.4108055672, 3.61921090333e-07, 20.9480072897, 24.9964371548),
        },
    },
    "crossed_unstructured": {
        "Satterthwaite": {
            "(Intercept)": (0.492018792456, 13.9223975238, 3.10109775012, 0.00785908066517, 0.46997091632, 2.58162582429),
            "x": (0.168690038092, 11.7379889583, 3.59711691062, 0.00379087859492, 0.238341784649, 0.975253792699),
            "z": (0.559680163812, 10.129572777, 1.93631114816, 0.0812058281831, -0.161171337087, 2.32860121827),
            "grp2": (0.302209837732, 77.452172722, 1.63155439082, 0.106833157755, -0.108648818638, 1.09479239404),
            "grp3": (0.336785512611, 76.6423654635, -0.239278027559, 0.811528721684, -0.751260948977, 0.590090202642),
        },
        "Kenward-Roger": {
            "(Intercept)": (0.492365547164, 13.9110151566, 3.09891376253, 0.00789965216563, 0.469145212528, 2.58245152808),
            "x": (0.169246844319, 11.2740911818, 3.58528273371, 0.00411944488389, 0.235389947386, 0.978205629962),
            "z": (0.612749246931, 10.1283102858, 1.7686108078, 0.10701114544, -0.279234623216, 2.4466645044),
            "grp2": (0.302615131738, 78.6428114766, 1.62936924161, 0.107234270141, -0.109311105635, 1.09545468103),
            "grp3": (0.337437389641, 77.7248488983, -0.238815779288, 0.811876995064, -0.752409071883, 0.591238325547),
        },
        "F Satterthwaite": (2, 76.719592885, 1.92859427111, 0.152334135351),
        "F Kenward-Roger": (2, 77.8443929502, 1.92301588396, 0.153045516118),
    },
    "crossed_intercepts": {
        "Satterthwaite": {
            "(Intercept)": (0.498011711649, 14.4592797788, 3.01770981612, 0.00894976658638, 0.437900159494, 2.56780950208),
            "x": (0.0918258330272, 293.730750477, 7.11218679571, 8.73870420838e-12, 0.47236252108, 0.833802433242),
            "z": (0.566801074878, 9.90033986595, 1.84290954611, 0.0954443284928, -0.220073720492, 2.30919994376),
            "grp2": (0.322559167984, 80.0551765761, 1.54907157363, 0.125308935453, -0.142239171588, 1.14157364746),
            "grp3": (0.358440738444, 78.3053609429, -0.496276259607, 0.621089738764, -0.891442493548, 0.535671235616),
        },
        "Kenward-Roger": {
            "(Intercept)": (0.498040067663, 14.5346398313, 3.01753800219, 0.00891015619779, 0.438339629868, 2.56737003171),
            "x": (0.0923066238874, 293.53751719, 7.07514206085, 1.09963639113e-11, 0.471415794747, 0.834749159574),
            "z": (0.566893756459, 9.9586831717, 1.84260824843, 0.0953148677883, -0.219265588278, 2.30839181155),
            "grp2": (0.322681901162, 79.2395677123, 1.5484823789, 0.125491092106, -0.142584828399, 1.14191930428),
            "grp3": (0.358527989087, 77.5018079589, -0.496155486825, 0.62118893138, -0.891732301749, 0.535961043818),
        },
        "F Satterthwaite": (2, 78.8060620066, 2.09712957448, 0.129609835438),
        "F Kenward-Roger": (2, 77.9971286424, 2.09587810442, 0.129833927957),
    },
    "crossed_independent": {
        "Satterthwaite": {
            "(Intercept)": (0.492426277472, 13.8583116721, 3.10747729436, 0.00779665643355, 0.473040210053, 2.58736674274),
            "x": (0.168772045182, 11.732042341, 3.57140272979, 0.00397504317036, 0.234096586735, 0.971409299014),
            "z": (0.567411443399, 9.95674839005, 1.79395136854, 0.103193069007, -0.247107765197, 2.28292483602),
            "grp2": (0.302135313764, 77.4653697073, 1.62121983984, 0.109034112474, -0.111742833183, 1.09139836316),
            "grp3": (0.336772810903, 76.6936161867, -0.243688498781, 0.808122754826, -0.752710756405, 0.588575434966),
        },
        "Kenward-Roger": {
            "(Intercept)": (0.492538488201, 13.8953152746, 3.10676934504, 0.00778654704695, 0.473066344166, 2.58734060862),
            "x": (0.169210025185, 11.2752567885, 3.56215857905, 0.00429160195746, 0.231430458654, 0.974075427095),
            "z": (0.56764010221, 9.98415677395, 1.79322872265, 0.103231349288, -0.247144528982, 2.2829615998),
            "grp2": (0.302422455603, 78.6021854218, 1.619680536, 0.109306463469, -0.112176449285, 1.09183197926),
            "grp3": (0.337202481365, 77.7362266, -0.243377985794, 0.808353696535, -0.753422113623, 0.589286792184),
        },
        "F Satterthwaite": (2, 76.7662515245, 1.91086388911, 0.154923989629),
        "F Kenward-Roger": (2, 77.8485259099, 1.90720630396, 0.155368732833),
    },
    "seed_d5_crossed": {
        "Satterthwaite": {
            "(Intercept)": (1.34325126312, 4.0073737, 0.492060096121, 0.64841440134, -3.06579823846, 4.38771892975),
            "tutoring": (0.201942730228, 6816.22397826, 9.62266876738, 8.81912233683e-22, 1.54735722976, 2.33909877616),
        },
    },
}

MODELS = {  # lme4 formulas; the intercept-only models are also written in Stata's syntax
    "penicillin": ("penicillin.csv", "diameter ~ 1 + (1|plate) + (1|sample)",
                   "diameter || _all: R.plate || _all: R.sample, reml"),
    "crossed_unstructured": ("crossed_ddf.csv", "y ~ x + z + factor(grp) + (1 + x | teach) + (1 | student)", None),
    "crossed_intercepts": ("crossed_ddf.csv", "y ~ x + z + factor(grp) + (1 | teach) + (1 | student)",
                           "y x z i.grp || _all: R.teach || _all: R.student, reml"),
    "crossed_independent": ("crossed_ddf.csv", "y ~ x + z + factor(grp) + (1 + x || teach) + (1 | student)", None),
    "seed_d5_crossed": ("seed_d5_crossed.csv",
                        "perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)",
                        "perform tutoring || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id, reml"),
}
METHODS = {"Satterthwaite": "satterthwaite", "Kenward-Roger": "kroger"}
LOGLIK = {"penicillin": -165.430294495543, "crossed_unstructured": -625.412138814941,
          "crossed_intercepts": -634.057534043578, "crossed_independent": -625.598228647248,
          "seed_d5_crossed": -27701.697357687885}


def our_term(name: str) -> str:
    return {"(Intercept)": "_cons", "grp2": "2.grp", "grp3": "3.grp"}.get(name, name)


_FITS: dict = {}


def fit(case: str, dfmethod: str | None, written: str = "lme4"):
    key = (case, dfmethod, written)
    if key not in _FITS:
        data, formula, stata = MODELS[case]
        spec = ModelSpec.parse_lme4(formula, "REML") if written == "lme4" else ModelSpec.parse(stata)
        _FITS[key] = fit_mixed(pd.read_csv(DATA / data), spec.replace(dfmethod=dfmethod), predict=False)
    return _FITS[key]


CASES = [(case, method, written) for case in R for method in R[case] if not method.startswith("F ")
         for written in (("lme4", "stata") if MODELS[case][2] else ("lme4",))]


@pytest.mark.parametrize("case,reference,written", CASES)
def test_coefficients_match_lmertest_and_pbkrtest(case, reference, written):
    result = fit(case, METHODS[reference], written)
    plain = fit(case, None, written)
    assert result.dfmethod == METHODS[reference]
    assert any("Crossed random factors" in note for note in result.notes)  # the crossed criterion, not nested
    assert relative_error(result.loglik, LOGLIK[case]) < 1e-8
    assert len(result.fixed) == len(R[case][reference])
    for name, (se, df, t, p, low, high) in R[case][reference].items():
        row = result.coef(our_term(name))
        assert relative_error(row.df, df) < 1e-4, (name, row.df, df)
        assert relative_error(row.t, t) < 1e-4, name
        assert abs(row.p - p) <= max(1e-4 * p, 1e-12), (name, row.p, p)
        assert relative_error(row.ci[0], low) < 1e-4 and relative_error(row.ci[1], high) < 1e-4, name
        if reference == "Kenward-Roger":
            assert relative_error(row.se, se) < 1e-5, (name, row.se, se)
        else:  # Satterthwaite keeps the usual standard error
            assert relative_error(row.se, se) < 1e-4, name
            assert relative_error(row.se, plain.coef(our_term(name)).se) < 1e-10, name


@pytest.mark.parametrize("case", ["crossed_unstructured", "crossed_intercepts", "crossed_independent"])
@pytest.mark.parametrize("reference", sorted(METHODS))
def test_factor_f_test_matches_lmertest_and_pbkrtest(case, reference):
    df1, df2, f_value, p = R[case][f"F {reference}"]
    test = joint_test(fit(case, METHODS[reference]), ["i.grp"])
    assert test.columns == ["2.grp", "3.grp"]
    assert test.df1 == df1
    assert relative_error(test.df2, df2) < 1e-4
    assert relative_error(test.F, f_value) < 1e-4
    assert relative_error(test.p, p) < 1e-4


def test_kenward_roger_adjusts_the_covariance_and_the_report_says_so():
    plain, adjusted = fit("crossed_unstructured", None), fit("crossed_unstructured", "kroger")
    z_plain, z_adjusted = plain.coef("z"), adjusted.coef("z")
    assert z_adjusted.se > 1.09 * z_plain.se  # pbkrtest: 0.61275 against 0.55968
    assert np.allclose(np.sqrt(np.diag(adjusted.vcov)), [row.se for row in adjusted.fixed])
    from engine.report import format_fit_report

    text = format_fit_report(adjusted)
    assert "DF method: Kenward-Roger" in text and "Kenward-Roger adjusted" in text


@pytest.mark.parametrize("case", ["crossed_unstructured", "crossed_independent"])
def test_differences_of_the_sparse_evaluation_equal_the_exact_derivatives(case):
    """Where the selected inverse is unaffordable the pieces are differences of the exact sparse
    evaluation; they agree with the exact derivatives (independent and correlated slopes alike)."""
    from engine.mixed.crossed.criterion import CrossedCriterion
    from engine.mixed.crossed.factors import grouping_factors
    from engine.mixed.covariance import LevelCovariance
    from engine.mixed.criterion import LevelTerms
    from engine.mixed.prepare import build_work_columns, prepare_model_data

    spec = ModelSpec.parse_lme4(MODELS[case][1], "REML")
    data = prepare_model_data(pd.read_csv(DATA / "crossed_ddf.csv"), spec)
    work = build_work_columns(data, spec)
    levels = [LevelTerms(columns, LevelCovariance(len(columns), level.covariance))
              for columns, level in zip(work.level_columns, spec.levels)]
    criterion = CrossedCriterion(work.matrix, grouping_factors(data.frame, spec), levels, work.x_columns,
                                 work.y_column, True)
    theta = np.array(fit(case, None).theta)
    by_differences = DerivativeCriterion(criterion, differences_only=True).evaluate(theta)
    if case == "crossed_independent":
        exact = criterion.evaluate(theta, gradient=True)
        assert exact.d_xtvx is not None
        for piece in ("d_logdet_v", "d_logdet_x", "d_r2", "d_xtvx"):
            np.testing.assert_allclose(getattr(by_differences, piece), getattr(exact, piece), rtol=1e-7,
                                       atol=1e-9 * np.max(np.abs(getattr(exact, piece))))
    # The deviance's gradient from the pieces vanishes at the optimum (REML: n - p residual df).
    dof = criterion.n - criterion.p
    gradient = by_differences.d_logdet_v + by_differences.d_logdet_x + dof * by_differences.d_r2 / by_differences.r2
    assert np.max(np.abs(gradient)) < 1e-3


# ----- the design-based methods -----------------------------------------------------------------
def _dense_rank(*blocks) -> int:
    return int(np.linalg.matrix_rank(np.hstack(blocks)))


def test_residual_and_anova_df_follow_the_ranks_of_x_and_z():
    frame = pd.read_csv(DATA / "crossed_ddf.csv")
    n = len(frame)
    x = np.column_stack([frame["x"], frame["z"], frame["grp"] == 2, frame["grp"] == 3, np.ones(n)]).astype(float)
    teach = pd.get_dummies(frame["teach"]).to_numpy(float)
    student = pd.get_dummies(frame["student"]).to_numpy(float)
    rank_x, rank_t, rank_ts = _dense_rank(x), _dense_rank(x, teach), _dense_rank(x, teach, student)
    teach_df, student_df, residual_df = rank_t - rank_x, rank_ts - rank_t, n - rank_ts
    # 12 teachers' indicators span _cons and z, 80 students' span _cons and the two grp columns.
    assert (teach_df, student_df) == (12 - 2, 80 - 3)
    stata = "y x z i.grp || _all: R.teach || _all: R.student, reml dfmethod({})"
    anova = fit_mixed(frame, ModelSpec.parse(stata.format("anova")), predict=False)
    # x varies within both factors; z is constant within teachers, grp within students, _cons within both.
    expected = {"x": residual_df, "z": teach_df, "2.grp": student_df, "3.grp": student_df,
                "_cons": min(teach_df, student_df)}
    assert {row.term: row.df for row in anova.fixed} == expected
    residual = fit_mixed(frame, ModelSpec.parse(stata.format("residual")), predict=False)
    assert {row.df for row in residual.fixed} == {n - 5}
    plain_se = fit("crossed_intercepts", None, "stata").coef("x").se
    assert relative_error(residual.coef("x").se, plain_se) < 1e-10 and relative_error(anova.coef("x").se, plain_se) < 1e-10


def test_anova_df_of_penicillin_and_the_moving_teacher_design():
    # Penicillin: 24 plates add 23 to the intercept's rank, 6 samples 5 more; _cons is in both: 5 df.
    pen = fit_mixed(pd.read_csv(DATA / "penicillin.csv"),
                    ModelSpec.parse("diameter || _all: R.plate || _all: R.sample, reml dfmethod(anova)"))
    assert pen.coef("_cons").df == 5
    # Seed: districts add 4; tutoring is contained in no factor: 8,000 - rank([X Z]), with 4,000 students and
    # 200 teachers connected within each of the 25 schools (rank 4,175) plus tutoring.
    seed = fit_mixed(pd.read_csv(DATA / "seed_d5_crossed.csv"), ModelSpec.parse(
        MODELS["seed_d5_crossed"][2].replace("reml", "reml dfmethod(anova)")), predict=False)
    assert seed.coef("_cons").df == 4
    assert seed.coef("tutoring").df == 8000 - 4176
    # The lme4 formula lists the crossed factors first; the df are the same (factors enter coarsest first).
    formula = ModelSpec.parse_lme4(MODELS["seed_d5_crossed"][1], "REML").replace(dfmethod="anova")
    assert not formula.levels[0].name.startswith("dist")
    same = fit_mixed(pd.read_csv(DATA / "seed_d5_crossed.csv"), formula, predict=False)
    assert {row.term: row.df for row in same.fixed} == {row.term: row.df for row in seed.fixed}


def test_methods_that_cannot_apply_are_refused_with_the_reason():
    frame = pd.read_csv(DATA / "penicillin.csv")
    with pytest.raises(UserInputError, match="two-level"):
        fit_mixed(frame, ModelSpec.parse("diameter || _all: R.plate || _all: R.sample, reml dfmethod(repeated)"))
    with pytest.raises(UserInputError, match="requires REML"):
        fit_mixed(frame, ModelSpec.parse("diameter || _all: R.plate || _all: R.sample, dfmethod(kroger)"))
    slopes = ModelSpec.parse_lme4(MODELS["crossed_independent"][1], "REML").replace(dfmethod="anova")
    with pytest.raises(UserInputError, match="random slopes"):
        fit_mixed(pd.read_csv(DATA / "crossed_ddf.csv"), slopes)


# ----- the commands that print tests ------------------------------------------------------------
def test_cli_test_with_a_formula_prints_the_kenward_roger_f(capsys):
    code = main.main(["test", str(DATA / "crossed_ddf.csv"), "--formula", MODELS["crossed_unstructured"][1],
                      "--dfmethod", "kroger", "i.grp"])
    assert code == 0
    out = capsys.readouterr().out
    assert "F(2, 77.84) =       1.92" in out and "Prob > F =     0.1530" in out and "Kenward-Roger" in out


def test_lrtest_f_test_of_added_fixed_effects_in_a_crossed_model():
    from engine.model_comparison import compare_models

    frame = pd.read_csv(DATA / "crossed_ddf.csv")
    specs = [ModelSpec.parse("y x z || _all: R.teach || _all: R.student, reml"),
             ModelSpec.parse("y x z i.grp || _all: R.teach || _all: R.student, reml")]
    comparison = compare_models(frame, specs, dfmethod="kroger")
    (test,) = comparison.fixed_tests
    df1, df2, f_value, p = R["crossed_intercepts"]["F Kenward-Roger"]
    assert test.columns == ["2.grp", "3.grp"] and test.df1 == df1
    assert relative_error(test.df2, df2) < 1e-4 and relative_error(test.F, f_value) < 1e-4
    assert relative_error(test.p, p) < 1e-4
    # The automatic null model keeps the factors crossed: the variance explained is against it.
    null = fit_mixed(frame, ModelSpec.parse("y || _all: R.teach || _all: R.student, reml"), predict=False)
    assert comparison.null_fit.spec.has_crossed
    assert relative_error(comparison.null_fit.loglik, null.loglik) < 1e-10


def test_cli_lrtest_takes_formulas_in_order_with_models(capsys):
    formula = "y ~ x + z{} + (1 + x | teach) + (1 | student)"
    code = main.main(["lrtest", str(DATA / "crossed_ddf.csv"), "--model", "y x z || _all: R.teach || _all: R.student",
                      "--formula", formula.format(""), "--formula", formula.format(" + factor(grp)"),
                      "--reml", "--dfmethod", "satterthwaite"])
    assert code == 0
    out = capsys.readouterr().out
    assert "A: mixed y x z || _all: R.teach || _all: R.student" in out
    assert "B: mixed y x z || _all: R.student || teach: x, covariance(unstructured)" in out
    assert "C adds 2.grp, 3.grp" in out
    assert "F(2, 76.72) =       1.93    Prob > F = 0.1523" in out  # lmerTest: 76.7196, 1.92859, 0.152334


def test_montecarlo_with_a_crossed_model_uses_the_df_method():
    """Each replication's Satterthwaite record equals a direct fit of that replication's data."""
    from engine.montecarlo import Study
    from engine.montecarlo.replicate import run_replications
    from engine.presets import get_preset
    from engine.simulate import simulate

    design = get_preset("tutoring_moving").with_units("student_id", 4).with_units("teach_id", 3)
    model = "perform tutoring || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id, reml"
    study = Study(design=design, models=[model], reps=2, seed=7, dfmethod="satterthwaite").validate()
    records = run_replications(study, 0, range(2))
    cons = records[records["param"] == "_cons"].set_index("rep")
    assert not cons["failed"].any()
    for rep in range(2):
        frame = simulate(design, int(cons.loc[rep, "seed"])).frame
        direct = fit_mixed(frame, ModelSpec.parse(model).replace(dfmethod="satterthwaite"), predict=False)
        assert any("Crossed random factors" in note for note in direct.notes)
        row = direct.coef("_cons")
        assert row.df < 10  # about the 5 districts' 4 df, not z
        assert cons.loc[rep, "df"] == pytest.approx(row.df, rel=1e-9)
        assert cons.loc[rep, "p"] == pytest.approx(row.p, rel=1e-9)


def test_anova_df_beyond_the_dense_rank_limit_is_refused_by_name(monkeypatch):
    from engine.mixed.crossed import inference_ddf

    monkeypatch.setattr(inference_ddf, "ANOVA_DENSE_LIMIT", 10)  # Penicillin leaves 1 + 6 columns, the seed more
    pen = fit_mixed(pd.read_csv(DATA / "penicillin.csv"),
                    ModelSpec.parse("diameter || _all: R.plate || _all: R.sample, reml dfmethod(anova)"))
    assert pen.coef("_cons").df == 5
    with pytest.raises(UserInputError, match=r"dfmethod\(anova\).*satterthwaite"):
        fit_mixed(pd.read_csv(DATA / "crossed_ddf.csv"),
                  ModelSpec.parse("y x z i.grp || _all: R.teach || _all: R.student, reml dfmethod(anova)"))


# lmerTest's contest1D of 2.grp - 3.grp in crossed_intercepts: (estimate, se, df, t, p)
LINCOM = {"satterthwaite": (0.677552866904, 0.357991841341, 77.8526992003, 1.89264890609, 0.062121532619),
          "kroger": (0.677552866904, 0.358075266702, 77.0522313363, 1.89220795154, 0.0622198111458)}


@pytest.mark.parametrize("method", sorted(LINCOM))
def test_cli_lincom_with_a_formula_matches_lmertest_contest(method, tmp_path):
    import json

    out = tmp_path / "lincom.json"
    code = main.main(["lincom", str(DATA / "crossed_ddf.csv"), "--formula", MODELS["crossed_intercepts"][1],
                      "--dfmethod", method, "2.grp - 3.grp", "--json", str(out), "--quiet"])
    assert code == 0
    (row,) = json.loads(out.read_text())["rows"]
    estimate, se, df, t, p = LINCOM[method]
    assert relative_error(row["estimate"], estimate) < 1e-4
    assert relative_error(row["se"], se) < (1e-5 if method == "kroger" else 1e-4)
    assert relative_error(row["df"], df) < 1e-4
    assert relative_error(row["stat"], t) < 1e-4 and relative_error(row["p"], p) < 1e-4


def test_check_pvalues_draws_each_crossed_factor_once_per_id():
    """check-pvalues on a crossed fit: one effect per plate and one per sample (6, not 144 cells), with the
    fit's variances; each replication is refitted as the crossed model with its df method."""
    from engine.montecarlo.pvalue_check import prepare_check, run_check_replications

    frame = pd.read_csv(DATA / "penicillin.csv")
    check, fitted = prepare_check(frame, "diameter || _all: R.plate || _all: R.sample, reml dfmethod(kroger)", reps=1)
    plate, sample = check.levels
    assert (plate.groups, sample.groups) == (24, 6)
    assert np.array_equal(sample.codes, pd.factorize(frame["sample"], sort=True)[0])
    assert np.array_equal(plate.codes, pd.factorize(frame["plate"], sort=True)[0])
    for level in check.levels:
        sd = fitted.random_param(level.name, "sd(_cons)").estimate
        assert (level.factor @ level.factor.T)[0, 0] == pytest.approx(sd ** 2, rel=1e-12)
    records = run_check_replications(check, 0, [0])
    cons = records[records["param"] == "_cons"].iloc[0]
    assert not cons["failed"] and 4 < cons["df"] < 8  # Kenward-Roger, about Penicillin's 5.5


def test_no_intraclass_correlation_for_crossed_models_as_stata():
    # Cumulating variances level by level, as for nested levels, gave numbers with no meaning for
    # crossed factors (which pairs share which effects depends on the data); Stata refuses too.
    from engine.icc_r2 import intraclass_correlations
    from engine.model_comparison import compare_models

    frame = pd.read_csv(DATA / "crossed_ddf.csv")
    crossed = ModelSpec.parse("y x z || _all: R.teach || _all: R.student, reml")
    nested = ModelSpec.parse("y x z || teach:, reml")
    comparison = compare_models(frame, [nested, crossed], labels=["N", "C"])
    assert [row.model for row in comparison.intraclass] == ["N"]
    fit = comparison.fits[0]
    variances = [fit.random_param("teach", "sd(_cons)").estimate ** 2, fit.random_param("Residual", "sd(Residual)").estimate ** 2]
    assert relative_error(comparison.intraclass[0].estimate, variances[0] / sum(variances)) < 1e-10
    assert any(note.startswith("C: no intraclass correlation") for note in comparison.notes)
    assert intraclass_correlations(comparison.fits[1]) == []
