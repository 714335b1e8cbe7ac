"""``check-pvalues``: simulate from a fitted model with the data's own structure and report the
actual coverage of each fixed effect's interval and the actual type-I error of its test."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add the ``check-pvalues`` subcommand."""
    parser = subparsers.add_parser(
        "check-pvalues",
        help="check a fit's p-values and intervals by simulating from it (parametric bootstrap of the design)",
        description="Fit MODEL to DATA, then simulate REPS outcomes from the fit keeping the data's rows, groups "
        "and covariates (y* = X b + Z u* + e*), refit the same model (with its df method) to each, and report "
        "each fixed effect's actual coverage of its interval and, simulating with that coefficient set to 0, "
        "the actual type-I error of its test, with Monte Carlo SEs. Runs on local processes; the result "
        "depends only on --seed, not on --workers.")
    parser.add_argument("data", help="data file (CSV, Stata, SPSS, Excel, Parquet)")
    parser.add_argument("--model", required=True,
                        help="Stata mixed syntax with options, e.g. \"y treat || school:, reml dfmethod(kroger)\"")
    parser.add_argument("--reps", type=int, default=200, help="replications per part (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--alpha", type=float, default=0.05, help="level of the tests whose type-I error is counted (default 0.05); coverage is of the fit's 95%% "
                        "intervals")
    parser.add_argument("--terms", nargs="+", metavar="TERM",
                        help="fixed effects whose type-I error to check (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes (default: all cores)")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON ('-' for standard output)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._options import check_seed
    from engine.cli.fit import write_json
    from engine.data_io import read_data
    from engine.errors import UserInputError
    from engine.montecarlo.pvalue_check import format_check, prepare_check, run_pvalue_check
    from engine.montecarlo.runner import local_cores

    check_seed(args.seed)
    if args.workers is not None and not 1 <= args.workers:
        raise UserInputError(f"--workers {args.workers}: give a whole number >= 1")
    workers = min(args.workers, local_cores()) if args.workers else None
    frame = read_data(args.data).frame
    check, fit = prepare_check(frame, args.model, reps=args.reps, seed=args.seed, alpha=args.alpha, terms=args.terms)
    print(f"{check.total_replications} replications of {args.model} ({len(check.tested) + 1} parts)", file=sys.stderr)
    result = run_pvalue_check(check, workers=workers)
    print(format_check(result))
    print(f"\n{check.total_replications} replications in {result.seconds:.1f} s on {result.workers} workers")
    if args.json:
        write_json(result.to_dict(), args.json)
    return 0
