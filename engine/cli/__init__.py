"""Command-line front end: one module per subcommand, imported only when that subcommand runs.

Each module ``engine/cli/NAME.py`` defines ``register(subparsers)`` (adds its parser and sets
``func`` on it). To add a subcommand, write the module and add one line to ``SUBCOMMANDS``.
``--help`` lists the subcommands from that table without importing any of them, and a command
line imports only the module of the subcommand it names, so start-up stays short.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from engine import __version__
from engine.errors import UserInputError

# name -> one-line help shown by --help, in the order listed there (module: engine/cli/NAME.py,
# with '-' in the name written '_').
SUBCOMMANDS: dict[str, str] = {
    "simulate": "simulate hierarchical data from a preset or a design file",
    "fit": "fit a (mixed) linear model to a data file",
    "compare": "fit several estimators side by side and compare them with the truth",
    "montecarlo": "Monte Carlo study: bias, SE, coverage and power of models over many simulated data sets",
    "check": "check a data file's hierarchy: nesting of id columns, restarting ids, missing values",
    "lrtest": "compare nested models: LR tests, AIC/BIC, intraclass correlations, variance explained",
    "test": "joint Wald test of fixed-effect terms (F with small-sample df, or chi2)",
    "lincom": "estimate linear combinations of coefficients (Stata's lincom)",
    "contrast": "compare a factor's levels: against the base or pairwise, with adjusted p-values",
    "margins": "predicted means at chosen values, marginal effects and simple slopes (Stata's margins)",
    "power": "analytic power and minimum detectable effect size of a trial (PowerUp! formulas)",
    "table": "several fits side by side (coefficients, variance components, N, log-likelihood, AIC/BIC)",
    "check-pvalues": "check a fit's p-values and intervals by simulating from it (parametric bootstrap of the design)",
}


def _unlisted_modules() -> list[str]:
    """Subcommand modules missing from SUBCOMMANDS (registered the slow way, by importing them)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_") and m.name.replace("_", "-") not in SUBCOMMANDS
                  and m.name not in SUBCOMMANDS)


def _chosen_subcommand(argv: list[str]) -> str | None:
    """The first word that is not an option (the top-level options take no values)."""
    return next((word for word in argv if not word.startswith("-")), None)


def register_subcommand(subparsers, name: str) -> None:
    """Import engine/cli/NAME.py and let it add its parser."""
    importlib.import_module(f"{__name__}.{name.replace('-', '_')}").register(subparsers)


class CommandParser(argparse.ArgumentParser):
    """The top-level parser; it adds the subcommands when it parses or prints help.

    Only the subcommand named on the command line gets its real parser (its module is imported);
    the others are listed by name and help.
    """

    subcommands = None  # the add_subparsers action, set by build_parser
    import_all = False
    _added = False

    def add_subcommands(self, chosen: str | None) -> None:
        if self._added or self.subcommands is None:
            return
        self._added = True
        for name, help_text in SUBCOMMANDS.items():
            if self.import_all or name == chosen:
                register_subcommand(self.subcommands, name)
            else:
                self.subcommands.add_parser(name, help=help_text, add_help=False)
        for name in _unlisted_modules():
            register_subcommand(self.subcommands, name)

    def parse_known_args(self, args=None, namespace=None):
        self.add_subcommands(_chosen_subcommand(sys.argv[1:] if args is None else list(args)))
        return super().parse_known_args(args, namespace)

    def format_help(self):
        self.add_subcommands(None)
        return super().format_help()

    def format_usage(self):
        self.add_subcommands(None)
        return super().format_usage()


def build_parser(full: bool = False) -> CommandParser:
    """The command-line parser; ``full=True`` imports every subcommand's real parser at once."""
    parser = CommandParser(
        prog="hlm-explorer",
        description="HLM Explorer: design, simulate and fit hierarchical linear models. "
        "With no subcommand the desktop window opens.",
    )
    parser.add_argument("--version", action="version", version=f"HLM Explorer {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window offscreen, simulate and fit the tutoring preset, exit 0 on success")
    parser.subcommands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                               parser_class=argparse.ArgumentParser)
    parser.import_all = full
    if full:
        parser.add_subcommands(None)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed subcommand; user errors become one line on stderr and exit code 2."""
    from engine.cli._signals import sigterm_as_exit

    try:
        with sigterm_as_exit():
            return int(args.func(args) or 0)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
