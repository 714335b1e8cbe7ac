"""`main.py fit DATA --model "..."`: fit one model and print a Stata-like report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import UserInputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit", help="fit a (mixed) linear model to a data file",
        description="Fit a linear mixed model written in Stata `mixed` syntax, levels outermost first, "
                    "e.g. --model \"perform tutoring || dist_id: || school_id: || teach_id: || student_id:\". "
                    "Reads CSV, Stata .dta, SPSS .sav, Excel and Parquet (by extension).")
    parser.add_argument("data", help="data file (.csv, .dta, .sav, .xlsx, .parquet)")
    written = parser.add_mutually_exclusive_group(required=True)
    written.add_argument("--model", help="model in Stata mixed syntax; crossed factors as || _all: R.x")
    written.add_argument("--formula", help="the model as an lme4 formula, e.g. \"perform ~ tutoring + "
                         "(1|dist_id/school_id) + (1|teach_id)\"; REML unless --ml, as in lme4")
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--reml", dest="method", action="store_const", const="REML",
                        help="restricted maximum likelihood (unbiased variances; do not compare fixed effects)")
    method.add_argument("--ml", dest="method", action="store_const", const="ML",
                        help="maximum likelihood (Stata's default; needed to compare fixed effects by LR tests)")
    add_dfmethod_argument(parser)
    add_centering_arguments(parser)
    parser.add_argument("--variance", action="store_true", help="report variances instead of standard deviations")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print no report (with --json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.data_io import read_data
    from engine.mixed import fit_mixed
    from engine.model_spec import ModelSpec
    from engine.report import format_fit_report

    spec = spec_from_arguments(args)
    dataset = read_data(args.data)
    result = fit_mixed(dataset.frame, spec)
    if not args.quiet:
        print(format_fit_report(result, variances=args.variance))
    if args.json:
        write_json(result.to_dict(), args.json)
    return 0


def spec_from_arguments(args: argparse.Namespace):
    """The ModelSpec of --model with --reml/--ml, --dfmethod and the centring options applied."""
    from engine.model_spec import ModelSpec, parse_dfmethod

    if getattr(args, "formula", None):
        spec = ModelSpec.parse_lme4(args.formula, method=args.method)
    else:
        spec = ModelSpec.parse(args.model, method=args.method)
    if args.dfmethod is not None:
        spec = spec.replace(dfmethod=parse_dfmethod(args.dfmethod))
    spec.centering = centerings_from_arguments(args)
    return spec


def add_dfmethod_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dfmethod", metavar="NAME",
        help="t and F tests with denominator df (Stata's dfmethod()): residual, repeated, anova, satterthwaite "
             "or kroger (the last two need --reml); default: z and chi2 tests, as Stata; overrides the model text")


def write_json(payload: dict, destination: str) -> None:
    text = json.dumps(payload, indent=1)
    if destination == "-":
        sys.stdout.write(text + "\n")
        return
    try:
        Path(destination).write_text(text + "\n")
    except OSError as error:
        raise UserInputError(f"cannot write {destination}: {error.strerror}") from None


def add_centering_arguments(parser: argparse.ArgumentParser) -> None:
    """The --center and --group-mean options (shared with the lrtest subcommand)."""
    parser.add_argument(
        "--center", action="append", default=[], metavar="NEW=VAR:grand|NEW=VAR:group:LEVEL",
        help="make NEW from VAR before the fit: centred at its grand mean (:grand) or at the mean of its "
             "group at LEVEL (:group:LEVEL); use NEW in the model; repeatable")
    parser.add_argument(
        "--group-mean", action="append", default=[], metavar="NEW=VAR:LEVEL",
        help="make NEW the mean of VAR in its group at LEVEL (a level-2 predictor); repeatable")


def centerings_from_arguments(args: argparse.Namespace) -> list:
    """The Centering list of --center and --group-mean, in that order."""
    from engine.centering import Centering

    return ([Centering.parse_center_option(text) for text in args.center]
            + [Centering.parse_group_mean_option(text) for text in args.group_mean])
