"""Analytic power and MDES against published worked examples (PowerUp! / PowerUpR).

Sources, each quoted where it is used:

* Bulus, M., Dong, N., Kelcey, B., & Spybrook, J. (2021). PowerUpR: Power Analysis Tools for
  Multilevel Randomized Experiments, R package version 1.1.0, reference manual: the "cross-checks
  for the main effect" in the Examples of the help pages ``cra2``, ``cra3``, ``bira2`` and
  ``bcra3r2``. Each runs ``mdes.*`` at power 0.80, then ``power.*`` at that MDES rounded to three
  decimals and ``mrss.*`` at it, and the printed outputs are the published numbers. PowerUpR
  implements the formulas of Dong, N., & Maynard, R. A. (2013). PowerUp!: A tool for calculating
  minimum detectable effect sizes and minimum required sample sizes for experimental and
  quasi-experimental design studies. Journal of Research on Educational Effectiveness, 6(1),
  24-67 (Dong is an author of both); the manual's examples are the spreadsheet's cross-checks.
  The article's own tables could not be consulted here, so no page of it is cited.
* PowerUpR's vignette "Planning a three-level cluster randomized trial" (Bulus & Dong): the Saxon
  Math trial, in version 1.1.0 (83 schools) and in version 0.1.3, whose closing paragraph states
  power 79% for an effect of .200 and an MDES of .202, 95% CI [.060, .344], for 100 schools of
  two classrooms and 40 students.

Tolerance: the published values are printed to three decimals (power 0.80 as "0.8"), so they are
matched to half a unit in the last printed place. The same calls were also evaluated in R from
PowerUpR 1.1.0's own source (``mdes.*``/``power.*``), and those full-precision values, carried as
literals below, are matched to 1e-9: the formulas and conventions are the same, not merely close.

Conventions (all as PowerUp!): two-sided test, power from the noncentral t with both tails,
df = top-level units - top-level covariates - 2 (cluster-randomised) or - 1 (multisite with a
random treatment effect), MDES = (t_{1-alpha/2, df} + t_{power, df}) * SE. The one difference is
the sample-size answer: PowerUpR's ``mrss.*`` rounds the fixed point of
``units = (M / effect)^2 * (variance terms)`` to the nearest whole number, while
``TrialPlan.top_units_needed`` returns the fewest units whose noncentral-t power reaches the
target; the two agree unless the rounded count falls a hair short of the target power.
"""

import pytest

from engine.distributions import t_quantile
from engine.power.analytic import TrialPlan

PRINTED = 0.0005  # half a unit in the third decimal


def confidence_limits(plan: TrialPlan) -> tuple[float, float]:
    """PowerUpR's interval around the MDES: MDES * (1 -/+ t_{1-alpha/2} / M)."""
    df = plan.df()
    t_alpha = t_quantile(1 - plan.alpha / 2, df)
    multiplier = t_alpha + t_quantile(plan.target, df)
    return plan.mdes() * (1 - t_alpha / multiplier), plan.mdes() * (1 + t_alpha / multiplier)


def test_two_level_cluster_randomised_trial_powerupr_cra2_example():
    # PowerUpR 1.1.0 manual, help page `cra2`, Examples, "cross-checks for the main effect":
    # mdes.cra2(rho2=.17, n=15, J=20) -> 0.629 (df 18); power.cra2(es=.629, ...) -> 0.8;
    # mrss.cra2(es=.629, rho2=.17, n=15) -> J = 20. (PowerUp! CRA2_2r, Dong & Maynard 2013.)
    plan = TrialPlan("crt2", [20, 15], [0.17])
    assert plan.df() == 18
    assert plan.mdes() == pytest.approx(0.629, abs=PRINTED)
    assert plan.power(0.629) == pytest.approx(0.80, abs=0.005)
    assert plan.top_units_needed(0.629) == 20
    # Full precision, PowerUpR 1.1.0 source evaluated in R.
    assert plan.mdes() == pytest.approx(0.6290064177, rel=1e-9)
    assert plan.power(0.629) == pytest.approx(0.8000707502, rel=1e-9)


def test_three_level_cluster_randomised_trial_powerupr_cra3_example():
    # PowerUpR 1.1.0 manual, help page `cra3`, Examples, "cross-checks for the main effect":
    # mdes.cra3(rho3=.06, rho2=.17, n=15, J=3, K=60) -> 0.269 (df 58);
    # power.cra3(es=.269, ...) -> 0.8; mrss.cra3(es=.269, ..., J=3) -> K = 60.
    plan = TrialPlan("crt3", [60, 3, 15], [0.06, 0.17])
    assert plan.df() == 58
    assert plan.mdes() == pytest.approx(0.269, abs=PRINTED)
    assert plan.power(0.269) == pytest.approx(0.80, abs=0.005)
    assert plan.mdes() == pytest.approx(0.26910837, rel=1e-8)
    assert plan.power(0.269) == pytest.approx(0.799830496, rel=1e-9)
    # The sample-size convention: with the effect rounded to .269, 60 schools give power
    # 0.79983, just under 0.80, so the fewest schools reaching the target is 61 where PowerUpR,
    # rounding the MDES equation's fixed point, prints 60.
    assert plan.power(0.269, top_units=60) < 0.80 <= plan.power(0.269, top_units=61)
    assert plan.top_units_needed(0.269) == 61


