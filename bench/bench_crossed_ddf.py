"""Benchmark: small-sample df for crossed random factors against the plain crossed fit, same run.

The moving-teacher design (preset tutoring_moving: half the students change teacher in semester 2)
at 8,000 and 80,000 rows, fitted as `perform tutoring || dist_id: || school_id: || _all: R.teach_id
|| _all: R.student_id, reml`, and with a correlated random slope of tutoring per teacher (lme4
formula; no exact gradient there, so the df pieces are differences of the sparse evaluation).
Plain fit, dfmethod(satterthwaite) and dfmethod(kroger) alternate, best of --repeats each (the
machine is shared); times are the engine's own fit seconds, df included. pbkrtest is not run: it
builds n x n matrices (minutes at 8,000 rows).

    python bench/bench_crossed_ddf.py [--units 20 200] [--repeats 2]

Writes bench/results/crossed_ddf.md and prints the same table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_fit import machine  # noqa: E402  (the house helper)

MODELS = {
    "intercepts": ("stata", "perform tutoring || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id, reml"),
    "teacher slope": ("lme4", "perform ~ tutoring + (1|dist_id/school_id) + (1 + tutoring | teach_id) + (1|student_id)"),
}
METHODS = [None, "satterthwaite", "kroger"]


def run(units: int, repeats: int, slope_rows: int) -> list[tuple]:
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec
    from engine.presets import get_preset
    from engine.simulate import simulate

    frame = simulate(get_preset("tutoring_moving").with_units("student_id", units), 1).frame
    rows = []
    for label, (written, text) in MODELS.items():
        if label == "teacher slope" and len(frame) > slope_rows:
            continue  # the plain fit without an exact gradient is itself slow there
        spec = ModelSpec.parse(text) if written == "stata" else ModelSpec.parse_lme4(text, "REML")
        best = {method: float("inf") for method in METHODS}
        for _ in range(repeats):
            for method in METHODS:
                result = fit_mixed(frame, spec.replace(dfmethod=method), predict=False)
                best[method] = min(best[method], result.fit_seconds)
        rows.append((len(frame), label, best[None], best["satterthwaite"], best["kroger"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[20, 200], help="students per teacher")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--slope-rows", type=int, default=10_000, help="largest data for the slope model")
    args = parser.parse_args()
    rows = [row for units in args.units for row in run(units, args.repeats, args.slope_rows)]
    lines = ["# Small-sample df for crossed factors (bench/bench_crossed_ddf.py)", "",
             f"Machine: {machine()}", "",
             "| rows | model | plain fit (s) | satterthwaite (s) | ratio | kroger (s) | ratio |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for n, label, plain, satt, kr in rows:
        lines.append(f"| {n:,} | {label} | {plain:.2f} | {satt:.2f} | {satt / plain:.2f} | {kr:.2f} | "
                     f"{kr / plain:.2f} |")
    lines += ["", "Best of the repeats; the df include everything the fit does. pbkrtest (n x n matrices) is "
              "not run. The slope model has no exact gradient: "
              "its df pieces are differences of the sparse evaluation."]
    text = "\n".join(lines) + "\n"
    (ROOT / "bench" / "results" / "crossed_ddf.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
