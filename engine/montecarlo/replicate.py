"""One chunk of replications: simulate, fit every model, and keep every estimate as a tidy record.

This is the function the workers run. It takes the study and the replication indices, derives
each replication's seed from them, and returns one row per replication x model x parameter, so
its output does not depend on which worker ran it or on what else that worker ran.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import pandas as pd

from engine.design import Truth
from engine.montecarlo.models import StudyModel, load_model
from engine.montecarlo.study import Study
from engine.montecarlo.summary import ALPHA, critical_value
from engine.results import FitResult
from engine.simulate import simulate

# The tidy record of one parameter of one fit; a failed fit has one row with param "".
RECORD_COLUMNS = {
    "model": "str",          # the model string as given
    "sweep": "float64",      # the sweep value (NaN without a sweep)
    "sweep_index": "int64",
    "rep": "int64",          # replication index at this sweep value, 0-based
    "seed": "int64",         # seed of the replication's data (simulate --seed)
    "param": "str",          # "tutoring", "_cons", "dist_id:sd(_cons)", "Residual:sd(Residual)"
    "kind": "str",           # "fixed" or "random" ("" for a failed fit)
    "truth": "float64",
    "estimate": "float64",
    "se": "float64",         # NaN where none is reported (e.g. a variance on the boundary)
    "ci_low": "float64",     # the fit's (1 - alpha) confidence interval, alpha the study's (see interval_at)
    "ci_high": "float64",
    "p": "float64",          # p-value of the test that a fixed effect is zero (NaN for random parameters)
    "converged": "bool",
    "failed": "bool",        # the fit raised, or did not converge
    "fit_boundary": "bool",  # the fit warned that a variance is estimated at zero
    "at_zero": "bool",       # this sd is the one estimated at zero
    "error": "str",          # why the fit failed
    "fit_seconds": "float64",
    "df": "float64",         # denominator df of a fixed effect's t test and interval (NaN: z)
}
NO_SWEEP = math.nan


def run_replications(study: Study, sweep_index: int, reps: Sequence[int]) -> pd.DataFrame:
    """Simulate and fit replications ``reps`` at one sweep index.

    A model that raises on a replication gives a failed record (its error kept), never an
    exception: the study goes on and the failure is counted in the summary.

    Parameters
    ----------
    study : Study
        A validated study.
    sweep_index : int
        Which sweep value (0 without a sweep).
    reps : sequence of int
        Replication indices to run.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECORD_COLUMNS`, rows in the order replication, model, parameter.
    """
    design = study.design_at(sweep_index)
    truth = design.truth()
    sweep_value = study.sweep_values[sweep_index]
    sweep = NO_SWEEP if sweep_value is None else float(sweep_value)
    models = [load_model(text, study.design, study.dfmethod) for text in study.models]
    rows: list[tuple] = []
    for rep in reps:
        seed = study.replication_seed(sweep_index, rep)
        head = (sweep, sweep_index, rep, seed)
        try:
            frame = simulate(design, seed).frame
        except Exception as error:  # noqa: BLE001 - a failed simulation fails its fits, not the study
            rows += [_failed_row(model.text, head, error, 0.0) for model in models]
            continue
        for model in models:
            rows += _fit_rows(model, frame, head, truth, study.alpha)
    records = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    return records.astype(RECORD_COLUMNS)


def _fit_rows(model: StudyModel, frame: pd.DataFrame, head: tuple, truth: Truth, alpha: float) -> list[tuple]:
    started = time.perf_counter()
    try:
        result = model.fit(frame)
    except Exception as error:  # noqa: BLE001 - counted as a failed fit
        return [_failed_row(model.text, head, error, time.perf_counter() - started)]
    seconds = time.perf_counter() - started
    return fit_records(model.text, head, result, truth, seconds, alpha)


def fit_records(model: str, head: tuple, result: FitResult, truth: Truth, seconds: float,
                alpha: float = ALPHA) -> list[tuple]:
    """Record rows of one fit: its fixed effects, then its random-effects parameters.

    ``head`` is (sweep value, sweep index, replication, seed); intervals are at level 1 - alpha.
    """
    converged = bool(result.converged)
    boundary = any("boundary" in warning for warning in result.warnings)
    status = (converged, not converged, boundary)
    rows = []
    for row in result.fixed:
        ci_low, ci_high = interval_at(row, "fixed", alpha)
        rows.append((model, *head, row.term, "fixed", true_value(truth, row.term, "fixed"), _number(row.coef),
                     _number(row.se), ci_low, ci_high, _number(row.p), *status, False, "", seconds,
                     _number(row.df)))
    at_zero_names = set(result.boundary_params)  # judged unit-free by the fit
    for row in result.random:
        name = f"{row.level}:{row.param}"
        at_zero = name in at_zero_names
        ci_low, ci_high = interval_at(row, "random", alpha)
        rows.append((model, *head, name, "random", true_value(truth, name, "random"), _number(row.estimate),
                     _number(row.se), ci_low, ci_high, math.nan, *status, bool(at_zero), "", seconds, math.nan))
    return rows


def true_value(truth: Truth, param: str, kind: str) -> float:
    """The true value of a fitted parameter.

    A fixed term the design does not name (e.g. ``2.semester``) has true coefficient 0: the
    outcome does not depend on it. So has the sd of a random term the design does not vary, and
    the correlation of two random terms the design varies independently. A correlation
    involving a term with true sd 0 is undefined (NaN).
    """
    if kind == "fixed":
        return float(truth.fixed.get(param, 0.0))
    if param in truth.random:
        return float(truth.random[param])
    level, _, name = param.partition(":")
    if name.startswith("sd("):
        return 0.0
    if name.startswith("corr(") and name.endswith(")"):
        terms = name[len("corr("):-1].split(",")
        sds = [truth.random.get(f"{level}:sd({term.strip()})", 0.0) for term in terms]
        return 0.0 if len(sds) == 2 and min(sds) > 0 else math.nan
    return math.nan


def interval_at(row, kind: str, alpha: float) -> tuple[float, float]:
    """A reported parameter's Wald interval at level 1 - alpha, on the scale the fit made it:
    coefficient +- c se for a fixed effect (c normal, or t with the row's df), and for a
    random-effects parameter exp(log sd +- c se / sd) or tanh(atanh rho +- c se / (1 - rho^2)),
    Stata's scales. At the default alpha this is the fit's own interval. A row without an
    interval, or whose interval another method made (profile, bootstrap), keeps what it
    reported at 95% and has none at other levels.
    """
    if row.ci is None or row.se is None or not math.isfinite(row.se):
        return _interval(row.ci)
    if row.ci_method != "wald":
        return _interval(row.ci) if alpha == ALPHA else (math.nan, math.nan)
    if kind == "fixed":
        c = critical_value(alpha, row.df)  # None for a z test
        return float(row.coef - c * row.se), float(row.coef + c * row.se)
    c = critical_value(alpha)
    estimate = float(row.estimate)
    if row.param.startswith("corr("):
        half = c * row.se / (1.0 - estimate ** 2)
        return float(np.tanh(np.arctanh(estimate) - half)), float(np.tanh(np.arctanh(estimate) + half))
    if row.param.startswith("sd(") and estimate > 0:
        half = c * row.se / estimate
        with np.errstate(over="ignore"):
            return float(estimate * np.exp(-half)), float(estimate * np.exp(half))
    return _interval(row.ci)


def _failed_row(model: str, head: tuple, error: BaseException, seconds: float) -> tuple:
    message = f"{type(error).__name__}: {error}"
    return (model, *head, "", "", math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
            False, True, False, False, message, seconds, math.nan)


def _number(value) -> float:
    return math.nan if value is None else float(value)


def _interval(ci) -> tuple[float, float]:
    if ci is None or len(ci) != 2:
        return math.nan, math.nan
    return _number(ci[0]), _number(ci[1])


def empty_records() -> pd.DataFrame:
    """A records frame with no rows and the record columns' types."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in RECORD_COLUMNS.items()})


def sort_records(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunks' records, in whatever order they finished, as one frame in a fixed order
    (sweep index, replication, then model and parameter as fitted)."""
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return empty_records()
    records = pd.concat(frames, ignore_index=True)
    order = np.lexsort((records["rep"].to_numpy(), records["sweep_index"].to_numpy()))
    return records.iloc[order].reset_index(drop=True)
