"""Predictions after a mixed fit: BLUPs and their SEs against lme4, fitted values and residuals by hand,
the per-row and per-group files of `fit --predict/--ranef`."""

import numpy as np
import pandas as pd
import pytest

import main
from engine.centering import Centering
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.errors import UserInputError
from engine.predictions import prediction_columns, random_effects_table, row_predictions
from engine.results import FitResult
from tests.reference_cases import DATA

SLOPES = "mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, covariance(unstructured)"

# lme4 1.1-31: lmer(mathach ~ meanses*ses_c + sector*ses_c + (ses_c|school), REML = TRUE), ses_c = ses
# minus its school mean, bobyqa to rhoend 1e-12; ranef(m, condVar = TRUE): the first four schools
# (intercept, slope, and the square roots of the postVar diagonals), and sums over all 160 schools.
LME4_FIRST_SCHOOLS = {
    1224: (-0.0733710375960304, -0.00509478529937045, 0.766231829984707, 0.293004216378854),
    1288: (0.4558013855819728, 0.04038687849352333, 0.952197472779980, 0.298882405821924),
    1296: (-1.7109043398505299, -0.19472204452543782, 0.760122603273990, 0.292371872277875),
    1308: (0.0311011742145050, -0.01496868897250184, 1.017619237750063, 0.302580550381343),
}
LME4_SUM_SQUARES = {"u0": 273.841514838505, "u1": 2.42206947354992, "se0": 101.596402700051, "se1": 13.7403976295129}
LME4_FITTED_HEAD = [7.01809597568742, 9.35778769308422, 9.50712971759891]
LME4_RESIDUAL_SUM_SQUARES = 259145.048533045


@pytest.fixture(scope="module")
def hsb():
    return pd.read_csv(DATA / "hsb.csv")


@pytest.fixture(scope="module")
def slopes_fit(hsb):
    spec = ModelSpec.parse(SLOPES, method="REML")
    spec.centering = [Centering.parse_center_option("ses_c=ses:group:school")]
    return fit_mixed(hsb, spec)


def test_blups_and_conditional_sds_match_lme4(slopes_fit):
    table = random_effects_table(slopes_fit)
    assert list(table.columns) == ["level", "school", "term", "estimate", "se"]
    assert len(table) == 2 * 160 and set(table["level"]) == {"school"}
    wide = table.pivot(index="school", columns="term", values=["estimate", "se"])
    for school, (u0, u1, se0, se1) in LME4_FIRST_SCHOOLS.items():
        row = wide.loc[school]
        assert row[("estimate", "_cons")] == pytest.approx(u0, abs=1e-5)
        assert row[("estimate", "ses_c")] == pytest.approx(u1, abs=1e-5)
        assert row[("se", "_cons")] == pytest.approx(se0, abs=1e-5)
        assert row[("se", "ses_c")] == pytest.approx(se1, abs=1e-5)
    sums = {"u0": (wide[("estimate", "_cons")] ** 2).sum(), "u1": (wide[("estimate", "ses_c")] ** 2).sum(),
            "se0": (wide[("se", "_cons")] ** 2).sum(), "se1": (wide[("se", "ses_c")] ** 2).sum()}
    for key, expected in LME4_SUM_SQUARES.items():
        assert sums[key] == pytest.approx(expected, rel=1e-5)


def test_fitted_values_and_residuals_recomputed_by_hand(hsb, slopes_fit):
    b = {row.term: row.coef for row in slopes_fit.fixed}
    ses_c = hsb["ses"] - hsb.groupby("school")["ses"].transform("mean")
    xb = (b["_cons"] + b["meanses"] * hsb["meanses"] + b["ses_c"] * ses_c + b["1.sector"] * hsb["sector"]
          + b["c.meanses#c.ses_c"] * hsb["meanses"] * ses_c + b["1.sector#c.ses_c"] * hsb["sector"] * ses_c)
    effects = random_effects_table(slopes_fit).pivot(index="school", columns="term", values="estimate")
    u0 = hsb["school"].map(effects["_cons"])
    u1 = hsb["school"].map(effects["ses_c"])
    fitted = xb + u0 + u1 * ses_c
    rows = row_predictions(hsb, slopes_fit)
    assert list(rows.columns) == ["row", "school", "in_sample", "xb", "re_school_ses_c", "re_school__cons",
                                  "fitted", "residual"]
    assert rows["in_sample"].all() and (rows["row"] == np.arange(1, len(hsb) + 1)).all()
    np.testing.assert_allclose(rows["xb"], xb, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rows["re_school__cons"], u0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rows["re_school_ses_c"], u1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rows["fitted"], fitted, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rows["residual"], hsb["mathach"] - fitted, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rows["fitted"][:3], LME4_FITTED_HEAD, rtol=0, atol=1e-5)
    assert (rows["residual"] ** 2).sum() == pytest.approx(LME4_RESIDUAL_SUM_SQUARES, rel=1e-7)


def test_three_levels_rows_carry_every_levels_effect():
    seed = pd.read_csv(DATA / "seed_d5.csv").iloc[:1600]  # one district
    spec = ModelSpec.parse("perform tutoring || school_id: || teach_id: || student_id:")
    fit = fit_mixed(seed, spec)
    rows = row_predictions(seed, fit)
    table = random_effects_table(fit)
    assert list(table.columns) == ["level", "school_id", "teach_id", "student_id", "term", "estimate", "se"]
    assert table.groupby("level", sort=False).size().to_dict() == {"school_id": 5, "teach_id": 40, "student_id": 800}
    # teacher ids restart in every school: a teacher's effect is found by (school, teacher)
    teachers = table[table["level"] == "teach_id"].set_index(["school_id", "teach_id"])["estimate"]
    by_hand = [teachers[(s, t)] for s, t in zip(seed["school_id"], seed["teach_id"])]
    np.testing.assert_allclose(rows["re_teach_id__cons"], by_hand, rtol=0, atol=1e-12)
    assert table.loc[table["level"] == "school_id", "teach_id"].isna().all()
    b = {row.term: row.coef for row in fit.fixed}
    total = (b["_cons"] + b["tutoring"] * seed["tutoring"] + rows["re_school_id__cons"] + rows["re_teach_id__cons"]
             + rows["re_student_id__cons"])
    np.testing.assert_allclose(rows["fitted"], total, rtol=0, atol=1e-9)


