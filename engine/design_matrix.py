"""Fixed-effects design matrices from Stata factor-variable terms, built column by column.

The columns are the ones Stata creates, named as Stata names them (``1.sector``,
``c.ses#c.ses``, ``1.sector#c.ses``, ``2.a#3.b``, ``_cons`` last). The rules:

- a factor's levels are its distinct values in the rows used (whole numbers or text; a 0/1
  bool column is 0/1); its base level is the lowest unless ``ib#.``/``ibn.`` say otherwise;
- a term is the product of its parts; for a term with factors there is one column per
  combination of levels (the first factor varying slowest);
- a combination is left out as a base cell when the product of its non-base parts is another
  term of the model (the empty product is the constant, which counts even under
  ``noconstant``, as Stata keeps base levels out unless ``ibn.`` is written). So ``i.a##c.x``
  gives ``1.a#c.x`` but ``i.a#c.x`` alone gives ``0.a#c.x`` and ``1.a#c.x``, and ``i.a#i.b``
  alone keeps every cell but the base-by-base one -- as Stata does.

Every term must keep at least one column. An interaction cell with no rows (an empty cell),
or one collinear with earlier columns because of empty cells, is left out with a note, as
Stata and lme4 do; any other column that is zero or collinear is an error naming its term.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.errors import UserInputError
from engine.stata_terms import (CONSTANT_NAME, CONTINUOUS, FACTOR, LEVEL, Term, TermPart, parse_terms,
                                stata_terms_to_formula, term_variables)

__all__ = ["FixedDesign", "build_fixed_design", "first_non_numeric",
           "stata_terms_to_formula", "term_variables"]

COLLINEAR_TOLERANCE = 1e-7


@dataclass
class FixedDesign:
    """The fixed-effects design: matrix (rows x columns), Stata column names (`_cons` last), notes."""

    matrix: np.ndarray
    names: list[str]
    notes: list[str] = field(default_factory=list)  # columns left out (empty cells), for the result

    @property
    def has_constant(self) -> bool:
        return CONSTANT_NAME in self.names


def first_non_numeric(values: pd.Series):
    """The first value of ``values`` that is not a number (for messages), or None if all are."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        return values[bad].iloc[0]
    return None


# ----- variables: numbers and factor levels ----------------------------------------------------
def _continuous_values(data: pd.DataFrame, variable: str) -> np.ndarray:
    series = data[variable]
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(series):
        example = first_non_numeric(series)
        shown = f" (e.g. {example!r})" if example is not None else ""
        raise UserInputError(
            f"column {variable!r} is not numeric{shown}; write i.{variable} to treat it as categorical "
            f"(factor({variable}) in an lme4 formula)")
    values = series.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        label = series.index[row]
        where = f"data row {label + 1}" if isinstance(label, (int, np.integer)) else f"row {label!r}"
        raise UserInputError(f"column {variable!r} has an infinite value ({values[row]:g} in {where}); "
                             f"recode it or mark it missing")
    return values


def _level_text(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass
class _Factor:
    """A categorical variable in the rows used: codes 0..k-1 and the level names."""

    codes: np.ndarray
    levels: list[str]
    counts: np.ndarray


def _factor(data: pd.DataFrame, variable: str, term: str) -> _Factor:
    series = data[variable]
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(int)
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=float)
        whole = np.isfinite(values) & (values == np.floor(values))
        if not whole.all():
            bad = values[np.flatnonzero(~whole)[0]]
            raise UserInputError(
                f"term {term!r}: {variable!r} has the value {bad:g}; a factor's levels must be whole numbers "
                f"or text (as in Stata); round or recode it, or use c.{variable}")
        codes, uniques = pd.factorize(values.astype(np.int64), sort=True)
        levels = [str(int(u)) for u in uniques]
    elif isinstance(series.dtype, pd.CategoricalDtype):
        present = series.cat.remove_unused_categories()
        codes = present.cat.codes.to_numpy()
        levels = [_level_text(c) for c in present.cat.categories]
    else:
        codes, uniques = pd.factorize(series.astype(str).to_numpy(), sort=True)
        levels = [str(u) for u in uniques]
    codes = np.asarray(codes, dtype=np.int64).ravel()
    return _Factor(codes, levels, np.bincount(codes, minlength=len(levels)))


