"""`main.py contrast DATA --model "..." FACTOR [--pairwise] [--base L] [--adjust holm]`: contrasts of a factor's
predictive margins (Stata's margins r.FACTOR / margins FACTOR, pwcompare)."""

from __future__ import annotations

import argparse

from engine.cli._postestimation import add_model_arguments, fit_from_arguments, show


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "contrast", help="compare a factor's levels: against the base or pairwise, with adjusted p-values",
        description="Fit the model, then compare the predictive margins of the levels of FACTOR (other predictors "
                    "as observed, or set with --at): each level against the base level (Stata's r. operator), "
                    "or every pair (--pairwise), with a multiple-comparison adjustment (--adjust).")
    add_model_arguments(parser)
    parser.add_argument("factor", metavar="FACTOR", help="a predictor entered as a factor (i.FACTOR)")
    parser.add_argument("--pairwise", action="store_true", help="all pairs of levels")
    parser.add_argument("--base", metavar="LEVEL", help="reference level (default: the model's base level)")
    parser.add_argument("--at", action="append", default=[], metavar="VAR=v1,v2",
                        help="set another predictor to values (contrasts at each); repeatable")
    parser.add_argument("--adjust", choices=("none", "bonferroni", "holm"), default="none",
                        help="multiple-comparison adjustment over the table's rows (default none)")
    parser.add_argument("--predict", choices=("xb", "mu"), default="xb",
                        help="on which scale (binary and count models): xb, the linear predictor (log-odds, log count; the default), "
                             "or mu, the mean of the predicted probabilities or counts (Stata's predict(mu fixedonly)); "
                             "random effects at zero")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.margins import Setting, contrast

    settings = [Setting.parse(text) for text in args.at]
    frame, result = fit_from_arguments(args)
    table = contrast(frame, result, args.factor, pairwise=args.pairwise, base=args.base, at=settings,
                     adjustment=args.adjust, scale=args.predict)
    return show(table, args)
