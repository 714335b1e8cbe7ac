"""Which confidence intervals a mixed fit reports: Wald (the default), profile likelihood or
parametric bootstrap. One request object for the command line and the window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from engine.errors import UserInputError
from engine.results import FitResult

CI_METHODS = ("wald", "profile", "bootstrap")
DEFAULT_BOOTSTRAP_REPS = 1000


@dataclass
class IntervalRequest:
    """``method``: "wald", "profile" or "bootstrap"; the bootstrap's replicates and seed, and
    where it runs (local worker processes, 1 = in this process, or a Dask scheduler)."""

    method: str = "wald"
    reps: int = DEFAULT_BOOTSTRAP_REPS
    seed: int = 0
    workers: Optional[int] = None
    scheduler: Optional[str] = None

    def check(self) -> "IntervalRequest":
        """Raise UserInputError naming the first problem; returns self."""
        if self.method not in CI_METHODS:
            raise UserInputError(f"intervals must be one of {', '.join(CI_METHODS)}, not {self.method!r}")
        if self.method == "bootstrap":
            if not isinstance(self.reps, int) or isinstance(self.reps, bool) or self.reps < 2:
                raise UserInputError(f"bootstrap replicates must be a whole number >= 2, got {self.reps!r}")
            if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
                raise UserInputError(f"the bootstrap seed must be a whole number >= 0, got {self.seed!r}")
            if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
                raise UserInputError(f"bootstrap workers must be a whole number >= 1, got {self.workers!r}")
        return self

    def describe(self) -> str:
        if self.method == "bootstrap":
            return f"bootstrap ({self.reps:,} replicates, seed {self.seed})"
        return {"wald": "Wald", "profile": "profile likelihood"}[self.method]


def apply_intervals(result: FitResult, frame: Any, request: IntervalRequest, *,
                    progress: Optional[Callable[[int, int], None]] = None,
                    should_stop: Optional[Callable[[], bool]] = None) -> FitResult:
    """Replace ``result``'s intervals as ``request`` asks (Wald: nothing to do); returns it.

    Parameters
    ----------
    result : FitResult
        A mixed fit of ``frame``; profile and bootstrap refuse other estimators.
    frame : pandas.DataFrame
        The data of the fit.
    request : IntervalRequest
    progress : callable, optional
        ``progress(done, total)`` as bootstrap replicates finish.
    should_stop : callable, optional
        Polled as the work proceeds; True raises ``Cancelled``.
    """
    request.check()
    if request.method != "wald" and result.family not in (None, "gaussian"):
        # both profile the linear model's likelihood or redraw its residuals: wrong for these outcomes
        kind = "profile-likelihood" if request.method == "profile" else "bootstrap"
        raise UserInputError(f"{kind} intervals are for linear mixed models; binary and count fits "
                             f"(melogit, meprobit, mepoisson) report Wald intervals, the variances' on the log "
                             f"scale, as Stata does")
    if request.method == "profile":
        from engine.mixed.profile import apply_profile_intervals

        apply_profile_intervals(result, frame, should_stop=should_stop)
    elif request.method == "bootstrap":
        from engine.bootstrap import apply_bootstrap_intervals

        apply_bootstrap_intervals(result, frame, reps=request.reps, seed=request.seed, workers=request.workers,
                                  scheduler=request.scheduler, progress=progress, should_stop=should_stop)
    return result
