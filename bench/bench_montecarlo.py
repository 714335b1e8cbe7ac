"""Benchmark: a Monte Carlo study of the seed's design, 1,000 replications on all local cores.

Each replication simulates the tutoring preset (5 x 5 x 8 x 20 students x 2 semesters = 8,000
rows) and fits the four-level REML model; the wall time includes starting the worker processes.
`fit share` is the summed fit time over (wall time x workers): how much of the cores' time went
into fitting, the rest being simulation, record keeping and start-up.

    python bench/bench_montecarlo.py [--reps 1000] [--workers K] [--seed 1]

Writes bench/results/montecarlo.md and prints the same numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench_fit import machine  # this folder is on the path when the script runs

ROOT = Path(__file__).resolve().parents[1]
MODEL = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"
TARGET_SECONDS = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None, help="default: all local cores")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from engine.montecarlo import Study, format_summary, run_study
    from engine.presets import get_preset

    study = Study(get_preset("tutoring"), [MODEL], reps=args.reps, seed=args.seed, name="tutoring")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.perf_counter()
    result = run_study(study, workers=args.workers)
    seconds = time.perf_counter() - started
    fits = result.records.drop_duplicates(["sweep_index", "rep"])
    fit_seconds = fits["fit_seconds"]
    fit_share = fit_seconds.sum() / (seconds * result.workers)
    rate = result.completed / seconds
    verdict = "within" if seconds < TARGET_SECONDS else "over"
    lines = [
        "# Monte Carlo benchmark",
        "",
        f"Machine: {machine()}; load average {load_before:.2f} when the run started (other jobs share the cores).",
        "",
        f"Study: tutoring preset ({study.design.expected_counts().rows:,.0f} rows per replication), `{MODEL}`, "
        f"seed {args.seed}, {result.workers} local worker processes (spawned, single-threaded BLAS).",
        "",
        "| reps | seconds | reps / second | median fit s | mean fit s | fit share of worker time | failed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result.completed:,} | {seconds:.1f} | {rate:.1f} | {fit_seconds.median():.4f} | {fit_seconds.mean():.4f} "
        f"| {fit_share:.0%} | {int(fits['failed'].sum())} |",
        "",
        f"Target: under {TARGET_SECONDS} s on this 2-core machine: {verdict} target.",
        "",
        "Summary of the run:",
        "",
        "```",
        format_summary(result.summary),
        "```",
        "",
        "Run with `python bench/bench_montecarlo.py`.",
    ]
    text = "\n".join(lines) + "\n"
    print(f"reps {result.completed}, seconds {seconds:.1f}, reps/second {rate:.1f}, "
          f"median fit {fit_seconds.median():.4f} s, fit share {fit_share:.0%}")
    out = ROOT / "bench" / "results" / "montecarlo.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
