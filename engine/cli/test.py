"""`main.py test DATA --model "..." TERM [TERM...]`: joint Wald test that the terms' coefficients are 0."""

from __future__ import annotations

import argparse

from engine.cli.fit import add_centering_arguments, add_dfmethod_argument, spec_from_arguments, write_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "test", help="joint Wald test of fixed-effect terms (F with small-sample df, or chi2)",
        description="Fit the model and test that every coefficient of the named terms is zero, as Stata's "
                    "testparm: e.g. i.sector (all its levels), or c.x c.x#c.x together. With --dfmethod "
                    "satterthwaite or kroger (REML) the test is F with that method's denominator df "
                    "(Kenward-Roger's scaled F, as pbkrtest; Satterthwaite as lmerTest's anova); "
                    "without a df method it is Wald chi2, Stata's default.")
    parser.add_argument("data", help="data file (.csv, .dta, .sav, .xlsx, .parquet)")
    parser.add_argument("terms", nargs="+", metavar="TERM", help="terms or coefficient names to test jointly")
    written = parser.add_mutually_exclusive_group(required=True)
    written.add_argument("--model", help="model in Stata mixed syntax; crossed factors as || _all: R.x")
    written.add_argument("--formula", help="the model as an lme4 formula, e.g. \"y ~ x + (1|teach_id) + "
                         "(1|student_id)\"; REML unless --ml, as in lme4")
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--reml", dest="method", action="store_const", const="REML", help="fit by REML")
    method.add_argument("--ml", dest="method", action="store_const", const="ML", help="fit by ML (Stata's default)")
    add_dfmethod_argument(parser)
    add_centering_arguments(parser)
    parser.add_argument("--report", action="store_true", help="also print the fit's report")
    parser.add_argument("--json", metavar="PATH", help="also write the fit with its tests as JSON ('-' for standard output)")
    parser.add_argument("--quiet", action="store_true", help="print nothing (with --json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.data_io import read_data
    from engine.mixed import fit_mixed
    from engine.report import format_fit_report, format_joint_tests
    from engine.wald_tests import joint_test

    spec = spec_from_arguments(args)
    dataset = read_data(args.data)
    result = fit_mixed(dataset.frame, spec, predict=False)
    joint_test(result, args.terms)
    if not args.quiet:
        if args.report:
            print(format_fit_report(result))
        print(format_joint_tests(result), end="")
    if args.json:
        write_json(result.to_dict(), args.json)
    return 0