def _base_index(part: TermPart, factor: _Factor, term: str) -> int | None:
    if part.base is None:
        return None
    if part.base in ("lowest", "first"):
        return 0
    if part.base == "last":
        return len(factor.levels) - 1
    if part.base == "freq":
        return int(np.argmax(factor.counts))  # ties go to the lowest level
    if part.base not in factor.levels:
        raise UserInputError(
            f"term {term!r}: {part.variable!r} has no level {part.base} in the rows used "
            f"(its levels: {', '.join(factor.levels[:10])}{', ...' if len(factor.levels) > 10 else ''})")
    return factor.levels.index(part.base)


# ----- columns ------------------------------------------------------------------------------------
@dataclass
class _Column:
    name: str
    values: np.ndarray
    term: Term


class _Variables:
    """Each variable's numbers or factor coding, made once per design (a variable recurs across terms)."""

    def __init__(self, data: pd.DataFrame):
        self.data = data
        self._made: dict[tuple[str, str], object] = {}

    def continuous(self, variable: str) -> np.ndarray:
        key = (CONTINUOUS, variable)
        if key not in self._made:
            self._made[key] = _continuous_values(self.data, variable)
        return self._made[key]

    def factor(self, variable: str, term: str) -> _Factor:
        key = (FACTOR, variable)
        if key not in self._made:
            self._made[key] = _factor(self.data, variable, term)
        return self._made[key]


def _term_columns(variables: _Variables, term: Term, present: set[tuple]) -> list[_Column]:
    """The columns of one term, leaving out base cells: those whose non-base parts form one of
    the ``present`` terms (the other terms of the model, and the constant)."""
    data = variables.data
    continuous = np.ones(len(data))
    level_indicator = np.ones(len(data))
    factor_parts = []  # (position, part, factor, base index)
    for position, part in enumerate(term.parts):
        if part.kind == CONTINUOUS:
            continuous = continuous * variables.continuous(part.variable)
        elif part.kind == LEVEL:
            factor = variables.factor(part.variable, term.written)
            if part.level not in factor.levels:
                raise UserInputError(
                    f"term {term.written!r}: {part.variable!r} has no level {part.level} in the rows used")
            level_indicator = level_indicator * (factor.codes == factor.levels.index(part.level))
        else:
            factor = variables.factor(part.variable, term.written)
            factor_parts.append((position, part, factor, _base_index(part, factor, term.written)))
    base_product = continuous * level_indicator
    columns = []
    for cell in itertools.product(*(range(len(f.levels)) for _, _, f, _ in factor_parts)):
        non_base = [p for p in term.parts if p.kind != FACTOR]
        non_base += [part for (_, part, _, base), code in zip(factor_parts, cell) if code != base]
        if _key(non_base) in present:
            continue  # a base cell: its column lies in the span of a term already in the model
        values = base_product
        names = [_part_name(p, len(term.parts)) for p in term.parts]
        for (position, part, factor, _), code in zip(factor_parts, cell):
            values = values * (factor.codes == code)
            names[position] = f"{factor.levels[code]}.{part.variable}"
        columns.append(_Column("#".join(names), values, term))
    return columns


def _part_name(part: TermPart, n_parts: int) -> str:
    if part.kind == CONTINUOUS:
        return f"c.{part.variable}" if n_parts > 1 else part.variable
    return part.stata  # LEVEL parts; FACTOR parts are replaced by their level


def _key(parts: list[TermPart]) -> tuple:
    return Term(tuple(parts), "").key


def build_fixed_design(data: pd.DataFrame, terms: list[str], constant: bool = True) -> FixedDesign:
    """Design matrix for Stata-style terms on ``data`` (already free of missing values).

    Parameters
    ----------
    data : pandas.DataFrame
        The rows used.
    terms : list of str
        The fixed-effect terms as written (``ses``, ``c.ses#c.ses``, ``i.sector##c.ses``, ``ib2.a``).
    constant : bool
        Whether the design has the constant ``_cons`` (listed last, as in Stata).

    Returns
    -------
    FixedDesign

    Raises
    ------
    UserInputError
        For an unknown or non-numeric column, a term that yields no column, or a column that is
        zero or collinear (other than an empty interaction cell), naming the term.
    """
    parsed = parse_terms(terms)
    for variable in term_variables(terms):
        if variable not in data.columns:
            raise UserInputError(f"unknown column {variable!r} in the fixed effects")
    # Lower-order terms anywhere in the model (and the empty product, the constant) rule out
    # base cells, so `i.a#c.x c.x` is as full-rank as `c.x i.a#c.x` (R's rule; Stata would
    # instead omit the later c.x as collinear: the same fit).
    in_model = {term.key for term in parsed} | {()}
    columns: list[_Column] = []
    variables = _Variables(data)
    for term in parsed:
        made = _term_columns(variables, term, in_model - {term.key})
        if not made:
            single = [p.variable for p in term.parts if p.kind == FACTOR and data[p.variable].nunique() == 1]
            why = (f"{single[0]!r} has a single value in the rows used" if single
                   else f"every cell of {term.stata} is a base cell of other terms in the model")
            raise UserInputError(f"term {term.written!r} adds no column: {why}")
        columns += made
    notes: list[str] = []
    columns = _drop_empty_cells(columns, notes)
    if constant:
        columns.append(_Column(CONSTANT_NAME, np.ones(len(data)), Term((), CONSTANT_NAME)))
    matrix = np.column_stack([c.values for c in columns]) if columns else np.zeros((len(data), 0))
    kept = _independent_columns(columns, matrix, parsed, notes)
    if len(kept) < len(columns):
        matrix, columns = matrix[:, kept], [columns[j] for j in kept]
    return FixedDesign(np.ascontiguousarray(matrix, dtype=float), [c.name for c in columns], notes)


