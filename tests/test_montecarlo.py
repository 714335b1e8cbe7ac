"""Monte Carlo studies: calibration on the tutoring preset, identical results with any number of
workers and on Dask, the summary arithmetic by hand, failed fits, sweeps, seeds, stopping, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.design import Design, LevelDesign, TreatmentDesign, Truth
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.montecarlo import (RECORD_COLUMNS, Study, Sweep, replication_seed, run_replications, run_study,
                               summarise_records)
from engine.montecarlo.models import is_estimator_string
from engine.montecarlo.replicate import true_value
from engine.presets import get_preset
from engine.simulate import simulate
from main import main

FOUR_LEVEL_REML = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"
TEACHER_ML = "perform tutoring || teach_id:"


def small_tutoring() -> Design:
    """The tutoring hierarchy with few units: 3 x 3 x 3 x 4 students x 2 semesters = 216 rows."""
    design = get_preset("tutoring")
    for level, n in (("dist_id", 3), ("school_id", 3), ("teach_id", 3), ("student_id", 4)):
        design = design.with_units(level, n)
    return design


def row_of(summary, param, model=FOUR_LEVEL_REML, sweep=None):
    matches = [r for r in summary if r.param == param and r.model == model and r.sweep == sweep]
    assert len(matches) == 1, (param, model, sweep, matches)
    return matches[0]


def without_timing(records: pd.DataFrame) -> pd.DataFrame:
    return records.drop(columns=["fit_seconds"])


# ----- calibration ---------------------------------------------------------------------------
CALIBRATION_REPS = 400


@pytest.fixture(scope="module")
def tutoring_study():
    """The seed's design (8,000 rows) and the four-level REML model, 400 replications."""
    study = Study(get_preset("tutoring"), [FOUR_LEVEL_REML], reps=CALIBRATION_REPS, seed=20260801)
    return run_study(study, workers=2)


def test_treatment_ci_covers_at_the_nominal_rate_and_the_estimate_is_unbiased(tutoring_study):
    row = row_of(tutoring_study.summary, "tutoring")
    assert row.truth == 2.0
    assert row.reps == row.n == CALIBRATION_REPS and row.failed == 0.0
    # Three binomial standard errors at 95%: 0.033 with 400 replications, inside 0.95 +- 0.04.
    tolerance = 3 * math.sqrt(0.95 * 0.05 / CALIBRATION_REPS)
    assert tolerance < 0.04
    assert abs(row.coverage - 0.95) <= tolerance
    assert abs(row.bias) <= 3 * row.mcse_bias
    assert row.mcse_bias < 0.02  # a bias of 0.06 (3% of the effect) would not pass
    # The reported SE matches the spread of the estimates, within Monte Carlo error.
    assert abs(row.mean_se - row.emp_sd) <= 3 * (row.mcse_emp_sd + row.mcse_mean_se)
    assert row.power == 1.0  # effect 2 with SE 0.2


def test_tutoring_records_hold_every_parameter_of_every_replication(tutoring_study):
    records = tutoring_study.records
    params = ["tutoring", "_cons", "dist_id:sd(_cons)", "school_id:sd(_cons)", "teach_id:sd(_cons)",
              "student_id:sd(_cons)", "Residual:sd(Residual)"]
    assert list(records.columns) == list(RECORD_COLUMNS)
    assert len(records) == CALIBRATION_REPS * len(params)
    assert list(records["param"].iloc[: len(params)]) == params
    assert list(records["rep"].drop_duplicates()) == list(range(CALIBRATION_REPS))
    truths = records.drop_duplicates("param").set_index("param")["truth"]
    assert truths.to_dict() == {"tutoring": 2.0, "_cons": 0.0, "dist_id:sd(_cons)": 2.0, "school_id:sd(_cons)": 3.0,
                                "teach_id:sd(_cons)": 4.0, "student_id:sd(_cons)": 5.0,
                                "Residual:sd(Residual)": 6.0}
    # With 5 districts the district sd sometimes lands on zero; those fits are flagged.
    dist = records[records["param"] == "dist_id:sd(_cons)"]
    assert dist["at_zero"].any()
    assert (dist.loc[dist["at_zero"], "fit_boundary"]).all()
    assert dist.loc[dist["at_zero"], "se"].isna().all()


