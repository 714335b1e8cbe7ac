"""Parametric-bootstrap percentile intervals of a mixed fit (``fit --ci bootstrap``).

Each replicate keeps the data's own structure (the same rows, groups and fixed-effect columns)
and draws a new outcome from the fitted model,

    y* = X b_hat + sum over levels of Z_l u_l + e,   u_l ~ N(0, G_l_hat) per group,  e ~ N(0, sigma_hat^2),

with G_l_hat built from the reported sds and correlations. The model is refitted to y* with the
engine, starting from the fitted theta, and the 2.5% and 97.5% percentiles of the replicates'
estimates (numpy's linear interpolation, R's quantile type 7) are each parameter's interval, as
lme4's ``confint(method = "boot", boot.type = "perc")``. Replicates that fail to refit (an
error, or no convergence) are counted and left out.

Replicate r draws from ``SeedSequence(seed, spawn_key=(r,))``, so the intervals depend on the
seed and the number of replicates only, not on the number of workers or how the replicates are
cut into tasks. The tasks run on the Monte Carlo runner's executors: local processes, or a Dask
cluster.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from engine.errors import Cancelled, UserInputError
from engine.model_spec import ModelSpec
from engine.results import BootstrapRun, FitResult

POLL_SECONDS = 0.1
IN_PROCESS_SECONDS = 3.0  # a bootstrap expected to take less runs in this process: starting workers costs more


@dataclass
class BootstrapProblem:
    """Everything a worker needs to draw and refit replicates; plain data, so it pickles."""

    frame: pd.DataFrame = field(repr=False)  # the rows the fit used, centred predictors made
    spec: ModelSpec  # the fitted model, its centring already applied to ``frame``
    mean: np.ndarray = field(repr=False)  # X b_hat
    codes: list[np.ndarray] = field(repr=False)  # per level: each row's group
    group_counts: list[int]
    z: list[np.ndarray] = field(repr=False)  # per level: (rows, q) random-effect columns
    factors: list[np.ndarray]  # per level: F with F F' = G_hat, so u = F w, w ~ N(0, I)
    sigma: float
    start_theta: Optional[list[float]]
    seed: int
    names: list[str]  # the parameters, in the order of each replicate's estimates

    def outcome(self, rep: int) -> np.ndarray:
        """The simulated outcome of replicate ``rep``."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(rep,)))
        y = self.mean.copy()
        for codes, count, z, factor in zip(self.codes, self.group_counts, self.z, self.factors):
            effects = rng.standard_normal((count, factor.shape[0])) @ factor.T
            y += np.einsum("nq,nq->n", z, effects[codes])
        y += self.sigma * rng.standard_normal(y.size)
        return y


@dataclass
class BootstrapDraws:
    """The replicates' estimates: one row per replicate (NaN where the refit failed)."""

    names: list[str]
    estimates: np.ndarray
    failed: int
    seconds: float = 0.0
    workers: int = 1
    backend: str = "in-process"

    def percentile_intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Each parameter's percentile interval over the replicates that refitted."""
        tail = 100.0 * (1.0 - level) / 2.0
        out = {}
        for index, name in enumerate(self.names):
            values = self.estimates[:, index]
            values = values[np.isfinite(values)]
            if values.size >= 2:
                low, high = np.percentile(values, [tail, 100.0 - tail])
                out[name] = (float(low), float(high))
        return out


