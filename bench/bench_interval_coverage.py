"""Coverage of the three interval methods with known truth: a small two-level design (12 groups
of 6, true sd 1 between groups and 2 within, _cons 5), fitted by REML to many simulated data sets.

    python bench/bench_interval_coverage.py [DATA_SETS] [BOOTSTRAP_REPS]   # writes bench/results/interval-coverage.md

With 12 groups the sd between groups is poorly determined and its likelihood lopsided; Wald
intervals on the log scale are the ones expected to suffer.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from engine.intervals import IntervalRequest, apply_intervals  # noqa: E402
from engine.mixed import fit_mixed  # noqa: E402
from engine.model_spec import ModelSpec  # noqa: E402

GROUPS, SIZE, SD_GROUP, SD_RESIDUAL, CONS = 12, 6, 1.0, 2.0, 5.0
TRUTH = {"_cons": CONS, "g:sd(_cons)": SD_GROUP, "Residual:sd(Residual)": SD_RESIDUAL}
SPEC = ModelSpec.parse("y || g:", method="REML")


def data_set(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(GROUPS), SIZE)
    y = CONS + SD_GROUP * rng.standard_normal(GROUPS)[group] + SD_RESIDUAL * rng.standard_normal(GROUPS * SIZE)
    return pd.DataFrame({"g": group, "y": y})


def intervals(result) -> dict[str, list[float] | None]:
    out = {row.term: row.ci for row in result.fixed}
    out.update({f"{row.level}:{row.param}": row.ci for row in result.random})
    return out


def main(data_sets: int = 100, reps: int = 99) -> None:
    hits = {method: {name: [] for name in TRUTH} for method in ("wald", "profile", "bootstrap")}
    started = time.perf_counter()
    for index in range(data_sets):
        frame = data_set(1000 + index)
        for method in hits:
            result = fit_mixed(frame, SPEC, predict=False)
            apply_intervals(result, frame, IntervalRequest(method, reps=reps, seed=index, workers=1))
            for name, ci in intervals(result).items():
                if name in TRUTH:
                    hits[method][name].append(ci is not None and ci[0] <= TRUTH[name] <= ci[1])
        print(f"\r{index + 1}/{data_sets} data sets, {time.perf_counter() - started:.0f} s", end="", flush=True)
    print()
    lines = ["# Coverage of 95% intervals with known truth", "",
             f"{data_sets} data sets of {GROUPS} groups x {SIZE} (true sd between groups {SD_GROUP:g}, within "
             f"{SD_RESIDUAL:g}, _cons {CONS:g}), REML; bootstrap with {reps} replicates. An sd estimated at 0 "
             "has no Wald interval and counts as a miss. In parentheses: the Monte Carlo SE of the coverage.", "",
             "| parameter | Wald | profile | bootstrap |", "|---|---:|---:|---:|"]
    for name in TRUTH:
        cells = []
        for method in hits:
            rate = float(np.mean(hits[method][name]))
            cells.append(f"{rate:.3f} ({math.sqrt(rate * (1 - rate) / data_sets):.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Percentile intervals from few replicates are too narrow on average (their limits are "
                 "read between neighbouring order statistics of the replicates), and for sigma even at "
                 "infinitely many replicates the percentile interval covers about 0.94 here (sigma* is "
                 "sigma_hat sqrt(chi2(60)/60), a slightly skewed law the percentile method does not invert); "
                 "use 1,000 replicates or more in practice.")
    lines.append("")
    lines.append(f"{time.perf_counter() - started:.0f} s in all, one process.")
    out = ROOT / "bench" / "results" / "interval-coverage.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