def test_three_level_trial_with_covariates_powerupr_vignette_saxon_math_83_schools():
    # PowerUpR 1.1.0 vignette, Saxon Math trial: rho3 .18, rho2 .06, R2 .45/.50/.55 (school,
    # classroom, student), one school covariate, 40% of schools treated, K 83, J 2, n 10:
    # MDES .23 at power .80, and power .80 at effect .23.
    plan = TrialPlan("crt3", [83, 2, 10], [0.18, 0.06], r2=[0.45, 0.50, 0.55], covariates_top=1,
                     treated_share=0.4)
    assert plan.df() == 80
    assert plan.mdes() == pytest.approx(0.23, abs=0.005)
    assert plan.power(0.23) == pytest.approx(0.80, abs=0.005)
    assert plan.mdes() == pytest.approx(0.2300878306, rel=1e-9)
    assert plan.power(0.23) == pytest.approx(0.7998176202, rel=1e-9)


def test_three_level_trial_with_covariates_powerupr_0_1_3_vignette_100_schools():
    # PowerUpR 0.1.3 vignette (Bulus & Dong, 2017), closing paragraph: 100 schools, each with two
    # classrooms and 40 students (20 per classroom), same parameters as above: "statistical power
    # of 79% for an effect size of .200", "an effect size as small as .202 95% CI[.060, .344]".
    plan = TrialPlan("crt3", [100, 2, 20], [0.18, 0.06], r2=[0.45, 0.50, 0.55], covariates_top=1,
                     treated_share=0.4)
    assert plan.power(0.200) == pytest.approx(0.79, abs=0.005)
    assert plan.mdes() == pytest.approx(0.202, abs=PRINTED)
    lower, upper = confidence_limits(plan)
    assert lower == pytest.approx(0.060, abs=PRINTED)
    assert upper == pytest.approx(0.344, abs=PRINTED)


def test_two_level_multisite_trial_powerupr_bira2_example():
    # PowerUpR 1.1.0 manual, help page `bira2`, Examples, "cross-checks": individuals randomised
    # within 20 sites of 15, random treatment effect (PowerUp! BIRA2_1r): mdes.bira2(rho2=.17,
    # omega2=.50, n=15, J=20) -> 0.366 (df 19); power.bira2(es=.366, ...) -> 0.801;
    # mrss.bira2(es=.366, ...) -> J = 20.
    plan = TrialPlan("msrt2", [20, 15], [0.17], omega=0.5)
    assert plan.df() == 19
    assert plan.mdes() == pytest.approx(0.366, abs=PRINTED)
    assert plan.power(0.366) == pytest.approx(0.801, abs=PRINTED)
    assert plan.top_units_needed(0.366) == 20
    assert plan.mdes() == pytest.approx(0.3655854374, rel=1e-9)
    assert plan.power(0.366) == pytest.approx(0.8009889996, rel=1e-9)


def test_three_level_multisite_cluster_trial_powerupr_bcra3r2_example():
    # PowerUpR 1.1.0 manual, help page `bcra3r2`, Examples, "cross-checks": classrooms randomised
    # within 24 schools of 6 classrooms of 10, random treatment effect across schools (PowerUp!
    # BCRA3_2r): mdes.bcra3r2(rho3=.13, rho2=.10, omega3=.4, n=10, J=6, K=24) -> 0.246 (df 23);
    # power.bcra3r2(es=.246, ...) -> 0.799; mrss.bcra3r2(es=.246, ..., J=6) -> K = 24.
    plan = TrialPlan("msrt3", [24, 6, 10], [0.13, 0.10], omega=0.4)
    assert plan.df() == 23
    assert plan.mdes() == pytest.approx(0.246, abs=PRINTED)
    assert plan.power(0.246) == pytest.approx(0.799, abs=PRINTED)
    assert plan.mdes() == pytest.approx(0.2462753476, rel=1e-9)
    assert plan.power(0.246) == pytest.approx(0.7992827591, rel=1e-9)
    # Same sample-size convention as the cra3 case: 24 schools fall just short of 0.80.
    assert plan.top_units_needed(0.246) == 25
