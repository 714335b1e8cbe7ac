"""Run engine jobs off the UI thread, one at a time, with cooperative cancellation.

A ``JobRunner`` owns one QThread with a ``_JobExecutor`` QObject moved onto it. Starting a job
asks the job that is running (if any) to stop and queues the new one; a job stops when it next
polls ``JobContext.should_stop()`` (the engine's ``should_stop`` callback), never by killing the
thread, which could leave the engine's state half-written. Results of a job that was superseded
are dropped, so the window only ever shows the newest answer.

Signals are emitted on the UI thread (the runner lives there); their payloads are the job and
what came back.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import Cancelled, UserInputError
from gui.main_thread_gc import ui_thread_collection

log = logging.getLogger(__name__)

# Progress reports faster than this are merged: the UI needs a few updates a second, not hundreds.
PROGRESS_INTERVAL_SECONDS = 0.05


class JobContext:
    """What a running job sees: whether to stop, and a way to report progress."""

    def __init__(self, cancel_event: threading.Event, report: Callable[[str, Optional[float], Any], None]):
        self._cancel_event = cancel_event
        self._report = report
        self._last_report = 0.0

    def should_stop(self) -> bool:
        return self._cancel_event.is_set()

    def check(self) -> None:
        """Raise Cancelled if the user asked to stop (for jobs between engine calls)."""
        if self._cancel_event.is_set():
            raise Cancelled()

    def report(self, message: str, fraction: float | None = None, detail: Any = None, force: bool = False) -> None:
        """Tell the UI how far the job is; ``fraction`` in [0, 1] or None when unknown."""
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_INTERVAL_SECONDS:
            self._last_report = now
            self._report(message, fraction, detail)


@dataclass
class Job:
    """A unit of work: ``run(context)`` returns the result. ``on_finished`` / ``on_failed`` are
    called on the UI thread (optional; the runner's signals carry the same)."""

    label: str
    run: Callable[[JobContext], Any]
    on_finished: Optional[Callable[[Any], None]] = None
    on_failed: Optional[Callable[[str], None]] = None
    on_progress: Optional[Callable[[str, Optional[float], Any], None]] = None
    job_id: int = field(default=0, compare=False)


@dataclass
class JobFailure:
    """Why a job failed: ``message`` is shown to the user as is; ``details`` (a traceback) is
    only set for unexpected errors, which are programming errors rather than bad input."""

    message: str
    details: str = ""

    @property
    def is_user_error(self) -> bool:
        return not self.details


class _JobExecutor(QObject):
    """Lives on the worker thread and runs the jobs queued to it, in order."""

    progress_changed = Signal(int, str, object, object)  # job id, message, fraction, detail
    job_finished = Signal(int, object)
    job_failed = Signal(int, object)  # job id, JobFailure
    job_cancelled = Signal(int)

    @Slot(object, object)
    def execute(self, job: Job, cancel_event: threading.Event) -> None:
        # No garbage collection on this thread while the job runs (see gui.main_thread_gc).
        ui_thread_collection.job_started()
        try:
            self._execute(job, cancel_event)
        finally:
            ui_thread_collection.job_ended()

    def _execute(self, job: Job, cancel_event: threading.Event) -> None:
        if cancel_event.is_set():  # superseded while it waited in the queue
            self.job_cancelled.emit(job.job_id)
            return

        def report(message, fraction, detail):
            self.progress_changed.emit(job.job_id, message, fraction, detail)

        try:
            result = job.run(JobContext(cancel_event, report))
        except Cancelled:
            self.job_cancelled.emit(job.job_id)
        except UserInputError as error:
            self.job_failed.emit(job.job_id, JobFailure(str(error)))
        except MemoryError:
            self.job_failed.emit(job.job_id, JobFailure(
                "not enough memory for this job; reduce the number of units or rows"))
        except Exception as error:  # noqa: BLE001 - any other failure must reach the user, not kill the thread
            log.exception("job %r failed", job.label)
            self.job_failed.emit(job.job_id, JobFailure(
                f"{job.label} failed unexpectedly: {type(error).__name__}: {error}", traceback.format_exc()))
        else:
            if cancel_event.is_set():
                self.job_cancelled.emit(job.job_id)
            else:
                self.job_finished.emit(job.job_id, result)


class JobRunner(QObject):
    """One worker thread running one job at a time; starting a job cancels the previous one."""

    job_started = Signal(object)  # Job
    progress_changed = Signal(object, str, object, object)  # Job, message, fraction, detail
    job_finished = Signal(object, object)  # Job, result
    job_failed = Signal(object, object)  # Job, JobFailure
    job_cancelled = Signal(object)  # Job
    busy_changed = Signal(bool)

    _execute_requested = Signal(object, object)

    _ids = itertools.count(1)

    def __init__(self, name: str = "worker", parent: QObject | None = None):
        super().__init__(parent)
        ui_thread_collection.start_timer()
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._executor = _JobExecutor()
        self._executor.moveToThread(self._thread)
        self._execute_requested.connect(self._executor.execute)
        self._executor.progress_changed.connect(self._on_progress)
        self._executor.job_finished.connect(self._on_finished)
        self._executor.job_failed.connect(self._on_failed)
        self._executor.job_cancelled.connect(self._on_cancelled)
        self._thread.finished.connect(self._executor.deleteLater)
        self._thread.start()
        self._current: Job | None = None
        self._cancel_event: threading.Event | None = None
        self._pending: dict[int, Job] = {}  # queued or running jobs, by id, until they report back

    # ----- public ------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._current is not None

    @property
    def is_running(self) -> bool:
        """False once shut down: no more jobs are accepted."""
        return self._thread.isRunning()

    @property
    def current_job(self) -> Job | None:
        return self._current

    def start(self, job: Job) -> Job:
        """Cancel whatever runs and queue ``job``; returns it with its id set."""
        if not self._thread.isRunning():
            raise RuntimeError("the job runner was shut down")
        self.cancel()
        job.job_id = next(self._ids)
        self._current = job
        self._cancel_event = threading.Event()
        self._pending[job.job_id] = job
        self._execute_requested.emit(job, self._cancel_event)
        self.job_started.emit(job)
        self.busy_changed.emit(True)
        return job

    def cancel(self) -> None:
        """Ask the current job to stop; ``job_cancelled`` follows when it has."""
        if self._cancel_event is not None:
            self._cancel_event.set()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel, stop the thread's event loop and wait for it (on window close). Returns False
        if the job did not stop in time; the thread is never terminated."""
        self.cancel()
        self._thread.quit()
        stopped = self._thread.wait(timeout_ms)
        if not stopped:
            log.warning("worker thread %s did not stop within %d ms", self._thread.objectName(), timeout_ms)
        return stopped

    # ----- executor reports (UI thread) ----------------------------------------------------------
    def _is_current(self, job_id: int) -> bool:
        return self._current is not None and self._current.job_id == job_id

    def _settle(self, job_id: int) -> Job | None:
        """Forget a job that reported its end; returns it if it is still the current one."""
        job = self._pending.pop(job_id, None)
        if not self._is_current(job_id):
            return None
        self._current = None
        self._cancel_event = None
        return job

    def _emit_idle(self) -> None:
        """Announce idleness after a job's result has been handed over (so "idle" means "up to
        date"), unless handling it started another job."""
        if self._current is None:
            self.busy_changed.emit(False)

    def _on_progress(self, job_id: int, message: str, fraction, detail) -> None:
        if self._is_current(job_id) and not self._cancel_event.is_set():
            job = self._current
            if job.on_progress is not None:
                job.on_progress(message, fraction, detail)
            self.progress_changed.emit(job, message, fraction, detail)

    def _on_finished(self, job_id: int, result) -> None:
        job = self._settle(job_id)
        if job is None:
            return
        try:
            if job.on_finished is not None:
                job.on_finished(result)
            self.job_finished.emit(job, result)
        finally:
            self._emit_idle()

    def _on_failed(self, job_id: int, failure: JobFailure) -> None:
        job = self._settle(job_id)
        if job is None:
            return
        try:
            if job.on_failed is not None:
                job.on_failed(failure.message)
            self.job_failed.emit(job, failure)
        finally:
            self._emit_idle()

    def _on_cancelled(self, job_id: int) -> None:
        job = self._settle(job_id)
        if job is not None:
            try:
                self.job_cancelled.emit(job)
            finally:
                self._emit_idle()