def test_a_replication_is_reproduced_from_its_recorded_seed(tutoring_study):
    records = tutoring_study.records
    rep = records[records["rep"] == 7]
    seed = int(rep["seed"].iloc[0])
    assert seed == replication_seed(20260801, 0, 7)
    refit = fit_mixed(simulate(get_preset("tutoring"), seed).frame, ModelSpec.parse(FOUR_LEVEL_REML), predict=False)
    assert rep.set_index("param").loc["tutoring", "estimate"] == refit.coef("tutoring").coef


# ----- same results whatever runs them -----------------------------------------------------------
@pytest.fixture(scope="module")
def small_study():
    return Study(small_tutoring(), [FOUR_LEVEL_REML, TEACHER_ML], reps=10, seed=3, sweep=Sweep.parse("sd:dist_id=0,2"))


@pytest.fixture(scope="module")
def one_worker_result(small_study):
    return run_study(small_study, workers=1)


def test_results_are_identical_with_one_and_two_workers(small_study, one_worker_result):
    two = run_study(small_study, workers=2, chunk_size=3)
    assert (one_worker_result.workers, two.workers) == (1, 2)
    pd.testing.assert_frame_equal(without_timing(one_worker_result.records), without_timing(two.records))
    assert one_worker_result.summary == two.summary
    records = two.records
    assert len(records.drop_duplicates(["model", "sweep_index", "rep"])) == 2 * 2 * 10
    # The sd sweep changes the truth; a zero sd puts fits on the boundary.
    dist = records[(records["model"] == FOUR_LEVEL_REML) & (records["param"] == "dist_id:sd(_cons)")]
    assert set(zip(dist["sweep"], dist["truth"])) == {(0.0, 0.0), (2.0, 2.0)}
    assert dist.loc[dist["sweep"] == 0.0, "fit_boundary"].any()


def test_results_are_identical_on_a_dask_cluster(small_study, one_worker_result):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        on_dask = run_study(small_study, scheduler=cluster.scheduler_address)
    assert on_dask.backend == "dask" and on_dask.workers == 2
    pd.testing.assert_frame_equal(without_timing(one_worker_result.records), without_timing(on_dask.records))
    assert one_worker_result.summary == on_dask.summary


def test_an_unreachable_scheduler_is_a_user_error(small_study, monkeypatch):
    monkeypatch.setattr("engine.montecarlo.runner.DASK_CONNECT_TIMEOUT", "1s")
    with pytest.raises(UserInputError, match="Dask scheduler"):
        run_study(small_study, scheduler="tcp://127.0.0.1:9")


# ----- summary arithmetic --------------------------------------------------------------------
def hand_records() -> pd.DataFrame:
    """Six replications of one model: four good fits, one that raised, one that did not converge."""
    def row(rep, param, kind, truth, estimate, se, ci, p, *, failed=False, converged=True, boundary=False,
            at_zero=False, error=""):
        return {"model": "m", "sweep": math.nan, "sweep_index": 0, "rep": rep, "seed": rep, "param": param,
                "kind": kind, "truth": truth, "estimate": estimate, "se": se, "ci_low": ci[0], "ci_high": ci[1],
                "p": p, "converged": converged, "failed": failed, "fit_boundary": boundary, "at_zero": at_zero,
                "error": error, "fit_seconds": 0.1, "df": math.nan}

    nan = math.nan
    rows = [
        row(0, "tutoring", "fixed", 2.0, 1.0, 1.0, (0.0, 2.0), 0.01),
        row(0, "school_id:sd(_cons)", "random", 3.0, 2.5, 0.5, (1.6, 3.9), nan),
        row(1, "tutoring", "fixed", 2.0, 2.0, 1.0, (1.0, 3.0), 0.2),
        row(1, "school_id:sd(_cons)", "random", 3.0, 4.0, 1.0, (2.5, 6.4), nan),
        row(2, "tutoring", "fixed", 2.0, 3.0, 2.0, (2.5, 3.5), 0.03),
        row(2, "school_id:sd(_cons)", "random", 3.0, 1.5, 0.5, (0.8, 2.8), nan),
        row(3, "tutoring", "fixed", 2.0, 6.0, 2.0, (1.0, 11.0), 0.001, boundary=True),
        row(3, "school_id:sd(_cons)", "random", 3.0, 0.0, nan, (nan, nan), nan, boundary=True, at_zero=True),
        row(4, "", "", nan, nan, nan, (nan, nan), nan, failed=True, converged=False, error="LinAlgError: singular"),
        row(5, "tutoring", "fixed", 2.0, 100.0, 1.0, (99.0, 101.0), 0.0, failed=True, converged=False),
        row(5, "school_id:sd(_cons)", "random", 3.0, 100.0, 1.0, (99.0, 101.0), nan, failed=True, converged=False),
    ]
    return pd.DataFrame(rows).astype(RECORD_COLUMNS)


