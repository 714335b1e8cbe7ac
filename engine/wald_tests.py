"""Joint Wald tests of fixed-effect terms (Stata's ``test`` / ``testparm``) on a fitted model.

A term names coefficients as the model text does: ``i.sector`` means every level of sector
(``1.sector``, ...), ``c.x#c.x`` the column of that name, ``x`` or ``c.x`` the column ``x``,
``a##b`` the main effects and the interaction; a column name (``2.Type``, ``_cons``) names itself.
The test uses the fit's df method: F with its denominator df (Kenward-Roger's scaled F,
Satterthwaite's as lmerTest's ``anova``), or Wald chi2 with large-sample z statistics.
"""

from __future__ import annotations

import re

from engine.errors import UserInputError
from engine.results import FitResult, JointTest
from engine.stata_terms import CONTINUOUS, parse_terms, term_variables

_CATEGORICAL = re.compile(r"^i\.", re.IGNORECASE)
_CONTINUOUS = re.compile(r"^c\.", re.IGNORECASE)


def columns_for_terms(names: list[str], terms: list[str], continuous: set[str] | None = None,
                      variables: list[str] = ()) -> list[str]:
    """The coefficients the terms name, in the model's order; an unknown term is a UserInputError.

    ``continuous`` (the variables the model uses as continuous, see :func:`continuous_variables`)
    tells a text factor's level ``c`` (column ``c.g``) from a continuous part ``c.g``; without it a
    ``c.`` piece is taken as continuous. ``variables`` (all the model's variables) tells the
    column of level ``a`` of ``grp.v`` from that of level ``a.grp`` of ``v`` (see :func:`factor_level`).
    """
    chosen: set[str] = set()
    for term in terms:
        matched = _columns_for_term(names, term.strip(), continuous, variables)
        if not matched:
            raise UserInputError(f"term {term!r} names no coefficient of the model; its coefficients are "
                                 f"{', '.join(names)}")
        chosen.update(matched)
    return [name for name in names if name in chosen]


def continuous_variables(fixed_terms: list[str]) -> set[str]:
    """The variables that the fixed-effect terms (as written) use as continuous."""
    return {part.variable for term in parse_terms(fixed_terms) for part in term.parts if part.kind == CONTINUOUS}


def factor_level(piece: str, variable: str, variables=()) -> str | None:
    """The level of ``variable`` that the column piece ``LEVEL.VARIABLE`` names, or None.

    Levels may contain dots (``St. Mary``) and so may names (``grp.v``): the piece must end with
    ``.variable``, and no longer name among ``variables`` may end it as well.
    """
    suffix = "." + variable
    if not piece.endswith(suffix) or len(piece) == len(suffix):
        return None
    if any(len(other) > len(variable) and piece.endswith("." + other) and len(piece) > len(other) + 1
           for other in variables):
        return None
    return piece[:-len(suffix)]


def _columns_for_term(names: list[str], term: str, continuous: set[str] | None = None,
                      variables=()) -> list[str]:
    if term in names:
        return [term]
    if "##" in term:
        factors = term.split("##")
        pieces = [[f] for f in factors] + ["#".join(factors)] if len(factors) == 2 else None
        if pieces is None:
            raise UserInputError(f"term {term!r}: write interactions of more than two factors term by term")
        out = (_columns_for_term(names, factors[0], continuous, variables)
               + _columns_for_term(names, factors[1], continuous, variables))
        return out + _columns_for_term(names, "#".join(factors), continuous, variables)
    factors = term.split("#")
    return [name for name in names if _matches(name, factors, continuous, variables)]


def _matches(column: str, factors: list[str], continuous: set[str] | None = None, variables=()) -> bool:
    pieces = column.split("#")
    if len(pieces) != len(factors):
        return False
    interaction = len(factors) > 1
    for piece, factor in zip(pieces, factors):
        variable = _CONTINUOUS.sub("", _CATEGORICAL.sub("", factor))
        categorical = bool(_CATEGORICAL.match(factor)) or (interaction and not _CONTINUOUS.match(factor))
        # A piece c.V is a continuous part unless V is a text factor with a level "c" (V is then
        # never continuous: a text column cannot be).
        continuous_piece = continuous is None or variable in continuous
        if categorical:
            level = factor_level(piece, variable, variables)
            if level is None or (level == "c" and continuous_piece):
                return False
        elif piece != variable and not (piece == f"c.{variable}" and continuous_piece):
            return False
    return True


def joint_test(result: FitResult, terms: list[str]) -> JointTest:
    """Test that every coefficient the terms name is zero, with the fit's df method.

    Parameters
    ----------
    result : a mixed-model fit from this session (it carries the pieces the df methods need).
    terms : terms or column names, e.g. ``["i.sector"]`` or ``["c.x", "c.x#c.x"]``.

    Returns
    -------
    JointTest
        F (``df1``, ``df2``) under a df method, chi2 (``df1``) under z; also appended to ``result.tests``.
    """
    if not terms:
        raise UserInputError("name at least one term to test, e.g. i.sector")
    inference = result.inference
    if inference is None:
        raise UserInputError("this fit carries no test information (a result read back from a file?): fit the "
                             "model again to test its terms")
    continuous = continuous_variables(result.spec.fixed) if result.spec is not None else None
    variables = term_variables(result.spec.fixed) if result.spec is not None else ()
    columns = columns_for_terms(inference.names, terms, continuous, variables)
    test = inference.joint_test(columns, list(terms))
    result.tests.append(test)
    return test
