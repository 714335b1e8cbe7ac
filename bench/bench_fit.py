"""Benchmark: the seed's four-level REML model on the tutoring design at 8 thousand to 8 million rows
(or, with --case growth, a growth curve with a correlated random slope per student).

Each size runs in a fresh process (so peak memory is that size's own), with the data simulated in
memory first; `fit seconds` is the engine's own time (grouping, optimisation, standard errors,
predicted effects). Peers run in the same invocation where the size allows: statsmodels MixedLM at
8,000 rows, and lme4 (if R with lme4 is installed) at every size up to --lme4-max rows.

    python bench/bench_fit.py [--case tutoring|growth] [--sizes 5 50 500 5000] [--no-statsmodels]
                              [--lme4-max 800000] [--repeat 1]

--repeat N times each fit N times, ours and lme4's alike, and reports the fastest of the N (on a
machine shared with other jobs the fastest run is the one least disturbed by them).

Writes bench/results/fit.md (fit-growth.md for the growth case) and prints the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    # name: (preset, the level whose count is the size, Stata model, the same in lme4, default sizes)
    "tutoring": ("tutoring", "dist_id", "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml",
                 "perform ~ tutoring + (1|dist_id/school_id/teach_id/student_id)", [5, 50, 500, 5000]),
    "growth": ("growth", "school_id", "score time || school_id: || student_id: time, covariance(unstructured) reml",
               "score ~ time + (1|school_id) + (1 + time|school_id:student_id)", [40, 400, 4000]),
}


def simulated(case: str, units: int):
    sys.path.insert(0, str(ROOT))
    from engine.presets import get_preset
    from engine.simulate import simulate

    preset, level = CASES[case][:2]
    return simulate(get_preset(preset).with_units(level, units), seed=1).frame


def child_ours(case: str, units: int, repeat: int = 1) -> dict:
    sys.path.insert(0, str(ROOT))
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec
    from engine.presets import get_preset
    from engine.simulate import simulate

    spec = ModelSpec.parse(CASES[case][2])
    fit_mixed(simulate(get_preset(CASES[case][0]), seed=99).frame, spec)  # warm imports and caches
    frame = simulated(case, units)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = []
    for _ in range(repeat):
        result = fit_mixed(frame, spec)
        seconds.append(result.fit_seconds)
    return {"rows": len(frame), "seconds": min(seconds), "loglik": result.loglik,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "data_mb": rss_data,
            "converged": result.converged}


def child_statsmodels(case: str, units: int) -> dict:
    """statsmodels' MixedLM on the tutoring model (nested levels through variance components)."""
    import warnings

    import statsmodels.formula.api as smf

    frame = simulated(case, units)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    model = smf.mixedlm("perform ~ tutoring", frame, groups=frame["dist_id"], re_formula="1",
                        vc_formula={"school": "0 + C(school_id)", "teacher": "0 + C(teach_id)",
                                    "student": "0 + C(student_id)"})
    fitted = model.fit(reml=True)
    return {"rows": len(frame), "seconds": time.perf_counter() - started, "loglik": float(fitted.llf)}


def run_lme4(case: str, units: int, repeat: int = 1) -> dict | None:
    """Time lme4 on the very same data (written to CSV; lme4's time excludes reading it)."""
    if shutil.which("Rscript") is None:
        return None
    frame = simulated(case, units)
    formula = CASES[case][3]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        frame[[c for c in frame.columns if not c.startswith("true_")]].to_csv(path, index=False)
        script = (
            "suppressMessages(library(lme4)); d <- read.csv(commandArgs(TRUE)[1]);"
            f"invisible(lmer({formula}, data=d[1:2000,], REML=TRUE));"
            f"t <- min(sapply(seq_len({repeat}), function(i) system.time(m <<- lmer({formula}, data=d, "
            "REML=TRUE))[['elapsed']]));"
            "cat(sprintf('{\"seconds\": %.4f, \"loglik\": %.6f}', t, as.numeric(logLik(m))))")
        done = subprocess.run(["Rscript", "-e", script, str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        return json.loads(done.stdout.strip().splitlines()[-1])


def in_fresh_process(kind: str, case: str, units: int, repeat: int = 1) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, case, str(units), str(repeat)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def load_average() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg()) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="tutoring")
    parser.add_argument("--sizes", type=int, nargs="+", help="units of the top level (default per case)")
    parser.add_argument("--no-statsmodels", action="store_true")
    parser.add_argument("--lme4-max", type=int, default=800_000, help="largest row count to time lme4 on")
    parser.add_argument("--repeat", type=int, default=1, help="time each fit this many times, keep the fastest")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, case, units, repeat = args.child[0], args.child[1], int(args.child[2]), int(args.child[3])
        print(json.dumps(child_ours(case, units, repeat) if kind == "ours" else child_statsmodels(case, units)))
        return
    preset, level, model = CASES[args.case][:3]
    sizes = args.sizes or CASES[args.case][4]
    timing = "one run each" if args.repeat == 1 else f"fastest of {args.repeat} runs each, ours and the peers'"
    lines = [f"Machine: {machine()}", f"Model: `{model}` on the `{preset}` preset, sized by {level}.",
             f"Timing: {timing}; load average at the start {load_average()} (other jobs share the machine).", "",
             f"| {level} | rows | HLM Explorer fit s | peak memory MB (data alone) | log-lik | peer | peer s | peer / ours |",
             "|---:|---:|---:|---:|---:|---|---:|---:|"]
    print("\n".join(lines), flush=True)
    for units in sizes:
        ours = in_fresh_process("ours", args.case, units, args.repeat)
        if "error" in ours:
            row = f"| {units} | | error: {ours['error']} | | | | | |"
            print(row, flush=True)
            lines.append(row)
            continue
        peers = []
        if ours["rows"] <= 8000 and args.case == "tutoring" and not args.no_statsmodels:
            peers.append(("statsmodels MixedLM", in_fresh_process("statsmodels", args.case, units)))
        if ours["rows"] <= args.lme4_max:
            lme4 = run_lme4(args.case, units, args.repeat)
            if lme4 is not None:
                peers.append(("lme4 (R)", lme4))
        base = (f"| {units:,} | {ours['rows']:,} | {ours['seconds']:.3f} | {ours['peak_mb']:,.0f} "
                f"({ours['data_mb']:,.0f}) | {ours['loglik']:.2f}")
        if not peers:
            peers.append(("", {}))
        for name, peer in peers:
            if "seconds" in peer:
                text = (f" | {name} (log-lik {peer['loglik']:.2f}) | {peer['seconds']:.3f} | "
                        f"{peer['seconds'] / ours['seconds']:.1f}x |")
            elif "error" in peer:
                text = f" | {name}: {peer['error']} | | |"
            else:
                text = " | | | |"
            row = base + text
            print(row, flush=True)
            lines.append(row)
    lines += ["", f"Load average at the end: {load_average()}."]
    print(lines[-1], flush=True)
    out = ROOT / "bench" / "results" / ("fit.md" if args.case == "tutoring" else f"fit-{args.case}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
