"""Run a study in parallel: local worker processes by default, or a Dask cluster.

The replications are cut into chunks (one sweep value, a run of replication indices); each
chunk is one task. A chunk's records depend only on the study and its indices, and the
records are put in a fixed order at the end, so the result is the same whatever the number
of workers, the chunk size or the order in which chunks finish.

Local workers are separate processes started with the ``spawn`` method (safe inside a Qt
application), with single-threaded BLAS: a fit's matrices are small, and several BLAS threads
per process would only compete for the cores the other processes use. A program that calls
:func:`run_study` must therefore guard its top level with ``if __name__ == "__main__":`` (and
call ``multiprocessing.freeze_support()`` when frozen).
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pandas as pd

from engine.errors import UserInputError
from engine.montecarlo.precision import StoppingRule, SweepStop, format_stopping, round_ranges, unmet_targets
from engine.montecarlo.replicate import run_replications, sort_records
from engine.montecarlo.study import Study
from engine.montecarlo.summary import SummaryRow, summarise_records, summary_frame

RECORD_EXTENSIONS = (".csv", ".parquet")
MAX_CHUNK_REPS = 25
CHUNKS_PER_WORKER = 4
POLL_SECONDS = 0.1
SINGLE_THREAD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
DASK_CONNECT_TIMEOUT = "10s"
#: Seconds to open a TCP connection to a scheduler and to wait for its greeting.
SCHEDULER_PROBE_SECONDS = 5.0
#: A Dask scheduler greets a new connection with a message whose 8-byte length prefix is small.
_MAX_GREETING_BYTES = 1 << 20

ProgressCallback = Callable[[int, int, Optional[list[SummaryRow]]], None]


@dataclass
class StudyResult:
    """What a study run produced.

    Attributes
    ----------
    study : Study
    records : pandas.DataFrame
        One row per replication x model x parameter (see ``replicate.RECORD_COLUMNS``).
    summary : list of SummaryRow
        Per model, sweep value and parameter.
    reps : int
        Replications asked for at each sweep value.
    completed : int
        Replications finished, over all sweep values (less than ``total`` when stopped).
    total : int
        Replications asked for over all sweep values.
    seconds : float
        Wall time of the run.
    workers : int
        Local processes, or the cluster's worker threads.
    backend : str
        ``"processes"`` or ``"dask"``.
    stopped : bool
        True when ``should_stop`` (or Ctrl-C) ended the run early.
    interrupted : bool
        True when Ctrl-C (KeyboardInterrupt) ended the run: the result holds the replications
        finished by then, and the workers have been stopped.
    """

    study: Study
    records: pd.DataFrame = field(repr=False)
    summary: list[SummaryRow]
    reps: int
    completed: int
    total: int
    seconds: float
    workers: int
    backend: str
    stopped: bool = False
    interrupted: bool = False
    stops: list[SweepStop] = field(default_factory=list)  # with a stopping rule: where each sweep value stopped

    def summary_frame(self) -> pd.DataFrame:
        """The summary as a DataFrame, one row per model, sweep value and parameter."""
        return summary_frame(self.summary)

    def to_dict(self) -> dict:
        """The JSON of ``montecarlo --json``: summary ``rows``, ``reps``, ``seconds``, the run's
        bookkeeping and the study itself (so the run can be repeated)."""
        return {
            "rows": [row.to_dict() for row in self.summary],
            "reps": self.reps,
            "alpha": self.study.alpha,
            "seconds": round(self.seconds, 3),
            "completed": self.completed,
            "total": self.total,
            "stopped": self.stopped,
            "interrupted": self.interrupted,
            "workers": self.workers,
            "backend": self.backend,
            "sweep": self.study.sweep.label if self.study.sweep is not None else None,
            "study": self.study.to_dict(),
            "precision": self.precision_dict(),
        }

    def precision_dict(self) -> dict | None:
        """The stopping rule and where each sweep value stopped (None without a rule)."""
        rule = self.study.precision
        if rule is None:
            return None
        return {"rule": rule.to_dict(), "description": rule.describe(),
                "stops": [stop.to_dict() for stop in self.stops]}

    def format_stopping(self) -> str:
        """Plain text: the stopping rule and where each sweep value stopped ('' without a rule)."""
        if self.study.precision is None:
            return ""
        return format_stopping(self.study.precision, self.stops,
                               self.study.sweep.label if self.study.sweep is not None else None)

    def write_records(self, path: str | Path) -> Path:
        """Write the records as CSV or Parquet, by the extension of ``path``."""
        return write_records(self.records, path)


def run_study(study: Study, workers: int | None = None, scheduler: Any = None,
              progress: ProgressCallback | None = None, should_stop: Callable[[], bool] | None = None, *,
              on_records: Callable[[pd.DataFrame], None] | None = None, chunk_size: int | None = None,
              summary_interval: float = 1.0) -> StudyResult:
    """Run every replication of ``study``, in parallel, and summarise.

    Parameters
    ----------
    study : Study
        Validated here; a bad study raises UserInputError before any work starts.
    workers : int, optional
        Local worker processes; default all cores this process may use. Ignored with ``scheduler``.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``tcp://host:port``) or a connected client: run the chunks
        on that cluster instead. Its workers must be able to import ``engine``.
    progress : callable, optional
        ``progress(done, total, summary)`` after each finished chunk, in the calling thread;
        ``done`` and ``total`` count replications, ``summary`` is the summary of what has
        finished so far (a list of SummaryRow) at most every ``summary_interval`` seconds and
        None in between. The last call always carries the summary.
    should_stop : callable, optional
        Polled about every 0.1 s; when it returns True the chunks not started are cancelled
        and the result holds the finished replications, with ``stopped`` set. Chunks already
        running finish in the background. Ctrl-C (KeyboardInterrupt) also ends the run with the
        finished replications, ``stopped`` and ``interrupted`` set, but stops the local workers at
        once; any other exception (e.g. SystemExit from SIGTERM) stops them and propagates.
    on_records : callable, optional
        Called with each finished chunk's records (a DataFrame), e.g. to update a histogram.
    chunk_size : int, optional
        Replications per task; default about four tasks per worker, at most 25 replications
        each. It does not change the results.
    summary_interval : float
        Least seconds between two partial summaries given to ``progress``.

    Returns
    -------
    StudyResult
        Records in a fixed order (sweep index, replication, model, parameter) and their summary.
    """
    study.validate()
    started = time.perf_counter()
    rule = study.precision
    max_reps = study.reps
    rounds = round_ranges(max_reps, rule.round_reps) if rule is not None else [range(0, max_reps)]
    active = list(range(len(study.sweep_values)))  # sweep indices still running
    stops: list[SweepStop] = []
    total = study.total_replications
    # A study-like object (e.g. a p-value check) may bring its own chunk function.
    replicate = getattr(study, "replicate", run_replications)
    executor, backend, worker_count = _open_executor(workers, scheduler)
    size = chunk_size or default_chunk_size(len(rounds[0]), worker_count)
    frames: list[pd.DataFrame] = []
    futures: dict[cf.Future, int] = {}  # future -> replications in its chunk
    done, stopped, interrupted, finished_cleanly = 0, False, False, False
    try:
        if not isinstance(size, int) or size < 1:
            raise UserInputError(f"chunk_size must be a whole number >= 1, got {size!r}")
        if progress is not None:
            progress(0, total, None)
        last_summary = time.perf_counter()
        try:
            for rep_range in rounds:
                # Whole rounds only: a stopping decision reads rounds that have completely finished,
                # so it does not depend on how many workers there are.
                submitted = {}
                for sweep_index, reps in plan_chunks(study, size, rep_range, active):
                    submitted[executor.submit(replicate, study, sweep_index, reps)] = len(reps)
                futures.update(submitted)
                pending = set(submitted)
                while pending:
                    if should_stop is not None and should_stop():
                        stopped = True
                        break
                    finished, pending = cf.wait(pending, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        frame = future.result()
                        frames.append(frame)
                        done += futures[future]
                        if on_records is not None:
                            on_records(frame)
                    if finished and (pending or rule is not None) and progress is not None:
                        partial = None
                        if time.perf_counter() - last_summary >= summary_interval:
                            partial, last_summary = summarise_records(sort_records(frames), study.alpha), time.perf_counter()
                        progress(done, total, partial)
                if stopped:
                    break
                if rule is not None:
                    active, newly_stopped = _apply_rule(study, rule, frames, active, rep_range.stop)
                    stops += newly_stopped
                    total -= sum(max_reps - stop.reps for stop in newly_stopped if stop.met)
                    if not active:
                        break
        except KeyboardInterrupt:  # Ctrl-C: keep what has finished, stop the rest
            stopped = interrupted = True
        finished_cleanly = not stopped
    finally:
        # Ctrl-C, SIGTERM or an error: the running chunks' results are not wanted, so a local
        # pool's processes stop now rather than outlive the program (the pool then fails the
        # futures it still holds, so they must not be cancelled here as well).
        aborted = not finished_cleanly and not (stopped and not interrupted)
        if not (aborted and _stop_local_workers(executor)):
            # Cancel what has not started here, at once: the pool's own cancel_futures acts later,
            # in its manager thread, and not at all if the pool has been garbage-collected by then.
            for future in futures:
                future.cancel()
        # Wait for the workers only when nothing is left running.
        executor.shutdown(wait=finished_cleanly, cancel_futures=True)
    records = sort_records(frames)
    summary = summarise_records(records, study.alpha)
    if progress is not None:
        progress(done, total, summary)
    return StudyResult(study=study, records=records, summary=summary, reps=study.reps, completed=done,
                       total=total, seconds=time.perf_counter() - started, workers=worker_count,
                       backend=backend, stopped=stopped, interrupted=interrupted,
                       stops=sorted(stops, key=lambda stop: stop.sweep_index))


def _apply_rule(study: Study, rule: StoppingRule, frames: list[pd.DataFrame], active: list[int],
                reps_so_far: int) -> tuple[list[int], list[SweepStop]]:
    """After a whole round: which sweep indices go on, and where the others stopped."""
    records = sort_records(frames)
    still, stops = [], []
    for sweep_index in active:
        rows = summarise_records(records[records["sweep_index"] == sweep_index], study.alpha)
        unmet = unmet_targets(rule, rows)
        sweep = study.sweep_values[sweep_index]
        if not unmet:
            stops.append(SweepStop(sweep_index, sweep, reps_so_far, True))
        elif reps_so_far >= study.reps:
            stops.append(SweepStop(sweep_index, sweep, reps_so_far, False, unmet[0]))
        else:
            still.append(sweep_index)
    return still, stops


def plan_chunks(study: Study, chunk_size: int, rep_range: range | None = None,
                sweep_indices: list[int] | None = None) -> list[tuple[int, range]]:
    """Tasks as (sweep index, replication range), round-robin over the sweep values so that
    partial results soon cover every sweep value; by default every replication at every sweep value."""
    rep_range = range(0, study.reps) if rep_range is None else rep_range
    indices = range(len(study.sweep_values)) if sweep_indices is None else sweep_indices
    starts = range(rep_range.start, rep_range.stop, chunk_size)
    return [(sweep_index, range(start, min(start + chunk_size, rep_range.stop)))
            for start in starts for sweep_index in indices]


def default_chunk_size(reps: int, workers: int) -> int:
    """About CHUNKS_PER_WORKER tasks per worker and sweep value, at most MAX_CHUNK_REPS replications each."""
    return max(1, min(MAX_CHUNK_REPS, math.ceil(reps / (CHUNKS_PER_WORKER * max(1, workers)))))


def local_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def write_records(records: pd.DataFrame, path: str | Path) -> Path:
    """Write records as CSV or Parquet (by extension); errors name the file."""
    from engine.atomic_write import atomic_path

    path = Path(path)
    check_records_path(path)
    with atomic_path(path, "records file") as temporary:
        if path.suffix.lower() == ".csv":
            records.to_csv(temporary, index=False)
        else:
            records.to_parquet(temporary, index=False)
    return path


def check_records_path(path: str | Path) -> None:
    """Fail before a long run if the records could not be written there."""
    path = Path(path)
    if path.suffix.lower() not in RECORD_EXTENSIONS:
        raise UserInputError(f"records file {path}: use {' or '.join(RECORD_EXTENSIONS)}")
    if not path.parent.is_dir():
        raise UserInputError(f"records file {path}: the folder {path.parent} does not exist")


# ----- executors -----------------------------------------------------------------------------
def _open_executor(workers: int | None, scheduler: Any) -> tuple[cf.Executor, str, int]:
    """(executor, backend name, worker count): a local process pool, or a Dask cluster's executor."""
    if scheduler is not None:
        return _dask_executor(scheduler)
    count = local_cores() if workers is None else workers
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise UserInputError(f"workers must be a whole number >= 1, got {workers!r}")
    return _SingleThreadBlasProcessPool(count), "processes", count


