"""Benchmark: crossed random factors against lme4 on the same data in the same run.

Cases:
- insteval: lme4's InstEval (73,421 ratings of 1,128 lecturers by 2,972 students in 14 departments),
  ``y ~ service + (1|s) + (1|d) + (1|dept)``, REML. The data are written by R (lme4 ships them), so
  this case needs Rscript with lme4 and is skipped otherwise.
- moving: the seed's tutoring design at 50 districts (80,000 rows) where half the students move to
  another teacher of the same school in semester 2, so teachers and students are crossed:
  ``perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)``, REML.

Each case runs in a fresh process; `fit seconds` is the engine's own time (optimisation, standard
errors, predicted effects), lme4's time is its `lmer` call alone (data already read); each side is
the best of the same number of runs (REPEATS: three for the moving design, two for InstEval).
The machine's load average is written beside the table: other jobs may share it.

    python bench/bench_crossed.py [--cases insteval moving]

Writes bench/results/crossed.md and prints the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_fit import machine  # noqa: E402

# The machine is shared, so times wander: each side is the best of REPEATS runs of the case.
REPEATS = {"insteval": 2, "moving": 3}
CASES = {
    "insteval": ("y ~ service + (1|s) + (1|d) + (1|dept)", 5.0),
    "moving": ("perform ~ tutoring + (1|dist_id/school_id) + (1|teach_id) + (1|student_id)", 10.0),
}


def moving_teacher_design(districts: int = 50, seed: int = 7) -> pd.DataFrame:
    """5 schools x 8 teachers x 20 students per district, 2 semesters; half the students change
    teacher (within the school) in semester 2. True sds 2, 3, 4, 5, residual 6; tutoring effect 2."""
    rng = np.random.default_rng(seed)
    schools, teachers, students = districts * 5, districts * 40, districts * 800
    student = np.repeat(np.arange(students), 2)
    semester = np.tile([1, 2], students)
    home_teacher = np.arange(students) // 20  # 20 students per teacher in semester 1
    school_of_teacher = np.arange(teachers) // 8
    moved = rng.random(students) < 0.5
    other = school_of_teacher[home_teacher] * 8 + (home_teacher % 8 + rng.integers(1, 8, students)) % 8
    teacher = np.where(semester == 1, home_teacher[student], np.where(moved, other, home_teacher)[student])
    school = school_of_teacher[teacher]
    district = school // 5
    tutoring = (rng.random(student.size) < 0.2).astype(float)
    perform = (2.0 * tutoring + rng.normal(0, 2, districts)[district] + rng.normal(0, 3, schools)[school]
               + rng.normal(0, 4, teachers)[teacher] + rng.normal(0, 5, students)[student]
               + rng.normal(0, 6, student.size))
    return pd.DataFrame({"dist_id": district + 1, "school_id": school % 5 + 1, "teach_id": teacher + 1,
                         "student_id": student + 1, "semester": semester, "tutoring": tutoring,
                         "perform": perform})


def write_data(case: str, folder: Path) -> Path | None:
    path = folder / f"{case}.csv"
    if case == "moving":
        moving_teacher_design().to_csv(path, index=False)
        return path
    if shutil.which("Rscript") is None:
        return None
    done = subprocess.run(["Rscript", "-e", f'library(lme4); write.csv(InstEval, "{path}", row.names=FALSE)'],
                          capture_output=True, text=True)
    return path if done.returncode == 0 and path.exists() else None


def child_ours(case: str, path: str) -> dict:
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec

    spec = ModelSpec.parse_lme4(CASES[case][0], "REML")
    frame = pd.read_csv(path)
    small = pd.read_csv(ROOT / "tests" / "data" / "penicillin.csv")
    fit_mixed(small, ModelSpec.parse_lme4("diameter ~ 1 + (1|plate) + (1|sample)"))  # warm imports
    results = [fit_mixed(frame, spec) for _ in range(REPEATS[case])]
    result = min(results, key=lambda r: r.fit_seconds)
    return {"rows": len(frame), "seconds": result.fit_seconds, "loglik": result.loglik,
            "converged": result.converged, "iterations": len(result.iterations)}


def run_lme4(case: str, path: Path) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    formula = CASES[case][0]
    script = (
        "suppressMessages(library(lme4)); d <- read.csv(commandArgs(TRUE)[1]);"
        "for (v in intersect(c('s','d','dept','dist_id','school_id','teach_id','student_id'), names(d))) "
        "d[[v]] <- factor(d[[v]]);"
        f"t <- Inf; for (i in 1:{REPEATS[case]}) t <- min(t, system.time(m <- lmer({formula}, data=d, REML=TRUE))[['elapsed']]);"
        "cat(sprintf('{\"seconds\": %.4f, \"loglik\": %.6f}', t, as.numeric(logLik(m))))")
    done = subprocess.run(["Rscript", "-e", script, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_fresh_process(case: str, path: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", case, str(path)], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average() -> str:
    try:
        return ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["insteval", "moving"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_ours(*args.child)))
        return
    lines = [f"Machine: {machine()}", "",
             "| case | model (REML) | rows | HLM Explorer fit s | log-lik | lme4 s | lme4 log-lik | lme4 / ours | target |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    print("\n".join(lines), flush=True)
    start_load = load_average()
    with tempfile.TemporaryDirectory() as folder:
        for case in args.cases:
            formula, target = CASES[case]
            shown = formula.replace("|", "\\|")  # a bar inside a table cell must be escaped
            path = write_data(case, Path(folder))
            if path is None:
                row = f"| {case} | `{shown}` | | skipped: needs R with lme4 to write the data | | | | | |"
            else:
                ours = in_fresh_process(case, path)
                peer = run_lme4(case, path) or {}
                if "error" in ours:
                    row = f"| {case} | `{shown}` | | error: {ours['error']} | | | | | |"
                else:
                    ratio = peer["seconds"] / ours["seconds"] if "seconds" in peer else None
                    verdict = "" if ratio is None else ("met" if ratio >= target else "NOT met")
                    row = (f"| {case} | `{shown}` | {ours['rows']:,} | {ours['seconds']:.2f} | {ours['loglik']:.3f} | "
                           + (f"{peer['seconds']:.2f} | {peer['loglik']:.3f} | {ratio:.1f}x | "
                              if ratio is not None else f"{peer.get('error', 'no R')} | | | ")
                           + f">= {target:g}x {verdict} |")
            print(row, flush=True)
            lines.append(row)
    lines += ["", f"Load average (1, 5, 15 min): {start_load} at the start of the run, {load_average()} at its end, "
                  f"on {os.cpu_count()} cores."]
    print(lines[-1])
    out = ROOT / "bench" / "results" / "crossed.md"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
