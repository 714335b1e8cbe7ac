"""Benchmark: small-sample df (Satterthwaite, Kenward-Roger) against the plain fit, in the same run.

The seed's four-level REML model on the tutoring preset at 8 thousand to 800 thousand rows. Each
size runs in a fresh process; there the data are simulated once, then the plain fit (z tests), the
fit with dfmethod(satterthwaite) and the fit with dfmethod(kroger) alternate, best of --repeats
each (the machine is shared). Times are the engine's own fit seconds, df included.
pbkrtest is not run (two minutes at 8,000 rows); its time is the reference case's ddf_seconds.

    python bench/bench_ddf.py [--sizes 5 50 500] [--repeats 3]

Targets (issue 12): Satterthwaite at 800,000 rows in at most 3x the plain fit; Kenward-Roger at
8,000 rows in at most 1 s and at 80,000 rows in at most 10x the plain fit.
Writes bench/results/ddf.md and prints the same table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_fit import CASES, machine, simulated  # noqa: E402  (the house helpers)

MODEL = CASES["tutoring"][2]
REFERENCE = ROOT / "tests" / "reference" / "ddf_seed_d5_reml.json"
METHODS = [None, "satterthwaite", "kroger"]


def child(units: int, repeats: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec

    spec = ModelSpec.parse(MODEL)
    warm = simulated("tutoring", 5)
    for method in METHODS:  # warm imports and caches
        fit_mixed(warm, spec.replace(dfmethod=method))
    frame = simulated("tutoring", units)
    best = {str(method): float("inf") for method in METHODS}
    dfs = {}
    for _ in range(repeats):
        for method in METHODS:
            result = fit_mixed(frame, spec.replace(dfmethod=method))
            best[str(method)] = min(best[str(method)], result.fit_seconds)
            if method:
                dfs[method] = {row.term: row.df for row in result.fixed}
    return {"rows": len(frame), "seconds": best, "dfs": dfs}


def target_checks(measured: dict) -> list[str]:
    """Each target the run could check, with the measured number and whether it was met."""
    out = []
    if 800_000 in measured:
        plain, sat, _ = measured[800_000]
        out.append(f"Satterthwaite at 800,000 rows {sat / plain:.2f}x the plain fit (<= 3x: "
                   f"{'met' if sat <= 3 * plain else 'NOT met'})")
    if 8_000 in measured:
        kr = measured[8_000][2]
        out.append(f"Kenward-Roger at 8,000 rows {kr:.3f} s (<= 1 s: {'met' if kr <= 1 else 'NOT met'})")
    if 80_000 in measured:
        plain, _, kr = measured[80_000]
        out.append(f"Kenward-Roger at 80,000 rows {kr / plain:.2f}x the plain fit (<= 10x: "
                   f"{'met' if kr <= 10 * plain else 'NOT met'})")
    return out or ["none of the target sizes was run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 500], help="districts (1,600 rows each)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    reference = json.loads(REFERENCE.read_text())["ddf_seconds"]
    lines = [f"Machine: {machine()}", f"Model: `{MODEL}` on the `tutoring` preset, sized by dist_id; "
             f"best of {args.repeats} fits each, in one process per size.", "",
             "| dist_id | rows | plain fit s | Satterthwaite fit s | ratio | Kenward-Roger fit s | ratio | "
             "df of _cons (S / KR) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    measured = {}
    for units in args.sizes:
        done = subprocess.run([sys.executable, __file__, "--child", str(units), str(args.repeats)],
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            row = f"| {units:,} | | error: {done.stderr.strip().splitlines()[-1]} | | | | | |"
        else:
            out = json.loads(done.stdout.strip().splitlines()[-1])
            s = out["seconds"]
            plain, sat, kr = s["None"], s["satterthwaite"], s["kroger"]
            measured[out["rows"]] = (plain, sat, kr)
            row = (f"| {units:,} | {out['rows']:,} | {plain:.3f} | {sat:.3f} | {sat / plain:.2f}x | {kr:.3f} | "
                   f"{kr / plain:.2f}x | {out['dfs']['satterthwaite']['_cons']:.2f} / "
                   f"{out['dfs']['kroger']['_cons']:.2f} |")
        print(row, flush=True)
        lines.append(row)
    lines += ["", "Targets (issue 12): " + "; ".join(target_checks(measured))]
    lines += ["", f"pbkrtest (R) on the 8,000-row reference case (`ddf_seed_d5_reml`): Kenward-Roger "
                  f"{reference['Kenward-Roger']:.1f} s, lmerTest Satterthwaite {reference['Satterthwaite']:.2f} s "
                  f"(the reference's ddf_seconds; not rerun here)."]
    out_path = ROOT / "bench" / "results" / "ddf.md"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