def _dask_executor(scheduler: Any) -> tuple[cf.Executor, str, int]:
    try:
        from distributed import Client
    except ImportError as error:
        # Installed but not importable (a system library such as libssl missing) reads differently
        # from not installed at all: say which.
        reason = "is not installed" if getattr(error, "name", None) == "distributed" else f"cannot be loaded ({error})"
        raise UserInputError(f"a Dask scheduler was given but dask.distributed {reason}") from None
    if isinstance(scheduler, str):
        probe_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
        except Exception as error:  # the client fails in many ways (even MemoryError) on a wrong peer
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserInputError(f"cannot reach the Dask scheduler at {scheduler}: {reason}") from None
        return _DaskExecutor(client, owns_client=True), "dask", sum(client.nthreads().values())
    return _DaskExecutor(scheduler, owns_client=False), "dask", sum(scheduler.nthreads().values())


def probe_scheduler(address: str) -> None:
    """Check within seconds that a Dask scheduler answers at ``address`` (``tcp://host:port`` or
    ``host:port``); other schemes (tls, ws, ...) are left to Dask.

    Dask's client, pointed at something else, can wait for minutes, retry a closed port until its
    timeout or fail with a baffling error (a banner read as a message length asks for exabytes).
    A scheduler greets each new connection at once with a length-prefixed handshake, so this
    opens a plain TCP connection and reads the first bytes.

    Raises
    ------
    UserInputError
        One line naming the address and what was found there.
    """
    import socket
    import struct

    text = address.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "tcp", text
    if scheme != "tcp":
        if scheme in ("http", "https"):
            raise UserInputError(f"scheduler address {address}: a Dask scheduler address starts with tcp://, "
                                 f"not {scheme}:// (the dashboard's web address is not the scheduler's)")
        return
    host, colon, port_text = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UserInputError(f"scheduler address {address!r}: not a Dask address; write tcp://HOST:PORT, "
                             "e.g. tcp://127.0.0.1:8786")
    where = f"the Dask scheduler at {address}"
    try:
        connection = socket.create_connection((host, int(port_text)), timeout=SCHEDULER_PROBE_SECONDS)
    except socket.gaierror:
        raise UserInputError(f"cannot reach {where}: unknown host {host!r}") from None
    except ConnectionRefusedError:
        raise UserInputError(f"cannot reach {where}: nothing listens on port {port_text} "
                             "(connection refused)") from None
    except OSError as error:  # timeout, no route, ...
        raise UserInputError(f"cannot reach {where}: {error.strerror or error or 'timed out'}") from None
    greeting = b""
    with connection:
        connection.settimeout(SCHEDULER_PROBE_SECONDS)
        try:
            while len(greeting) < 16:
                chunk = connection.recv(16 - len(greeting))
                if not chunk:
                    break
                greeting += chunk
        except OSError:  # silence (timeout) or a reset: judged below by what arrived
            pass
    if len(greeting) == 16:
        length, frames = struct.unpack("<QQ", greeting)
        if 0 < length < _MAX_GREETING_BYTES and 0 < frames < 64:
            return
    if not greeting:
        raise UserInputError(f"{address} is not a Dask scheduler: the service there did not greet "
                             f"within {SCHEDULER_PROBE_SECONDS:g} s (a web server or another service?)")
    shown = greeting.decode("ascii", errors="replace").split("\n")[0].strip()
    raise UserInputError(f"{address} is not a Dask scheduler: the service there sent {shown!r}")


