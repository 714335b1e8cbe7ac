"""The interval options of ``fit``: --ci wald|profile|bootstrap and the bootstrap's --reps,
--seed, --workers and --scheduler (not a subcommand: the name starts with '_')."""

from __future__ import annotations

import argparse
import sys

from engine.errors import UserInputError

CI_METHODS = ("wald", "profile", "bootstrap")
DEFAULT_BOOTSTRAP_REPS = 1000
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
    if args.reps is not None and args.reps < 2:
        raise UserInputError(f"--reps must be at least 2 bootstrap replicates, got {args.reps}")
    if args.seed is not None and args.seed < 0:
        raise UserInputError(f"--seed must be a whole number >= 0, got {args.seed}")


def apply_interval_arguments(args: argparse.Namespace, result, frame) -> None:
    """Replace the fit's intervals as --ci asks (nothing to do for wald)."""
    if args.ci == "profile":
        from engine.mixed.profile import apply_profile_intervals

        apply_profile_intervals(result, frame)
    elif args.ci == "bootstrap":
        import numpy as np

        from engine.bootstrap import apply_bootstrap_intervals

        seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
        reps = args.reps if args.reps is not None else DEFAULT_BOOTSTRAP_REPS
        show = not getattr(args, "quiet", False) and sys.stderr.isatty()
        apply_bootstrap_intervals(result, frame, reps=reps, seed=seed, workers=args.workers,
                                  scheduler=args.scheduler, progress=_progress_printer() if show else None)
        if show:
            print(file=sys.stderr)


def _progress_printer():
    def show(done: int, total: int) -> None:
        print(f"\rbootstrap: {done}/{total} replicates", end="", file=sys.stderr, flush=True)
    return show
