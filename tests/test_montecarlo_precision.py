"""Monte Carlo to a target precision: whole rounds, per sweep value, the same with 1 and 2 workers,
the reported Monte Carlo SE at the target where it stopped and above it one round earlier."""

from __future__ import annotations

import json

import pytest

from engine.design import UnitCount
from engine.errors import UserInputError
from engine.montecarlo import Study, Sweep, run_study, summarise_records
from engine.montecarlo.precision import (PrecisionTarget, StoppingRule, conservative_rate_se, judged_mcse,
                                         round_ranges, unmet_targets)
from engine.presets import get_preset
from main import main

MODEL = "score treated || school_id:, reml"


def small_trial():
    design = get_preset("cluster_trial").with_units("school_id", 8)
    design.level("student_id").units = UnitCount.fixed(5)
    return design


def precise_study(reps=120, target=0.05):
    return Study(small_trial(), [MODEL], reps=reps, seed=11,
                 sweep=Sweep(kind="effect", target="treated", values=[0.0, 20.0]),
                 precision=StoppingRule([PrecisionTarget("power", target, "treated")], round_reps=20))


@pytest.fixture(scope="module")
def one_worker():
    return run_study(precise_study(), workers=1)


def test_stopping_is_the_same_with_one_and_two_workers(one_worker):
    two = run_study(precise_study(), workers=2, chunk_size=7)
    assert [s.to_dict() for s in two.stops] == [s.to_dict() for s in one_worker.stops]
    left = one_worker.records.drop(columns=["fit_seconds"])
    right = two.records.drop(columns=["fit_seconds"])
    assert left.equals(right)


def test_each_sweep_value_stops_at_the_first_round_meeting_the_target(one_worker):
    records = one_worker.records
    stops = {stop.sweep: stop for stop in one_worker.stops}
    # Effect 20 (power near 1) needs fewer replications than effect 0 (power near 0.05, whose
    # conservative SE sqrt(r(1-r)/n) with r=(h+1)/(n+2) needs n of about 20-40).
    assert stops[0.0].met and stops[20.0].met
    for sweep, stop in stops.items():
        at = records[records["sweep"] == sweep]
        assert at["rep"].max() + 1 == stop.reps and stop.reps % 20 == 0
        row = next(r for r in summarise_records(at) if r.param == "treated")
        # Independent check of the rule: the binomial SE with the shrunk rate, from the hits.
        fits = at[(at["param"] == "treated") & ~at["failed"]]
        hits, trials = int((fits["p"] < 0.05).sum()), len(fits)
        assert judged_mcse(row, "power") == pytest.approx(conservative_rate_se(hits, trials))
        assert conservative_rate_se(hits, trials) <= 0.05
        assert row.mcse_power <= 0.05  # the reported MCSE meets the target
        if stop.reps > 20:  # one round earlier it did not
            earlier = fits[fits["rep"] < stop.reps - 20]
            assert conservative_rate_se(int((earlier["p"] < 0.05).sum()), len(earlier)) > 0.05
    assert stops[20.0].reps < stops[0.0].reps
    assert one_worker.completed == stops[0.0].reps + stops[20.0].reps == one_worker.total


def test_the_maximum_ends_a_study_whose_target_is_out_of_reach():
    study = precise_study(reps=40, target=0.001)
    study.sweep = None
    result = run_study(study, workers=1)
    assert [(s.reps, s.met) for s in result.stops] == [(40, False)]
    assert "power of treated" in result.stops[0].worst
    assert "reached the maximum, 40 replications" in result.format_stopping()


def test_rule_parses_checks_and_round_trips_in_the_study_json():
    rule = StoppingRule.parse(["power=0.01", "coverage:_cons=0.005"], 50)
    assert [(t.statistic, t.param, t.target) for t in rule.targets] == [("power", "", 0.01), ("coverage", "_cons", 0.005)]
    study = precise_study()
    again = Study.from_json(study.to_json())
    assert again.precision == study.precision
    assert round_ranges(45, 20) == [range(0, 20), range(20, 40), range(40, 45)]
    for text, message in [("power", "STATISTIC=TARGET"), ("speed=0.1", "unknown statistic"),
                          ("power=0", "must be a number > 0"), ("power=abc", "must be a number > 0"),
                          ("coverage=0.6", "below 0.5")]:
        with pytest.raises(UserInputError, match=message):
            StoppingRule.parse([text])


def test_a_target_that_concerns_nothing_is_never_met():
    rows = summarise_records(run_study(Study(small_trial(), [MODEL], reps=3, seed=1), workers=1).records)
    assert unmet_targets(StoppingRule([PrecisionTarget("power", 0.4, "nosuch")]), rows) == [
        "power:nosuch=0.4 (no estimate yet)"]


def test_cli_states_the_rule_and_where_it_stopped(tmp_path, capsys):
    out = tmp_path / "mc.json"
    code = main(["montecarlo", "--preset", "cluster_trial", "--units", "school_id=8", "--units", "student_id=5",
                 "--models", MODEL, "--reps", "60", "--seed", "11", "--workers", "1", "--sweep", "effect:treated=0,20",
                 "--precision", "power:treated=0.05", "--round-reps", "20", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Stopping rule: stop when the Monte Carlo SE of power of treated <= 0.05" in text
    assert "effect:treated = 20: stopped after 20 replications: target met" in text
    data = json.loads(out.read_text())
    assert data["precision"]["rule"]["round_reps"] == 20
    assert data["precision"]["stops"][1] == {"sweep_index": 1, "sweep": 20, "reps": 20, "met": True, "worst": None}
    assert data["study"]["precision"]["targets"][0]["target"] == 0.05


def test_cli_refuses_round_reps_without_precision(capsys):
    assert main(["montecarlo", "--preset", "cluster_trial", "--models", MODEL, "--reps", "5",
                 "--round-reps", "20"]) == 2
    assert "--round-reps applies only with --precision" in capsys.readouterr().err
