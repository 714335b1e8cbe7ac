"""Analytic power (PowerUp! formulas): independent checks, the solver, simulation, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from engine.design import Design, LevelDesign, RandomSlope, TreatmentDesign, UnitCount
from engine.errors import UserInputError
from engine.power.analytic import TrialPlan, answer, noncentral_t_power
from engine.power.from_design import plan_from_design
from engine.presets import get_preset
from engine.simulate import simulate


@pytest.mark.parametrize("effect, clusters, share", [(0.5, 40, 0.5), (0.3, 90, 0.5), (0.8, 30, 0.4)])
def test_crt2_without_clustering_is_the_two_sample_t_test(effect, clusters, share):
    # One person per cluster and ICC 0: SE^2 = 1/(P(1-P)J), df = J - 2, the pooled t test's power.
    plan = TrialPlan("crt2", [clusters, 1], [0.0], effect=effect, treated_share=share)
    treated = share * clusters
    expected = TTestIndPower().power(effect, nobs1=treated, alpha=0.05, ratio=(clusters - treated) / treated)
    assert plan.power() == pytest.approx(expected, rel=1e-10)


def test_crt2_standard_error_is_the_design_effect_formula():
    # Var of the difference of arm means of J/2 clusters of n: 4/J (rho + (1 - rho)/n) in sd units.
    plan = TrialPlan("crt2", [20, 25], [0.15])
    assert plan.standard_error() ** 2 == pytest.approx(4 / 20 * (0.15 + 0.85 / 25), rel=1e-12)
    assert plan.df() == 18
    covariates = TrialPlan("crt2", [20, 25], [0.15], r2=[0.5, 0.3], covariates_top=2)
    assert covariates.standard_error() ** 2 == pytest.approx(4 / 20 * (0.15 * 0.5 + 0.85 * 0.7 / 25), rel=1e-12)
    assert covariates.df() == 16


def test_mdes_is_powerup_multiplier_and_close_to_the_target_power():
    plan = TrialPlan("crt3", [83, 2, 10], [0.18, 0.06], r2=[0.45, 0.50, 0.55], covariates_top=1, treated_share=0.4)
    multiplier = stats.t.ppf(0.975, 80) + stats.t.ppf(0.8, 80)
    assert plan.mdes() == pytest.approx(multiplier * plan.standard_error(), rel=1e-12)
    # The PowerUpR vignette's Saxon Math trial (83 schools, 2 classrooms of 10): MDES about 0.23,
    # and power at an effect of 0.23 about 0.80.
    assert plan.mdes() == pytest.approx(0.23, abs=0.005)
    assert plan.power(0.23) == pytest.approx(0.80, abs=0.01)


@pytest.mark.parametrize("plan", [
    TrialPlan("crt2", [10, 20], [0.2], effect=0.4),
    TrialPlan("crt3", [10, 4, 20], [0.1, 0.05], effect=0.3, r2=[0.3, 0.2, 0.4], covariates_top=1),
    TrialPlan("crt4", [6, 3, 4, 15], [0.05, 0.1, 0.1], effect=0.25),
    TrialPlan("msrt2", [5, 40], [0.2], effect=0.3, omega=0.5),
    TrialPlan("msrt3", [6, 4, 20], [0.1, 0.15], effect=0.25, omega=0.2),
    TrialPlan("msrt3", [6, 4, 20], [0.1, 0.15], effect=0.25, omega=0.2, treatment_level=1),
])
def test_units_needed_reach_the_target_and_one_fewer_does_not(plan):
    needed = plan.top_units_needed()
    assert plan.power(top_units=needed) >= plan.target
    assert needed - 1 < plan.covariates_top + 3 or plan.power(top_units=needed - 1) < plan.target
    per_cluster = plan.units_needed(level=len(plan.units) - 1)
    if per_cluster is not None:  # the top level may cap what more individuals can give
        counts = list(plan.units)
        counts[-1] = per_cluster
        assert noncentral_t_power(plan.effect / plan._se_for(counts), plan.df(), plan.alpha) >= plan.target
        counts[-1] = per_cluster - 1
        assert per_cluster == 1 or noncentral_t_power(plan.effect / plan._se_for(counts), plan.df(),
                                                      plan.alpha) < plan.target


def test_a_floor_set_by_the_top_level_is_reported_not_looped_forever():
    plan = TrialPlan("crt2", [6, 20], [0.5], effect=0.2)
    assert plan.units_needed(level=1) is None  # more pupils cannot beat 6 schools with ICC 0.5
    assert answer(plan).clusters_needed is not None


def test_simulated_cluster_trial_power_agrees_with_the_formula():
    # Balanced CRT: the t test on cluster means is the exact REML test; its rejection rate over
    # simulated trials must match the noncentral-t power within Monte Carlo error.
    design = get_preset("cluster_trial").with_units("school_id", 12)
    design.level("student_id").units = UnitCount.fixed(10)
    plan, _ = plan_from_design(design)
    assert plan.design == "crt2" and plan.units == [12, 10]
    reps, rejected = 1000, 0
    for seed in range(reps):
        frame = simulate(design, seed).frame
        means = frame.groupby("school_id").agg(y=("score", "mean"), t=("treated", "first"))
        p = stats.ttest_ind(means.y[means.t == 1], means.y[means.t == 0]).pvalue
        rejected += p < 0.05
    simulated = rejected / reps
    mc_se = np.sqrt(plan.power() * (1 - plan.power()) / reps)
    assert abs(simulated - plan.power()) < 2.5 * mc_se, (simulated, plan.power())


def test_simulated_multisite_power_with_effect_heterogeneity_agrees_with_msrt2():
    design = Design(
        outcome="y",
        levels=[LevelDesign("site", UnitCount.fixed(8), sd=1.0, slopes=[RandomSlope("t", sd=0.6)]),
                LevelDesign("person", UnitCount.fixed(16), sd=0.0)],
        residual_sd=2.0,
        treatment=TreatmentDesign("t", effect=0.9, level="person", allocation="fixed", block="site"),
    )
    plan, _ = plan_from_design(design)
    assert plan.design == "msrt2" and plan.omega == pytest.approx(0.36)
    reps, rejected = 1000, 0
    for seed in range(reps):
        frame = simulate(design, seed).frame
        arms = frame.groupby(["site", "t"]).y.mean().unstack()
        rejected += stats.ttest_1samp(arms[1] - arms[0], 0.0).pvalue < 0.05
    simulated = rejected / reps
    mc_se = np.sqrt(plan.power() * (1 - plan.power()) / reps)
    assert abs(simulated - plan.power()) < 2.5 * mc_se, (simulated, plan.power())


def test_designs_without_a_textbook_formula_are_refused_with_the_reason():
    with pytest.raises(UserInputError, match="no textbook formula for a treatment on individuals without blocks"):
        plan_from_design(get_preset("tutoring"))


@pytest.mark.parametrize("fields, message", [
    ({"design": "crt5"}, "design must be one of"),
    ({"units": [20]}, "give 2 unit counts"),
    ({"icc": [1.2]}, "ICCs must be in"),
    ({"treated_share": 1.0}, "strictly between 0 and 1"),
    ({"omega": 0.3}, "omega applies to multisite designs"),
    ({"units": [3, 20], "covariates_top": 1}, "leave 0 degrees of freedom"),
])
def test_bad_plans_are_refused_naming_the_field(fields, message):
    arguments = {"design": "crt2", "units": [20, 25], "icc": [0.15]} | fields
    with pytest.raises(UserInputError, match=message):
        TrialPlan(**arguments)


def test_power_command_textbook_form_writes_json(tmp_path):
    out = tmp_path / "power.json"
    result = subprocess.run(
        [sys.executable, "main.py", "power", "crt2", "--clusters", "20", "--per-cluster", "25", "--icc", "0.15",
         "--effect", "0.3", "--json", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    payload = json.loads(out.read_text())
    plan = TrialPlan("crt2", [20, 25], [0.15], effect=0.3)
    assert payload["power"] == pytest.approx(plan.power(), rel=1e-12)
    assert payload["mdes"] == pytest.approx(plan.mdes(), rel=1e-12)
    assert payload["df"] == 18 and payload["clusters_needed"] == plan.top_units_needed()
    three = subprocess.run(
        [sys.executable, "main.py", "power", "crt3", "--clusters", "83", "--per-cluster", "2x10", "--icc", "0.18"],
        capture_output=True, text=True)
    assert three.returncode == 2 and "give --icc-2 ... --icc-3 instead of --icc" in three.stderr


def test_power_command_design_form_matches_the_plan():
    result = subprocess.run([sys.executable, "main.py", "power", "--preset", "cluster_trial", "--units",
                             "school_id=10"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    plan, _ = plan_from_design(get_preset("cluster_trial").with_units("school_id", 10))
    assert f"Power for effect {plan.effect:g} sd: {plan.power():.4f}" in result.stdout
