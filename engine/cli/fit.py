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
                    "Reads CSV, Stata .dta, SPSS .sav, Excel and Parquet (by extension). Binary and count "
                    "outcomes: melogit, meprobit or mepoisson (options intpoints(n), or, irr, exposure(), offset(), "
                    "binomial()), or lme4's call, e.g. --model \"glmer(pass ~ tutoring + (1|school_id), "
                    "family = binomial)\".")
    parser.add_argument("data", help="data file (.csv, .dta, .sav, .xlsx, .parquet)")
    written = parser.add_mutually_exclusive_group(required=True)
    # append, so that a second --model is refused rather than silently replacing the first
    written.add_argument("--model", action="append",
                         help="model in Stata mixed syntax (once); crossed factors as || _all: R.x")
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
    parser.add_argument("--report", metavar="PATH",
                        help="also write a report to hand on: PATH.html (one self-contained page) or PATH.docx "
                             "(Word): model, data, method, warnings and every table; plots only from the window")
    add_interval_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print no report (with --json)")
    parser.add_argument("--predict", metavar="PATH",
                        help="write per-row predictions (xb, random effects, fitted, residual) in the data's row "
                             "order with its level ids: .csv, .parquet, .dta or .sav")
    parser.add_argument("--ranef", metavar="PATH",
                        help="write the predicted random effects with their standard errors, one row per level, "
                             "group and term: .csv, .parquet, .dta or .sav")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import predictions
    from engine.cli._intervals import apply_interval_arguments, check_interval_arguments
    from engine.cli._options import check_outputs
    from engine.data_io import read_data
    from engine.fit_report_output import check_report_option, write_command_line_report
    from engine.mixed import fit_mixed
    from engine.report import format_fit_report

    check_report_option(args.report, args.data)  # before any work, like the other outputs
    check_outputs([("--json", args.json), ("--predict", args.predict), ("--ranef", args.ranef)],
                  [("DATA", args.data)])
    check_interval_arguments(args)
    spec = spec_from_arguments(args)
    variances = variances_from_arguments(args.variance, args.model if not getattr(args, "formula", None) else [])
    for option, path in (("--predict", args.predict), ("--ranef", args.ranef)):
        if path:
            predictions.check_output_path(path, option)
    dataset = read_data(args.data)
    result = fit_mixed(dataset.frame, spec)
    apply_interval_arguments(args, result, dataset.frame)
    if args.report:
        write_command_line_report(result, args.data, args.report, variances=variances)
    if not args.quiet:
        print(format_fit_report(result, variances=variances))
    if args.json:
        write_json(result.to_dict(), args.json)
    if args.predict:
        predictions.write_predictions(dataset.frame, result, args.predict)
    if args.ranef:
        predictions.write_random_effects(result, args.ranef)
    return 0


def spec_from_arguments(args: argparse.Namespace):
    """The ModelSpec of --model with --reml/--ml, --dfmethod and the centring options applied."""
    from engine.model_spec import parse_dfmethod

    if getattr(args, "formula", None):
        from engine.model_spec import ModelSpec

        spec = ModelSpec.parse_lme4(args.formula, method=args.method)
    else:
        models = args.model if isinstance(args.model, list) else [args.model]
        if len(models) > 1:
            raise UserInputError(f"{getattr(args, 'command', None) or 'fit'} takes one --model, not {len(models)}; "
                                 f"to compare models use 'main.py lrtest DATA --model A --model B'")
        spec = parse_model_with_method(models[0], args.method)
    if args.dfmethod is not None:
        spec = spec.replace(dfmethod=parse_dfmethod(args.dfmethod))
    spec.centering = centerings_from_arguments(args)
    return spec


def variances_from_arguments(flag: bool, models: list[str] | None) -> bool:
    """Whether to report variances: --variance, or Stata's ``variance`` (``var``) option in a model;
    ``stddev`` in a model together with --variance is a conflict, refused."""
    from engine.model_spec import stated_display

    stated = {stated_display(text) for text in models or []} - {None}
    if len(stated) > 1:
        raise UserInputError("the models ask for both variance and stddev: choose one")
    if flag and stated == {"stddev"}:
        raise UserInputError("--variance conflicts with 'stddev' in the model: give the display once")
    return flag or stated == {"variance"}


def add_dfmethod_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dfmethod", metavar="NAME",
        help="t and F tests with denominator df (Stata's dfmethod()): residual, repeated, anova, satterthwaite "
             "or kroger (the last two need --reml); default: z and chi2 tests, as Stata; overrides the model text")


def parse_model_with_method(text: str, method: str | None):
    """The model of ``--model``, with ``--reml``/``--ml`` applied; a method written differently in
    the model text is a conflict, refused rather than silently overridden."""
    from engine.model_spec import ModelSpec, stated_method

    written = stated_method(text)
    if method and written and written != method:
        flag = "--ml" if method == "ML" else "--reml"
        raise UserInputError(f"{flag} conflicts with '{written.lower()}' in the model {text!r}: give the method once")
    return ModelSpec.parse(text, method=method)


def add_interval_arguments(parser: argparse.ArgumentParser) -> None:
    """--ci and the bootstrap's options (see engine.cli._intervals.py)."""
    from engine.cli._intervals import register_interval_arguments

    register_interval_arguments(parser)


def write_json(payload: dict, destination: str) -> None:
    from engine.atomic_write import write_text_atomically

    text = json.dumps(payload, indent=1)
    if destination == "-":
        sys.stdout.write(text + "\n")
        return
    write_text_atomically(destination, text + "\n")


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
