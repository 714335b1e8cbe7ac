"""The jobs the window runs on its worker threads: thin calls into the engine.

Each function takes its inputs and returns a ``Job`` whose ``run(context)`` calls the engine
with the context's ``should_stop`` and progress report. No statistics are computed here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# The engine is imported on the UI thread, never inside a job: an import on the worker holds the
# interpreter lock for long stretches (compiled modules initialising) and the window would stall.
# The light modules load with the window; the heavy ones (the mixed fit with scipy.optimize, the
# panel estimators with statsmodels and linearmodels) load in the job functions below, which run
# on the UI thread, and ahead of time by preload_engine once the window is shown (gui/launch.py).
from engine.column_summary import column_summaries
from engine.data_io import Dataset, read_data, write_data
from engine.design import Design, Truth
from engine.errors import UserInputError
from engine.hierarchy_check import HierarchyReport, check_dataset
from engine.intervals import IntervalRequest, apply_intervals
from engine.model_spec import ModelSpec
from engine.predictions import prediction_columns
from engine.results import FitResult, GroupCount
from engine.simulate import simulate
from gui.tables.comparison import comparison_of
from gui.worker import Job, JobContext


def preload_engine() -> None:
    """Import the engine modules the jobs need, on the UI thread (called once the window is shown,
    so that the first Fit does not wait for them, nor the window's first appearance)."""
    import engine.margins  # noqa: F401
    import engine.mixed  # noqa: F401
    import engine.mixed.hierarchy  # noqa: F401
    import engine.panel  # noqa: F401
    import engine.postestimation_command  # noqa: F401
    # the interval choices of a fit (profile likelihood, parametric bootstrap on the Monte Carlo runner)
    import engine.bootstrap  # noqa: F401
    import engine.mixed.profile  # noqa: F401
    import engine.montecarlo.runner  # noqa: F401
    # the crossed-id test of a data file's check (engine.crossing) runs inside a job and imports these
    import scipy.sparse.csgraph  # noqa: F401
    import scipy.sparse.linalg  # noqa: F401


ESTIMATOR_LABELS = {"mixed": "Mixed model", "ols": "Pooled OLS", "fe": "Fixed effects (xtreg, fe)",
                    "re": "Random effects (xtreg, re)"}


@dataclass
class IterationReport:
    """A progress detail of a mixed-model fit: the criterion at one optimiser iteration."""

    estimator: str
    iteration: int
    loglik: float


@dataclass
class NestingCheck:
    """Groups per level in the chosen order and the engine's warnings about that order."""

    level_names: list[str]
    groups: list[GroupCount] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class FitBatch:
    """The results of one press of Fit: one per estimator, in the order they ran, and their
    comparison against the truth (None when the engine's comparison is not available)."""

    spec: ModelSpec
    results: list[FitResult]
    comparison: object = None


def simulate_job(design: Design, seed: int) -> Job:
    def run(context: JobContext):
        context.report(f"Simulating {design.expected_counts().rows:,.0f} rows", force=True)
        context.check()
        return simulate(design, seed)

    return Job(label="Simulation", run=run)


@dataclass
class DataFileContent:
    """A data file as read, with the engine's check of its id columns (proposed nesting order)."""

    dataset: Dataset
    check: HierarchyReport


def read_data_job(path: str | Path) -> Job:
    def run(context: JobContext) -> DataFileContent:
        context.report(f"Reading {Path(path).name}", force=True)
        dataset = read_data(path)
        context.check()
        context.report(f"Checking the id columns of {Path(path).name}", force=True)
        return DataFileContent(dataset=dataset, check=check_dataset(dataset))

    return Job(label=f"Reading {Path(path).name}", run=run)


def write_data_job(frame: pd.DataFrame, path: str | Path, truth: Truth | None) -> Job:
    """Save the data (with the truth of simulated data, in the file or beside it)."""

    def run(context: JobContext) -> list[Path]:
        context.report(f"Writing {Path(path).name}", force=True)
        return write_data(frame, path, truth)

    return Job(label=f"Writing {Path(path).name}", run=run)


def estimator_text(spec: ModelSpec, estimator: str) -> str:
    """The engine's name for an estimator of ``spec`` ('ols', 'fe student_id', 'mixed || ...'):
    fit results carry it, and comparisons are built from it."""
    if estimator == "mixed":
        stata = spec.to_stata()
        if spec.family != "gaussian":  # melogit / meprobit / mepoisson: the engine's estimator names
            from engine.glmm.single_level import pooled_command

            command = stata.split(None, 1)[0]
            if "||" in stata:
                return f"{command} " + stata[stata.index("||"):]
            options = [word.strip(",") for word in stata.partition(",")[2].split() if word != "intpoints(1)"]
            pooled = pooled_command(spec.family, spec.link)
            if not options and pooled != "glm":
                return pooled  # logit, probit, poisson: the single-level model
            return f"{command}, {' '.join(options)}" if options else command
        if "||" in stata:
            return "mixed " + stata[stata.index("||"):]
        return "mixed, reml" if spec.method == "REML" else "mixed"
    if estimator == "ols":
        return estimator_text(spec.pooled(), "mixed") if spec.family != "gaussian" else "ols"
    return f"{estimator} {_panel_variable(spec)}"


def fit_job(frame: pd.DataFrame, spec: ModelSpec, estimators: list[str], truth: Truth | None = None,
            intervals: IntervalRequest | None = None) -> Job:
    """Fit ``spec`` with each estimator; the panel estimators use the innermost level as panel.
    ``intervals`` chooses the mixed model's confidence intervals (Wald when None)."""
    from engine.mixed import fit_mixed
    from engine.panel import fit_fe, fit_ols, fit_re

    def run(context: JobContext) -> FitBatch:
        results = []
        for estimator in estimators:
            context.check()
            name = estimator_text(spec, estimator)
            label = f"Pooled {name}" if estimator == "ols" and spec.family != "gaussian" else ESTIMATOR_LABELS[estimator]
            context.report(f"{label}: starting", force=True)
            started = time.perf_counter()
            if estimator == "mixed":
                def on_iteration(iteration: int, loglik: float, label=label) -> None:
                    context.report(f"{label} ({spec.method}): iteration {iteration}, log-likelihood {loglik:,.6g}",
                                   detail=IterationReport("mixed", iteration, loglik))

                result = fit_mixed(frame, spec, should_stop=context.should_stop, on_iteration=on_iteration)
                if intervals is not None and intervals.method != "wald":
                    _apply_intervals(context, label, result, frame, intervals)
            elif estimator == "ols" and spec.family != "gaussian":  # the pooled logit, probit or Poisson model
                result = fit_mixed(frame, spec.pooled(), should_stop=context.should_stop)
            elif estimator == "ols":
                result = fit_ols(frame, spec.outcome, spec.fixed, constant=spec.constant)
            else:
                fit = fit_fe if estimator == "fe" else fit_re
                result = fit(frame, spec.outcome, spec.fixed, _panel_variable(spec), constant=spec.constant)
            result.name = name
            if not result.fit_seconds:
                result.fit_seconds = time.perf_counter() - started
            results.append(result)
        context.check()
        return FitBatch(spec=spec, results=results, comparison=comparison_of(results, truth, spec.fixed))

    return Job(label="Fit", run=run)


def _apply_intervals(context: JobContext, label: str, result: FitResult, frame: pd.DataFrame,
                     intervals: IntervalRequest) -> None:
    context.report(f"{label}: {intervals.describe()} intervals", force=True)

    def replicates_done(done: int, total: int) -> None:
        context.report(f"{label}: bootstrap replicate {done:,} of {total:,}", fraction=done / total, force=True)

    apply_intervals(result, frame, intervals, progress=replicates_done, should_stop=context.should_stop)


def _panel_variable(spec: ModelSpec) -> str:
    if not spec.levels:
        raise UserInputError("xtreg needs a panel variable: add at least one level to the model")
    return spec.levels[-1].name


def nesting_check_job(frame: pd.DataFrame, level_names: list[str], outcome: str = "") -> Job:
    """Groups per level and the engine's warnings; with a numeric ``outcome`` column, ids that
    recur across their parent's groups are also tested for a shared effect (crossed ids)."""
    from engine.mixed.hierarchy import build_hierarchy, structure_warnings
    from engine.mixed.prepare import no_complete_rows_message

    def run(context: JobContext) -> NestingCheck:
        if not level_names:
            return NestingCheck(level_names=[])
        use_outcome = (outcome in frame.columns and outcome not in level_names
                       and pd.api.types.is_numeric_dtype(frame[outcome]) and not pd.api.types.is_bool_dtype(frame[outcome]))
        columns = [*level_names, outcome] if use_outcome else list(level_names)
        ids = frame[columns].dropna()
        if ids.empty:  # nothing to group (an all-missing outcome or id): the fit's own words
            raise UserInputError(no_complete_rows_message(frame, columns))
        context.check()
        hierarchy = build_hierarchy(ids, level_names)
        context.check()
        values = ids[outcome].to_numpy(dtype=float) if use_outcome else None
        return NestingCheck(level_names=list(level_names), groups=hierarchy.group_table(),
                            warnings=structure_warnings(hierarchy, ids, values))

    return Job(label="Nesting check", run=run)


def predictions_job(frame: pd.DataFrame, result: FitResult) -> Job:
    """The per-row predictions of a mixed fit for the data view (a saved fit is refitted first)."""

    def run(context: JobContext) -> pd.DataFrame:
        return prediction_columns(frame, result, should_stop=context.check)

    return Job(label="Predictions", run=run)


def interaction_margins_job(frame: pd.DataFrame, result: FitResult, covariate: str, factor: str | None) -> Job:
    """Predictive margins over a covariate's range (by a factor's levels) for the margins plot."""
    from engine.margins import interaction_margins

    def run(context: JobContext):
        context.check()
        return interaction_margins(frame, result, covariate, factor)

    return Job(label="Margins", run=run)


def postestimation_job(text: str, frame: pd.DataFrame, result: FitResult) -> Job:
    """lincom, margins, contrast or pwcompare typed in the Results tab."""
    from engine.postestimation_command import run_postestimation

    def run(context: JobContext):
        context.check()
        return run_postestimation(text, frame, result)

    return Job(label="Post-estimation", run=run)


def column_summary_job(frame: pd.DataFrame) -> Job:
    """Type, missing count and range of each column, for the data view's summary table."""

    def run(context: JobContext) -> pd.DataFrame:
        return column_summaries(frame, should_stop=context.check)

    return Job(label="Column summaries", run=run)
