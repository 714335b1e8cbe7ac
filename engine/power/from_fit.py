"""Plan the next study from a fit: turn a fitted mixed model into a simulation ``Design``.

"Given my pilot, how many schools do I need?" The design takes from the fit (a ``FitResult``, as
``fit --json`` writes it):

* the levels, outermost first, with the estimated random-intercept sds, random slopes on the
  design's variables with their sds and their correlation with the intercept (a correlation
  between two slopes has no place in a Design and is dropped, said in the notes), and the
  residual sd;
* the unit counts: at each level the data's average number of units per parent (groups at the
  level over groups at the level above, rounded), and below the lowest level the average rows per
  group as repeated occasions; or, with ``group_sizes="observed"`` and the data, the data's own
  distribution of group sizes: below the top level, the units per parent are drawn from the
  observed counts (``UnitCount.empirical``), and the rows per lowest-level group likewise (as a
  level ``obs`` with no variance of its own); ``units`` sets chosen balanced counts instead;
* the intercept and the fixed effects the design can represent: the treatment (a named 0/1
  variable, randomised with a fixed allocation at a level) and covariates. A covariate's level and
  distribution come from the data (binary when it holds only 0 and 1, else normal with the data's
  mean and sd over the units of its level); without the data, only the treatment is kept. Terms in
  factor notation (``i.x``, ``c.x#c.z``) are dropped, and every drop is named in the notes.

The sds of a model with covariates are those left after the covariates; simulating without a
dropped covariate therefore gives the power of the model that adjusts for it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from engine.design import (
    OBSERVATION, RESIDUAL, CovariateDesign, Design, LevelDesign, Occasions, RandomSlope, TreatmentDesign, UnitCount,
)
from engine.errors import UserInputError
from engine.model_spec import ModelSpec
from engine.results import FitResult

ROWS_LEVEL = "obs"
GROUP_SIZES = ("average", "observed")
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def design_from_fit(fit: FitResult, data: pd.DataFrame | None = None, *, treatment: str | None = None,
                    treatment_level: str | None = None, units: dict[str, int] | None = None,
                    name: str = "", group_sizes: str = "average") -> tuple[Design, str, list[str]]:
    """The design a fitted mixed model describes, the model to refit to its simulations, and notes.

    Parameters
    ----------
    fit : FitResult
        A mixed-model fit (``estimator == "mixed"``) with its ``spec`` and ``groups``.
    data : pandas.DataFrame, optional
        The fitted data: tells at which level each covariate (and the treatment) varies and how
        it is distributed. Without it only the treatment is kept among the fixed effects.
    treatment : str, optional
        The fixed effect to simulate as a randomised 0/1 treatment with the fitted effect.
    treatment_level : str, optional
        Level whose units are randomised (default: where the treatment varies in ``data``, else
        the top level: a cluster-randomised trial); ``"observation"`` for rows.
    units : dict, optional
        Level name -> a chosen balanced number of units per parent (top level: the units).
    name : str
        The design's name.
    group_sizes : {"average", "observed"}
        ``"average"``: balanced counts, the data's average units per parent at each level (from
        the fit's group counts). ``"observed"`` (needs ``data``): below the top level, units per
        parent drawn from the data's own group sizes, so the next study is as unbalanced as the
        pilot; at the pilot's number of top-level units every simulated data set has exactly the
        pilot's sizes (in a random order).

    Returns
    -------
    (Design, str, list of str)
        The validated design; the model (Stata syntax) with the kept terms, the fit's method and
        df method; notes saying what was assumed and what was dropped.

    Raises
    ------
    UserInputError
        If the fit is not a mixed model, or a named treatment or level does not exist.
    """
    if fit.estimator != "mixed" or fit.spec is None or not fit.spec.levels:
        raise UserInputError("planning from a fit needs a mixed model with at least one level of random effects "
                             f"(this fit is {fit.estimator!r})")
    spec = fit.spec
    if fit.family is not None:
        raise UserInputError(f"planning from a {fit.family} fit is not supported yet: the design would simulate a "
                             f"continuous outcome; plan from a linear mixed model, or build a binary design by hand")
    if spec.has_crossed:
        raise UserInputError("planning from a fit with crossed factors is not supported: designs nest their levels")
    notes: list[str] = []
    if spec.centering:
        notes.append("centring options are not carried over; centred predictors are taken as plain variables")
    coefficients = {row.term: float(row.coef) for row in fit.fixed}
    if treatment is not None and treatment not in coefficients:
        raise UserInputError(f"--treatment {treatment}: the fit has no fixed effect {treatment!r} "
                             f"(it has {', '.join(coefficients)})")
    if group_sizes not in GROUP_SIZES:
        raise UserInputError(f"group sizes must be one of {', '.join(GROUP_SIZES)}, got {group_sizes!r}")
    if group_sizes == "observed":
        if data is None:
            raise UserInputError("observed group sizes need the fitted data (--data): the fit keeps only the "
                                 "number of groups and their smallest and largest size")
        levels, occasions = _observed_levels(fit, _data_rows(data, spec), notes)
    else:
        levels, occasions = _levels(fit, notes)
    design = Design(levels=levels, occasions=occasions, outcome=spec.outcome, name=name or "from fit",
                    residual_sd=_random(fit, RESIDUAL, f"sd({RESIDUAL})") or 0.0,
                    intercept=coefficients.get("_cons", 0.0))
    frame = _data_rows(data, spec) if data is not None else None
    kept: list[str] = []
    for term, coef in coefficients.items():
        if term == "_cons":
            continue
        if not PLAIN_NAME.match(term):
            notes.append(f"fixed effect {term} dropped: factor terms and interactions are not simulated by a design")
            continue
        if term == treatment:
            design.treatment = _treatment(term, coef, frame, spec, treatment_level, notes)
            kept.append(term)
            continue
        if frame is None or term not in frame.columns:
            why = "no data given to learn its distribution" if frame is None else "not a column of the data"
            notes.append(f"fixed effect {term} dropped ({why})")
            continue
        design.covariates.append(_covariate(term, coef, frame, spec))
        kept.append(term)
    if treatment_level is not None and treatment is None:
        raise UserInputError("a treatment level was given without a treatment: name the fixed effect to randomise")
    _attach_slopes(design, fit, notes)
    for level_name, count in (units or {}).items():
        design = design.with_units(level_name, int(count))
    design.validate()
    model = ModelSpec(outcome=spec.outcome, fixed=kept, levels=[_kept_level(level, design) for level in spec.levels],
                      method=spec.method, constant=spec.constant, dfmethod=spec.dfmethod)
    return design, _model_text(model), notes


# ----- levels and unit counts --------------------------------------------------------------------
def _levels(fit: FitResult, notes: list[str]) -> tuple[list[LevelDesign], Occasions | None]:
    groups = {count.level: count for count in fit.groups}
    names = [level.name for level in fit.spec.levels]
    missing = [name for name in names if name not in groups]
    if missing:
        raise UserInputError(f"the fit does not record its groups at {', '.join(missing)}; refit with this version")
    levels, above = [], 1
    for name in names:
        count = groups[name].groups
        per_parent = count / above
        rounded = max(1, int(round(per_parent)))
        if abs(per_parent - rounded) > 1e-9:
            notes.append(f"{name}: {per_parent:.2f} units per parent on average in the data; the design has {rounded}")
        levels.append(LevelDesign(name, UnitCount.fixed(rounded), sd=_random(fit, name, "sd(_cons)") or 0.0))
        above = count
    rows = fit.nobs / above
    occasions = None
    if rows >= 1.5:
        occasions = Occasions(name=ROWS_LEVEL, count=int(round(rows)))
        bottom = groups[names[-1]]
        spread = f" (from {bottom.min} to {bottom.max})" if bottom.min != bottom.max else ""
        notes.append(f"{names[-1]}: {rows:.2f} rows per group on average{spread}; the design has "
                     f"{occasions.count} rows ({ROWS_LEVEL}) in every group")
    return levels, occasions


def _observed_levels(fit: FitResult, frame: pd.DataFrame,
                     notes: list[str]) -> tuple[list[LevelDesign], Occasions | None]:
    """Levels whose units per parent are the data's own group sizes; the rows per lowest-level
    group become a level ``obs`` (sd 0) with the observed row counts. Where every parent has the
    same size the count is simply fixed (and equal rows per group are occasions, as with averages)."""
    spec = fit.spec
    names = spec.level_names
    present = [name for name in spec.variables() if name in frame.columns]
    used = frame.dropna(subset=present)  # the rows the fit used: complete in every model variable
    groups = {count.level: count.groups for count in fit.groups}
    levels = []
    for depth, name in enumerate(names):
        if depth == 0:
            sizes = np.array([used[name].nunique()])
        else:
            sizes = used.groupby(names[:depth], sort=False)[name].nunique().to_numpy()
        found = int(used.groupby(names[: depth + 1], sort=False).ngroups)
        if found != groups[name]:
            raise UserInputError(f"--data does not match the fit: it has {found} {name} groups in the rows the "
                                 f"model uses, the fit {groups[name]}")
        balanced = sizes.min() == sizes.max()
        units = UnitCount.fixed(int(sizes[0])) if balanced else UnitCount.empirical(sizes)
        if not balanced:
            notes.append(f"{name}: units per parent drawn from the data's {len(sizes)} group sizes "
                         f"({units.min}..{units.max}, mean {units.expected():.2f})")
        levels.append(LevelDesign(name, units, sd=_random(fit, name, "sd(_cons)") or 0.0))
    rows = used.groupby(names, sort=False).size().to_numpy()
    if len(used) != fit.nobs:
        raise UserInputError(f"--data does not match the fit: {len(used):,} complete rows, the fit used {fit.nobs:,}")
    if rows.max() > 1 and rows.min() == rows.max():
        return levels, Occasions(name=ROWS_LEVEL, count=int(rows[0]))
    if rows.max() > 1:
        bottom = UnitCount.empirical(rows)
        levels.append(LevelDesign(ROWS_LEVEL, bottom, sd=0.0))
        notes.append(f"{names[-1]}: rows per group drawn from the data's {len(rows)} group sizes "
                     f"({bottom.min}..{bottom.max}, mean {bottom.expected():.2f}), one row per unit of a level "
                     f"{ROWS_LEVEL} with no variance of its own")
    return levels, None


def _random(fit: FitResult, level: str, param: str) -> float | None:
    for row in fit.random:
        if row.level == level and row.param == param:
            return float(row.estimate)
    return None


def _attach_slopes(design: Design, fit: FitResult, notes: list[str]) -> None:
    variables = set(design.variable_levels())
    for level_spec, level in zip(fit.spec.levels, design.levels):
        for slope in level_spec.slopes:
            sd = _random(fit, level.name, f"sd({slope})")
            if slope not in variables:
                notes.append(f"random slope on {slope} at {level.name} dropped: {slope} is not a variable of the design")
                continue
            corr = _random(fit, level.name, f"corr({slope},_cons)") or 0.0
            level.slopes.append(RandomSlope(slope, sd=sd or 0.0, corr=corr))
        for row in fit.random:
            if row.level == level.name and row.param.startswith("corr(") and not row.param.endswith(",_cons)"):
                notes.append(f"{level.name}: {row.param} = {row.estimate:.3f} dropped (a design's slopes are "
                             f"correlated only with the intercept)")


def _kept_level(level, design: Design):
    from engine.model_spec import Level

    kept = [slope for slope in level.slopes
            if any(s.variable == slope for s in design.level(level.name).slopes)]
    return Level(name=level.name, slopes=kept, intercept=level.intercept,
                 covariance=level.covariance if kept else "independent")


def _model_text(spec: ModelSpec) -> str:
    text = spec.to_stata()
    return text[len("mixed "):] if text.startswith("mixed ") else text


# ----- variables from the data ------------------------------------------------------------------
def _data_rows(data: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    missing = [name for name in spec.level_names if name not in data.columns]
    if missing:
        raise UserInputError(f"the data have no column {missing[0]!r}, a level of the fitted model")
    return data


def _varying_level(frame: pd.DataFrame, column: str, spec: ModelSpec) -> str:
    """The outermost level whose groups hold one value of ``column`` each (else "observation")."""
    values = frame[column]
    for depth in range(len(spec.levels)):
        keys = [frame[name] for name in spec.level_names[: depth + 1]]
        if (values.groupby(keys, sort=False).nunique(dropna=True) <= 1).all():
            return spec.level_names[depth]
    return OBSERVATION


def _unit_values(frame: pd.DataFrame, column: str, level: str, spec: ModelSpec) -> np.ndarray:
    if level == OBSERVATION:
        values = frame[column]
    else:
        keys = spec.level_names[: spec.level_names.index(level) + 1]
        values = frame.groupby(keys, sort=False)[column].first()
    return pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)


def _covariate(term: str, coef: float, frame: pd.DataFrame, spec: ModelSpec) -> CovariateDesign:
    level = _varying_level(frame, term, spec)
    values = _unit_values(frame, term, level, spec)
    if values.size and set(np.unique(values)) <= {0.0, 1.0}:
        return CovariateDesign(term, level=level, distribution="binary", coef=coef,
                               probability=float(values.mean()))
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return CovariateDesign(term, level=level, distribution="normal", coef=coef,
                           mean=float(values.mean()) if values.size else 0.0, sd=sd)


def _treatment(term: str, coef: float, frame: pd.DataFrame | None, spec: ModelSpec, level: str | None,
               notes: list[str]) -> TreatmentDesign:
    share = 0.5
    if frame is not None and term in frame.columns:
        found = _varying_level(frame, term, spec)
        values = _unit_values(frame, term, found, spec)
        if not set(np.unique(values)) <= {0.0, 1.0}:
            raise UserInputError(f"--treatment {term}: a treatment is 0/1, but the data's {term} has other values")
        level = level or found
        share = float(values.mean()) if values.size else 0.5
        share = min(max(share, 0.01), 0.99)
    elif level is None:
        level = spec.level_names[0]
        notes.append(f"{term}: randomised at the top level, {level} (a cluster-randomised trial); half the units treated")
    if level != OBSERVATION and level not in spec.level_names:
        raise UserInputError(f"treatment level {level!r} is not a level of the fit ({', '.join(spec.level_names)}) "
                             f"or {OBSERVATION!r}")
    notes.append(f"{term}: effect {coef:.4g} as fitted, a fixed allocation of a share {share:.3g} of the "
                 f"{level} units")
    return TreatmentDesign(name=term, effect=coef, probability=round(share, 6), level=level, allocation="fixed")


def load_fit(path: str) -> FitResult:
    """Read a FitResult written by ``fit --json``; errors name the file."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UserInputError(f"cannot read fit file {path}: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"fit file {path} is not valid JSON: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("fits"), list) and len(data["fits"]) == 1:
        data = data["fits"][0]
    if not isinstance(data, dict) or "fixed" not in data or "estimator" not in data:
        raise UserInputError(f"fit file {path}: expected the JSON of 'fit --json' (a fit result)")
    try:
        return FitResult.from_dict(data)
    except (TypeError, ValueError, KeyError) as error:
        raise UserInputError(f"fit file {path}: malformed field ({error})") from None
