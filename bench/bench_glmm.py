"""Benchmark: the seed's four-level model with a binary outcome (melogit, Laplace) against lme4's glmer.

The data follow the seed's design (districts x 5 schools x 8 teachers x 20 students x 2 semesters,
tutoring on 20% of student-semesters) with a 0/1 outcome `pass` from a latent logit model:
intercept -0.5, tutoring effect 0.5, latent sds district 0.4, school 0.6, teacher 0.8, student 1.0
(the generating model of the reference case glmm_seed_d5_logit_laplace). Each size is simulated
once, written to CSV, and fitted by HLM Explorer (in a fresh process, imports warmed on a small
fit; `fit s` is the engine's own time including standard errors and predicted effects) and by
glmer with its default settings (Laplace; its time excludes reading the CSV), in the same run.

    python bench/bench_glmm.py [--sizes 5 50] [--only-crossed]

A second table times binary models with crossed random factors against glmer with its default
settings in the same run: lme4's VerbAgg (tests/data/verbagg.csv, 7,584 responses of 316 persons to
24 items; `r2 ~ anger + male + factor(btype) + self + (1|id) + (1|item)`) and the seed's design with
half the students changing teacher in semester 2 and a pass/fail outcome (tests/data/seed_moving_binary.csv,
8,000 rows; districts and schools nested, teachers and students crossed).

Writes bench/results/glmm.md and prints the same table.
"""

from __future__ import annotations

import argparse
import json
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

MODEL = "melogit pass tutoring || dist_id: || school_id: || teach_id: || student_id:"
FORMULA = "pass ~ tutoring + (1|dist_id/school_id/teach_id/student_id)"
LATENT_SDS = (0.4, 0.6, 0.8, 1.0)


def simulate_binary(districts: int, seed: int = 1) -> pd.DataFrame:
    """The seed's design with a binary outcome on the logit scale."""
    rng = np.random.default_rng(seed)
    shape = (districts, 5, 8, 20, 2)
    index = np.indices(shape).reshape(5, -1) + 1
    effects = [rng.normal(0.0, sd, size=shape[: level + 1]) for level, sd in enumerate(LATENT_SDS)]
    eta = -0.5 + sum(np.broadcast_to(e.reshape(e.shape + (1,) * (5 - e.ndim)), shape) for e in effects).ravel()
    tutoring = (rng.random(eta.size) < 0.2).astype(int)
    eta = eta + 0.5 * tutoring
    passed = (rng.random(eta.size) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"dist_id": index[0], "school_id": index[1], "teach_id": index[2], "student_id": index[3],
                         "semester": index[4], "tutoring": tutoring, "pass": passed})


def child_ours(path: str) -> dict:
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec

    spec = ModelSpec.parse(MODEL)
    fit_mixed(simulate_binary(1, seed=99), spec)  # warm imports
    frame = pd.read_csv(path)
    result = fit_mixed(frame, spec)
    return {"rows": len(frame), "seconds": result.fit_seconds, "loglik": result.loglik, "converged": result.converged}


CROSSED_CASES = {  # name: (data file, HLM Explorer's model, glmer's formula, rows of the warm-up fits)
    "VerbAgg (lme4)": (ROOT / "tests" / "data" / "verbagg.csv",
                       "melogit r2 anger male i.btype self || _all: R.id || _all: R.item",
                       "r2 ~ anger + male + factor(btype) + self + (1|id) + (1|item)", "id <= 40"),
    "seed, moving teachers": (ROOT / "tests" / "data" / "seed_moving_binary.csv",
                              "melogit pass tutoring || dist_id: || school_id: || _all: R.teach_id || _all: R.student_id",
                              "pass ~ tutoring + (1|dist_id) + (1|dist_id:school_id) + (1|teach_id) + (1|student_id)",
                              "dist_id <= 2"),
}


def child_crossed(name: str) -> dict:
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec

    path, model, _, warm = CROSSED_CASES[name]
    frame = pd.read_csv(path)
    spec = ModelSpec.parse(model)
    fit_mixed(frame.query(warm), spec)  # warm imports
    result = fit_mixed(frame, spec)
    return {"rows": len(frame), "seconds": result.fit_seconds, "loglik": result.loglik, "converged": result.converged}


