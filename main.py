"""HLM Explorer entry point: `python main.py` opens the window; subcommands run the engine."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from engine.cli import build_parser, run_command

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None:
        return run_command(args)
    from gui.launch import launch

    return launch(self_test=args.self_test)


if __name__ == "__main__":
    sys.exit(main())
