"""Predictions after a mixed fit, as Stata's ``predict`` after ``mixed``: per row and per group.

Per row (:func:`row_predictions`): ``xb`` (the fixed part X b), each level's random effects
(the group's BLUP of every random term; ``re_<level>_<term>``, e.g. ``re_school__cons``),
``fitted`` (X b + Z u, all levels) and ``residual`` (y - fitted), in the data's own row order
with its level ids; rows the fit dropped for missing values keep their ids, ``in_sample`` is
False and the predictions are empty.

Per group (:func:`random_effects_table`): one row per level, group and random term with the
BLUP (``estimate``) and its conditional standard deviation given the data and the fixed
effects (``se``; lme4's ``ranef(condVar = TRUE)``). Stata's ``reses``, as we read its methods
and formulas, are the comparative standard errors sd(u_hat - u), which also count the
uncertainty of the fixed effects and so are slightly larger.

The BLUPs and fitted values themselves are computed once by the fit (``FitResult.level_effects``,
``fitted``, ``residuals``); here they are laid out against the data's rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import UserInputError
from engine.results import FitResult

IN_SAMPLE = "in_sample"


def random_effect_column(level: str, term: str) -> str:
    """Name of the per-row column holding ``level``'s predicted random effect of ``term``."""
    return f"re_{level}_{term}"


def row_predictions(frame: pd.DataFrame, result: FitResult) -> pd.DataFrame:
    """Per-row predictions of a mixed fit, aligned with ``frame``'s rows.

    Parameters
    ----------
    frame : DataFrame
        The data the model was fitted to (before centring; the fit's centrings are re-applied).
    result : FitResult
        A mixed fit of ``frame`` with predictions (``fit_mixed(..., predict=True)``).

    Returns
    -------
    DataFrame
        One row per row of ``frame``, in its order: ``row`` (1-based position), the level ids,
        ``in_sample``, ``xb``, one ``re_<level>_<term>`` column per random effect, ``fitted``
        and ``residual`` (missing for rows outside the estimation sample).
    """
    if result.family not in (None, "gaussian"):  # binary and count outcomes: means on the outcome's scale
        from engine.glmm.predictions import glmm_row_predictions

        return glmm_row_predictions(frame, result)
    data, hierarchy = _estimation_rows(frame, result)
    if result.spec.levels and not result.level_effects:
        raise UserInputError("the fit was made without predictions; refit with predictions switched on")
    beta = np.array([row.coef for row in result.fixed], dtype=float)
    if data.design.names != [row.term for row in result.fixed]:
        raise UserInputError("the data's fixed-effect columns differ from the fit's: was the fit made on other data?")
    xb = data.design.matrix @ beta
    effects: dict[str, np.ndarray] = {}
    for index, level_effects in enumerate(result.level_effects):
        # Crossed factors are not levels of one hierarchy: their groups are matched on the ids.
        codes = (group_of_each_row(data.frame, level_effects.group_ids) if result.spec.has_crossed
                 else hierarchy.row_codes[index])
        estimates = np.asarray(level_effects.estimates)
        for term in result.spec.levels[index].terms:  # Stata's order
            effects[random_effect_column(level_effects.level, term)] = estimates[codes, level_effects.terms.index(term)]
    fitted = xb.copy()
    for index, level in enumerate(result.spec.levels):
        for term in level.terms:
            values = 1.0 if term == "_cons" else data.frame[term].to_numpy(dtype=float)
            fitted += values * effects[random_effect_column(level.name, term)]
    if result.fitted is not None:
        # the fit's own fitted values and outcome must be these rows': predictions of other data would be wrong
        saved = np.asarray(result.fitted, dtype=float)
        scale = 1e-8 * max(1.0, float(np.max(np.abs(data.y))))
        if (saved.shape != fitted.shape or not np.allclose(saved, fitted, rtol=1e-8, atol=scale)
                or (result.residuals is not None and not np.allclose(saved + np.asarray(result.residuals), data.y,
                                                                     rtol=1e-8, atol=scale))):
            raise UserInputError("the fit was made on other data: refit the model to see its predictions")
    positions = data.frame.index.to_numpy()
    n = len(frame)
    out = pd.DataFrame({"row": np.arange(1, n + 1)})
    for name in result.spec.level_names:
        out[name] = frame[name].to_numpy()
    in_sample = np.zeros(n, dtype=bool)
    in_sample[positions] = True
    out[IN_SAMPLE] = in_sample
    for name, values in [("xb", xb), *effects.items(), ("fitted", fitted), ("residual", data.y - fitted)]:
        column = np.full(n, np.nan)
        column[positions] = values
        out[name] = column
    return out


def random_effects_table(result: FitResult) -> pd.DataFrame:
    """The predicted random effects of every level in long form (Stata's ``reffects`` and ``reses``).

    Parameters
    ----------
    result : FitResult
        A mixed fit with predictions.

    Returns
    -------
    DataFrame
        Columns ``level``, the id column of every level (outermost first; the ids below a
        row's level are empty), ``term``, ``estimate`` and ``se`` (the conditional sd given the
        data and the fixed effects). Levels outermost first, then groups, then terms in
        Stata's order (slopes, then ``_cons``).
    """
    names = result.spec.level_names if result.spec else []
    pieces = []
    for level_effects in result.level_effects:
        estimates = np.asarray(level_effects.estimates, dtype=float)
        errors = np.asarray(level_effects.std_errors, dtype=float)
        ids = level_effects.group_ids.reset_index(drop=True)
        spec_level = next(level for level in result.spec.levels if level.name == level_effects.level)
        for term in spec_level.terms:  # Stata's order
            j = level_effects.terms.index(term)
            piece = pd.concat([pd.Series(level_effects.level, index=ids.index, name="level"), ids], axis=1)
            piece["term"] = term
            piece["estimate"] = estimates[:, j]
            piece["se"] = errors[:, j]
            piece["_group"] = np.arange(len(ids))
            piece["_term"] = spec_level.terms.index(term)
            pieces.append(piece)
    if not pieces:
        return pd.DataFrame(columns=["level", *names, "term", "estimate", "se"])
    table = pd.concat(pieces, ignore_index=True)
    order = {name: i for i, name in enumerate(names)}
    table["_level"] = table["level"].map(order)
    table = table.sort_values(["_level", "_group", "_term"], kind="stable").reset_index(drop=True)
    for level_effects in result.level_effects:  # ids missing below a row's level would turn integers into floats
        for name, dtype in level_effects.group_ids.dtypes.items():
            if dtype.kind in "iu" and table[name].dtype.kind == "f":
                table[name] = table[name].astype("Int64")
    return table[["level", *names, "term", "estimate", "se"]]


