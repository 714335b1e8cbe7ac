"""Check my p-values: the parametric bootstrap keeps the data's structure, draws from the fit's
variances, is reproducible whatever the workers, and shows z tests liberal with 5 districts while
Kenward-Roger holds its level."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import UserInputError
from engine.montecarlo.pvalue_check import prepare_check, run_check_replications, run_pvalue_check
from main import main

DATA = Path(__file__).resolve().parent / "data"
SEED_DATA = pd.read_csv(DATA / "seed_d5.csv")
CRT10 = str(DATA / "crt10.csv")


def test_simulated_outcomes_have_the_fits_variances_at_every_level():
    # Draw many outcomes of a two-level fit and compare the variance decomposition with the fit's.
    frame = pd.read_csv("tests/data/hsb.csv")
    check, fit = prepare_check(frame, "mathach ses || school: ses, covariance(unstructured) reml", reps=1)
    assert check.x.shape == (7185, 2) and check.levels[0].groups == 160
    cov = check.levels[0].factor @ check.levels[0].factor.T
    sd_ses, sd_cons = (fit.random_param("school", f"sd({t})").estimate for t in ("ses", "_cons"))
    corr = fit.random_param("school", "corr(ses,_cons)").estimate
    assert cov == pytest.approx(np.array([[sd_ses ** 2, corr * sd_ses * sd_cons],
                                          [corr * sd_ses * sd_cons, sd_cons ** 2]]), rel=1e-10)
    # The records of one replication: the truth is the fit (coverage part) and b_ses = 0 (its null part).
    cover = run_check_replications(check, 0, [0])
    null = run_check_replications(check, 1, [0])
    truth = dict(zip(cover["param"], cover["truth"]))
    assert truth["ses"] == fit.coef("ses").coef and truth["school:sd(_cons)"] == sd_cons
    assert dict(zip(null["param"], null["truth"]))["ses"] == 0.0
    assert cover["seed"].iloc[0] != null["seed"].iloc[0]


def test_refusals_name_the_problem():
    with pytest.raises(UserInputError, match="needs a mixed model"):
        prepare_check(SEED_DATA, "perform tutoring", reps=1)
    with pytest.raises(UserInputError, match="--terms nosuch: not a fixed effect"):
        prepare_check(SEED_DATA, "perform tutoring || dist_id:", terms=["nosuch"], reps=1)


def test_the_check_is_the_same_with_one_and_two_workers():
    frame = pd.read_csv(CRT10)
    check, _ = prepare_check(frame, "y treat || school:, reml", reps=6, seed=4)
    one = run_pvalue_check(check, workers=1)
    two = run_pvalue_check(check, workers=2)
    assert [row.__dict__ for row in one.rows] == [row.__dict__ for row in two.rows]


def five_clusters() -> pd.DataFrame:
    """5 clusters x 10 rows, cluster sd 2, residual sd 1: the mean's variance is nearly all between
    clusters, so its test has about 4 df."""
    rng = np.random.default_rng(7)
    cluster = np.repeat(np.arange(1, 6), 10)
    y = 2.0 * rng.standard_normal(5)[cluster - 1] + rng.standard_normal(50)
    return pd.DataFrame({"g": cluster, "y": y})


@pytest.mark.slow
def test_z_tests_with_five_clusters_are_liberal_and_kenward_roger_holds_the_level():
    # Under b = 0 the z test of _cons rejects far more often than 5% (Kenward-Roger's t has 4 df,
    # and P(|t_4| > 1.96) = 0.12); with dfmethod(kroger), the exact t test here, near 5%.
    results = {}
    for model in ("y || g:, reml", "y || g:, reml dfmethod(kroger)"):
        check, fit = prepare_check(five_clusters(), model, reps=200, seed=2026)
        (row,) = run_pvalue_check(check, workers=2).rows
        results[check.spec.dfmethod or "z"] = row
    z, kr = results["z"], results["kroger"]
    assert z.fits_type1 >= 195 and kr.fits_type1 >= 195
    assert z.type1 - 0.05 > 2.5 * z.mcse_type1, z  # clearly liberal
    assert abs(kr.type1 - 0.05) < 2.5 * 0.0154, kr  # 0.0154: the binomial SE at 0.05 with 200 fits
    assert z.coverage < 0.92 and abs(kr.coverage - 0.95) < 2.5 * 0.0154


def test_command_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["check-pvalues", CRT10, "--model", "y treat || school:, reml", "--reps", "5", "--seed", "1",
                 "--workers", "1", "--terms", "treat", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "type-I error (mcse)" in text and "treat" in text
    data = json.loads(out.read_text())
    treat = next(row for row in data["rows"] if row["term"] == "treat")
    assert treat["fits_type1"] == 5 and treat["df_method"] == "z"
    assert next(row for row in data["rows"] if row["term"] == "_cons")["type1"] is None
