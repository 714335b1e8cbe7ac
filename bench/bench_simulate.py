"""Benchmark: simulate the `tutoring` preset at 5, 50, 500 and 5,000 districts (8,000 to 8,000,000 rows).

Each run is a fresh Python process, so its peak resident memory (``ru_maxrss``) belongs to one
simulation. The budget at 5,000 districts is 3 s and 2 GB. Prints a table and writes it to
bench/results/simulate.md.

    python bench/bench_simulate.py [--repeats 3] [--sizes 5 50 500 5000]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "simulate.md"
BUDGET_SECONDS = 3.0
BUDGET_MEGABYTES = 2048.0


def run_child(districts: int, seed: int) -> None:
    """One simulation in this process; print rows, seconds and memory as JSON."""
    sys.path.insert(0, str(ROOT))
    from engine.presets import get_preset
    from engine.simulate import simulate

    design = get_preset("tutoring").with_units("dist_id", districts)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    data = simulate(design, seed)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"districts": districts, "rows": len(data.frame), "seconds": seconds,
                      "peak_mb": peak / 1024, "before_mb": before / 1024,
                      "frame_mb": data.frame.memory_usage(deep=True).sum() / 2**20}))


def measure(districts: int, seed: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(districts), "--seed", str(seed)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 500, 5000], help="numbers of districts")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per size (median seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_child(args.child, args.seed)
        return 0

    header = ("| districts | rows | seconds (median) | seconds (max) | peak RSS MB | RSS before MB | frame MB |\n"
              "|---:|---:|---:|---:|---:|---:|---:|")
    print(header)
    lines, within_budget = [], True
    for districts in args.sizes:
        runs = [measure(districts, args.seed + repeat) for repeat in range(args.repeats)]
        seconds = [run["seconds"] for run in runs]
        peak = max(run["peak_mb"] for run in runs)
        line = (f"| {districts:,} | {runs[0]['rows']:,} | {statistics.median(seconds):.3f} | {max(seconds):.3f} | "
                f"{peak:,.0f} | {runs[0]['before_mb']:,.0f} | {runs[0]['frame_mb']:,.0f} |")
        print(line, flush=True)
        lines.append(line)
        if districts == 5000:
            within_budget = max(seconds) <= BUDGET_SECONDS and peak <= BUDGET_MEGABYTES

    verdict = ("within" if within_budget else "OVER") + f" the budget of {BUDGET_SECONDS:g} s and {BUDGET_MEGABYTES:,.0f} MB"
    text = "\n".join([
        "# Simulation benchmark",
        "",
        f"`python bench/bench_simulate.py` on {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} ({time.strftime('%Y-%m-%d')}). Preset `tutoring` with more districts; "
        f"{args.repeats} fresh processes per size. Seconds: the `simulate()` call, DataFrame included. Peak RSS: "
        "`ru_maxrss` of the process (imports included; 'RSS before' is the level before simulating).",
        "",
        header, *lines, "",
        f"8,000,000 rows (5,000 districts): {verdict}.", "",
    ])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"\n{verdict}; written to {RESULTS.relative_to(ROOT)}")
    return 0 if within_budget else 1


if __name__ == "__main__":
    sys.exit(main())
