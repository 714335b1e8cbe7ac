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

_CATEGORICAL = re.compile(r"^i\.", re.IGNORECASE)
_CONTINUOUS = re.compile(r"^c\.", re.IGNORECASE)


def columns_for_terms(names: list[str], terms: list[str]) -> list[str]:
    """The coefficients the terms name, in the model's order; an unknown term is a UserInputError."""
    chosen: set[str] = set()
    for term in terms:
        matched = _columns_for_term(names, term.strip())
        if not matched:
            raise UserInputError(f"term {term!r} names no coefficient of the model; its coefficients are "
                                 f"{', '.join(names)}")
        chosen.update(matched)
    return [name for name in names if name in chosen]


def _columns_for_term(names: list[str], term: str) -> list[str]:
    if term in names:
        return [term]
    if "##" in term:
        factors = term.split("##")
        pieces = [[f] for f in factors] + ["#".join(factors)] if len(factors) == 2 else None
        if pieces is None:
            raise UserInputError(f"term {term!r}: write interactions of more than two factors term by term")
        out = _columns_for_term(names, factors[0]) + _columns_for_term(names, factors[1])
        return out + _columns_for_term(names, "#".join(factors))
    factors = term.split("#")
    return [name for name in names if _matches(name, factors, _factor_variables(names))]


def _factor_variables(names: list[str]) -> set[str]:
    """Variables some column shows as a factor level: alone ("c.f" is level c of f, since a continuous
    main effect is named "f"), or in an interaction with a level other than "c"."""
    found = set()
    for name in names:
        pieces = name.split("#")
        for piece in pieces:
            level, dot, variable = piece.partition(".")
            if dot and (len(pieces) == 1 or level != "c"):
                found.add(variable)
    return found


def _matches(column: str, factors: list[str], factor_variables: set[str] = frozenset()) -> bool:
    pieces = column.split("#")
    if len(pieces) != len(factors):
        return False
    interaction = len(factors) > 1
    for piece, factor in zip(pieces, factors):
        variable = _CONTINUOUS.sub("", _CATEGORICAL.sub("", factor))
        categorical = bool(_CATEGORICAL.match(factor)) or (interaction and not _CONTINUOUS.match(factor))
        if categorical:
            level, dot, name = piece.partition(".")
            # "c.f" is c. (continuous) f unless f is a factor of the model: then it is its level "c"
            if not dot or name != variable or (level == "c" and variable not in factor_variables):
                return False
        elif piece not in (variable, f"c.{variable}"):
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
    columns = columns_for_terms(inference.names, terms)
    test = inference.joint_test(columns, list(terms))
    result.tests.append(test)
    return test