def test_summary_matches_a_hand_computation():
    tutoring, school = summarise_records(hand_records())
    assert (tutoring.param, school.param) == ("tutoring", "school_id:sd(_cons)")
    # tutoring: estimates 1, 2, 3, 6 (the failed replications 4 and 5 are left out), truth 2.
    assert (tutoring.reps, tutoring.n, tutoring.sweep, tutoring.truth) == (6, 4, None, 2.0)
    assert tutoring.mean == pytest.approx(3.0)
    assert tutoring.bias == pytest.approx(1.0)
    assert tutoring.emp_sd == pytest.approx(math.sqrt(14 / 3))        # deviations -2, -1, 0, 3
    assert tutoring.rmse == pytest.approx(math.sqrt(18 / 4))          # errors -1, 0, 1, 4
    assert tutoring.mean_se == pytest.approx(1.5)
    assert tutoring.coverage == pytest.approx(0.75)                   # [2.5, 3.5] misses 2
    assert tutoring.power == pytest.approx(0.75)                      # p = 0.2 does not reject
    assert tutoring.failed == pytest.approx(2 / 6)                    # one raised, one did not converge
    assert tutoring.boundary == pytest.approx(1 / 6)
    assert tutoring.at_zero is None
    assert tutoring.mcse_bias == pytest.approx(math.sqrt(14 / 3) / 2)
    assert tutoring.mcse_emp_sd == pytest.approx(math.sqrt(14 / 3) / math.sqrt(6))
    assert tutoring.mcse_mean_se == pytest.approx(math.sqrt(1 / 3) / 2)   # sd of 1, 1, 2, 2 over sqrt(4)
    assert tutoring.mcse_coverage == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert tutoring.mcse_power == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    # school sd: estimates 2.5, 4, 1.5, 0 (the last at zero, with no SE and no interval), truth 3.
    assert school.n == 4
    assert school.mean == pytest.approx(2.0)
    assert school.bias == pytest.approx(-1.0)
    assert school.emp_sd == pytest.approx(math.sqrt(8.5 / 3))
    assert school.rmse == pytest.approx(math.sqrt(12.5 / 4))
    assert school.mean_se == pytest.approx(2 / 3)
    assert school.coverage == pytest.approx(2 / 3)                    # over the three reported intervals
    assert school.mcse_coverage == pytest.approx(math.sqrt(2 / 3 * 1 / 3 / 3))
    assert school.power is None
    assert school.at_zero == pytest.approx(0.25)
    assert school.to_dict()["sweep"] is None and json.dumps(school.to_dict())


# ----- failed fits ---------------------------------------------------------------------------
def sparse_treatment_design(probability: float) -> Design:
    """3 schools x 4 students, one row each: with treatment probability 0.1 some replications
    have no treated student, and the model's treatment column is all zeros."""
    return Design(name="sparse", outcome="y", residual_sd=1.0,
                  levels=[LevelDesign("school_id", 3, sd=1.0), LevelDesign("student_id", 4, sd=0.0)],
                  treatment=TreatmentDesign(name="treated", effect=1.0, probability=probability))


def test_a_failing_fit_is_counted_not_raised():
    study = Study(sparse_treatment_design(0.1), ["y treated || school_id:"], reps=30, seed=11)
    result = run_study(study, workers=2)
    no_treated = [rep for rep in range(30)
                  if simulate(study.design, study.replication_seed(0, rep)).frame["treated"].sum() == 0]
    assert 0 < len(no_treated) < 30
    errors = result.records[result.records["error"] != ""]
    assert sorted(errors["rep"]) == no_treated
    assert errors["error"].str.contains("zero in every row").all()
    row = row_of(result.summary, "treated", model="y treated || school_id:")
    assert row.reps == 30 and row.n == 30 - len(no_treated)
    assert row.failed == pytest.approx(len(no_treated) / 30)


