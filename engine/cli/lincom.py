"""`main.py lincom DATA --model "..." EXPR [EXPR ...]`: linear combinations of coefficients (Stata's lincom)."""

from __future__ import annotations

import argparse

from engine.cli._postestimation import add_model_arguments, fit_from_arguments, show


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lincom", help="estimate linear combinations of coefficients (Stata's lincom)",
        description="Fit the model, then estimate each expression, e.g. 'tutoring + 2*c.x#tutoring' or "
                    "'_b[x] - _b[z]', with its standard error from the coefficients' covariance, a z test "
                    "(t for fits with residual df) and a 95%% interval.")
    add_model_arguments(parser)
    parser.add_argument("expressions", nargs="+", metavar="EXPR", help="a linear combination of coefficients")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.lincom import lincom

    _, result = fit_from_arguments(args)
    return show(lincom(result, args.expressions), args)