def bootstrap_problem(result: FitResult, frame: pd.DataFrame, seed: int) -> BootstrapProblem:
    """The data's structure and the fitted parameters of ``result`` (a mixed fit of ``frame``)."""
    from engine.mixed.prepare import prepare_model_data
    from engine.mixed.row_groups import row_groups

    if result.estimator != "mixed" or result.spec is None:
        raise UserInputError(f"bootstrap intervals need a mixed-model fit, not {result.estimator!r}")
    spec = result.spec
    data = prepare_model_data(frame, spec)
    coefficients = {row.term: row.coef for row in result.fixed}
    beta = np.array([coefficients[name] for name in data.design.names], dtype=float)
    groups = row_groups(data.frame, spec)  # crossed factors: one effect per id of the factor
    random = {(row.level, row.param): row.estimate for row in result.random}
    z_columns, factors = [], []
    for level in spec.levels:
        terms = level.estimation_terms
        z_columns.append(np.column_stack([np.ones(len(data.frame)) if term == "_cons"
                                          else data.frame[term].to_numpy(dtype=float) for term in terms]))
        factors.append(_covariance_factor(_level_covariance(level, random)))
    # The replicates' frame has the centred columns already; the replicates need estimates only,
    # so no small-sample df (Kenward-Roger would cost more than the refit) where the spec has them.
    changes = {"centering": []}
    if "dfmethod" in {f.name for f in dataclasses.fields(spec)}:
        changes["dfmethod"] = None
    return BootstrapProblem(
        frame=data.frame.copy(), spec=spec.replace(**changes), mean=data.design.matrix @ beta,
        codes=[codes for codes, _ in groups], group_counts=[count for _, count in groups], z=z_columns,
        factors=factors, sigma=float(random[("Residual", "sd(Residual)")]),
        start_theta=list(result.theta) or None, seed=int(seed), names=parameter_names(result))


def parameter_names(result: FitResult) -> list[str]:
    """Fixed-effect terms, then "level:param" of every sd-scale and variance-scale row."""
    return ([row.term for row in result.fixed]
            + [f"{row.level}:{row.param}" for row in result.random]
            + [f"{row.level}:{row.param}" for row in result.random_variances])


def _level_covariance(level, random: dict) -> np.ndarray:
    """G of one level (engine term order) from the reported sds and correlations."""
    terms = level.estimation_terms
    q = len(terms)
    if q > 1 and level.covariance == "identity":  # one sd shared by every term
        sd = np.full(q, random[(level.name, f"sd({' '.join(level.terms)})")], dtype=float)
    else:
        sd = np.array([random[(level.name, f"sd({term})")] for term in terms], dtype=float)
    corr = np.eye(q)
    for i in range(q):
        for j in range(i + 1, q):
            value = random.get((level.name, f"corr({terms[i]},{terms[j]})"),
                               random.get((level.name, f"corr({terms[j]},{terms[i]})"), 0.0))
            corr[i, j] = corr[j, i] = value
    return np.outer(sd, sd) * corr


def _covariance_factor(cov: np.ndarray) -> np.ndarray:
    """F with F F' = cov, also for a singular (boundary) covariance."""
    values, vectors = np.linalg.eigh(cov)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def refit_replicates(problem: BootstrapProblem, reps: range) -> np.ndarray:
    """Draw and refit replicates ``reps``; one row of estimates each, NaN where the refit failed.

    This is what the workers run.
    """
    from engine.mixed import fit_mixed

    out = np.full((len(reps), len(problem.names)), np.nan)
    frame = problem.frame.copy()
    outcome = problem.spec.outcome
    for row, rep in enumerate(reps):
        frame[outcome] = problem.outcome(rep)
        try:
            fit = fit_mixed(frame, problem.spec, start_theta=problem.start_theta, predict=False)
        except Exception:  # noqa: BLE001 - a replicate that cannot be refitted is counted as failed
            continue
        if not fit.converged:
            continue
        values = {row_.term: row_.coef for row_ in fit.fixed}
        values.update({f"{r.level}:{r.param}": r.estimate for r in fit.random + fit.random_variances})
        out[row] = [values.get(name, np.nan) for name in problem.names]
    return out


