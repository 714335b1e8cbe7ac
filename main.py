"""HLM Explorer entry point: `python main.py` opens the window; subcommands run the engine."""

from __future__ import annotations

import sys


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
