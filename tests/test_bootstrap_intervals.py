"""Parametric-bootstrap percentile intervals (`fit --ci bootstrap`): reproducible from the seed
whatever runs them, and right where theory gives the bootstrap distribution exactly."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import main
from engine.bootstrap import apply_bootstrap_intervals, bootstrap_problem, run_bootstrap
from engine.errors import Cancelled, UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from tests.reference_cases import DATA

PASTES = "strength || batch: || cask:"


@pytest.fixture(scope="module")
def pastes():
    frame = pd.read_csv(DATA / "pastes.csv")
    return frame, fit_mixed(frame, ModelSpec.parse(PASTES, method="REML"))


def test_same_seed_gives_the_same_draws_in_process_and_on_two_workers(pastes):
    frame, result = pastes
    problem = bootstrap_problem(result, frame, seed=7)
    alone = run_bootstrap(problem, 24, workers=1)
    shared = run_bootstrap(problem, 24, workers=2, chunk_size=5)
    assert (alone.backend, shared.backend, shared.workers) == ("in-process", "processes", 2)
    np.testing.assert_array_equal(alone.estimates, shared.estimates)
    assert alone.percentile_intervals() == shared.percentile_intervals()
    # Left to choose, a bootstrap this small stays in this process (after timing one replicate).
    chosen = run_bootstrap(problem, 24)
    assert chosen.backend == "in-process"
    np.testing.assert_array_equal(alone.estimates, chosen.estimates)
    # Another seed draws other data.
    other = run_bootstrap(bootstrap_problem(result, frame, seed=8), 24, workers=1)
    assert not np.allclose(other.estimates, alone.estimates)


def test_same_seed_gives_the_same_draws_on_a_dask_cluster(pastes):
    distributed = pytest.importorskip("distributed")
    frame, result = pastes
    problem = bootstrap_problem(result, frame, seed=7)
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        on_dask = run_bootstrap(problem, 12, scheduler=cluster.scheduler_address, chunk_size=4)
    assert on_dask.backend == "dask" and on_dask.workers == 2
    np.testing.assert_array_equal(on_dask.estimates, run_bootstrap(problem, 12, workers=1).estimates)


def test_replicates_keep_the_data_structure_and_the_fitted_variances(pastes):
    """Averaged over many draws, the simulated outcome has the fitted mean and the fitted
    covariance: within-cask, within-batch and between-batch variances."""
    frame, result = pastes
    problem = bootstrap_problem(result, frame, seed=1)
    draws = np.array([problem.outcome(rep) for rep in range(4000)])
    assert np.allclose(draws.mean(axis=0), result.coef("_cons").coef, atol=0.25)  # 5 Monte Carlo sds
    sd = {row.level: row.estimate for row in result.random}
    cov = np.cov(draws, rowvar=False)
    same_cask = frame["sample"].to_numpy()[:, None] == frame["sample"].to_numpy()[None, :]
    same_batch = frame["batch"].to_numpy()[:, None] == frame["batch"].to_numpy()[None, :]
    off = ~np.eye(len(frame), dtype=bool)
    assert np.mean(np.diag(cov)) == pytest.approx(sd["batch"] ** 2 + sd["cask"] ** 2 + sd["Residual"] ** 2, rel=0.05)
    assert np.mean(cov[same_cask & off]) == pytest.approx(sd["batch"] ** 2 + sd["cask"] ** 2, rel=0.06)
    assert np.mean(cov[same_batch & ~same_cask]) == pytest.approx(sd["batch"] ** 2, abs=0.15)
    assert abs(np.mean(cov[~same_batch])) < 0.1


@pytest.fixture(scope="module")
def balanced():
    """A balanced one-level random-intercept design with known truth: 80 groups of 5."""
    rng = np.random.default_rng(2024)
    groups, size = 80, 5
    group = np.repeat(np.arange(groups), size)
    y = 10.0 + 2.0 * rng.standard_normal(groups)[group] + 3.0 * rng.standard_normal(groups * size)
    frame = pd.DataFrame({"g": group, "y": y})
    result = fit_mixed(frame, ModelSpec.parse("y || g:", method="REML"))
    draws = apply_bootstrap_intervals(result, frame, reps=300, seed=11, workers=1)
    return frame, result, draws, groups, size


def test_balanced_intercept_interval_matches_theory(balanced):
    """Here the bootstrap's _cons is exactly normal with sd sqrt((sd_u^2 + sigma^2 / m) / g), the
    Wald SE: the percentile interval must be the Wald interval up to Monte Carlo error (the 2.5%
    quantile of 300 draws has an sd of about 0.16 SE)."""
    _, result, draws, groups, size = balanced
    row = result.coef("_cons")
    sd = {r.level: r.estimate for r in result.random}
    exact_se = math.sqrt((sd["g"] ** 2 + sd["Residual"] ** 2 / size) / groups)
    assert row.se == pytest.approx(exact_se, rel=1e-4)
    replicates = draws.estimates[:, draws.names.index("_cons")]
    assert np.std(replicates, ddof=1) == pytest.approx(exact_se, rel=0.15)
    wald = (row.coef - 1.959964 * row.se, row.coef + 1.959964 * row.se)
    assert row.ci_method == "bootstrap"
    assert abs(row.ci[0] - wald[0]) < 0.5 * row.se and abs(row.ci[1] - wald[1]) < 0.5 * row.se
    assert row.ci[0] < 10.0 < row.ci[1]


def test_balanced_residual_sd_interval_matches_the_chi_square_law(balanced):
    """In a balanced one-way design the REML sigma^2 is the within-group mean square, so the
    bootstrap's sigma* is sigma_hat * sqrt(chi2(N - g) / (N - g)) exactly."""
    _, result, draws, groups, size = balanced
    dof = groups * (size - 1)
    sigma = result.random_param("Residual", "sd(Residual)")
    exact = sigma.estimate * np.sqrt(stats.chi2.ppf([0.025, 0.975], dof) / dof)
    spread = sigma.estimate / math.sqrt(2 * dof)  # sd of sigma*
    replicates = draws.estimates[:, draws.names.index("Residual:sd(Residual)")]
    assert np.std(replicates, ddof=1) == pytest.approx(spread, rel=0.15)
    assert sigma.ci_method == "bootstrap"
    assert abs(sigma.ci[0] - exact[0]) < 0.5 * spread and abs(sigma.ci[1] - exact[1]) < 0.5 * spread
    # Variances' intervals are the squares of the sds' (percentiles commute with monotone maps, up
    # to the linear interpolation between neighbouring replicates).
    variance = next(r for r in result.random_variances if r.param == "var(Residual)")
    assert variance.ci == pytest.approx([sigma.ci[0] ** 2, sigma.ci[1] ** 2], rel=1e-5)
    assert result.ci_method == "bootstrap" and result.bootstrap.reps == 300 and result.bootstrap.failed == 0