def group_of_each_row(rows: pd.DataFrame, group_ids: pd.DataFrame) -> np.ndarray:
    """The index of each row's group in ``group_ids`` (one row per group, its id columns), matched on
    those columns: independent of how the fit numbered the groups (nested or crossed)."""
    keys = list(group_ids.columns)
    table = group_ids.reset_index(drop=True).assign(_group=np.arange(len(group_ids)))
    matched = rows[keys].reset_index(drop=True).merge(table, on=keys, how="left")["_group"]
    if matched.isna().any():
        raise UserInputError("the fit was made on other data: some rows' groups are not among the fit's groups")
    return matched.to_numpy(dtype=np.int64)


def _estimation_rows(frame: pd.DataFrame, result: FitResult):
    """The fit's rows of ``frame`` (index = positions in ``frame``) and their grouping, rebuilt
    exactly as the fit built them, so group codes match ``result.level_effects``."""
    from engine.mixed.hierarchy import build_hierarchy
    from engine.mixed.prepare import prepare_model_data

    if result.spec is None or result.estimator != "mixed":
        raise UserInputError("predictions need a mixed-model fit")
    data = prepare_model_data(frame.reset_index(drop=True), result.spec)
    if len(data.y) != result.nobs:
        raise UserInputError(f"the data have {len(data.y)} usable rows but the fit used {result.nobs}: "
                             f"give the data the model was fitted to")
    return data, None if result.spec.has_crossed else build_hierarchy(data.frame, result.spec.level_names)


def check_output_path(path: str, option: str) -> None:
    """Refuse an output path whose format or folder is wrong before any work is done."""
    from pathlib import Path

    from engine.data_io import WRITE_EXTENSIONS

    target = Path(path)
    if target.suffix.lower() not in WRITE_EXTENSIONS:
        raise UserInputError(f"{option} {path}: unknown format {target.suffix or '(none)'!r}; "
                             f"use {', '.join(WRITE_EXTENSIONS)}")
    if not target.parent.is_dir():
        raise UserInputError(f"{option} {path}: the folder {target.parent} does not exist")


def write_predictions(frame: pd.DataFrame, result: FitResult, path: str) -> None:
    """Write :func:`row_predictions` to ``path`` (.csv, .parquet, .dta or .sav by extension)."""
    from engine.data_io import write_data

    write_data(row_predictions(frame, result), path)


def write_random_effects(result: FitResult, path: str) -> None:
    """Write :func:`random_effects_table` to ``path`` (.csv, .parquet, .dta or .sav by extension)."""
    from engine.data_io import write_data

    write_data(random_effects_table(result), path)


RELOAD_TOLERANCE = 1e-6  # relative difference of the log-likelihoods of a refit and the saved fit
RELOAD_COEFFICIENT_TOLERANCE = 1e-3  # difference of their coefficients, in standard errors


def prediction_columns(frame: pd.DataFrame, result: FitResult, should_stop=None) -> pd.DataFrame:
    """The per-row prediction columns of ``result`` for ``frame`` (``in_sample``, ``xb``, the random
    effects, ``fitted``, ``residual``), recomputing the predictions of a fit read from a saved project.

    A saved fit keeps its estimates but not its per-group predictions (they are large); it is
    refitted from its own optimum, which gives the same fit, and the log-likelihoods and
    coefficients are checked to agree, so that predictions never come from a fit of other data.

    Parameters
    ----------
    frame : DataFrame
        The data the fit was made on.
    result : FitResult
        A mixed fit.
    should_stop : callable, optional
        Polled by a refit; returning True cancels it.
    """
    if result.estimator != "mixed" or result.spec is None:
        raise UserInputError("predictions are available for mixed-model fits")
    if result.spec.levels and not result.level_effects:
        from engine.mixed import fit_mixed

        refit = fit_mixed(frame, result.spec, start_theta=np.asarray(result.theta) if result.theta else None,
                          should_stop=should_stop)
        same_loglik = (result.loglik is None
                       or abs(refit.loglik - result.loglik) <= RELOAD_TOLERANCE * max(1.0, abs(result.loglik)))
        same_coefficients = [a.term for a in refit.fixed] == [b.term for b in result.fixed] and all(
            abs(a.coef - b.coef) <= RELOAD_COEFFICIENT_TOLERANCE * max(b.se, 1e-12) for a, b in zip(refit.fixed, result.fixed))
        if not (same_loglik and same_coefficients):
            raise UserInputError("the fit was made on other data (its estimates differ on these rows): "
                                 "refit the model to see its predictions")
        result = refit
    rows = row_predictions(frame, result)
    return rows.drop(columns=["row", *result.spec.level_names])
