"""Options and the fit shared by lincom, contrast and margins (not a subcommand: the name starts with '_')."""

from __future__ import annotations

import argparse


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """DATA, --model or --formula, --reml/--ml, --dfmethod, centring, --json and --quiet."""
    from engine.cli.fit import add_centering_arguments, add_dfmethod_argument

    parser.add_argument("data", help="data file (.csv, .dta, .sav, .xlsx, .parquet)")
    written = parser.add_mutually_exclusive_group(required=True)
    written.add_argument("--model", help="model in Stata mixed syntax")
    written.add_argument("--formula", help="the model as an lme4 formula; REML unless --ml, as in lme4")
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--reml", dest="method", action="store_const", const="REML", help="fit by REML")
    method.add_argument("--ml", dest="method", action="store_const", const="ML", help="fit by ML (the default)")
    add_dfmethod_argument(parser)
    add_centering_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print no table (with --json)")


def fit_from_arguments(args: argparse.Namespace):
    """Read the data and fit the model; returns (frame, FitResult)."""
    from engine.cli.fit import spec_from_arguments
    from engine.data_io import read_data
    from engine.mixed import fit_mixed

    spec = spec_from_arguments(args)
    frame = read_data(args.data).frame
    return frame, fit_mixed(frame, spec, predict=False)


def show(table, args: argparse.Namespace) -> int:
    """Print the table (unless --quiet) and write --json."""
    from engine.cli.fit import write_json

    if not args.quiet:
        print(table.format(), end="")
    if args.json:
        write_json(table.to_dict(), args.json)
    return 0
