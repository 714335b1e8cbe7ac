"""`main.py check DATA [--levels a b c]`: how the id columns nest, missing values, labels."""

from __future__ import annotations

import argparse

from engine.cli.fit import write_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="check a data file's hierarchy: nesting of id columns, restarting ids, missing values",
        description="Infer which id columns nest in which, report ids that restart within their parent (and how "
                    "the engine groups them), propose a nesting order, and summarise every column: missing "
                    "values, the level it is constant at, value labels.")
    parser.add_argument("data", help="data file (.csv, .dta, .sav, .xlsx, .parquet)")
    parser.add_argument("--levels", nargs="+", metavar="ID",
                        help="the id columns to check, in any order (default: integer or text columns whose "
                             "values repeat)")
    parser.add_argument("--outcome", metavar="COLUMN",
                        help="the outcome: ids whose values recur across their parent's groups are tested for an "
                             "effect shared across those groups (crossed rather than nested ids)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print no report (with --json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.data_io import read_data
    from engine.hierarchy_check import check_dataset

    from engine.cli._options import check_outputs

    check_outputs([("--json", args.json)], [("DATA", args.data)])
    report = check_dataset(read_data(args.data), args.levels, outcome=args.outcome)
    if not args.quiet:
        print(report.format(), end="")
    if args.json:
        write_json(report.to_dict(), args.json)
    return 0
