"""Check my p-values: simulate from a fitted model with the data's own structure, refit, count.

From a mixed model fitted to a data set, each replication keeps the rows, groups and covariates
of the data and draws a new outcome ``y* = X b + Z u* + e*``: ``u*`` for every group from the
estimated covariance of its level's random effects, ``e*`` from the residual variance (a
parametric bootstrap of the whole design). The same model, with its df method, is refitted to
every replication, and the check reports

* the actual coverage of each fixed effect's 95% interval (the fit's own), with ``b`` the fitted
  coefficients (the truth of the simulation is the fit); and
* the actual type-I error of each fixed effect's test: for coefficient j, replications with
  ``b_j = 0`` (the other coefficients as fitted) and the share rejecting ``b_j = 0`` at level alpha,

each with its Monte Carlo SE. The replications run on the Monte Carlo runner (local processes),
the data of replication r of part s (0: coverage; j: the null of the j-th tested coefficient) from
``replication_seed(seed, s, r)``, so the result does not depend on the number of workers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from engine.design import RESIDUAL, Truth
from engine.errors import UserInputError
from engine.mixed.row_groups import row_groups
from engine.model_spec import ModelSpec
from engine.montecarlo.replicate import RECORD_COLUMNS, fit_records
from engine.montecarlo.study import replication_seed
from engine.results import FitResult
from engine.serialize import to_jsonable

DEFAULT_ALPHA = 0.05


@dataclass
class LevelDraw:
    """How to draw one level's random effects: its group code of every row, the columns of its
    terms (1 for ``_cons``) and the Cholesky-like factor of their covariance."""

    name: str
    codes: np.ndarray
    groups: int
    columns: np.ndarray  # (rows, terms)
    factor: np.ndarray  # (terms, terms): cov = factor @ factor.T


def run_check_replications(check: "PValueCheck", sweep_index: int, reps: Sequence[int]) -> pd.DataFrame:
    """One chunk of a check: simulate and refit replications ``reps`` of part ``sweep_index``."""
    from engine.mixed import fit_mixed

    beta = check.coefficients_at(sweep_index)
    truth = Truth(fixed=dict(zip(check.terms, beta)), random=dict(check.random_truth))
    mean = check.x @ beta
    rows = []
    for rep in reps:
        seed = replication_seed(check.seed, sweep_index, rep)
        head = (float(sweep_index), sweep_index, rep, seed)
        rng = np.random.default_rng(seed)
        y = mean + check.residual_sd * rng.standard_normal(check.x.shape[0])
        for level in check.levels:
            effects = rng.standard_normal((level.groups, level.factor.shape[0])) @ level.factor.T
            y += np.einsum("ij,ij->i", level.columns, effects[level.codes])
        frame = check.frame.copy()
        frame[check.spec.outcome] = y
        started = time.perf_counter()
        try:
            result = fit_mixed(frame, check.spec, predict=False)
        except Exception as error:  # noqa: BLE001 - counted as failed, as in a Monte Carlo study
            message = f"{type(error).__name__}: {error}"
            rows.append((check.model, *head, "", "", math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                         False, True, False, False, message, time.perf_counter() - started))
            continue
        rows += fit_records(check.model, head, result, truth, time.perf_counter() - started)
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS)).astype(RECORD_COLUMNS)


@dataclass
class PValueCheck:
    """A check of a fitted model's intervals and tests; run it with :func:`run_pvalue_check`.

    Study-like for the Monte Carlo runner: ``reps`` replications at each of the ``sweep_values``
    (0: coverage under the fit; j: the null of ``tested[j - 1]``).
    """

    model: str
    spec: ModelSpec
    frame: pd.DataFrame  # the rows used by the fit, model variables only (the outcome is redrawn)
    terms: list[str]
    estimates: list[float]
    x: np.ndarray
    levels: list[LevelDraw]
    residual_sd: float
    random_truth: dict[str, float]
    tested: list[str]
    reps: int = 200
    seed: int = 0
    alpha: float = DEFAULT_ALPHA
    precision: None = None  # the runner's stopping rule: a check runs all its replications
    replicate = staticmethod(run_check_replications)

    @property
    def sweep_values(self) -> list[float]:
        return [float(index) for index in range(len(self.tested) + 1)]

    @property
    def total_replications(self) -> int:
        return self.reps * len(self.sweep_values)

    def coefficients_at(self, sweep_index: int) -> np.ndarray:
        beta = np.array(self.estimates, dtype=float)
        if sweep_index > 0:
            beta[self.terms.index(self.tested[sweep_index - 1])] = 0.0
        return beta

    def validate(self) -> "PValueCheck":
        if not isinstance(self.reps, int) or isinstance(self.reps, bool) or self.reps < 1:
            raise UserInputError(f"reps must be a whole number >= 1, got {self.reps!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise UserInputError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if not 0 < self.alpha < 1:
            raise UserInputError(f"alpha must be between 0 and 1, got {self.alpha!r}")
        return self


def prepare_check(frame: pd.DataFrame, model: str, *, reps: int = 200, seed: int = 0,
                  alpha: float = DEFAULT_ALPHA, terms: list[str] | None = None,
                  fit: FitResult | None = None) -> tuple[PValueCheck, FitResult]:
    """Fit ``model`` to ``frame`` (unless ``fit`` is given) and set up the check.

    Parameters
    ----------
    frame : pandas.DataFrame
    model : str
        Stata mixed syntax, with its options (``reml``, ``dfmethod(kroger)``).
    reps, seed, alpha :
        Replications per part, base seed, level of the intervals and tests.
    terms : list of str, optional
        Fixed effects whose type-I error to check (default: all).
    fit : FitResult, optional
        The model already fitted to ``frame``.

    Returns
    -------
    (PValueCheck, FitResult)
    """
    from engine.mixed import fit_mixed
    from engine.mixed.prepare import prepare_model_data

    spec = ModelSpec.parse(model)
    if not spec.levels:
        raise UserInputError("check-pvalues needs a mixed model with at least one level (|| group:)")
    if spec.family != "gaussian":
        raise UserInputError("check-pvalues simulates a linear model: binary and count models are not "
                             "supported yet")
    fit = fit or fit_mixed(frame, spec, predict=False)
    data = prepare_model_data(frame, spec)
    names = list(data.design.names)
    estimates = [fit.coef(name).coef for name in names]
    tested = list(names) if terms is None else list(terms)
    unknown = [term for term in tested if term not in names]
    if unknown:
        raise UserInputError(f"--terms {unknown[0]}: not a fixed effect of the model ({', '.join(names)})")
    groupings = row_groups(data.frame, spec)
    levels = []
    for index, level in enumerate(spec.levels):
        terms_here = level.terms
        columns = np.column_stack([np.ones(len(data.frame)) if term == "_cons" else
                                   data.frame[term].to_numpy(dtype=float) for term in terms_here])
        codes, groups = groupings[index]
        levels.append(LevelDraw(level.name, codes, groups, columns, _factor(_covariance(fit, level.name, terms_here))))
    random_truth = {f"{row.level}:{row.param}": float(row.estimate) for row in fit.random}
    residual = random_truth.get(f"{RESIDUAL}:sd({RESIDUAL})")
    if residual is None:
        raise UserInputError("the fit has no residual sd to simulate from")
    plain = spec.replace(centering=[])  # centred columns are in the frame already
    check = PValueCheck(model=model, spec=plain, frame=data.frame.reset_index(drop=True), terms=names,
                        estimates=estimates, x=np.asarray(data.design.matrix, dtype=float), levels=levels,
                        residual_sd=residual, random_truth=random_truth, tested=tested, reps=reps, seed=seed,
                        alpha=alpha)
    return check.validate(), fit


def _covariance(fit: FitResult, level: str, terms: list[str]) -> np.ndarray:
    sds = {}
    for row in fit.random:
        if row.level != level or not row.param.startswith("sd("):
            continue
        inside = row.param[3:-1].split()
        for term in inside:  # covariance(identity) reports one sd for several terms
            sds[term] = float(row.estimate)
    missing = [term for term in terms if term not in sds]
    if missing:
        raise UserInputError(f"the fit reports no sd of {missing[0]} at {level}")
    cov = np.diag([sds[term] ** 2 for term in terms])
    for row in fit.random:
        if row.level == level and row.param.startswith("corr("):
            a, b = [part.strip() for part in row.param[5:-1].split(",")]
            i, j = terms.index(a), terms.index(b)
            cov[i, j] = cov[j, i] = float(row.estimate) * sds[a] * sds[b]
    return cov


def _factor(cov: np.ndarray) -> np.ndarray:
    """A matrix F with F F' = cov, also for a singular cov (a variance estimated at zero)."""
    values, vectors = np.linalg.eigh(cov)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