def test_rows_dropped_for_missing_values_keep_their_place(hsb):
    data = hsb.copy()
    data.loc[[3, 10, 500], "mathach"] = np.nan
    data.loc[7, "ses"] = np.nan
    fit = fit_mixed(data, ModelSpec.parse("mathach ses || school: ses"))
    rows = row_predictions(data, fit)
    assert len(rows) == len(data) and (rows["school"] == data["school"]).all()
    dropped = [3, 7, 10, 500]
    assert not rows.loc[dropped, "in_sample"].any() and rows["in_sample"].sum() == len(data) - 4
    assert rows.loc[dropped, ["xb", "fitted", "residual", "re_school__cons"]].isna().all().all()
    kept = rows[rows["in_sample"]]
    np.testing.assert_allclose(kept["fitted"], fit.fitted, rtol=0, atol=1e-10)
    b = {row.term: row.coef for row in fit.fixed}
    complete = data.dropna(subset=["mathach", "ses"])
    np.testing.assert_allclose(kept["xb"], b["_cons"] + b["ses"] * complete["ses"].to_numpy(), rtol=0, atol=1e-9)


def test_cli_writes_predictions_and_random_effects(tmp_path, hsb, capsys):
    rows_path, effects_path = tmp_path / "rows.csv", tmp_path / "effects.parquet"
    assert main.main(["fit", str(DATA / "hsb.csv"), "--reml", "--center", "ses_c=ses:group:school", "--model", SLOPES,
                      "--quiet", "--predict", str(rows_path), "--ranef", str(effects_path)]) == 0
    rows = pd.read_csv(rows_path)
    effects = pd.read_parquet(effects_path)
    assert len(rows) == len(hsb) and (rows["school"] == hsb["school"]).all()
    assert rows["fitted"][:3].tolist() == pytest.approx(LME4_FITTED_HEAD, abs=1e-5)
    first = effects[(effects["school"] == 1224)].set_index("term")
    assert first.loc["_cons", "estimate"] == pytest.approx(LME4_FIRST_SCHOOLS[1224][0], abs=1e-5)
    assert first.loc["ses_c", "se"] == pytest.approx(LME4_FIRST_SCHOOLS[1224][3], abs=1e-5)


def test_cli_refuses_an_unknown_output_format_before_fitting(tmp_path, capsys):
    code = main.main(["fit", str(DATA / "hsb.csv"), "--model", "mathach || school:", "--predict", str(tmp_path / "p.txt")])
    assert code == 2
    assert "--predict" in capsys.readouterr().err and not (tmp_path / "p.txt").exists()


def test_predictions_of_other_data_are_refused(hsb):
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses || school:"))
    for changed in (hsb.assign(mathach=hsb["mathach"] + 1), hsb.assign(ses=hsb["ses"][::-1].to_numpy())):
        with pytest.raises(UserInputError, match="other data"):
            row_predictions(changed, fit)
    with pytest.raises(UserInputError, match="usable rows"):
        row_predictions(hsb.iloc[:-5], fit)


def test_a_saved_fit_is_refitted_for_its_predictions(hsb):
    fit = fit_mixed(hsb, ModelSpec.parse("mathach ses || school: ses"))
    saved = FitResult.from_dict(fit.to_dict())  # as read from a project: no per-group predictions
    assert saved.level_effects == [] and saved.fitted is None
    columns = prediction_columns(hsb, saved)
    assert list(columns.columns) == ["in_sample", "xb", "re_school_ses", "re_school__cons", "fitted", "residual"]
    expected = row_predictions(hsb, fit)
    for name in ("xb", "re_school_ses", "re_school__cons", "fitted", "residual"):
        np.testing.assert_allclose(columns[name], expected[name], rtol=0, atol=1e-6)
    with pytest.raises(UserInputError, match="other data"):
        prediction_columns(hsb.assign(mathach=hsb["mathach"] * 1.01), FitResult.from_dict(fit.to_dict()))


def test_row_predictions_of_a_crossed_fit_match_each_row_to_its_factors_groups():
    # Crossed factors are not one hierarchy: numbering rows by nested codes read past the end of the
    # student effects (an IndexError traceback) before they were matched on the ids.
    from pathlib import Path

    frame = pd.read_csv(Path(__file__).parent / "data" / "crossed_ddf.csv")
    fit = fit_mixed(frame, ModelSpec.parse("y x z || _all: R.teach || _all: R.student, reml"))
    rows = row_predictions(frame, fit)
    effects = random_effects_table(fit)
    for level in ("teach", "student"):
        table = effects[effects["level"] == level].set_index(level)["estimate"]
        assert np.array_equal(rows[f"re_{level}__cons"].to_numpy(), table.loc[frame[level]].to_numpy())
    beta = np.array([row.coef for row in fit.fixed])
    expected = (frame[["x", "z"]].to_numpy() @ beta[:2] + beta[2] + rows["re_teach__cons"] + rows["re_student__cons"])
    assert np.allclose(rows["fitted"], expected, rtol=0, atol=1e-10)
    assert np.allclose(rows["fitted"], fit.fitted, rtol=0, atol=1e-8)
