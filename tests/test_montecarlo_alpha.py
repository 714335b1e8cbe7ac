"""`montecarlo --alpha`: coverage of (1 - alpha) intervals and power at level alpha, checked
against a direct computation from each replication's estimate, SE and p-value."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from engine.errors import UserInputError
from engine.montecarlo import Study, run_replications, summarise_records
from engine.montecarlo.summary import critical_value
from engine.presets import get_preset
from main import main

MODEL = "perform tutoring || dist_id: || school_id:, reml"


def small_design():
    design = get_preset("tutoring")
    for level, n in (("dist_id", 4), ("school_id", 3), ("teach_id", 3), ("student_id", 4)):
        design = design.with_units(level, n)
    return design


@pytest.fixture(scope="module")
def records_by_alpha():
    """The same 40 replications summarised at alpha 0.05 and 0.2 (runs in this process)."""
    out = {}
    for alpha in (0.05, 0.2):
        study = Study(small_design(), [MODEL], reps=40, seed=11, alpha=alpha).validate()
        out[alpha] = run_replications(study, 0, range(study.reps))
    return out


def _direct_interval(kind, param, estimate, se, z):
    """Stata's Wald intervals from the estimate and SE alone: linear for a coefficient, on the log
    scale for an sd (SE(log sd) = SE(sd) / sd)."""
    if kind == "fixed":
        return estimate - z * se, estimate + z * se
    return estimate * math.exp(-z * se / estimate), estimate * math.exp(z * se / estimate)


def test_records_hold_the_interval_at_the_studys_level(records_by_alpha):
    base, wide = records_by_alpha[0.05], records_by_alpha[0.2]
    # Same data and fits: only the intervals differ.
    assert np.allclose(base["estimate"], wide["estimate"], equal_nan=True)
    z = stats.norm.ppf(0.9)
    for (_, row) in wide[np.isfinite(wide["se"])].iterrows():
        low, high = _direct_interval(row["kind"], row["param"], row["estimate"], row["se"], z)
        assert math.isclose(row["ci_low"], low, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(row["ci_high"], high, rel_tol=1e-9, abs_tol=1e-12)
    # 80% intervals are narrower than 95% ones.
    finite = np.isfinite(base["se"])
    assert (wide.loc[finite, "ci_high"] - wide.loc[finite, "ci_low"]
            < base.loc[finite, "ci_high"] - base.loc[finite, "ci_low"]).all()


def test_coverage_and_power_match_a_direct_computation(records_by_alpha):
    alpha = 0.2
    records = records_by_alpha[alpha]
    summary = {row.param: row for row in summarise_records(records, alpha)}
    z = stats.norm.ppf(1 - alpha / 2)
    used = records[~records["failed"]]
    checked = 0
    for param, rows in used.groupby("param"):
        rows = rows[np.isfinite(rows["se"]) & np.isfinite(rows["estimate"])]
        hits = []
        for (_, row) in rows.iterrows():
            low, high = _direct_interval(row["kind"], param, row["estimate"], row["se"], z)
            hits.append(low <= row["truth"] <= high)
        assert summary[param].coverage == pytest.approx(np.mean(hits), abs=1e-12)
        checked += 1
        if rows["kind"].iloc[0] == "fixed":
            assert summary[param].power == pytest.approx(np.mean(rows["p"] < alpha), abs=1e-12)
    assert checked >= 4
    # Power at 20% is at least power at 5%, on the same fits.
    base = {row.param: row for row in summarise_records(records_by_alpha[0.05], 0.05)}
    assert summary["tutoring"].power >= base["tutoring"].power
    assert summary["_cons"].power >= base["_cons"].power


def test_critical_value_is_normal_or_t():
    assert critical_value(0.05) == pytest.approx(1.959963984540054)
    assert critical_value(0.1) == pytest.approx(1.6448536269514722)
    assert critical_value(0.05, 4) == pytest.approx(2.7764451051977987)


def test_alpha_round_trips_and_is_checked():
    study = Study(small_design(), [MODEL], reps=3, seed=1, alpha=0.1)
    again = Study.from_json(study.to_json())
    assert again.alpha == 0.1
    assert Study.from_dict({k: v for k, v in study.to_dict().items() if k != "alpha"}).alpha == 0.05
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(UserInputError, match="alpha must be a number between 0 and 1"):
            Study(small_design(), [MODEL], reps=3, alpha=bad).validate()


def test_cli_alpha_reaches_the_summary(tmp_path, capsys):
    out = tmp_path / "mc.json"
    assert main(["montecarlo", "--preset", "tutoring", "--units", "dist_id=3", "--units", "school_id=2",
                 "--units", "teach_id=2", "--units", "student_id=3", "--models", "perform tutoring || dist_id:",
                 "--reps", "6", "--seed", "5", "--workers", "1", "--alpha", "0.1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "coverage of 90% intervals; power of tests at level 0.1" in printed
    payload = json.loads(out.read_text())
    assert payload["alpha"] == 0.1 and payload["study"]["alpha"] == 0.1
    assert main(["montecarlo", "--preset", "tutoring", "--models", "perform tutoring || dist_id:",
                 "--reps", "2", "--alpha", "1.5"]) == 2
    assert "alpha must be a number between 0 and 1" in capsys.readouterr().err
