"""`main.py lrtest DATA --model A --model B`: likelihood-ratio tests, AIC/BIC, ICCs, variance explained."""

from __future__ import annotations

import argparse

from engine.cli.fit import add_centering_arguments, centerings_from_arguments, parse_model_with_method, write_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lrtest", help="compare nested models: LR tests, AIC/BIC, intraclass correlations, variance explained",
        description="Fit two or more models (Stata mixed syntax) to the same rows and compare neighbours by "
                    "likelihood-ratio tests, as Stata's lrtest and estat ic. REML fits whose fixed effects differ "
                    "are refitted by ML for the tests; a test of one variance component uses the chi-bar-square "
                    "mixture. Also prints intraclass correlations and the proportion of variance explained at "
                    "each level against a null model with the same levels.")
    parser.add_argument("data", help="data file (.csv, .dta, .sav, .xlsx, .parquet)")
    parser.add_argument("--model", action=_InOrder, dest="written", default=[],
                        help="a model in Stata mixed syntax; give two or more, smaller first")
    parser.add_argument("--formula", action=_InOrder, dest="written", default=[],
                        help="a model as an lme4 formula (e.g. with random slopes on crossed factors), in the "
                             "order given among the --model options; REML unless --ml, as in lme4")
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--reml", dest="method", action="store_const", const="REML",
                        help="fit every model by REML (tests of fixed effects are then refitted by ML)")
    method.add_argument("--ml", dest="method", action="store_const", const="ML", help="fit every model by ML")
    parser.add_argument("--null", metavar="MODEL",
                        help="null model for the variance explained (default: random intercepts at the same levels)")
    add_centering_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the comparison as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print no report (with --json)")
    parser.add_argument("--dfmethod", metavar="NAME",
                        help="also F tests of the fixed effects a model adds to its neighbour (same random part), with "
                             "this df method (satterthwaite or kroger need --reml): as pbkrtest's KRmodcomp")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.data_io import read_data
    from engine.errors import UserInputError
    from engine.model_comparison import AUTOMATIC_NULL, compare_models

    if len(args.written) < 2:
        raise UserInputError("lrtest needs at least two models (--model or --formula options)")
    from engine.cli._options import check_outputs

    check_outputs([("--json", args.json)], [("DATA", args.data)])
    centering = centerings_from_arguments(args)
    specs = []
    for option, text in args.written:
        if option == "--formula":
            from engine.model_spec import ModelSpec

            spec = ModelSpec.parse_lme4(text, method=args.method)
        else:
            spec = parse_model_with_method(text, args.method)
        spec.centering = list(centering)
        specs.append(spec)
    dataset = read_data(args.data)
    comparison = compare_models(dataset.frame, specs, null_model=args.null or AUTOMATIC_NULL, dfmethod=args.dfmethod,
                                truth=dataset.truth)
    if not args.quiet:
        for item in centering:
            print(f"Centring: {item.describe()}")
        print(comparison.format(), end="")
    if args.json:
        write_json(comparison.to_dict(), args.json)
    return 0


class _InOrder(argparse.Action):
    """Collect --model and --formula texts in the order they were given, with the option's name."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [*getattr(namespace, self.dest), (option_string, values)])
