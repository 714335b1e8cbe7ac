"""Monte Carlo coverage of 95% intervals with Kenward-Roger df against z, where clusters are few.

Two studies, each fitting the same REML model twice to every replication (z tests, the default,
and ``dfmethod(kroger)``), so both see the same data:

* the seed's tutoring preset (5 districts x 5 schools x 8 teachers x 20 students x 2 semesters):
  coverage of ``_cons`` (about 4 denominator df);
* the cluster_trial preset with 10 schools (5 treated, 25 students each): coverage of
  ``treated`` (about 8 df), and its power.

    python bench/bench_ddf_coverage.py [--reps 2000] [--workers 2] [--seed 12]

Target (issue 12): Kenward-Roger coverage within 0.95 +/- 0.02. Writes
bench/results/ddf_coverage.md (also while running, marked partial) and prints the same table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_fit import machine  # noqa: E402  (the house helper)

OUT = ROOT / "bench" / "results" / "ddf_coverage.md"
TUTORING = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"
TRIAL = "score treated || school_id:, reml"
# (label, preset, units, model, parameter of interest)
STUDIES = [
    ("cluster_trial, 10 schools", "cluster_trial", {"school_id": 10}, TRIAL, "treated"),
    ("tutoring, 5 districts", "tutoring", {}, TUTORING, "_cons"),
]
TARGET, TOLERANCE = 0.95, 0.02


def build_study(preset: str, units: dict, model: str, reps: int, seed: int):
    from engine.montecarlo import Study
    from engine.presets import get_preset

    design = get_preset(preset)
    for level, count in units.items():
        design = design.with_units(level, count)
    return Study(design=design, models=[model, f"{model} dfmethod(kroger)"], reps=reps, seed=seed, name=preset)


def table_rows(label: str, param: str, summary, done: int) -> list[str]:
    rows = []
    for row in summary:
        if row.param != param:
            continue
        method = "Kenward-Roger" if "dfmethod(kroger)" in row.model else "z (normal)"
        verdict = ""
        if "kroger" in row.model and row.coverage is not None:
            verdict = "met" if abs(row.coverage - TARGET) <= TOLERANCE else "NOT met"
        power = "." if row.power is None else f"{row.power:.3f} ({row.mcse_power:.3f})"
        rows.append(f"| {label} | `{param}` | {method} | {done:,} | {row.n:,} | {row.coverage:.3f} "
                    f"| {row.mcse_coverage:.3f} | {power} | {row.failed:.1%} | {verdict} |")
    return rows


def write(report: dict, seed: int, workers: int, started: float, partial: bool) -> str:
    lines = [
        "# Coverage of 95% intervals: Kenward-Roger df against z",
        "",
        f"Machine: {machine()}; {workers} worker processes, shared with other jobs. Seed {seed}.",
        "",
        "Each replication is fitted twice (same data): REML with z tests (the default) and REML with "
        "`dfmethod(kroger)` (t intervals on the Kenward-Roger adjusted SE and df). Coverage is the share of "
        "95% intervals containing the true value; MC error is its binomial standard error "
        "sqrt(c(1-c)/n). \"Rejects 0\" is the share of p < 0.05: power for `treated` (true effect 1.5), the "
        "type-I error for `_cons` (true value 0).",
        "",
        f"Models: `{TUTORING}` on the tutoring preset; `{TRIAL}` on cluster_trial with `--units school_id=10`.",
        "",
        "| study | parameter | method | reps run | fits used | coverage | MC error | rejects 0 at 5% (MC error) "
        "| failed | 0.95 +/- 0.02 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for rows in report.values():
        lines += rows
    minutes = (time.perf_counter() - started) / 60
    lines += ["", f"Wall time so far: {minutes:.1f} min."]
    if partial:
        lines += ["", "**Partial result**: the run was still going (or was stopped) when this was written; "
                  "the rows show the replications finished by then."]
    lines += ["", "Run with `python bench/bench_ddf_coverage.py --reps 2000 --workers 2`."]
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from engine.montecarlo import run_study

    started = time.perf_counter()
    report: dict[str, list[str]] = {}
    for label, preset, units, model, param in STUDIES:
        study = build_study(preset, units, model, args.reps, args.seed)

        def progress(done, total, summary, label=label, param=param):
            if summary is not None:
                report[label] = table_rows(label, param, summary, done)
                write(report, args.seed, args.workers, started, partial=True)
                print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

        result = run_study(study, workers=args.workers, progress=progress, summary_interval=60.0)
        report[label] = table_rows(label, param, result.summary, result.completed)
        write(report, args.seed, args.workers, started, partial=True)
    print(write(report, args.seed, args.workers, started, partial=False))


if __name__ == "__main__":
    main()