def test_a_model_that_always_fails_gives_one_failed_row():
    study = Study(sparse_treatment_design(0.0), ["y treated || school_id:"], reps=3, seed=1).validate()
    (row,) = summarise_records(run_replications(study, 0, range(3)))
    assert (row.param, row.reps, row.n, row.failed, row.mean) == ("", 3, 0, 1.0, None)


# ----- study, sweep, seeds -------------------------------------------------------------------
def test_sweep_parses_its_three_forms_and_changes_the_design():
    design = get_preset("tutoring")
    units = Sweep.parse("dist_id=5,10,20")
    assert (units.kind, units.target, units.values, units.to_text()) == ("units", "dist_id", [5, 10, 20],
                                                                         "dist_id=5,10,20")
    assert units.apply(design, 10).level("dist_id").units.n == 10
    sd = Sweep.parse("sd:school_id=0, 1.5")
    assert sd.apply(design, 1.5).level("school_id").sd == 1.5
    assert Sweep.parse("sd:Residual=4").apply(design, 4).residual_sd == 4.0
    effect = Sweep.parse("effect:tutoring=0,1")
    assert effect.label == "effect:tutoring" and effect.apply(design, 1).truth().fixed["tutoring"] == 1.0
    assert design.level("dist_id").units.n == 5 and design.treatment.effect == 2.0  # the original is untouched
    for bad in ("dist_id", "dist_id=", "dist_id=5,x", "dist_id=2.5", "dist_id=5,5", "foo:dist_id=1", "sd:x=-1"):
        with pytest.raises(UserInputError):
            Sweep.parse(bad)


def test_study_validation_names_the_problem():
    design = small_tutoring()
    with pytest.raises(UserInputError, match="no level 'region'"):
        Study(design, [FOUR_LEVEL_REML], reps=2, sweep=Sweep.parse("region=2,3")).validate()
    with pytest.raises(UserInputError, match="reads ses"):
        Study(design, ["perform tutoring ses || school_id:"], reps=2).validate()
    with pytest.raises(UserInputError, match="listed twice"):
        Study(design, [TEACHER_ML, TEACHER_ML], reps=2).validate()
    with pytest.raises(UserInputError, match="reps"):
        Study(design, [TEACHER_ML], reps=0).validate()
    with pytest.raises(UserInputError, match="no treatment or covariate"):
        Study(design, [TEACHER_ML], reps=2, sweep=Sweep.parse("effect:ses=1")).validate()


def test_study_json_round_trip(small_study):
    again = Study.from_json(small_study.to_json())
    assert again == small_study
    assert json.loads(small_study.to_json())["sweep"] == {"kind": "sd", "target": "dist_id", "values": [0.0, 2.0]}


def test_replication_seeds_differ_across_replications_and_sweep_values_and_repeat():
    seeds = {replication_seed(42, sweep_index, rep) for sweep_index in range(5) for rep in range(200)}
    assert len(seeds) == 1000
    assert all(0 <= seed < 2**63 for seed in seeds)
    assert replication_seed(42, 3, 7) == replication_seed(42, 3, 7) != replication_seed(43, 3, 7)


def test_true_values_of_parameters_the_design_does_not_name():
    truth = Truth(fixed={"tutoring": 2.0}, random={"student_id:sd(_cons)": 5.0, "student_id:sd(time)": 0.5})
    assert true_value(truth, "tutoring", "fixed") == 2.0
    assert true_value(truth, "2.semester", "fixed") == 0.0
    assert true_value(truth, "school_id:sd(tutoring)", "random") == 0.0
    assert true_value(truth, "student_id:corr(time,_cons)", "random") == 0.0
    assert math.isnan(true_value(truth, "school_id:corr(time,_cons)", "random"))


# ----- progress, stopping, partial results ---------------------------------------------------
def test_progress_reports_partial_results_and_stop_keeps_what_finished(small_study):
    calls, chunks = [], []

    def progress(done, total, summary):
        calls.append((done, total, summary))

    result = run_study(small_study, workers=1, chunk_size=1, progress=progress,
                       should_stop=lambda: any(done >= 4 for done, _, _ in calls), on_records=chunks.append)
    assert result.stopped
    assert 4 <= result.completed < result.total == 20
    assert calls[0] == (0, 20, None)
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)
    assert calls[-1][0] == result.completed and calls[-1][2] == result.summary
    fits = result.records.drop_duplicates(["sweep_index", "rep"])
    assert len(fits) == result.completed
    assert sum(len(chunk) for chunk in chunks) == len(result.records)
    assert sum(row.reps for row in result.summary if row.model == TEACHER_ML and row.param == "tutoring") \
        == result.completed


