"""Start the desktop window (placeholder until the window exists)."""

import sys


def launch(self_test: bool = False) -> int:
    print("The HLM Explorer window is not built yet; use the subcommands (python main.py --help).",
          file=sys.stderr)
    return 1
