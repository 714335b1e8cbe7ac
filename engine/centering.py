"""Centring of predictors, as HLM 8 offers it: grand-mean, group-mean, and group means as predictors.

A :class:`Centering` makes one new column from one variable:

* ``grand``: the variable minus its mean over the rows the fit uses;
* ``group``: the variable minus the mean of its group at a level (group-mean centring, "centring
  within cluster");
* ``group_mean``: the mean of the variable in its group at a level, a new level-2 (or higher)
  predictor (e.g. ``meanses``, the school mean of ``ses``).

The list lives on :class:`engine.model_spec.ModelSpec` (``spec.centering``) so that saved projects
reproduce it, and :func:`apply_centering` runs at the top of ``prepare_model_data``: the model's
fixed-effect and random-slope terms then simply name the new columns.

Two rules make the derived columns agree with the fit:

* Means are taken over the estimation sample: rows with a value in every variable the model
  reads (and every variable a centring reads). Rows the fit drops for missing values do not
  move the means, so a grand-mean-centred predictor has mean exactly zero in the fitted rows.
* A group at a model level is the combination of the level's id with every id above it, as in
  the fit (ids that restart within their parent, such as teacher 1 in every school, are handled).
  A level that is not a level of the model is grouped by its own raw values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
import pandas as pd

from engine.errors import UserInputError, require_columns

if TYPE_CHECKING:  # engine.model_spec imports this module
    from engine.model_spec import ModelSpec

#: The kinds of centring and what each one makes, for menus and help texts.
CENTERING_KINDS: dict[str, str] = {
    "grand": "variable minus its grand mean",
    "group": "variable minus the mean of its group at a level (group-mean centring)",
    "group_mean": "mean of the variable in its group at a level (a new higher-level predictor)",
}

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Centering:
    """One derived predictor column.

    Parameters
    ----------
    name : str
        The new column, used by name in the model's terms (e.g. ``ses_c``).
    variable : str
        The numeric column it is made from (e.g. ``ses``).
    kind : str
        ``"grand"``, ``"group"`` or ``"group_mean"`` (see :data:`CENTERING_KINDS`).
    level : str, optional
        The level id whose groups are used; required for ``group`` and ``group_mean``, absent
        for ``grand``.
    """

    name: str
    variable: str
    kind: str = "grand"
    level: Optional[str] = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name or ""):
            raise UserInputError(
                f"centred column name {self.name!r} must start with a letter or '_' and hold only "
                f"letters, digits and '_'")
        if not self.variable:
            raise UserInputError(f"centred column {self.name}: no variable to centre")
        if self.kind not in CENTERING_KINDS:
            raise UserInputError(
                f"centred column {self.name}: kind must be one of {', '.join(CENTERING_KINDS)}, not {self.kind!r}")
        if self.kind == "grand" and self.level:
            raise UserInputError(f"centred column {self.name}: grand-mean centring takes no level ({self.level!r})")
        if self.kind != "grand" and not self.level:
            raise UserInputError(f"centred column {self.name}: {self.kind} centring needs a level, e.g. school")
        if self.name == self.variable:
            raise UserInputError(f"centred column {self.name}: give it a name other than its variable's")

    def describe(self) -> str:
        """One line for reports, e.g. ``ses_c = ses - mean of ses within school``."""
        if self.kind == "grand":
            return f"{self.name} = {self.variable} - grand mean of {self.variable}"
        if self.kind == "group":
            return f"{self.name} = {self.variable} - mean of {self.variable} within {self.level}"
        return f"{self.name} = mean of {self.variable} within {self.level}"

    def to_option(self) -> str:
        """The command-line form: ``NEW=VAR:grand``, ``NEW=VAR:group:LEVEL`` or ``NEW=VAR:LEVEL``
        (the last for ``--group-mean``)."""
        if self.kind == "grand":
            return f"{self.name}={self.variable}:grand"
        if self.kind == "group":
            return f"{self.name}={self.variable}:group:{self.level}"
        return f"{self.name}={self.variable}:{self.level}"

    @classmethod
    def parse_center_option(cls, text: str) -> "Centering":
        """Parse ``--center`` text: ``NEW=VAR:grand`` or ``NEW=VAR:group:LEVEL``."""
        name, variable, rest = _split_option(text, "--center", "NEW=VAR:grand or NEW=VAR:group:LEVEL")
        parts = rest.split(":")
        if parts == ["grand"]:
            return cls(name, variable, "grand")
        if len(parts) == 2 and parts[0] == "group" and parts[1]:
            return cls(name, variable, "group", parts[1])
        raise UserInputError(
            f"--center {text!r}: after the variable write ':grand' or ':group:LEVEL', e.g. ses_c=ses:group:school")

    @classmethod
    def parse_group_mean_option(cls, text: str) -> "Centering":
        """Parse ``--group-mean`` text: ``NEW=VAR:LEVEL``."""
        name, variable, level = _split_option(text, "--group-mean", "NEW=VAR:LEVEL")
        if not level or ":" in level:
            raise UserInputError(f"--group-mean {text!r}: write NEW=VAR:LEVEL, e.g. meanses2=ses:school")
        return cls(name, variable, "group_mean", level)


def _split_option(text: str, option: str, form: str) -> tuple[str, str, str]:
    name, equals, source = text.partition("=")
    variable, colon, rest = source.partition(":")
    name, variable, rest = name.strip(), variable.strip(), rest.strip()
    if not equals or not colon or not name or not variable:
        raise UserInputError(f"{option} {text!r}: write {form}")
    return name, variable, rest


def apply_centering(frame: pd.DataFrame, spec: "ModelSpec") -> pd.DataFrame:
    """Add the columns of ``spec.centering`` to ``frame`` (a new frame; the input is not changed).

    Parameters
    ----------
    frame : DataFrame
        The data, with the variables and level ids the centrings read.
    spec : ModelSpec
        Its ``centering`` list is applied in order (a later centring may read an earlier one's
        column); its levels give the nested grouping; its variables define the estimation
        sample over which means are taken.

    Returns
    -------
    DataFrame
        ``frame`` itself when there is nothing to centre, else a copy with the new columns
        (missing outside the estimation sample).

    Raises
    ------
    UserInputError
        Unknown or non-numeric variable, unknown level, or a new name that is already a column.
    """
    if not spec.centering:
        return frame
    derived = {c.name for c in spec.centering}
    for centering in spec.centering:
        if centering.variable not in derived:
            require_columns([centering.variable], frame.columns, context=f"centred column {centering.name}: ")
        if centering.level:
            require_columns([centering.level], frame.columns, context=f"centred column {centering.name}: level ")
    sample = estimation_sample(frame, data_columns(spec))
    return add_centered_columns(frame, spec.centering, spec.level_names, sample)


def data_columns(spec: "ModelSpec") -> list[str]:
    """The columns of the data a model reads: ``spec.variables()`` with each derived column
    replaced by what it is made from (its variable and level id).

    Parameters
    ----------
    spec : ModelSpec

    Returns
    -------
    list of str
        In order of first use, without repeats.
    """
    derived = {c.name for c in spec.centering}
    names = [v for v in spec.variables() if v not in derived]
    names += [c.variable for c in spec.centering if c.variable not in derived]
    names += [c.level for c in spec.centering if c.level]
    return list(dict.fromkeys(names))


def estimation_sample(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows with a value in every one of ``columns`` (unknown columns raise)."""
    require_columns(columns, frame.columns)
    if not columns:
        return np.ones(len(frame), dtype=bool)
    return frame[list(columns)].notna().all(axis=1).to_numpy()