def test_cli_bootstrap_report_and_json(pastes, capsys):
    frame, _ = pastes
    args = ["fit", str(DATA / "pastes.csv"), "--model", PASTES, "--reml", "--ci", "bootstrap", "--reps", "12",
            "--seed", "5", "--workers", "1", "--json", "-"]
    assert main.main(args) == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())  # the footnote wraps at 78 columns
    assert "95% intervals, fixed and random: parametric bootstrap, percentile, 12 of 12 replicates (seed 5)." in text
    payload = json.loads(out[out.index("\n{") + 1:])
    assert payload["ci_method"] == "bootstrap"
    assert payload["bootstrap"]["reps"] == 12 and payload["bootstrap"]["seed"] == 5
    # The same as the engine's own run with that seed.
    direct = fit_mixed(frame, ModelSpec.parse(PASTES, method="REML"))
    apply_bootstrap_intervals(direct, frame, reps=12, seed=5, workers=1)
    assert payload["fixed"][0]["ci"] == pytest.approx(direct.fixed[0].ci, rel=1e-9)
    assert payload["fixed"][0]["ci_method"] == "bootstrap"
    for row, expected in zip(payload["random"], direct.random):
        assert row["ci_method"] == "bootstrap" and row["ci"] == pytest.approx(expected.ci, rel=1e-9)