@dataclass
class PValueRow:
    """The check of one fixed effect: coverage of its interval under the fit and the type-I error
    of its test under ``b = 0``, each with its Monte Carlo SE and the number of fits behind it."""

    term: str
    estimate: float
    df_method: str
    coverage: Optional[float]
    mcse_coverage: Optional[float]
    fits_coverage: int
    type1: Optional[float] = None
    mcse_type1: Optional[float] = None
    fits_type1: int = 0


@dataclass
class PValueCheckResult:
    model: str
    alpha: float
    reps: int
    seed: int
    rows: list[PValueRow]
    failed: int
    seconds: float
    workers: int
    random: list[dict] = field(default_factory=list)  # coverage of the random-effects parameters

    def to_dict(self) -> dict:
        return to_jsonable(self)


def run_pvalue_check(check: PValueCheck, workers: int | None = None, progress=None,
                     should_stop=None) -> PValueCheckResult:
    """Run the check on the Monte Carlo runner and summarise it."""
    from engine.montecarlo.runner import run_study
    from engine.montecarlo.summary import summarise_records

    run = run_study(check, workers=workers, progress=progress, should_stop=should_stop)
    records = run.records
    summary = summarise_records(records)
    coverage = {row.param: row for row in summary if row.sweep == 0.0}
    method = check.spec.dfmethod or "z"
    rows = []
    for term, estimate in zip(check.terms, check.estimates):
        row = coverage.get(term)
        rows.append(PValueRow(term=term, estimate=estimate, df_method=method,
                              coverage=row.coverage if row else None, mcse_coverage=row.mcse_coverage if row else None,
                              fits_coverage=row.n if row else 0))
    for index, term in enumerate(check.tested, start=1):
        fits = records[(records["sweep_index"] == index) & (records["param"] == term) & ~records["failed"]]
        p = fits["p"].to_numpy(dtype=float)
        p = p[np.isfinite(p)]
        item = next(r for r in rows if r.term == term)
        if p.size:
            rate = float(np.mean(p < check.alpha))
            item.type1, item.mcse_type1 = rate, math.sqrt(rate * (1 - rate) / p.size)
        item.fits_type1 = int(p.size)
    random = [{"param": row.param, "truth": row.truth, "coverage": row.coverage, "mcse_coverage": row.mcse_coverage}
              for row in summary if row.sweep == 0.0 and row.param not in check.terms and row.param]
    failed = int(records.drop_duplicates(["sweep_index", "rep"])["failed"].sum()) if len(records) else 0
    return PValueCheckResult(model=check.model, alpha=check.alpha, reps=check.reps, seed=check.seed, rows=rows,
                             failed=failed, seconds=run.seconds, workers=run.workers, random=random)


def format_check(result: PValueCheckResult) -> str:
    """Plain-text report: one line per fixed effect."""
    # The fit reports 95% intervals; alpha sets the tests' level only.
    lines = [f"Check of {result.model}: {result.reps} replications per part, simulated from the fit with the "
             f"data's rows and groups (seed {result.seed})",
             f"coverage: share of the fit's 95% intervals containing the fitted value; type-I error: share rejecting "
             f"b = 0 at {result.alpha:g} when b = 0 is true (nominal {result.alpha:g}); Monte Carlo SEs in parentheses",
             ""]
    header = f"{'term':<24}{'df method':>12}{'coverage (mcse)':>20}{'type-I error (mcse)':>24}"
    lines += [header, "-" * len(header)]
    for row in result.rows:
        coverage = "." if row.coverage is None else f"{row.coverage:.3f} ({row.mcse_coverage:.3f})"
        type1 = "." if row.type1 is None else f"{row.type1:.3f} ({row.mcse_type1:.3f})"
        lines.append(f"{row.term:<24}{row.df_method:>12}{coverage:>20}{type1:>24}")
    if result.failed:
        lines.append(f"\n{result.failed} fit(s) failed and are left out")
    return "\n".join(lines)