def add_centered_columns(frame: pd.DataFrame, centerings: Sequence[Centering], level_names: Sequence[str] = (),
                         sample: np.ndarray | None = None) -> pd.DataFrame:
    """Compute each centring's column, in order, over the rows in ``sample``.

    Parameters
    ----------
    frame : DataFrame
    centerings : sequence of Centering
    level_names : sequence of str
        The model's levels, outermost first: a centring at one of them groups by that id
        combined with the ids above it.
    sample : ndarray of bool, optional
        Rows whose values enter the means and receive a value; all rows by default.

    Returns
    -------
    DataFrame
        A copy of ``frame`` with one new float column per centring.
    """
    level_names = list(level_names)
    sample = np.ones(len(frame), dtype=bool) if sample is None else np.asarray(sample, dtype=bool)
    out = frame.copy(deep=False)
    for centering in centerings:
        if centering.name in out.columns:
            raise UserInputError(
                f"centred column {centering.name!r} is already a column of the data; choose another name")
        require_columns([centering.variable], out.columns, context=f"centred column {centering.name}: ")
        if centering.level:
            require_columns([centering.level], out.columns, context=f"centred column {centering.name}: level ")
        source = out[centering.variable]
        check_centring_source(source, centering.variable)
        values = source.to_numpy(dtype=float, na_value=np.nan)
        rows = sample & np.isfinite(values)
        result = np.full(len(out), np.nan)
        if rows.any():
            if centering.kind == "grand":
                result[rows] = values[rows] - values[rows].mean()
            else:
                keys = grouping_columns(centering.level, level_names)
                means = group_means(out.loc[rows, keys], values[rows])
                result[rows] = means if centering.kind == "group_mean" else values[rows] - means
        out[centering.name] = result
    return out


