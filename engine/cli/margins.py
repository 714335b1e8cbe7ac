"""`main.py margins DATA --model "..." [--at VAR=v1,v2] [--at FACTOR] [--dydx VAR]`: predictive margins and
marginal effects (Stata's margins, at and dydx)."""

from __future__ import annotations

import argparse

from engine.cli._postestimation import add_model_arguments, fit_from_arguments, show


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "margins", help="predicted means at chosen values, marginal effects and simple slopes (Stata's margins)",
        description="Fit the model, then average the fixed part of the prediction over the sample with some "
                    "predictors set (Stata's margins, asobserved): --at sector gives a margin per level of the "
                    "factor sector (Stata's 'margins sector'), --at ses=-1,0,1 one per value (the word 'mean' "
                    "for the sample mean); several --at give every combination. --dydx VAR reports the average "
                    "marginal effect of VAR instead (for a factor, the change from its base level); with --at "
                    "these are simple slopes.")
    add_model_arguments(parser)
    parser.add_argument("--at", action="append", default=[], metavar="VAR=v1,v2|FACTOR",
                        help="set a predictor to values (or a factor to each of its levels); repeatable")
    parser.add_argument("--dydx", metavar="VAR", help="average marginal effect of VAR")
    parser.add_argument("--predict", choices=("xb", "mu"), default="xb",
                        help="on which scale (binary and count models): xb, the linear predictor (log-odds, log count; the default), "
                             "or mu, the mean of the predicted probabilities or counts (Stata's predict(mu fixedonly)); "
                             "random effects at zero")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.margins import Setting, margins

    settings = [Setting.parse(text) for text in args.at]
    frame, result = fit_from_arguments(args)
    return show(margins(frame, result, at=settings, dydx=args.dydx, scale=args.predict), args)
