"""``simulate``: draw data from a preset or a saved design and write it (CSV, Stata, SPSS, Parquet)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.errors import UserInputError


def register(subparsers) -> None:
    """Add the ``simulate`` subcommand."""
    from engine.data_io import WRITE_EXTENSIONS
    from engine.presets import PRESETS

    parser = subparsers.add_parser(
        "simulate",
        help="simulate hierarchical data from a preset or a design file",
        description="Simulate data from a built-in preset or a design saved as JSON. Examples: "
        "'simulate --preset tutoring --units dist_id=50 --seed 7 --out data.csv'; "
        "'simulate --preset growth --describe'.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default=None,
                        help=f"built-in design: {', '.join(PRESETS)} (default tutoring)")
    source.add_argument("--design", metavar="FILE.json", help="a design saved with --save-design or by the window")
    parser.add_argument("--units", metavar="LEVEL=N", action="append", default=[],
                        help="fixed number of units per parent at a level, e.g. dist_id=50 (repeatable)")
    parser.add_argument("--allocation", choices=["bernoulli", "fixed"],
                        help="treatment assignment: each unit with its probability (bernoulli), or exactly "
                        "--treated units (default: the probability, rounded) in each --block")
    parser.add_argument("--treated", type=int, metavar="K", help="fixed allocation: treated units per block")
    parser.add_argument("--block", metavar="LEVEL",
                        help="fixed allocation: assign within each unit of this level (a multisite trial)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    parser.add_argument("--out", metavar="FILE", help=f"data file to write: {', '.join(WRITE_EXTENSIONS)}; "
                        "the true parameters go into the file (Parquet) or FILE.truth.json")
    parser.add_argument("--describe", action="store_true",
                        help="print the design, expected units and rows, and the variance share of each level")
    parser.add_argument("--save-design", metavar="FILE.json", help="save the design (after --units) as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the design, then describe, save and/or simulate as asked."""
    from engine.data_io import WRITE_EXTENSIONS, truth_sidecar_path, write_data
    from engine.cli._options import apply_allocation, apply_units, check_outputs, check_seed
    from engine.design import Design
    from engine.presets import get_preset
    from engine.simulate import simulate

    if not (args.out or args.describe or args.save_design):
        raise UserInputError("nothing to do: give --out FILE, --describe or --save-design FILE.json")
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() not in WRITE_EXTENSIONS:
            raise UserInputError(f"--out {out}: unknown format {out.suffix or '(none)'!r}; use {', '.join(WRITE_EXTENSIONS)}")
        if not out.parent.is_dir():
            raise UserInputError(f"--out {out}: the folder {out.parent} does not exist")
    check_seed(args.seed)
    outputs = [("--out", args.out), ("--save-design", args.save_design)]
    if args.out and Path(args.out).suffix.lower() != ".parquet":
        outputs.append(("--out's truth file", str(truth_sidecar_path(args.out))))
    check_outputs(outputs, [("--design", args.design)])

    design = apply_units(Design.load(args.design) if args.design else get_preset(args.preset or "tutoring"), args.units)
    design = apply_allocation(design, args.allocation, args.treated, args.block)
    design.validate()

    if args.describe:
        print(design.describe())
    if args.save_design:
        design.save(args.save_design)
        print(f"saved design to {args.save_design}")
    if args.out:
        show_progress = sys.stderr.isatty()
        if show_progress:
            print(f"simulating about {design.expected_counts().rows:,.0f} rows ...", end="", file=sys.stderr,
                  flush=True)
        started = time.perf_counter()
        data = simulate(design, args.seed)
        seconds = time.perf_counter() - started
        written = write_data(data.frame, args.out, truth=data.truth,
                             progress=_write_progress(args.out) if show_progress else None)
        if show_progress:
            print(file=sys.stderr)
        truth_note = f"; truth in {written[1]}" if len(written) > 1 else "; truth in the file's metadata"
        print(f"simulated {len(data.frame):,} rows in {seconds:.2f} s (seed {data.seed}); "
              f"wrote {written[0]}{truth_note}")
    return 0


def _write_progress(path: str):
    """A progress callback that rewrites one stderr line: 'writing FILE: 45%'."""
    def show(fraction: float) -> None:
        print(f"\rwriting {path}: {fraction:4.0%}", end="", file=sys.stderr, flush=True)
    return show