class _DaskExecutor(cf.Executor):
    """A Dask client's concurrent.futures executor that also closes the client it opened."""

    def __init__(self, client: Any, owns_client: bool):
        self._client = client
        self._owns_client = owns_client
        self._executor = client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs):
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # Every future is finished or cancelled by now; wait=False cancels any left on the cluster.
        self._executor.shutdown(wait=False)
        if self._owns_client:
            self._client.close()


class _SingleThreadBlasProcessPool(cf.ProcessPoolExecutor):
    """A spawn-method process pool whose workers run BLAS on one thread and ignore Ctrl-C
    (the parent stops them).

    BLAS reads its thread count once, when it loads, so the setting must be in the
    environment the workers start with; the pool starts a worker at a submit, so submits set
    it for that moment (variables the user set are left alone), as Dask's nanny does.
    """

    def __init__(self, workers: int):
        super().__init__(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                         initializer=_prepare_worker)

    def submit(self, fn, /, *args, **kwargs):
        with _environment(SINGLE_THREAD_ENVIRONMENT):
            return super().submit(fn, *args, **kwargs)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables that are not set, and remove them again afterwards."""
    added = [name for name in values if name not in os.environ]
    for name in added:
        os.environ[name] = values[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _prepare_worker() -> None:
    """Ignore Ctrl-C (the parent decides) and exit when the parent process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), daemon=True,
                         name="exit-with-parent").start()


def _exit_with_parent(sentinel: int) -> None:
    """Block until the parent process ends (killed, even by SIGKILL), then end this worker: an
    orphaned worker would otherwise keep fitting for a study nobody collects."""
    from multiprocessing.connection import wait

    wait([sentinel])
    os._exit(1)


def _stop_local_workers(executor: cf.Executor) -> bool:
    """Terminate a local pool's worker processes; False for other executors (a Dask cluster's
    workers are not ours to stop)."""
    if not isinstance(executor, _SingleThreadBlasProcessPool):
        return False
    processes = list((executor._processes or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
    # A worker killed while sending its result leaves half a message in the result pipe; the
    # pool's manager thread would wait for the rest forever (and with it the program's exit).
    # With every worker gone, closing this process's end of the pipe turns that wait into an
    # end-of-file, which the pool handles as a broken pool.
    writer = getattr(getattr(executor, "_result_queue", None), "_writer", None)
    if writer is not None:
        writer.close()
    return True