def test_progress_ends_with_the_full_summary(small_study, one_worker_result):
    calls = []
    result = run_study(small_study, workers=2, chunk_size=2, summary_interval=0.0,
                       progress=lambda done, total, summary: calls.append((done, total, summary)))
    assert calls[-1] == (20, 20, result.summary)
    assert result.summary == one_worker_result.summary
    partial = [summary for _, _, summary in calls[1:-1]]
    assert partial and all(summary is not None for summary in partial)  # interval 0: every chunk


# ----- estimator strings -------------------------------------------------------------------------
def test_estimator_strings_fit_the_designs_outcome_and_treatment():
    assert [is_estimator_string(text) for text in ("ols", "re student_id", "mixed || student_id:", FOUR_LEVEL_REML,
                                                   "mixed perform tutoring || teach_id:")] == [
        True, True, True, False, False]
    study = Study(small_tutoring(), ["ols", "fe student_id", "mixed || teach_id: || student_id:, reml"], reps=4,
                  seed=5)
    result = run_study(study, workers=1)
    assert not result.records["failed"].any()
    for model in study.models:
        assert row_of(result.summary, "tutoring", model=model).n == 4
    assert row_of(result.summary, "student_id:sd(_cons)", model=study.models[2]).truth == 5.0


# ----- CLI ---------------------------------------------------------------------------------------
def test_cli_writes_the_summary_json_and_the_records(tmp_path, capsys):
    summary_path, records_path = tmp_path / "summary.json", tmp_path / "records.csv"
    code = main(["montecarlo", "--preset", "tutoring", "--units", "school_id=2", "--units", "teach_id=3",
                 "--units", "student_id=4", "--models", FOUR_LEVEL_REML, "--models", TEACHER_ML, "--reps", "4",
                 "--sweep", "dist_id=2,3", "--seed", "9", "--workers", "2", "--json", str(summary_path),
                 "--records", str(records_path)])
    assert code == 0
    assert "coverage" in capsys.readouterr().out
    payload = json.loads(summary_path.read_text())
    assert payload["reps"] == 4 and payload["seconds"] > 0 and payload["study"]["seed"] == 9
    required = {"model", "sweep", "param", "truth", "mean", "bias", "emp_sd", "mean_se", "rmse", "coverage",
                "power", "failed"}
    assert all(required <= set(row) for row in payload["rows"])
    four_level = ["tutoring", "_cons", "dist_id:sd(_cons)", "school_id:sd(_cons)", "teach_id:sd(_cons)",
                  "student_id:sd(_cons)", "Residual:sd(Residual)"]
    teacher = ["tutoring", "_cons", "teach_id:sd(_cons)", "Residual:sd(Residual)"]
    expected = [(m, s, p) for m, params in ((FOUR_LEVEL_REML, four_level), (TEACHER_ML, teacher))
                for s in (2, 3) for p in params]
    assert [(row["model"], row["sweep"], row["param"]) for row in payload["rows"]] == expected
    assert all(isinstance(row["sweep"], int) for row in payload["rows"])
    tutoring = payload["rows"][0]
    assert tutoring["truth"] == 2.0 and 0 <= tutoring["coverage"] <= 1 and tutoring["power"] is not None
    assert payload["rows"][2]["power"] is None  # no power for a variance component
    records = pd.read_csv(records_path)
    assert list(records.columns) == list(RECORD_COLUMNS)
    assert len(records) == 4 * 2 * (len(four_level) + len(teacher))


def test_cli_rejects_a_bad_sweep_before_running(capsys):
    code = main(["montecarlo", "--preset", "tutoring", "--models", TEACHER_ML, "--reps", "3",
                 "--sweep", "dist_id=two"])
    assert code == 2
    assert "--sweep" in capsys.readouterr().err


def test_records_round_trip_through_parquet(tmp_path, one_worker_result):
    path = one_worker_result.write_records(tmp_path / "records.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, one_worker_result.records, check_dtype=False)
    assert np.array_equal(back["seed"].to_numpy(), one_worker_result.records["seed"].to_numpy())
