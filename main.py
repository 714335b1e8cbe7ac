"""HLM Explorer entry point: `python main.py` opens the window; subcommands run the engine."""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec  # here, not in find_spec: importing it there re-enters the finder


def keep_pyarrow_out() -> None:
    """Make ``import pyarrow`` fail in this process, as in the packaged program, which ships without it.

    The program does not use pyarrow (Parquet goes through fastparquet), but pandas imports it at
    start-up wherever it is installed (0.2 s or more) and then backs text columns with it: blocking
    it makes ``python main.py`` start faster and hold text the same way as the packaged program.
    """
    sys.modules.setdefault("pyarrow", None)  # None in sys.modules: the import raises ImportError


# At import, not in main(): worker processes start by importing this module (the spawn method), and
# a table pickled by a worker whose pandas used pyarrow cannot be read back by a parent without it.
keep_pyarrow_out()


class _NoNumpyF2py:
    """Import finder that answers ``import numpy.f2py`` with an empty module, as the packaged program
    does (packaging/rthook_absent_modules.py).

    f2py is numpy's Fortran-wrapper generator, a build tool the program never uses, but scipy's
    array-API layer reads every attribute of numpy when scipy loads, which imports f2py: 60-90 ms
    of every command that uses scipy. Any use of the empty module fails with an AttributeError.
    """

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        return ModuleSpec(fullname, _NoNumpyF2py) if fullname == "numpy.f2py" else None

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        module.__doc__ = "numpy's f2py, not loaded by HLM Explorer"


if _NoNumpyF2py not in sys.meta_path:
    sys.meta_path.insert(0, _NoNumpyF2py)


def main(argv: list[str] | None = None) -> int:
    from engine.cli import build_parser, run_command
    from gui.launch import project_argument

    project = project_argument(sys.argv[1:] if argv is None else argv)
    if project is not None:  # `python main.py study.hlmproj` opens it in the window
        from gui.launch import launch

        return launch(project=project)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None:
        return run_command(args)
    from gui.launch import launch

    return launch(self_test=args.self_test)


if __name__ == "__main__":
    sys.exit(main())