def test_cancel_stops_the_bootstrap(pastes):
    frame, result = pastes
    problem = bootstrap_problem(result, frame, seed=1)
    calls = []
    with pytest.raises(Cancelled):
        run_bootstrap(problem, 40, workers=1, chunk_size=5, progress=lambda done, total: calls.append(done),
                      should_stop=lambda: len(calls) >= 2)
    assert calls == [0, 5]


def test_bad_bootstrap_requests_are_user_errors(pastes):
    frame, result = pastes
    with pytest.raises(UserInputError, match="replicates must be a whole number >= 2"):
        run_bootstrap(bootstrap_problem(result, frame, seed=1), 1, workers=1)
    ols = fit_mixed(frame, ModelSpec.parse(PASTES, method="REML"))
    ols.estimator = "ols"
    with pytest.raises(UserInputError, match="bootstrap intervals need a mixed-model fit"):
        bootstrap_problem(ols, frame, seed=1)


def test_interval_methods_survive_the_json_round_trip(balanced):
    from engine.results import FitResult

    _, result, _, _, _ = balanced
    again = FitResult.from_dict(json.loads(result.to_json()))
    assert again.ci_method == "bootstrap" and again.bootstrap == result.bootstrap
    assert [(r.ci_method, r.ci) for r in again.fixed] == [(r.ci_method, r.ci) for r in result.fixed]
    assert [(r.ci_method, r.ci) for r in again.random] == [(r.ci_method, r.ci) for r in result.random]
    # Results saved before intervals had a method read back as Wald.
    old = result.to_dict()
    for key in ("ci_method", "bootstrap"):
        old.pop(key)
    for row in old["fixed"] + old["random"]:
        row.pop("ci_method")
    legacy = FitResult.from_dict(old)
    assert legacy.ci_method == "wald" and legacy.bootstrap is None
    assert all(row.ci_method == "wald" for row in legacy.fixed + legacy.random)


@pytest.mark.parametrize("extra, message", [
    (["--reps", "1"], "bootstrap replicates must be a whole number >= 2, got 1"),
    (["--seed", "-3"], "the bootstrap seed must be a whole number >= 0, got -3"),
    (["--workers", "0"], "bootstrap workers must be a whole number >= 1, got 0"),
])
def test_cli_refuses_bad_bootstrap_options(extra, message, capsys):
    args = ["fit", str(DATA / "pastes.csv"), "--model", PASTES, "--ci", "bootstrap", *extra]
    assert main.main(args) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_replicates_of_a_crossed_fit_share_one_effect_per_id_of_each_factor():
    """Penicillin: plates crossed with samples. Each replicate draws one effect per plate and one per
    sample (before, the nested codes gave each plate x sample cell its own 'sample' effect, and the
    residual sd's bootstrap interval missed its estimate)."""
    frame = pd.read_csv(DATA / "penicillin.csv")
    result = fit_mixed(frame, ModelSpec.parse("diameter || _all: R.plate || _all: R.sample", method="REML"))
    problem = bootstrap_problem(result, frame, seed=3)
    assert problem.group_counts == [24, 6]
    draws = np.array([problem.outcome(rep) for rep in range(4000)])
    sd = {row.level: row.estimate for row in result.random}
    cov = np.cov(draws, rowvar=False)
    plate, sample = frame["plate"].to_numpy(), frame["sample"].to_numpy()
    same_plate, same_sample = plate[:, None] == plate[None, :], sample[:, None] == sample[None, :]
    assert np.mean(cov[same_plate & ~same_sample]) == pytest.approx(sd["plate"] ** 2, rel=0.08)
    assert np.mean(cov[same_sample & ~same_plate]) == pytest.approx(sd["sample"] ** 2, rel=0.08)
    assert abs(np.mean(cov[~same_plate & ~same_sample])) < 0.05 * sd["sample"] ** 2
    assert np.mean(np.diag(cov)) == pytest.approx(sum(value ** 2 for value in sd.values()), rel=0.06)
    intervals = run_bootstrap(problem, 40, workers=1).percentile_intervals()
    residual = result.random_param("Residual", "sd(Residual)").estimate
    low, high = intervals["Residual:sd(Residual)"]
    assert low < residual < high
