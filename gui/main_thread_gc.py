"""Python's cyclic garbage collection on the UI thread only, while jobs run on worker threads.

The collector runs in whichever thread happens to allocate when a threshold is crossed. If that
is a worker thread and the garbage holds Qt objects (a closed dialog's widgets, a replaced table
model), their C++ destructors run there: Qt locks the object's connections, PySide then waits for
the interpreter lock, and the UI thread, which released that lock to call into Qt, waits for the
Qt lock in turn. That deadlock froze the window (seen in the test suite, in a job reading column
summaries). So while any job runs, automatic collection is off and the UI thread collects on a
timer, as often as Python would have; once no job runs it is switched back on.
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QCoreApplication, QTimer

CHECK_INTERVAL_MS = 100


class _UiThreadCollection:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running_jobs = 0
        self._switched_off = False  # automatic collection was switched off here (not by someone else)
        self._timer: QTimer | None = None

    def start_timer(self) -> None:
        """Call on the UI thread (the timer runs on the thread that makes it)."""
        application = QCoreApplication.instance()
        if self._timer is None and application is not None:
            self._timer = QTimer(application)
            self._timer.setInterval(CHECK_INTERVAL_MS)
            self._timer.timeout.connect(self.collect_if_due)
            self._timer.start()

    def job_started(self) -> None:
        """Called on a worker thread before a job runs."""
        with self._lock:
            self._running_jobs += 1
            if gc.isenabled():
                gc.disable()
                self._switched_off = True

    def job_ended(self) -> None:
        """Called on a worker thread after a job ran; the UI thread switches collection back on."""
        with self._lock:
            self._running_jobs -= 1

    def collect_if_due(self) -> None:
        """On the UI thread: collect the generations Python would have, and switch automatic
        collection back on when no job runs."""
        with self._lock:
            if self._running_jobs == 0 and self._switched_off:
                gc.enable()
                self._switched_off = False
            collecting_here = self._switched_off
        if not collecting_here:
            return
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] < thresholds[0]:
            return
        generation = 2 if counts[2] >= thresholds[2] else 1 if counts[1] >= thresholds[1] else 0
        gc.collect(generation)


ui_thread_collection = _UiThreadCollection()
