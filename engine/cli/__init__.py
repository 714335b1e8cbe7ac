"""Command-line front end: one module per subcommand, discovered by name.

Each module in this package defines ``register(subparsers)`` (adds its parser and sets
``func`` on it) so that subcommands can be added without editing a shared list.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from engine import __version__
from engine.errors import UserInputError

# Order in which subcommands are listed in --help; others follow alphabetically.
PREFERRED_ORDER = ["simulate", "fit", "compare", "montecarlo"]


def _command_modules():
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (PREFERRED_ORDER.index(n) if n in PREFERRED_ORDER else len(PREFERRED_ORDER), n))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hlm-explorer",
        description="HLM Explorer: design, simulate and fit hierarchical linear models. "
        "With no subcommand the desktop window opens.",
    )
    parser.add_argument("--version", action="version", version=f"HLM Explorer {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window offscreen, simulate and fit the tutoring preset, exit 0 on success")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(subparsers)
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
