"""Fixed-effects design matrices from Stata-style terms, built with formulaic.

Stata notation: ``x`` continuous, ``i.x`` categorical (lowest level is the base), ``c.x``
continuous, ``a#b`` interaction only, ``a##b`` main effects and interaction. As in Stata, an
unprefixed variable inside an interaction is categorical. Columns are named as Stata names them
(``1.sector``, ``c.meanses#c.ses_c``, ``_cons``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import UserInputError

_FACTOR_PREFIX = re.compile(r"^i\.", re.IGNORECASE)
_CONT_PREFIX = re.compile(r"^c\.", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _split_interaction(term: str) -> tuple[list[str], bool]:
    """Return the factors of a term and whether it is a full factorial (##)."""
    if "##" in term:
        return term.split("##"), True
    return term.split("#"), False


def _variable_of(factor: str) -> str:
    name = _CONT_PREFIX.sub("", _FACTOR_PREFIX.sub("", factor))
    if not name:
        raise UserInputError(f"empty variable name in term {factor!r}")
    if re.match(r"^i[bn0-9]", factor, re.IGNORECASE) and "." in factor:
        raise UserInputError(f"term {factor!r}: base-level prefixes (ib#.) are not supported; use i.x")
    return name


def term_variables(terms: list[str]) -> list[str]:
    """The data columns that Stata-style terms refer to, in order of first appearance."""
    names: list[str] = []
    for term in terms:
        factors, _ = _split_interaction(term)
        names += [_variable_of(f) for f in factors]
    return list(dict.fromkeys(names))


def _quote(name: str) -> str:
    return name if _IDENTIFIER.match(name) else f"`{name}`"


def _factor_to_formula(factor: str, in_interaction: bool) -> str:
    variable = _quote(_variable_of(factor))
    if _FACTOR_PREFIX.match(factor) or (in_interaction and not _CONT_PREFIX.match(factor)):
        return f"C({variable})"
    return variable


def stata_terms_to_formula(terms: list[str], constant: bool = True) -> str:
    """Right-hand side of a formulaic / lme4 formula for Stata-style terms."""
    pieces = []
    for term in terms:
        factors, full = _split_interaction(term)
        interaction = len(factors) > 1
        parts = [_factor_to_formula(f, interaction) for f in factors]
        pieces.append(("*" if full else ":").join(parts))
    if not constant:
        pieces.insert(0, "0")
    return " + ".join(pieces) if pieces else "1"


_LEVEL_COLUMN = re.compile(r"^C\((.+?)\)\[(?:T\.)?(.+)\]$")


def _stata_column_name(name: str) -> str:
    if name == "Intercept":
        return "_cons"
    pieces = name.split(":")
    out = []
    for piece in pieces:
        match = _LEVEL_COLUMN.match(piece)
        if match:
            variable, level = match.group(1).strip("`"), match.group(2)
            out.append(f"{level}.{variable}")
        else:
            variable = piece.strip("`")
            out.append(f"c.{variable}" if len(pieces) > 1 else variable)
    return "#".join(out)


@dataclass
class FixedDesign:
    """The fixed-effects design: matrix (rows x columns) and Stata column names (`_cons` last)."""

    matrix: np.ndarray
    names: list[str]

    @property
    def has_constant(self) -> bool:
        return "_cons" in self.names


def build_fixed_design(data: pd.DataFrame, terms: list[str], constant: bool = True) -> FixedDesign:
    """Design matrix for the terms on ``data`` (already free of missing values)."""
    import formulaic

    for variable in term_variables(terms):
        if variable not in data.columns:
            raise UserInputError(f"unknown column {variable!r} in the fixed effects")
    for term in terms:
        factors, _ = _split_interaction(term)
        for factor in factors:
            variable = _variable_of(factor)
            categorical = _FACTOR_PREFIX.match(factor) or (len(factors) > 1 and not _CONT_PREFIX.match(factor))
            if not categorical and not pd.api.types.is_numeric_dtype(data[variable]):
                raise UserInputError(
                    f"column {variable!r} is not numeric (e.g. {data[variable].iloc[0]!r}); "
                    f"write i.{variable} to treat it as categorical")
    formula = stata_terms_to_formula(terms, constant)
    try:
        matrix = formulaic.model_matrix(formula, data, ensure_full_rank=True, na_action="raise")
    except Exception as error:  # formulaic reports parse problems with its own exception types
        raise UserInputError(f"cannot build the fixed effects from {' '.join(terms) or '(constant only)'}: {error}") from None
    names = [_stata_column_name(c) for c in matrix.columns]
    values = np.asarray(matrix, dtype=float)
    if "_cons" in names:  # Stata lists the constant last
        order = [i for i, n in enumerate(names) if n != "_cons"] + [names.index("_cons")]
        values, names = values[:, order], [names[i] for i in order]
    design = FixedDesign(np.ascontiguousarray(values), names)
    check_full_rank(design)
    return design


def check_full_rank(design: FixedDesign, tolerance: float = 1e-7) -> None:
    """Refuse a singular design, naming the first column that depends on the ones before it.

    Column by column (a Cholesky factorisation of the Gram matrix of unit-scaled columns): a
    column whose part not explained by the earlier columns has relative norm below ``tolerance``
    is collinear. The Gram matrix keeps this O(rows x columns^2) on millions of rows.
    """
    matrix = design.matrix
    n_rows, n_cols = matrix.shape
    if n_cols == 0:
        return
    if n_rows < n_cols:
        raise UserInputError(f"the fixed effects have {n_cols} columns but only {n_rows} observations")
    gram = matrix.T @ matrix
    scale = np.sqrt(np.diag(gram))
    for j, name in enumerate(design.names):
        if scale[j] == 0:
            raise UserInputError(f"fixed-effect column {name!r} is zero in every row used")
    gram = gram / np.outer(scale, scale)
    factor = np.zeros_like(gram)
    for j in range(n_cols):
        residual = gram[j, j] - factor[j, :j] @ factor[j, :j]
        if residual < tolerance ** 2:
            others = ", ".join(repr(n) for n in design.names[:j])
            raise UserInputError(
                f"the fixed-effects design is singular: {design.names[j]!r} is collinear with {others or 'nothing'}")
        factor[j, j] = np.sqrt(residual)
        factor[j + 1:, j] = (gram[j + 1:, j] - factor[j + 1:, :j] @ factor[j, :j]) / factor[j, j]
