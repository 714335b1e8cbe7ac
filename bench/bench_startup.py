"""Start-up time of the command line and the window, whole process, median of fresh processes.

    python bench/bench_startup.py [--runs 7] [--executable dist/hlm-explorer/hlm-explorer]
                                  [--other-executable OTHER_BUILD/hlm-explorer]

Each command runs RUNS times in a fresh process (after one unrecorded warm-up run, so that the
files are in the page cache); the table gives the median, the fastest and the slowest wall time
and the median CPU time (user + system, which the load of other processes disturbs less). The
window rows open the real window on Qt's offscreen platform and close it as soon as the event
loop has shown it (HLM_QUIT_WHEN_SHOWN=1, see gui/launch.py). Reference rows put the numbers in
proportion: an empty interpreter and one that imports pandas (which every data command needs).
Writes bench/results/startup.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.md"
HSB_FIT = ["fit", "tests/data/hsb.csv", "--model", "mathach ses || school:"]
TARGETS = {"--help": 0.3, "fit hsb.csv": 0.8, "window shown": 2.0}


def timed_run(command: list[str], environment: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``command`` (which must exit 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, timeout=300)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {completed.returncode}:\n{completed.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(command: list[str], runs: int, environment: dict) -> dict:
    timed_run(command, environment)  # warm-up: page cache, .pyc files
    walls, cpus = zip(*(timed_run(command, environment) for _ in range(runs)))
    return {"median": statistics.median(walls), "min": min(walls), "max": max(walls),
            "cpu": statistics.median(cpus)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--executable", type=Path, default=ROOT / "dist" / "hlm-explorer" / "hlm-explorer",
                        help="the packaged program (its rows are left out if it is not built)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT",
                        help="another checkout of the project (e.g. the commit before a change): its "
                             "--help, fit and window rows are timed too, in the same run, with the ratio")
    parser.add_argument("--other-executable", type=Path, metavar="EXECUTABLE",
                        help="another packaged build (e.g. of the commit before a change): its rows are timed "
                             "too, in the same run, with the ratio to --executable's")
    args = parser.parse_args()

    python = sys.executable
    environment = {key: value for key, value in os.environ.items() if key != "QT_QPA_PLATFORM"}
    environment["PYTHONPATH"] = str(ROOT)
    window = dict(environment, QT_QPA_PLATFORM="offscreen", HLM_QUIT_WHEN_SHOWN="1")
    rows = [
        ("reference", "this", "python -c pass", [python, "-c", "pass"], environment),
        ("reference", "this", "python -c 'import pandas'", [python, "-c", "import pandas"], environment),
        ("--help", "this", "python main.py --help", [python, "main.py", "--help"], environment),
        ("fit hsb.csv", "this", "python main.py fit tests/data/hsb.csv --model \"mathach ses || school:\"",
         [python, "main.py", *HSB_FIT], environment),
        ("window shown", "this", "python main.py (offscreen, closed once shown)", [python, "main.py"], window),
    ]
    if args.compare_with is not None:
        other = args.compare_with.resolve()
        other_environment = dict(environment, PYTHONPATH=str(other))
        other_window = dict(window, PYTHONPATH=str(other))
        main_py = str(other / "main.py")
        rows += [
            ("--help", other.name, f"{other.name}: python main.py --help", [python, main_py, "--help"], other_environment),
            ("fit hsb.csv", other.name, f"{other.name}: python main.py fit ...", [python, main_py, *HSB_FIT], other_environment),
        ]
        if "HLM_QUIT_WHEN_SHOWN" in (other / "gui" / "launch.py").read_text(encoding="utf-8"):
            rows.append(("window shown", other.name, f"{other.name}: python main.py (window)", [python, main_py], other_window))
    executable = args.executable.resolve()
    if executable.is_file():
        packaged = {key: value for key, value in environment.items() if key != "PYTHONPATH"}
        rows += [
            ("--help", "packaged", "packaged: hlm-explorer --help", [str(executable), "--help"], packaged),
            ("fit hsb.csv", "packaged", "packaged: hlm-explorer fit tests/data/hsb.csv ...", [str(executable), *HSB_FIT], packaged),
            ("window shown", "packaged", "packaged: hlm-explorer (offscreen, closed once shown)", [str(executable)],
             dict(packaged, QT_QPA_PLATFORM="offscreen", HLM_QUIT_WHEN_SHOWN="1")),
        ]
    if args.other_executable is not None:
        other_executable = args.other_executable.resolve()
        other_packaged = {key: value for key, value in environment.items() if key != "PYTHONPATH"}
        rows += [
            ("--help", "other packaged", "other packaged: hlm-explorer --help", [str(other_executable), "--help"],
             other_packaged),
            ("fit hsb.csv", "other packaged", "other packaged: hlm-explorer fit tests/data/hsb.csv ...",
             [str(other_executable), *HSB_FIT], other_packaged),
            ("window shown", "other packaged", "other packaged: hlm-explorer (offscreen, closed once shown)",
             [str(other_executable)], dict(other_packaged, QT_QPA_PLATFORM="offscreen", HLM_QUIT_WHEN_SHOWN="1")),
        ]
    load_before = os.getloadavg()[0]
    lines = ["| what | command | median wall s | fastest s | slowest s | median CPU s | target s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    medians: dict[tuple[str, str], float] = {}
    cpus: dict[tuple[str, str], float] = {}
    for kind, source, label, command, env in rows:
        result = measure(command, args.runs, env)
        medians[(kind, source)] = result["median"]
        cpus[(kind, source)] = result["cpu"]
        target = TARGETS.get(kind)
        lines.append(f"| {kind} | `{label}` | {result['median']:.2f} | {result['min']:.2f} | {result['max']:.2f} | "
                     f"{result['cpu']:.2f} | {'' if target is None else f'{target:g}'} |")
        print(lines[-1], flush=True)
    if args.compare_with is not None:
        other_name = args.compare_with.resolve().name
        lines += ["", f"Against `{other_name}` in the same run (its median / this checkout's median):", "",
                  "| what | this s | other s | other / this |", "|---|---:|---:|---:|"]
        for kind in TARGETS:
            if (kind, "this") in medians and (kind, other_name) in medians:
                this, other = medians[(kind, "this")], medians[(kind, other_name)]
                lines.append(f"| {kind} | {this:.2f} | {other:.2f} | {other / this:.1f}x |")
        print("\n".join(lines[-5:]))
    if args.other_executable is not None:
        lines += ["", f"Packaged against `{args.other_executable}` in the same run (its median / this build's "
                  "median; CPU seconds in brackets):", "",
                  "| what | this build s | other build s | other / this |", "|---|---:|---:|---:|"]
        for kind in TARGETS:
            if (kind, "packaged") in medians and (kind, "other packaged") in medians:
                this, other = medians[(kind, "packaged")], medians[(kind, "other packaged")]
                this_cpu, other_cpu = cpus[(kind, "packaged")], cpus[(kind, "other packaged")]
                lines.append(f"| {kind} | {this:.2f} ({this_cpu:.2f}) | {other:.2f} ({other_cpu:.2f}) | "
                             f"{other / this:.1f}x |")
        print("\n".join(lines[-5:]))
    load_after = os.getloadavg()[0]
    header = [
        "# Start-up time",
        "",
        f"`python bench/bench_startup.py {' '.join(sys.argv[1:])}`: each command in {args.runs} fresh processes after a "
        "warm-up run; whole-process wall time (spawn to exit) and CPU time (user + system).",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; load average {load_before:.1f} before and {load_after:.1f} after "
        "(other jobs shared the machine: wall times above the CPU times are time spent waiting for a core).",
        "",
    ]
    text = "\n".join(header + lines) + "\n"
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