def grouping_columns(level: str, level_names: Sequence[str]) -> list[str]:
    """The id columns that define a group at ``level``: it and every model level above it."""
    level_names = list(level_names)
    if level in level_names:
        return level_names[: level_names.index(level) + 1]
    return [level]


def group_means(ids: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` within each combination of the columns of ``ids``, one entry per row.

    Rows whose ids are missing get NaN (they have no group; the fit rejects them anyway).
    """
    codes = _combined_codes(ids)
    valid = codes >= 0
    result = np.full(values.size, np.nan)
    if not valid.any():
        return result
    n_groups = int(codes[valid].max()) + 1
    sums = np.bincount(codes[valid], weights=values[valid], minlength=n_groups)
    counts = np.bincount(codes[valid], minlength=n_groups)
    result[valid] = (sums / counts)[codes[valid]]
    return result


def _combined_codes(ids: pd.DataFrame) -> np.ndarray:
    """One integer code per distinct combination of the id columns (-1 where any id is missing)."""
    combined = np.zeros(len(ids), dtype=np.int64)
    missing = np.zeros(len(ids), dtype=bool)
    for name in ids.columns:
        codes, uniques = pd.factorize(ids[name].to_numpy())
        missing |= codes < 0
        combined = combined * np.int64(len(uniques) + 1) + codes.astype(np.int64)
        combined, _ = pd.factorize(combined)  # keep the codes small: no overflow with many levels
        combined = combined.astype(np.int64, copy=False)
    combined[missing] = -1
    if missing.any():
        combined[~missing], _ = pd.factorize(combined[~missing])
    return combined


def check_centring_source(source: pd.Series, variable: str) -> None:
    """Raise UserInputError unless ``source``, the column ``variable`` to centre, is numeric.

    Parameters
    ----------
    source : pandas.Series
        The column's values.
    variable : str
        Its name, for the message.
    """
    if not pd.api.types.is_numeric_dtype(source) or pd.api.types.is_bool_dtype(source):
        from engine.design_matrix import first_non_numeric

        offending, example = first_non_numeric(source), source.dropna()
        shown = repr(offending if offending is not None else example.iloc[0]) if len(example) else "no values"
        raise UserInputError(f"cannot centre {variable!r}: it is not numeric (e.g. {shown})")