def _droppable(column: _Column) -> bool:
    """An interaction column with a factor: Stata and lme4 leave such a column out when its cell
    is empty or, through empty cells, collinear; anything else is the user's to fix."""
    return column.term.is_interaction and column.term.has_factor


def _drop_empty_cells(columns: list[_Column], notes: list[str]) -> list[_Column]:
    kept = []
    for column in columns:
        if not np.any(column.values):
            if _droppable(column):
                notes.append(f"{column.name} omitted: that cell of {column.term.stata} has no observations "
                             f"(an empty cell), as Stata and lme4 omit it.")
                continue
            raise UserInputError(
                f"fixed-effect column {column.name!r} (term {column.term.written!r}) is zero in every row used")
        kept.append(column)
    return kept


def _independent_columns(columns: list[_Column], matrix: np.ndarray, parsed: list[Term],
                         notes: list[str]) -> list[int]:
    """Positions of the columns kept: interaction columns made collinear by empty cells are left
    out with a note; any other collinearity is refused naming the term.

    The constant is tested first (Stata never drops it); then the columns in order. Each column's
    part not explained by the ones kept before it (a Cholesky factor of the Gram matrix of
    unit-scaled columns, O(rows x columns^2)) must have relative norm above the tolerance.
    """
    if not columns:
        return []
    n_rows = matrix.shape[0]
    order = sorted(range(len(columns)), key=lambda j: columns[j].name != CONSTANT_NAME)
    if n_rows < len(order):
        raise UserInputError(f"the fixed effects have {len(order)} columns but only {n_rows} observations")
    gram = (matrix.T @ matrix)[np.ix_(order, order)]
    scale = np.sqrt(np.diag(gram))
    gram = gram / np.outer(scale, scale)
    kept: list[int] = []  # positions in `order`
    factor = np.zeros_like(gram)
    for j in range(len(order)):
        column = columns[order[j]]
        residual = gram[j, j] - factor[j, kept] @ factor[j, kept]
        if residual < COLLINEAR_TOLERANCE ** 2:
            names = [repr(columns[order[k]].name) for k in kept]
            others = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            if _droppable(column):
                notes.append(f"{column.name} omitted because of collinearity with {others} "
                             f"(empty cells of {column.term.stata}), as Stata and lme4 omit it.")
                continue
            where = f" (term {column.term.written!r})" if column.term.written != column.name else ""
            hint = ""
            if any(part.kind == FACTOR and part.base is None for part in column.term.parts):
                hint = "; ibn. keeps every level, so add noconstant to the fixed part or write i. instead"
            raise UserInputError(f"the fixed-effects design is singular: {column.name!r}{where} is collinear with "
                                 f"{others or 'nothing'}{hint}")
        factor[j, j] = np.sqrt(residual)
        later = np.arange(j + 1, len(order))
        factor[later, j] = (gram[later, j] - factor[np.ix_(later, kept)] @ factor[j, kept]) / factor[j, j]
        kept.append(j)
    kept_columns = sorted(order[k] for k in kept)
    result = [columns[j] for j in kept_columns]
    for term in parsed:
        # An interaction inside a##b whose every cell is empty is left out like its cells (Stata
        # shows it as "(empty)"); a term written on its own must keep a column.
        from_factorial = "##" in term.written and term.is_interaction and term.has_factor
        if not from_factorial and not any(c.term is term for c in result):
            raise UserInputError(f"term {term.written!r} ({term.stata}) has no column left: all of its cells are "
                                 f"empty or collinear with earlier terms")
    return kept_columns

