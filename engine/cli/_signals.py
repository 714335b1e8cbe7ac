"""SIGTERM ends a command the way Ctrl-C does not: at once, but through Python's clean-up.

By default SIGTERM kills the process outright: ``finally`` blocks do not run, so local Monte
Carlo workers would be orphaned and a temporary output file left behind. Turned into
``SystemExit`` it unwinds the stack: workers are stopped and partial files removed.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: Exit status of a process ended by SIGTERM, as a shell reports it (128 + 15).
TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``SystemExit(143)`` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(_signum, _frame):
        raise SystemExit(TERMINATED_EXIT_CODE)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
