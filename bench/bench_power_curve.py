"""Benchmark: a power curve of the seed's four-level design, 5 sizes x 1,000 replications, 2 processes.

Each replication simulates the tutoring preset (5 x 5 x 8 x 20 students x 2 semesters = 8,000
rows at the base size) and fits the four-level REML model. The default curve sweeps the effect
size of tutoring over 0, 0.2, 0.4, 0.6, 0.8 (its SE is about 0.2, so power runs from the type-I
error to nearly 1) with every replication at 8,000 rows; ``--sweep dist_id=3,4,5,6,7`` sweeps the
number of districts instead (4,800 to 11,200 rows, 8,000 on average). The wall time includes
starting the worker processes. The machine may be shared: the load average before and after the
run is reported beside the time.

    python bench/bench_power_curve.py [--reps 1000] [--workers 2] [--sweep effect:tutoring=0,0.2,0.4,0.6,0.8]

Writes bench/results/power_curve.md and prints the same numbers.
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
TARGET_SECONDS = 180


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sweep", default="effect:tutoring=0,0.2,0.4,0.6,0.8")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "power_curve.md"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from engine.montecarlo import Study, Sweep, run_study

    from engine.presets import get_preset

    sweep = Sweep.parse(args.sweep)
    study = Study(get_preset("tutoring"), [MODEL], reps=args.reps, seed=args.seed, sweep=sweep, name="tutoring")
    rows = [study.design_at(i).expected_counts().rows for i in range(len(sweep.values))]
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    started = time.perf_counter()
    result = run_study(study, workers=args.workers)
    seconds = time.perf_counter() - started
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    fits = result.records.drop_duplicates(["sweep_index", "rep"])
    fit_seconds = fits["fit_seconds"]
    fit_share = fit_seconds.sum() / (seconds * result.workers)
    rate = result.completed / seconds
    verdict = "within" if seconds < TARGET_SECONDS else "over"
    power = [row for row in result.summary if row.param == "tutoring"]
    lines = [
        "# Power-curve benchmark",
        "",
        f"Machine: {machine()}. Load average (1, 5, 15 min) {', '.join(f'{v:.2f}' for v in load_before)} when "
        f"the run started and {', '.join(f'{v:.2f}' for v in load_after)} when it ended: other jobs shared the "
        f"2 cores{' heavily' if load_before[0] > 3 else ''}.",
        "",
        f"Study: tutoring preset, `{MODEL}`, sweep `{sweep.to_text()}` ({len(sweep.values)} sizes x {args.reps:,} "
        f"replications; {min(rows):,.0f} to {max(rows):,.0f} rows per replication), seed {args.seed}, "
        f"{result.workers} local worker processes (spawned, single-threaded BLAS).",
        "",
        "| replications | seconds | replications / second | median fit s | mean fit s | fit share of worker time | failed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result.completed:,} | {seconds:.1f} | {rate:.1f} | {fit_seconds.median():.4f} | {fit_seconds.mean():.4f} "
        f"| {fit_share:.0%} | {int(fits['failed'].sum())} |",
        "",
        f"Goal: under {TARGET_SECONDS} s on this 2-core machine: {verdict} the goal"
        + (" (see the load above: the cores were shared)." if verdict == "over" and load_before[0] > 2 else "."),
        "",
        "The power curve (share of fits rejecting tutoring = 0 at 5%, z tests):",
        "",
        f"| {sweep.label} | power | Monte Carlo SE | mean estimate | mean SE |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in power:
        lines.append(f"| {row.sweep:g} | {row.power:.3f} | {row.mcse_power:.3f} | {row.mean:.3f} | {row.mean_se:.3f} |")
    lines += ["", f"Run with `python bench/bench_power_curve.py` (or `--sweep dist_id=3,4,5,6,7`)."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
