"""Analytic power beside simulated power over a study's sweep: the formula's values at each sweep
value, agreement for a balanced trial tested exactly (Kenward-Roger), disagreement of z tests with
few clusters marked, and the montecarlo command's column and JSON."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from engine.design import UnitCount
from engine.montecarlo import Study, SummaryRow, Sweep, run_study
from engine.power.study_curve import analytic_power_curve, compare_power
from engine.presets import get_preset
from main import main

Z_MODEL = "score treated || school_id:, reml"
KR_MODEL = "score treated || school_id:, reml dfmethod(kroger)"


def trial(schools=6, students=5):
    design = get_preset("cluster_trial").with_units("school_id", schools)
    design.level("student_id").units = UnitCount.fixed(students)
    return design


def crt2_power_by_hand(schools, students, effect=1.5, school_sd=2.0, residual_sd=5.0, alpha=0.05):
    """Noncentral t power of a balanced two-level CRT, half the clusters treated, written out."""
    total = school_sd ** 2 + residual_sd ** 2
    icc = school_sd ** 2 / total
    se = math.sqrt(4 * (icc + (1 - icc) / students) / schools)
    df = schools - 2
    critical = stats.t.ppf(1 - alpha / 2, df)
    delta = effect / math.sqrt(total) / se
    return stats.nct.sf(critical, df, delta) + stats.nct.cdf(-critical, df, delta)


def test_analytic_curve_is_the_formula_at_every_sweep_value():
    study = Study(trial(), [Z_MODEL], reps=10, sweep=Sweep(kind="units", target="school_id", values=[6, 10, 40]))
    curve = analytic_power_curve(study)
    assert curve.term == "treated" and curve.design == "crt2" and curve.alpha == 0.05
    assert curve.power == pytest.approx([crt2_power_by_hand(n, 5) for n in (6, 10, 40)], rel=1e-10)
    assert analytic_power_curve(study, alpha=0.1).power[0] == pytest.approx(crt2_power_by_hand(6, 5, alpha=0.1))


def test_a_design_without_a_formula_gives_none_with_the_reason():
    curve = analytic_power_curve(Study(get_preset("tutoring"), ["perform tutoring || dist_id:"], reps=1))
    assert curve.power == [None] and not curve.applies
    assert "no textbook formula" in curve.reasons[0]
    assert analytic_power_curve(Study(get_preset("two_level"), ["score || school_id:"], reps=1)) is None


def test_disagreement_is_beyond_two_conservative_monte_carlo_ses():
    study = Study(trial(), [Z_MODEL], reps=100)
    curve = analytic_power_curve(study)
    analytic = curve.power[0]

    def row(power, n=100):
        return SummaryRow(model=Z_MODEL, sweep=None, param="treated", truth=1.5, reps=n, n=n, mean=None, bias=None,
                          emp_sd=None, mean_se=None, rmse=None, coverage=None, power=power, failed=0.0, boundary=0.0,
                          at_zero=None, mcse_bias=None, mcse_emp_sd=None, mcse_mean_se=None, mcse_coverage=None,
                          mcse_power=math.sqrt(power * (1 - power) / n))

    def se(power, n=100):
        r = (power * n + 1) / (n + 2)
        return math.sqrt(r * (1 - r) / n)

    outcomes = []
    for power in [0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40]:
        (item,) = compare_power(curve, [row(power)])
        assert item.difference == pytest.approx(power - analytic)
        assert item.disagree == (abs(power - analytic) > 2 * se(power))
        outcomes.append(item.disagree)
    assert True in outcomes and False in outcomes


def test_z_tests_with_six_clusters_disagree_and_kenward_roger_agrees():
    # Balanced CRT with 6 schools: Kenward-Roger's t with 4 df is the formula's test (when the school
    # variance is not estimated at zero), and agrees with it here within Monte Carlo error; the z test
    # rejects far too often (formulas and simulation disagree, and say so).
    study = Study(trial(), [Z_MODEL, KR_MODEL], reps=200, seed=5)
    result = run_study(study, workers=2)
    comparisons = {c.model: c for c in compare_power(analytic_power_curve(study), result.summary)}
    assert comparisons[Z_MODEL].disagree and comparisons[Z_MODEL].difference > 0.05
    assert not comparisons[KR_MODEL].disagree
    assert comparisons[KR_MODEL].analytic == pytest.approx(crt2_power_by_hand(6, 5))


def test_montecarlo_prints_and_writes_the_analytic_column(tmp_path, capsys):
    out = tmp_path / "mc.json"
    assert main(["montecarlo", "--preset", "cluster_trial", "--units", "school_id=6", "--units", "student_id=5",
                 "--models", KR_MODEL, "--reps", "20", "--seed", "2", "--workers", "1",
                 "--sweep", "school_id=6,12", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Power of treated at alpha 0.05: simulated (Monte Carlo SE) against the crt2 formula" in text
    data = json.loads(out.read_text())["analytic_power"]
    assert data["power"] == pytest.approx([crt2_power_by_hand(6, 5), crt2_power_by_hand(12, 5)])
    assert [c["sweep"] for c in data["comparisons"]] == [6, 12]
    assert f"{crt2_power_by_hand(12, 5):.3f}" in text
