"""Benchmark: the seed's four-level REML model on the tutoring design at 8 thousand to 8 million rows.

Each size runs in a fresh process (so peak memory is that size's own), with the data simulated in
memory first; `fit seconds` is the engine's own time (grouping, optimisation, standard errors,
predicted effects). Peers run in the same invocation where the size allows: statsmodels MixedLM at
8,000 rows, and lme4 (if R with lme4 is installed) at every size up to --lme4-max rows.

    python bench/bench_fit.py [--sizes 5 50 500 5000] [--no-statsmodels] [--lme4-max 800000]

Writes bench/results/fit.md and prints the same table.
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
MODEL = "perform tutoring || dist_id: || school_id: || teach_id: || student_id:, reml"
LME4_FORMULA = "perform ~ tutoring + (1|dist_id/school_id/teach_id/student_id)"


def child_ours(districts: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec
    from engine.presets import get_preset
    from engine.simulate import simulate

    spec = ModelSpec.parse(MODEL)
    fit_mixed(simulate(get_preset("tutoring"), seed=99).frame, spec)  # warm imports and caches
    frame = simulate(get_preset("tutoring").with_units("dist_id", districts), seed=1).frame
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = fit_mixed(frame, spec)
    return {"rows": len(frame), "seconds": result.fit_seconds, "loglik": result.loglik,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "data_mb": rss_data,
            "converged": result.converged}


def child_statsmodels(districts: int) -> dict:
    import warnings

    import statsmodels.formula.api as smf

    sys.path.insert(0, str(ROOT))
    from engine.presets import get_preset
    from engine.simulate import simulate

    frame = simulate(get_preset("tutoring").with_units("dist_id", districts), seed=1).frame
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    model = smf.mixedlm("perform ~ tutoring", frame, groups=frame["dist_id"], re_formula="1",
                        vc_formula={"school": "0 + C(school_id)", "teacher": "0 + C(teach_id)",
                                    "student": "0 + C(student_id)"})
    fitted = model.fit(reml=True)
    return {"rows": len(frame), "seconds": time.perf_counter() - started, "loglik": float(fitted.llf)}


def run_lme4(districts: int) -> dict | None:
    """Time lme4 on the very same data (written to CSV; lme4's time excludes reading it)."""
    if shutil.which("Rscript") is None:
        return None
    sys.path.insert(0, str(ROOT))
    from engine.presets import get_preset
    from engine.simulate import simulate

    frame = simulate(get_preset("tutoring").with_units("dist_id", districts), seed=1).frame
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        frame[["dist_id", "school_id", "teach_id", "student_id", "tutoring", "perform"]].to_csv(path, index=False)
        script = (
            "suppressMessages(library(lme4)); d <- read.csv(commandArgs(TRUE)[1]);"
            f"invisible(lmer({LME4_FORMULA}, data=d[1:2000,], REML=TRUE));"
            f"t <- system.time(m <- lmer({LME4_FORMULA}, data=d, REML=TRUE))[['elapsed']];"
            "cat(sprintf('{\"seconds\": %.4f, \"loglik\": %.6f}', t, as.numeric(logLik(m))))")
        done = subprocess.run(["Rscript", "-e", script, str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        return json.loads(done.stdout.strip().splitlines()[-1])


def in_fresh_process(kind: str, districts: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(districts)],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 500, 5000], help="districts")
    parser.add_argument("--no-statsmodels", action="store_true")
    parser.add_argument("--lme4-max", type=int, default=800_000, help="largest row count to time lme4 on")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, districts = args.child[0], int(args.child[1])
        print(json.dumps(child_ours(districts) if kind == "ours" else child_statsmodels(districts)))
        return
    lines = [f"Machine: {machine()}", "",
             "| districts | rows | HLM Explorer fit s | peak memory MB (data alone) | log-lik | peer | peer s | peer / ours |",
             "|---:|---:|---:|---:|---:|---|---:|---:|"]
    print("\n".join(lines), flush=True)
    for districts in args.sizes:
        ours = in_fresh_process("ours", districts)
        if "error" in ours:
            row = f"| {districts} | | error: {ours['error']} | | | | | |"
            print(row, flush=True)
            lines.append(row)
            continue
        peers = []
        if ours["rows"] <= 8000 and not args.no_statsmodels:
            peers.append(("statsmodels MixedLM", in_fresh_process("statsmodels", districts)))
        if ours["rows"] <= args.lme4_max:
            lme4 = run_lme4(districts)
            if lme4 is not None:
                peers.append(("lme4 (R)", lme4))
        base = (f"| {districts:,} | {ours['rows']:,} | {ours['seconds']:.3f} | {ours['peak_mb']:,.0f} "
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
    out = ROOT / "bench" / "results" / "fit.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
