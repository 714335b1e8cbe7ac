"""The interval options of ``fit``: --ci wald|profile|bootstrap and the bootstrap's --reps,
--seed, --workers and --scheduler (not a subcommand: the name starts with '_')."""

from __future__ import annotations

import argparse
import sys

from engine.errors import UserInputError
from engine.intervals import CI_METHODS, DEFAULT_BOOTSTRAP_REPS

BOOTSTRAP_ONLY = ("reps", "seed", "workers", "scheduler")


def register_interval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ci", choices=CI_METHODS, default="wald",
        help="confidence intervals: wald (default; Stata's, the variance parameters' on the log-sd / atanh "
             "scale), profile (profile likelihood for every sd, correlation and the residual sd, as lme4's "
             "confint(method=\"profile\")) or bootstrap (parametric-bootstrap percentile intervals of every "
             "parameter)")
    parser.add_argument("--reps", type=int, default=None,
                        help=f"bootstrap replicates (with --ci bootstrap; default {DEFAULT_BOOTSTRAP_REPS})")
    parser.add_argument("--seed", type=int, default=None,
                        help="bootstrap seed (with --ci bootstrap; default a fresh one, reported)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes for the bootstrap (default all cores)")
    parser.add_argument("--scheduler", metavar="ADDR", default=None,
                        help="run the bootstrap on a Dask cluster, e.g. tcp://host:8786")


def check_interval_arguments(args: argparse.Namespace) -> None:
    """Refuse the bootstrap's options without --ci bootstrap, before any work starts."""
    if args.ci != "bootstrap":
        given = [f"--{name}" for name in BOOTSTRAP_ONLY if getattr(args, name) is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UserInputError(f"{' and '.join(given)} {verb} only to --ci bootstrap (--ci is {args.ci})")
        return
    from engine.intervals import IntervalRequest

    IntervalRequest(method="bootstrap", reps=args.reps if args.reps is not None else DEFAULT_BOOTSTRAP_REPS,
                    seed=args.seed if args.seed is not None else 0, workers=args.workers).check()


def apply_interval_arguments(args: argparse.Namespace, result, frame) -> None:
    """Replace the fit's intervals as --ci asks (nothing to do for wald)."""
    from engine.intervals import IntervalRequest, apply_intervals

    if args.ci == "wald":
        return
    seed = args.seed
    if seed is None and args.ci == "bootstrap":
        import numpy as np

        seed = int(np.random.SeedSequence().entropy % 2**32)  # fresh, and reported with the intervals
    request = IntervalRequest(method=args.ci, reps=args.reps if args.reps is not None else DEFAULT_BOOTSTRAP_REPS,
                              seed=seed or 0, workers=args.workers, scheduler=args.scheduler)
    show = args.ci == "bootstrap" and not getattr(args, "quiet", False) and sys.stderr.isatty()
    apply_intervals(result, frame, request, progress=_progress_printer() if show else None)
    if show:
        print(file=sys.stderr)


def _progress_printer():
    def show(done: int, total: int) -> None:
        print(f"\rbootstrap: {done}/{total} replicates", end="", file=sys.stderr, flush=True)
    return show
