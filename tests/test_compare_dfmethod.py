"""`compare --dfmethod`: the mixed rows carry t, df and p of the chosen df method."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from engine.compare import compare, format_comparison
from engine.errors import UserInputError
from engine.mixed import fit_mixed
from engine.model_spec import ModelSpec
from engine.presets import get_preset
from engine.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trial():
    data = simulate(get_preset("cluster_trial").with_units("school_id", 10), 1)
    return data.frame, data.truth


def test_kroger_rows_are_the_fits_t_test(trial):
    frame, truth = trial
    comparison = compare(frame, "score", ["treated"], ["ols", "mixed || school_id:, reml"], truth=truth,
                         dfmethod="kroger")
    mixed = comparison.summary("mixed || school_id:, reml").treatment
    # Balanced cluster trial, treatment at the school level: the between-school df, 10 - 2.
    assert mixed.df == pytest.approx(8.0, rel=1e-6)
    direct = fit_mixed(frame, ModelSpec.parse("score treated || school_id:, reml dfmethod(kroger)"))
    row = next(r for r in direct.fixed if r.term == "treated")
    assert (mixed.estimate, mixed.se, mixed.stat, mixed.p) == pytest.approx((row.coef, row.se, row.t, row.p), rel=1e-9)
    assert mixed.p == pytest.approx(2 * stats.t.sf(abs(mixed.estimate / mixed.se), 8.0), rel=1e-6)
    ols = comparison.summary("ols").treatment
    assert ols.df == len(frame) - 2  # OLS keeps its own residual-df t test
    text = format_comparison(comparison)
    assert "dfmethod(kroger)" in text and "  df" in text and f"{mixed.p:.4f}" in text
    assert comparison.dfmethod == "kroger"


def test_without_dfmethod_the_table_is_unchanged(trial):
    frame, truth = trial
    comparison = compare(frame, "score", ["treated"], ["mixed || school_id:, reml"], truth=truth)
    assert comparison.dfmethod is None and comparison.table[0].treatment.df is None
    assert "P>|t|" not in format_comparison(comparison)


def test_ml_estimator_refused_with_kroger(trial):
    frame, _ = trial
    with pytest.raises(UserInputError, match=r"mixed \|\| school_id:: dfmethod\(kroger\) requires REML"):
        compare(frame, "score", ["treated"], ["mixed || school_id:"], dfmethod="kroger")


def test_cli_defaults_are_refitted_by_reml_with_kroger():
    done = subprocess.run([sys.executable, "main.py", "compare", "--preset", "cluster_trial", "--units",
                           "school_id=10", "--seed", "1", "--dfmethod", "kroger"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "fitted by REML" in done.stderr
    df_line = next(line for line in done.stdout.splitlines() if line.startswith("  df"))
    assert df_line.split()[-1] == "8.00"