def run_bootstrap(problem: BootstrapProblem, reps: int, *, workers: Optional[int] = None, scheduler: Any = None,
                  progress: Optional[Callable[[int, int], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None, chunk_size: Optional[int] = None) -> BootstrapDraws:
    """Refit ``reps`` replicates of ``problem``, in this process (``workers=1``), on local worker
    processes or on a Dask cluster (``scheduler``), with the Monte Carlo runner's executors.

    Parameters
    ----------
    problem : BootstrapProblem
    reps : int
        Number of replicates (>= 2).
    workers : int, optional
        Local worker processes (default all cores, or this process alone when one replicate,
        timed here first, shows that all of them take under ``IN_PROCESS_SECONDS``); 1 runs in
        this process.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address or client.
    progress : callable, optional
        ``progress(done, total)`` after each finished task.
    should_stop : callable, optional
        Polled between tasks; True cancels the tasks not started and raises ``Cancelled``.
    chunk_size : int, optional
        Replicates per task; it does not change the results.

    Returns
    -------
    BootstrapDraws
        Rows in replicate order.
    """
    from engine.montecarlo.runner import _open_executor, default_chunk_size

    if not isinstance(reps, int) or reps < 2:
        raise UserInputError(f"bootstrap replicates must be a whole number >= 2, got {reps!r}")
    started = time.perf_counter()
    results: dict[int, np.ndarray] = {}
    done, first = 0, 0
    if progress is not None:
        progress(0, reps)
    in_process = scheduler is None and workers == 1
    if scheduler is None and workers is None:
        # Time one replicate here: when all of them would take less than starting the worker
        # processes, stay in this process (the draws are the same either way).
        results[0] = refit_replicates(problem, range(0, 1))
        done = first = 1
        in_process = (time.perf_counter() - started) * reps < IN_PROCESS_SECONDS
        if progress is not None:
            progress(done, reps)
    if in_process:
        executor, backend, count = None, "in-process", 1
    else:
        executor, backend, count = _open_executor(workers, scheduler)
    size = chunk_size or default_chunk_size(reps - first, count)
    chunks = [range(start, min(start + size, reps)) for start in range(first, reps, size)]
    futures: dict[cf.Future, range] = {}
    finished_cleanly = False
    try:
        if in_process:
            for chunk in chunks:
                if should_stop is not None and should_stop():
                    raise Cancelled()
                results[chunk.start] = refit_replicates(problem, chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, reps)
        else:
            for chunk in chunks:
                futures[executor.submit(refit_replicates, problem, chunk)] = chunk
            pending = set(futures)
            while pending:
                if should_stop is not None and should_stop():
                    raise Cancelled()
                finished, pending = cf.wait(pending, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    chunk = futures[future]
                    results[chunk.start] = future.result()
                    done += len(chunk)
                    if progress is not None:
                        progress(done, reps)
        finished_cleanly = True
    finally:
        if executor is not None:
            if not finished_cleanly:
                for future in futures:
                    future.cancel()
            executor.shutdown(wait=finished_cleanly, cancel_futures=True)
    estimates = np.vstack([results[start] for start in sorted(results)])
    failed = int(np.sum(~np.isfinite(estimates).any(axis=1)))
    return BootstrapDraws(problem.names, estimates, failed, time.perf_counter() - started, count, backend)


def apply_bootstrap_intervals(result: FitResult, frame: pd.DataFrame, reps: int, seed: int, *,
                              level: float = 0.95, workers: Optional[int] = None, scheduler: Any = None,
                              progress: Optional[Callable[[int, int], None]] = None,
                              should_stop: Optional[Callable[[], bool]] = None,
                              chunk_size: Optional[int] = None) -> BootstrapDraws:
    """Replace every interval of ``result`` (fixed effects, sds, correlations, variances,
    covariances) by its parametric-bootstrap percentile interval; sets ``result.ci_method`` and
    ``result.bootstrap``. A parameter no replicate estimated keeps its Wald interval."""
    if seed is None or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserInputError(f"the bootstrap seed must be a whole number >= 0, got {seed!r}")
    problem = bootstrap_problem(result, frame, seed)
    draws = run_bootstrap(problem, reps, workers=workers, scheduler=scheduler, progress=progress,
                          should_stop=should_stop, chunk_size=chunk_size)
    if draws.failed == reps:
        raise UserInputError(f"none of the {reps} bootstrap replicates could be refitted")
    intervals = draws.percentile_intervals(level)
    for row in result.fixed:
        if row.term in intervals:
            row.ci, row.ci_method = list(intervals[row.term]), "bootstrap"
    for row in result.random + result.random_variances:
        name = f"{row.level}:{row.param}"
        if name in intervals:
            row.ci, row.ci_method = list(intervals[name]), "bootstrap"
    result.ci_method = "bootstrap"
    result.bootstrap = BootstrapRun(reps=reps, seed=int(seed), failed=draws.failed, level=level,
                                    seconds=draws.seconds, workers=draws.workers, backend=draws.backend)
    if draws.failed:
        result.warnings.append(f"{draws.failed} of {reps} bootstrap replicates could not be refitted and are "
                               f"left out of the intervals.")
    return draws
