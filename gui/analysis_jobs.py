"""The jobs of the Monte Carlo and Compare Models views: thin calls into the engine.

As in ``gui/jobs.py``, the engine is imported when this module loads (on the UI thread), never
inside a job, and no statistics are computed here: the jobs hand the engine's ``should_stop``
and progress callbacks to the worker's ``JobContext`` and pass back what the engine returns.
"""

from __future__ import annotations

import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Optional, Sequence

import pandas as pd

from engine.errors import UserInputError
from engine.model_comparison import ModelComparison, compare_models
from engine.model_spec import ModelSpec
from engine.montecarlo import Study, StudyResult, SummaryRow, run_study
from gui.worker import Job, JobContext


@dataclass
class MonteCarloProgress:
    """A progress detail of a study run: replications done so far and, every second or so, the
    engine's summary of them with the records behind it (None between summaries)."""

    done: int
    total: int
    elapsed_seconds: float
    summary: Optional[list[SummaryRow]] = None
    records: Optional[pd.DataFrame] = None

    @property
    def seconds_left(self) -> Optional[float]:
        """Time left if the remaining replications go as fast as the finished ones (None before
        the first has finished: nothing to extrapolate from)."""
        if self.done <= 0 or self.done >= self.total:
            return 0.0 if self.done >= self.total else None
        return self.elapsed_seconds * (self.total - self.done) / self.done


def montecarlo_job(study: Study, workers: int | None) -> Job:
    """Run ``study`` with the engine's process pool (``workers`` processes; None: all cores).

    The pool starts its processes with the ``spawn`` method, which is safe from this worker
    thread inside a Qt program (a forked child would inherit Qt's threads in an unknown state).
    """

    def run(context: JobContext) -> StudyResult:
        started = time.perf_counter()
        chunks: list[pd.DataFrame] = []  # appended on this thread only; the UI gets copies

        def on_progress(done: int, total: int, summary: Optional[list[SummaryRow]]) -> None:
            records = pd.concat(chunks, ignore_index=True) if summary is not None and chunks else None
            detail = MonteCarloProgress(done, total, time.perf_counter() - started, summary, records)
            # A summary must not be merged away by the report throttle: it is what the plots show.
            context.report(f"Monte Carlo: {done:,} of {total:,} replications", done / total if total else None,
                           detail, force=summary is not None or done == 0)

        try:
            return run_study(study, workers=workers, progress=on_progress, should_stop=context.should_stop,
                             on_records=chunks.append)
        except BrokenProcessPool as error:
            # Usually a worker process killed from outside, or a program without the
            # ``if __name__ == "__main__":`` guard that spawned workers need.
            raise UserInputError(f"the Monte Carlo worker processes stopped unexpectedly ({error}); "
                                 "try again with fewer workers") from None

    return Job(label="Monte Carlo study", run=run)


def comparison_job(frame: pd.DataFrame, specs: Sequence[ModelSpec], labels: Sequence[str],
                   method: str | None, dfmethod: str | None = None, truth=None) -> Job:
    """Compare ``specs`` on ``frame`` (LR tests, AIC/BIC, ICCs, variance explained, the variance
    components against ``truth`` when the data were simulated)."""
    specs, labels = list(specs), list(labels)

    def run(context: JobContext) -> ModelComparison:
        context.report(f"Comparing {len(specs)} models: fitting", force=True)
        return compare_models(frame, specs, labels=labels, method=method, should_stop=context.should_stop,
                              dfmethod=dfmethod, truth=truth)

    return Job(label="Model comparison", run=run)
