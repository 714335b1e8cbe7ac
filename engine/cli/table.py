"""`main.py table DATA --model A --model B ...`: fits side by side, as Stata's esttab."""

from __future__ import annotations

import argparse

from engine.cli.fit import (add_centering_arguments, centerings_from_arguments, parse_model_with_method,
                            variances_from_arguments, write_json)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "table", help="several fits side by side (coefficients, variance components, N, log-likelihood, AIC/BIC)",
        description="Fit each --model (Stata mixed syntax) to the data and print them side by side, as Stata's "
                    "esttab or R's modelsummary: coefficients with significance stars and standard errors (or 95%% "
                    "intervals), random-effects parameters by level, observations, groups, log-likelihood, AIC and "
                    "BIC. --out writes the table as CSV (every number at full precision), LaTeX (booktabs) or HTML.")
    parser.add_argument("data", help="data file (.csv, .dta, .sav, .xlsx, .parquet)")
    parser.add_argument("--model", action="append", required=True, help="a model in Stata mixed syntax; repeat for each column")
    parser.add_argument("--title", action="append", default=[],
                        help="a column title, one per --model in the same order (default: (1), (2), ...)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--se", dest="interval", action="store_const", const="se",
                       help="standard errors in parentheses under the estimates (the default)")
    shown.add_argument("--ci", dest="interval", action="store_const", const="ci",
                       help="95%% confidence intervals in brackets under the estimates")
    parser.set_defaults(interval="se")
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--reml", dest="method", action="store_const", const="REML", help="fit every model by REML")
    method.add_argument("--ml", dest="method", action="store_const", const="ML", help="fit every model by ML")
    parser.add_argument("--variance", action="store_true", help="random effects as variances and covariances")
    parser.add_argument("--decimals", type=int, default=3, help="decimals in the text, LaTeX and HTML (default 3)")
    add_centering_arguments(parser)
    parser.add_argument("--out", metavar="FILE", help="write the table to FILE.csv, .tex, .html or .txt")
    parser.add_argument("--json", metavar="PATH", help="also write the table object as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print no table (with --out or --json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._options import check_outputs
    from engine.data_io import read_data
    from engine.errors import UserInputError
    from engine.mixed import fit_mixed
    from engine.model_table import build_model_table
    from engine.model_table_output import MODEL_TABLE_FORMATS, model_table_text, write_model_table

    if args.title and len(args.title) != len(args.model):
        raise UserInputError(f"{len(args.title)} --title for {len(args.model)} --model: give one title per model")
    if not 0 <= args.decimals <= 12:
        raise UserInputError(f"--decimals {args.decimals}: give a whole number from 0 to 12")
    if args.out and not args.out.lower().endswith(MODEL_TABLE_FORMATS + (".htm",)):
        raise UserInputError(f"--out {args.out}: unknown table format; use {', '.join(MODEL_TABLE_FORMATS)}")
    check_outputs([("--out", args.out), ("--json", args.json)], [("DATA", args.data)])
    variances = variances_from_arguments(args.variance, args.model)
    centering = centerings_from_arguments(args)
    specs = []
    for text in args.model:
        spec = parse_model_with_method(text, args.method)
        spec.centering = list(centering)
        specs.append(spec)
    frame = read_data(args.data).frame
    results = [fit_mixed(frame, spec, predict=False) for spec in specs]
    table = build_model_table(results, args.title or None, interval=args.interval, variances=variances)
    if not args.quiet:
        for item in centering:
            print(f"Centring: {item.describe()}")
        print(model_table_text(table, args.decimals), end="")
    if args.out:
        write_model_table(table, args.out, args.decimals)
    if args.json:
        write_json(table.to_dict(), args.json)
    return 0
