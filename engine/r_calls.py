"""lme4's ``lmer(...)`` call, pasted from R, read into a ModelSpec.

The formula goes to :mod:`engine.lme4_formula`; the arguments are honoured or refused, never
dropped: ``REML = FALSE`` fits by ML (``REML = TRUE``, lme4's default, by REML); ``data`` names the
data frame in R and the data file takes its place here; ``control`` and ``verbose`` steer lme4's
optimiser, which this program replaces with its own. ``weights``, ``subset``, ``offset`` and any
other argument would change the model and are refused. (``glmer(...)`` is read by
:func:`engine.glmm.spec.parse_glmer_call`.)
"""

from __future__ import annotations

import re

from engine.errors import UserInputError

_CALL = re.compile(r"^\s*(lmer|glmer)\s*\(", re.DOTALL)
_TRUE = ("TRUE", "T")
_FALSE = ("FALSE", "F")
_IGNORED = ("data", "control", "verbose")


def call_name(text: str) -> str | None:
    """'lmer' or 'glmer' when ``text`` is that call (``lme4::`` allowed), else None."""
    match = _CALL.match(re.sub(r"^\s*lme4\s*::\s*", "", text))
    return match.group(1) if match else None


def normalised_call(text: str) -> str:
    """The call with ``lme4::`` and spaces before the parenthesis removed: ``glmer(...)``."""
    stripped = re.sub(r"^\s*lme4\s*::\s*", "", text).strip()
    match = _CALL.match(stripped)
    return f"{match.group(1)}({stripped[match.end():]}" if match else stripped


def split_top_level(text: str, separator: str) -> list[str]:
    """Split ``text`` at ``separator`` outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == separator and depth == 0 and quote is None:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def call_arguments(text: str, name: str) -> tuple[str, list[tuple[str, str]]]:
    """The formula and the other arguments (name, value) of ``name(formula, arg = value, ...)``.

    The formula may be given as ``formula = ...``; a second unnamed argument is R's ``data``.
    """
    body = normalised_call(text)[len(name) + 1:].rstrip()
    if not body.endswith(")"):
        raise UserInputError(f"{name}(...) is missing its closing parenthesis")
    pieces = [piece.strip() for piece in split_top_level(body[:-1], ",")]
    formula, arguments = None, []
    for position, piece in enumerate(pieces):
        argument_name, equals, value = piece.partition("=")
        named = bool(equals) and re.fullmatch(r"\s*[A-Za-z_.][A-Za-z0-9_.]*\s*", argument_name) is not None
        if named and argument_name.strip() == "formula":
            formula = value.strip()
        elif named:
            arguments.append((argument_name.strip(), value.strip()))
        elif position == 0:
            formula = piece
        elif position == 1:
            arguments.append(("data", piece))  # R's second argument
        else:
            raise UserInputError(f"{name} argument {piece!r} needs a name ({name}(y ~ x + (1|g), data = d, ...))")
    if not formula or "~" not in formula:
        raise UserInputError(f"{name}'s first argument must be a formula (y ~ x + (1|group)), not {formula!r}")
    return formula, arguments


def parse_lmer_call(text: str, method: str | None = None):
    """``lmer(y ~ x + (1|school), data = d, REML = FALSE)`` as a ModelSpec.

    Parameters
    ----------
    text : str
        The call as written in R.
    method : str, optional
        'REML' or 'ML' from the command line; a different ``REML =`` in the call is refused.

    Returns
    -------
    ModelSpec

    Raises
    ------
    UserInputError
        For an argument that would change the model (weights, subset, offset, ...), a ``REML``
        value that is not TRUE or FALSE, or one that conflicts with ``method``.
    """
    from engine.lme4_formula import parse_lme4_formula

    formula, arguments = call_arguments(text, "lmer")
    written = None
    for name, value in arguments:
        if name == "REML":
            if value in _TRUE:
                written = "REML"
            elif value in _FALSE:
                written = "ML"
            else:
                raise UserInputError(f"lmer argument REML = {value}: write REML = TRUE or REML = FALSE")
        elif name in _IGNORED:
            continue  # the data file is the data; the engine's own optimiser replaces lme4's controls
        else:
            raise UserInputError(f"lmer argument {name!r} is not supported (it would change the model); "
                                 f"give the formula with data, and REML = TRUE or FALSE")
    if method and written and method.upper() != written:
        flag = "--ml" if method.upper() == "ML" else "--reml"
        raise UserInputError(f"{flag} conflicts with REML = {'TRUE' if written == 'REML' else 'FALSE'} in the "
                             f"lmer call: give the method once")
    return parse_lme4_formula(formula, method or written)


def stated_lmer_method(text: str) -> str | None:
    """The method an ``lmer(...)`` call states with ``REML =``, or None when it states none."""
    _, arguments = call_arguments(text, "lmer")
    for name, value in arguments:
        if name == "REML":
            return "REML" if value in _TRUE else "ML" if value in _FALSE else None
    return None