def run_glmer_crossed(name: str) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    path, _, formula, warm = CROSSED_CASES[name]
    script = (
        "suppressMessages(library(lme4)); d <- read.csv(commandArgs(TRUE)[1]);"
        f"invisible(glmer({formula}, data=subset(d, {warm}), family=binomial));"
        f"t <- system.time(m <- glmer({formula}, data=d, family=binomial))[['elapsed']];"
        "cat(sprintf('{\"seconds\": %.4f, \"loglik\": %.6f}', t, as.numeric(logLik(m))))")
    done = subprocess.run(["Rscript", "-e", script, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def crossed_lines() -> list[str]:
    """Binary models with crossed factors: one table row per case (ours in a fresh process, glmer in the
    same run with its default settings)."""
    lines = ["", "Crossed factors (Laplace; glmer with its default settings, `family = binomial`):", "",
             "| data | model | rows | HLM Explorer fit s | log-lik | glmer s | glmer log-lik | glmer / ours |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    for name, (_, model, formula, _) in CROSSED_CASES.items():
        head = f"| {name} | `{model.replace('|', chr(92) + '|')}` |"  # a table cell needs its bars escaped
        done = subprocess.run([sys.executable, __file__, "--child-crossed", name], capture_output=True, text=True,
                              cwd=ROOT)
        if done.returncode != 0:
            lines.append(f"{head} | error: {done.stderr.strip().splitlines()[-1]} | | | | |")
            print(lines[-1], flush=True)
            continue
        ours = json.loads(done.stdout.strip().splitlines()[-1])
        peer = run_glmer_crossed(name) or {}
        row = f"{head} {ours['rows']:,} | {ours['seconds']:.3f} | {ours['loglik']:.3f} |"
        if "seconds" not in peer:
            lines.append(f"{row} {peer.get('error', 'R not available')} | | |")
        else:
            lines.append(f"{row} {peer['seconds']:.3f} | {peer['loglik']:.3f} | {peer['seconds'] / ours['seconds']:.1f}x |")
        print(lines[-1], flush=True)
    return lines


def run_glmer(path: Path) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    script = (
        "suppressMessages(library(lme4)); d <- read.csv(commandArgs(TRUE)[1]);"
        f"invisible(glmer({FORMULA}, data=d[d$teach_id <= 2 & d$student_id <= 5,], family=binomial));"
        f"t <- system.time(m <- glmer({FORMULA}, data=d, family=binomial))[['elapsed']];"
        "cat(sprintf('{\"seconds\": %.4f, \"loglik\": %.6f}', t, as.numeric(logLik(m))))")
    done = subprocess.run(["Rscript", "-e", script, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50], help="districts (5 = 8,000 rows)")
    parser.add_argument("--only-crossed", action="store_true", help="time only the models with crossed factors")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-crossed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_ours(args.child)))
        return
    if args.child_crossed:
        print(json.dumps(child_crossed(args.child_crossed)))
        return
    if args.only_crossed:
        print(f"Machine: {machine()}", flush=True)
        lines = [f"Machine: {machine()}"] + crossed_lines()
        (ROOT / "bench" / "results" / "glmm_crossed.md").write_text("\n".join(lines) + "\n")
        return
    lines = [f"Machine: {machine()}", f"Model: `{MODEL}` (Laplace), glmer: `glmer({FORMULA}, family = binomial)` "
             "with its default settings.", "",
             "| districts | rows | HLM Explorer fit s | log-lik | glmer s | glmer log-lik | glmer / ours | target 10x |",
             "|---:|---:|---:|---:|---:|---:|---:|---|"]
    print("\n".join(lines), flush=True)
    for districts in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "binary.csv"
            simulate_binary(districts).to_csv(path, index=False)
            done = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                                  cwd=ROOT)
            if done.returncode != 0:
                row = f"| {districts} | | error: {done.stderr.strip().splitlines()[-1]} | | | | | |"
                lines.append(row)
                print(row, flush=True)
                continue
            ours = json.loads(done.stdout.strip().splitlines()[-1])
            peer = run_glmer(path) or {}
        ratio = peer["seconds"] / ours["seconds"] if "seconds" in peer else None
        row = (f"| {districts} | {ours['rows']:,} | {ours['seconds']:.3f} | {ours['loglik']:.3f} | "
               + (f"{peer['seconds']:.3f} | {peer['loglik']:.3f} | {ratio:.1f}x | {'met' if ratio >= 10 else 'not met'} |"
                  if ratio else f"{peer.get('error', 'R not available')} | | | |"))
        lines.append(row)
        print(row, flush=True)
    lines += crossed_lines()
    lines += ["", "glmer's log-likelihood is lower wherever its default PIRLS tolerance stops short of the optimum "
              "(the engine converges PIRLS to 1e-11 relative)."]
    out = ROOT / "bench" / "results" / "glmm.md"
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
