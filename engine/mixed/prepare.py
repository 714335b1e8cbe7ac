"""Turn a data frame and a model spec into the numeric pieces the nested criterion needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.centering import apply_centering
from engine.design_matrix import FixedDesign, build_fixed_design, first_non_numeric
from engine.errors import UserInputError, require_columns
from engine.model_spec import ModelSpec


@dataclass
class ModelData:
    """Rows used by the fit (missing values dropped) and the fixed-effects design."""

    frame: pd.DataFrame
    design: FixedDesign
    y: np.ndarray
    dropped_rows: int


def check_column_names(columns, spec: ModelSpec) -> None:
    """Raise UserInputError naming the first variable of ``spec`` that is not among ``columns``.

    Parameters
    ----------
    columns : iterable of str
        The data's column names (with any centred columns the spec makes).
    spec : ModelSpec
        The model whose variables are looked up.
    """
    require_columns(spec.variables(), [str(c) for c in columns])


def check_columns(frame: pd.DataFrame, spec: ModelSpec) -> None:
    if len(frame) == 0:
        raise UserInputError("the data set is empty: no rows to fit")
    check_column_names(frame.columns, spec)
    # True/False outcomes count as 1/0, as in R and in pooled OLS (engine.panel_data).
    if not pd.api.types.is_numeric_dtype(frame[spec.outcome]):
        raise UserInputError(f"the outcome {spec.outcome!r} is not numeric (e.g. {_offending(frame[spec.outcome])})")
    for level in spec.levels:
        missing = int(frame[level.name].isna().sum())
        if missing:
            first = int(np.flatnonzero(frame[level.name].isna().to_numpy())[0])
            raise UserInputError(
                f"level id {level.name!r} has {missing} missing value(s) (first at row {first + 1}); "
                f"every row needs a group at every level")
    check_slope_columns(frame, spec)


def check_slope_columns(frame: pd.DataFrame, spec: ModelSpec) -> None:
    """Raise UserInputError naming the first random slope of ``spec`` whose column is not numeric.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data (slopes not among its columns are left to :func:`check_column_names`).
    spec : ModelSpec
        The model whose random slopes are checked.
    """
    for level in spec.levels:
        for slope in level.slopes:
            if slope in frame.columns and not pd.api.types.is_numeric_dtype(frame[slope]):
                raise UserInputError(f"random slope {slope!r} at level {level.name} is not numeric "
                                     f"(e.g. {_offending(frame[slope])})")


def _offending(values: pd.Series) -> str:
    """A value that makes a column non-numeric, for the message (not merely its first value)."""
    bad = first_non_numeric(values)
    if bad is not None:
        return repr(bad)
    present = values.dropna()
    return repr(present.iloc[0]) if len(present) else "no values"


def no_complete_rows_message(frame: pd.DataFrame, columns: list[str]) -> str:
    """Why listwise deletion over ``columns`` left no rows, naming any column missing in every row.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data before rows were dropped.
    columns : list of str
        The model's variables (the columns a row needs to be used).

    Returns
    -------
    str
        The message of the UserInputError to raise.
    """
    empty = [name for name in dict.fromkeys(columns) if frame[name].isna().all()]
    message = "no rows left after dropping rows with missing values in the model's variables"
    if empty:
        message += f" ({', '.join(map(repr, empty))} {'is' if len(empty) == 1 else 'are'} missing in every row)"
    return message


def prepare_model_data(frame: pd.DataFrame, spec: ModelSpec) -> ModelData:
    """Check the columns, drop rows with missing values listwise, build the fixed design."""
    frame = apply_centering(frame, spec)
    check_columns(frame, spec)
    used = frame[spec.variables()]
    complete = used.notna().all(axis=1).to_numpy()
    dropped = int(complete.size - complete.sum())
    if dropped:
        used = used.loc[complete]
    if len(used) == 0:
        raise UserInputError(no_complete_rows_message(frame, list(used.columns)))
    check_finite(used, spec)
    design = build_fixed_design(used, spec.fixed, constant=spec.constant)
    y = used[spec.outcome].to_numpy(dtype=float)
    if not np.all(np.isfinite(y)):
        raise UserInputError(f"the outcome {spec.outcome!r} has infinite values")
    if np.ptp(y) == 0:
        raise UserInputError(f"the outcome {spec.outcome!r} is the same ({y[0]:g}) in every row used: "
                             f"there is no variation to model")
    for level in spec.levels:
        for slope in level.slopes:
            values = used[slope].to_numpy(dtype=float)
            if np.ptp(values) == 0:
                raise UserInputError(
                    f"random slope {slope!r} at level {level.name} is the same ({values[0]:g}) in every row: "
                    f"it would duplicate the random intercept; leave it out")
    for level in spec.levels:
        check_distinct_random_columns(used, level)
    dof = len(y) - design.matrix.shape[1]
    if dof <= 0:
        raise UserInputError(f"{len(y)} observations are too few for {design.matrix.shape[1]} fixed effects")
    return ModelData(used, design, y, dropped)


def check_finite(used: pd.DataFrame, spec: ModelSpec) -> None:
    """Refuse an infinite value in a numeric model variable (fixed or random-slope column, or the
    outcome), naming the column and the data row (as ``engine.design_matrix`` does)."""
    levels = set(spec.level_names)
    for name in used.columns:
        if name in levels or not pd.api.types.is_numeric_dtype(used[name]) or pd.api.types.is_bool_dtype(used[name]):
            continue
        values = used[name].to_numpy(dtype=float)
        bad = np.flatnonzero(np.isinf(values))
        if bad.size:
            label = used.index[int(bad[0])]
            where = f"data row {label + 1}" if isinstance(label, (int, np.integer)) else f"row {label!r}"
            what = f"the outcome {name!r}" if name == spec.outcome else f"column {name!r}"
            raise UserInputError(f"{what} has an infinite value ({values[bad[0]]:g} in {where}); "
                                 f"recode it or mark it missing")


def check_distinct_random_columns(used: pd.DataFrame, level) -> None:
    """Refuse a level whose random-effect columns repeat one another (the same values under two
    names) or are otherwise linearly dependent: their covariance could not be estimated."""
    slopes = list(dict.fromkeys(level.slopes))
    columns = {name: used[name].to_numpy(dtype=float) for name in slopes}
    for i, first in enumerate(slopes):
        for second in slopes[i + 1:]:
            if np.array_equal(columns[first], columns[second]):
                raise UserInputError(
                    f"random slopes {first!r} and {second!r} at level {level.name} have the same values in "
                    f"every row: they are one random slope under two names; keep one of them")
    terms = [t for t in level.terms if t == "_cons" or t in columns]  # named in Stata's order
    terms = list(dict.fromkeys(terms))
    if len(terms) < 2:
        return
    matrix = np.column_stack([np.ones(len(used)) if t == "_cons" else columns[t] for t in terms])
    matrix = matrix / np.sqrt(np.einsum("ij,ij->j", matrix, matrix))
    eigenvalues = np.linalg.eigvalsh(matrix.T @ matrix)
    if eigenvalues[0] < 1e-10 * eigenvalues[-1]:
        raise UserInputError(
            f"the random effects at level {level.name} ({', '.join(terms)}) are linearly dependent: one of "
            f"these columns is a combination of the others in every row, so their covariance cannot be "
            f"estimated; leave one of them out")


@dataclass
class WorkColumns:
    """The matrix W = [columns | outcome] and where each piece lives in it.

    Fixed-effect columns are centred at their means when the model has a constant (sums of
    squares keep their precision); random-effect columns are never centred, since a random slope
    on x differs from one on x minus its mean. ``shift`` records the centring to undo later.
    """

    matrix: np.ndarray
    x_columns: list[int]
    y_column: int
    level_columns: list[list[int]]
    x_means: np.ndarray  # subtracted from each fixed column (0 where not centred)
    y_mean: float


def build_work_columns(data: ModelData, spec: ModelSpec) -> WorkColumns:
    design = data.design
    names = design.names
    random_vars = {s for level in spec.levels for s in level.slopes}
    centre = design.has_constant
    columns: list[np.ndarray] = []
    x_means = np.zeros(len(names))
    x_columns = []
    ones_index = None
    raw_index: dict[str, int] = {}
    for j, name in enumerate(names):
        column = design.matrix[:, j]
        if name == "_cons":
            ones_index = len(columns)
        elif centre and name not in random_vars:
            x_means[j] = column.mean()
            column = column - x_means[j]
        else:
            raw_index[name] = len(columns)
        x_columns.append(len(columns))
        columns.append(column)
    level_columns = []
    for level in spec.levels:
        indices = []
        for term in level.estimation_terms:
            if term == "_cons":
                if ones_index is None:
                    ones_index = len(columns)
                    columns.append(np.ones(len(data.y)))
                indices.append(ones_index)
            else:
                if term not in raw_index:
                    raw_index[term] = len(columns)
                    columns.append(data.frame[term].to_numpy(dtype=float))
                indices.append(raw_index[term])
        level_columns.append(indices)
    y_mean = float(data.y.mean()) if centre else 0.0
    columns.append(data.y - y_mean)
    matrix = np.column_stack(columns)
    return WorkColumns(matrix, x_columns, len(columns) - 1, level_columns, x_means, y_mean)
