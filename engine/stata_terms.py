"""Stata factor-variable terms: the grammar, parsed into typed pieces, and the lme4 formula.

A term is one or more *parts* joined by ``#`` (interaction) or ``##`` (full factorial: the
interaction and every lower-order term). Each part is a variable with an operator:

==============  ===============================================================
``x``           continuous (alone); categorical inside an interaction, as in Stata
``c.x``         continuous
``i.x``         categorical, base level the lowest
``ib2.x``       categorical, base level 2 (also ``ib(2).x``, ``ib(first).x``,
                ``ib(last).x``, ``ib(freq).x`` -- the most frequent level)
``ibn.x``       categorical without a base level (all levels; use with noconstant)
``2.x``         the indicator of level 2 alone (also ``i2.x``)
==============  ===============================================================

Building the columns from data is :mod:`engine.design_matrix`'s job; this module needs no data.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from engine.errors import UserInputError

CONTINUOUS, FACTOR, LEVEL = "continuous", "factor", "level"
CONSTANT_NAME = "_cons"

_PREFIX = re.compile(
    r"^(?:(?P<c>c)|(?P<ibn>ibn)|ib(?P<base>\d+|\((?:\d+|first|last|freq)\))|i(?P<ilevel>\d+)?|(?P<level>\d+))\.(?P<var>.*)$",
    re.IGNORECASE)
# Stata's time-series and omission operators (L.x, D2.x, o.x, 2b.x): refused by name, not taken as columns.
_UNSUPPORTED_OPERATOR = re.compile(r"^(?:[LFDS]\d*|o|\d*bn?|co|io)\.", re.IGNORECASE)
_R_NAME = re.compile(r"^[A-Za-z.][A-Za-z0-9._]*$")


@dataclass(frozen=True)
class TermPart:
    """One variable of a term with its operator.

    Attributes
    ----------
    variable : str
        The data column.
    kind : str
        ``'continuous'``, ``'factor'`` (indicators of its levels) or ``'level'`` (one level's indicator).
    base : str or None
        For a factor: ``'lowest'`` (the default), ``'first'``, ``'last'``, ``'freq'``, a level
        written as text (``'2'``), or ``None`` for ``ibn.`` (no base level).
    level : str or None
        For ``kind == 'level'``: the level, as text.
    """

    variable: str
    kind: str
    base: str | None = "lowest"
    level: str | None = None

    @property
    def stata(self) -> str:
        """The part in Stata notation (``c.x``, ``i.x``, ``ib2.x``, ``ibn.x``, ``2.x``)."""
        if self.kind == CONTINUOUS:
            return f"c.{self.variable}"
        if self.kind == LEVEL:
            return f"{self.level}.{self.variable}"
        if self.base is None:
            return f"ibn.{self.variable}"
        if self.base == "lowest":
            return f"i.{self.variable}"
        if self.base.isdigit():
            return f"ib{self.base}.{self.variable}"
        return f"ib({self.base}).{self.variable}"

    @property
    def margin_key(self) -> tuple:
        """What identifies the part when deciding whether a lower-order term is in the model."""
        return (self.variable, self.kind, self.level)


@dataclass(frozen=True)
class Term:
    """One term of the fixed part after ``##`` is expanded: a product of parts.

    Attributes
    ----------
    parts : tuple of TermPart
        The parts in the order written.
    written : str
        The term as the user wrote it (a ``##`` term yields several Terms with the same text).
    """

    parts: tuple[TermPart, ...]
    written: str

    @property
    def stata(self) -> str:
        """The term in Stata notation; a lone continuous variable is just its name."""
        if len(self.parts) == 1 and self.parts[0].kind == CONTINUOUS:
            return self.parts[0].variable
        return "#".join(part.stata for part in self.parts)

    @property
    def key(self) -> tuple:
        """The same for the same product of variables in any order (``a#b`` and ``b#a``)."""
        return tuple(sorted(Counter(part.margin_key for part in self.parts).items()))

    @property
    def is_interaction(self) -> bool:
        return len(self.parts) > 1

    @property
    def has_factor(self) -> bool:
        return any(part.kind == FACTOR for part in self.parts)


def _parse_part(text: str, in_interaction: bool, term: str) -> TermPart:
    if not text:
        raise UserInputError(f"term {term!r} has an empty part: every '#' needs a variable on each side")
    if "|" in text or text.endswith(":"):
        example = f"'|| {text.strip('|:')}:'" if text.strip("|:") else "'|| school:'"
        raise UserInputError(f"term {term!r} in the fixed part looks like part of a level: write {example} "
                             f"(two bars before each level id, a colon after it)")
    if "(" in text or ")" in text:
        if text.lower().startswith("ib("):
            if not _PREFIX.match(text):
                raise UserInputError(f"term {term!r}: write the base level as ib#., ib(#)., ib(first)., ib(last). "
                                     f"or ib(freq).")
        else:
            raise UserInputError(
                f"term {term!r}: parentheses in factor-variable terms (e.g. i.(a b)) are not supported; "
                f"write each term out")
    match = _PREFIX.match(text)
    if match is None:
        unsupported = _UNSUPPORTED_OPERATOR.match(text)
        if unsupported:
            raise UserInputError(
                f"term {term!r}: operator {unsupported.group(0)!r} is not supported; use c., i., ib#., ibn. or #.")
        # An unprefixed variable is continuous alone and categorical in an interaction (Stata's rule).
        return TermPart(text, FACTOR if in_interaction else CONTINUOUS)
    variable = match.group("var")
    if not variable:
        raise UserInputError(f"term {term!r}: no variable after {text!r}")
    if _PREFIX.match(variable):
        raise UserInputError(f"term {term!r}: {text!r} has two operators; write one (c., i., ib#., ibn. or #.)")
    if match.group("c"):
        return TermPart(variable, CONTINUOUS)
    if match.group("ibn"):
        return TermPart(variable, FACTOR, base=None)
    if match.group("base") is not None:
        base = match.group("base").strip("()").lower()
        return TermPart(variable, FACTOR, base=str(int(base)) if base.isdigit() else base)
    level = match.group("ilevel") or match.group("level")
    if level is not None:
        return TermPart(variable, LEVEL, base=None, level=str(int(level)))
    return TermPart(variable, FACTOR)


def _full_factorial(parts: list[TermPart], written: str) -> list[Term]:
    """``a##b##c`` -> a, b, a#b, c, a#c, b#c, a#b#c (Stata's order: subsets counted in binary)."""
    terms = []
    for mask in range(1, 2 ** len(parts)):
        chosen = tuple(part for bit, part in enumerate(parts) if mask >> bit & 1)
        terms.append(Term(chosen, written))
    return terms


def parse_term(text: str) -> list[Term]:
    """The Terms one written term stands for (several for a ``##`` term).

    Raises
    ------
    UserInputError
        On an empty part, an unknown operator, parentheses, or ``#`` and ``##`` mixed in one term.
    """
    if "###" in text:
        raise UserInputError(f"term {text!r}: write '#' for an interaction or '##' for a full factorial, not '###'")
    full = "##" in text
    if full and re.search(r"(?<!#)#(?!#)", text):
        raise UserInputError(f"term {text!r} mixes '#' and '##'; write the terms it stands for out, e.g. a##b c.x#a#b")
    pieces = text.split("##") if full else text.split("#")
    parts = [_parse_part(piece, len(pieces) > 1, text) for piece in pieces]
    categorical = [part.variable for part in parts if part.kind != CONTINUOUS]
    repeated = sorted({name for name in categorical if categorical.count(name) > 1})
    if repeated:
        raise UserInputError(f"term {text!r} crosses the factor {repeated[0]!r} with itself, which adds nothing; "
                             f"c.{repeated[0]}#c.{repeated[0]} squares a continuous variable")
    if full:
        return _full_factorial(parts, text)
    return [Term(tuple(parts), text)]


def parse_terms(texts: list[str]) -> list[Term]:
    """Every term of a fixed part, ``##`` expanded, repeats from expansion dropped (as Stata does).

    Raises
    ------
    UserInputError
        For a term written twice, a column named ``_cons``, and what :func:`parse_term` refuses.
    """
    terms: list[Term] = []
    seen: dict[tuple, str] = {}
    for text in texts:
        expanded = parse_term(text)
        for term in expanded:
            if any(part.variable == CONSTANT_NAME for part in term.parts):
                raise UserInputError(
                    f"term {text!r}: '_cons' is the name of the constant; rename the column (the constant is in "
                    f"the model unless you write noconstant)")
            if term.key in seen:
                if len(expanded) == 1 and seen[term.key] != "##":
                    also = "" if seen[term.key] == text else f" (also as {seen[term.key]!r})"
                    raise UserInputError(f"term {text!r} appears twice in the fixed part{also}")
                continue
            seen[term.key] = "##" if len(expanded) > 1 else text
            terms.append(term)
    return terms


def term_variables(texts: list[str]) -> list[str]:
    """The data columns that Stata-style terms refer to, in order of first appearance."""
    names: list[str] = []
    for text in texts:
        for term in parse_term(text):
            names += [part.variable for part in term.parts]
    return list(dict.fromkeys(names))


# ----- lme4 formula -------------------------------------------------------------------------------
def _r_name(name: str) -> str:
    return name if _R_NAME.match(name) else f"`{name}`"


def _r_level(level: str) -> str:
    return level if re.fullmatch(r"-?\d+", level) else '"' + level.replace('"', '\\"') + '"'


def _r_factor(part: TermPart) -> str:
    name = _r_name(part.variable)
    factor = f"factor({name})"
    if part.base in (None, "lowest", "first"):
        return factor
    if part.base == "last":
        return f"relevel({factor}, ref = tail(levels({factor}), 1))"
    if part.base == "freq":
        return f"relevel({factor}, ref = names(which.max(table({name}))))"
    return f'relevel({factor}, ref = "{part.base}")'


def _r_term(term: Term, constant: bool) -> str:
    pieces = []
    powers = Counter(part.variable for part in term.parts if part.kind == CONTINUOUS)
    done_continuous = set()
    for part in term.parts:
        if part.kind == CONTINUOUS:
            if part.variable in done_continuous:
                continue
            done_continuous.add(part.variable)
            power = powers[part.variable]
            pieces.append(_r_name(part.variable) if power == 1 else f"I({_r_name(part.variable)}^{power})")
        elif part.kind == LEVEL:
            pieces.append(f"I(as.numeric({_r_name(part.variable)} == {_r_level(part.level)}))")
        elif not constant and not term.is_interaction and part.base is not None:
            # Without an intercept R codes a lone factor by all its levels; Stata keeps the base out.
            pieces.append(f"I(model.matrix(~ {_r_factor(part)})[, -1, drop = FALSE])")
        else:
            pieces.append(_r_factor(part))
    return ":".join(pieces)


def stata_terms_to_formula(texts: list[str], constant: bool = True) -> str:
    """Right-hand side of the lme4 (R) formula for Stata-style terms.

    ``c.x#c.x`` becomes ``I(x^2)``, ``i.a`` ``factor(a)``, ``ib2.a`` ``relevel(factor(a), ref = "2")``,
    ``i.a##c.x`` ``factor(a) + x + factor(a):x``; without the constant the formula starts ``0 +``.
    """
    pieces = [_r_term(term, constant) for term in parse_terms(texts)]
    if not constant:
        pieces.insert(0, "0")
    return " + ".join(pieces) if pieces else "1"
