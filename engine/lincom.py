"""Stata's ``lincom``: estimate any linear combination of a fit's coefficients.

An expression is a sum of coefficients times numbers, with ``+ - * /``, parentheses and numeric
constants: ``tutoring + 2*c.x#tutoring``, ``_b[x] - _b[z]``, ``(1.sector + 1.sector#c.ses)/2``.
A coefficient is written as the fit names it (``1.sector``, ``c.meanses#c.ses_c``, ``_cons``),
with or without ``_b[...]``. For convenience the factors of an interaction may come in any order,
``c.`` may be left out, and a factor with one non-base level may be written without its level
(``c.x#tutoring`` for ``c.x#1.tutoring``), as long as exactly one coefficient matches; anything
ambiguous, unknown or not linear is refused with a message.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from engine.errors import UserInputError
from engine.linear_inference import PostEstimation, distribution_notes, estimate
from engine.results import FitResult

_TOKEN = re.compile(r"""\s*(?:
    (?P<b>_b\[(?P<bname>[^\]]*)\])
  | (?P<name>\d+\.[A-Za-z_][\w.#]*|[A-Za-z_][\w.#]*)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<op>[-+*/()])
)""", re.VERBOSE)


class _Linear:
    """A linear form sum(weights[name] * _b[name]) + constant."""

    def __init__(self, weights: Optional[dict[str, float]] = None, constant: float = 0.0):
        self.weights = dict(weights or {})
        self.constant = constant

    def scaled(self, factor: float) -> "_Linear":
        return _Linear({k: v * factor for k, v in self.weights.items()}, self.constant * factor)

    def plus(self, other: "_Linear", sign: float = 1.0) -> "_Linear":
        weights = dict(self.weights)
        for name, value in other.weights.items():
            weights[name] = weights.get(name, 0.0) + sign * value
        return _Linear(weights, self.constant + sign * other.constant)

    @property
    def is_number(self) -> bool:
        return not self.weights


def lincom(result: FitResult, expressions: list[str]) -> PostEstimation:
    """Estimate each expression (one row per expression, labelled ``(1)``, ``(2)``, ...).

    Parameters
    ----------
    result : FitResult
        A fit with coefficients and their covariance (``vcov``).
    expressions : list of str
        Linear combinations in Stata's ``lincom`` syntax.

    Returns
    -------
    PostEstimation
        Rows with estimate, SE, z (or t), p and 95% interval; notes spell out each combination.
    """
    if not expressions:
        raise UserInputError("lincom needs an expression, e.g. 'tutoring + 2*c.x#tutoring'")
    names = [row.term for row in result.fixed]
    rows, notes = [], []
    for index, text in enumerate(expressions, start=1):
        form = parse_combination(text, names)
        weights = np.array([form.weights.get(name, 0.0) for name in names])
        rows.append(estimate(result, weights, f"({index})", form.constant))
        notes.append(f"({index}) {describe(form, names)} = 0")
    return PostEstimation("lincom", "Linear combinations of coefficients", result.model, result.depvar, rows,
                          notes=notes + distribution_notes(result) + _scale_notes(result, rows))


_RATIOS = {"logit": ("log-odds", "odds ratio"), "probit": ("probit index", None),
           "log": ("log of the expected count", "incidence-rate ratio")}


def _scale_notes(result: FitResult, rows) -> list[str]:
    """A GLMM's combinations are of coefficients (log-odds, log counts) even when the fit was shown
    as odds or rate ratios (``or``, ``irr``): say so, and give the ratio exp(estimate) with its
    interval, as Stata's ``lincom ..., or``."""
    if getattr(result, "family", None) is None or result.link not in _RATIOS:
        return []
    scale, ratio = _RATIOS[result.link]
    notes = [f"Combinations of coefficients on the {scale} scale" + (f", not {ratio}s." if ratio else ".")]
    if ratio and getattr(result, "fixed_eform", None):
        for row in rows:
            notes.append(f"{row.label} as an {ratio}: exp = {np.exp(row.estimate):.6g} "
                         f"[{np.exp(row.ci[0]):.6g}, {np.exp(row.ci[1]):.6g}]")
    return notes


def describe(form: _Linear, names: list[str]) -> str:
    """Stata's way of writing a combination: ``tutoring + 2*c.x#1.tutoring - 1``."""
    pieces = []
    for name in names:
        weight = form.weights.get(name, 0.0)
        if weight == 0:
            continue
        size = abs(weight)
        term = name if size == 1 else f"{size:g}*{name}"
        pieces.append(("- " if weight < 0 else "+ ") + term)
    if form.constant:
        pieces.append(("- " if form.constant < 0 else "+ ") + f"{abs(form.constant):g}")
    text = " ".join(pieces) or "0"
    return text[2:] if text.startswith("+ ") else "-" + text[2:] if text.startswith("- ") else text


def parse_combination(text: str, names: list[str]) -> _Linear:
    """Parse a ``lincom`` expression into weights over ``names`` and a constant."""
    tokens = _tokenize(text)
    parser = _Parser(tokens, names, text)
    form = parser.expression()
    if parser.position != len(tokens):
        raise UserInputError(f"lincom {text!r}: unexpected {tokens[parser.position][1]!r}")
    if form.is_number:
        raise UserInputError(f"lincom {text!r}: the expression names no coefficient")
    return form


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise UserInputError(f"lincom {text!r}: cannot read {text[position:].strip()!r}")
        kind = match.lastgroup if match.lastgroup != "bname" else "b"
        if match.group("b") is not None:
            tokens.append(("name", match.group("bname").strip()))
        else:
            tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """expression := term (('+'|'-') term)*; term := unary (('*'|'/') unary)*;
    unary := ('+'|'-') unary | number | name | '(' expression ')'."""

    def __init__(self, tokens, names, text):
        self.tokens, self.names, self.text, self.position = tokens, names, text, 0

    def _peek(self) -> Optional[tuple[str, str]]:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise UserInputError(f"lincom {self.text!r}: the expression ends too early")
        self.position += 1
        return token

    def expression(self) -> _Linear:
        form = self.term()
        while (token := self._peek()) and token[1] in "+-" and token[0] == "op":
            self._take()
            form = form.plus(self.term(), 1.0 if token[1] == "+" else -1.0)
        return form

    def term(self) -> _Linear:
        form = self.unary()
        while (token := self._peek()) and token[0] == "op" and token[1] in "*/":
            self._take()
            right = self.unary()
            if token[1] == "*":
                if not (form.is_number or right.is_number):
                    raise UserInputError(f"lincom {self.text!r}: a product of coefficients is not linear")
                form = right.scaled(form.constant) if form.is_number else form.scaled(right.constant)
            else:
                if not right.is_number:
                    raise UserInputError(f"lincom {self.text!r}: dividing by a coefficient is not linear")
                if right.constant == 0:
                    raise UserInputError(f"lincom {self.text!r}: division by zero")
                form = form.scaled(1.0 / right.constant)
        return form

    def unary(self) -> _Linear:
        kind, value = self._take()
        if kind == "op" and value in "+-":
            inner = self.unary()
            return inner if value == "+" else inner.scaled(-1.0)
        if kind == "op" and value == "(":
            inner = self.expression()
            if self._take() != ("op", ")"):
                raise UserInputError(f"lincom {self.text!r}: missing ')'")
            return inner
        if kind == "number":
            return _Linear(constant=float(value))
        if kind == "name":
            return _Linear({resolve_coefficient(value, self.names): 1.0})
        raise UserInputError(f"lincom {self.text!r}: unexpected {value!r}")


def resolve_coefficient(written: str, names: list[str]) -> str:
    """The coefficient of ``names`` that ``written`` refers to (see the module notes)."""
    if written in names:
        return written
    wanted = _factors(written)
    matches = [name for name in names if _matches(wanted, _factors(name))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserInputError(f"lincom: no coefficient {written!r}; the model has {', '.join(names)}")
    raise UserInputError(f"lincom: {written!r} is ambiguous ({', '.join(matches)}); write the level, e.g. {matches[0]!r}")


def _factors(name: str) -> list[tuple[str, Optional[str]]]:
    """'c.x#1.tutoring' -> [('x', None), ('tutoring', '1')]; a bare or i. factor of an interaction
    gets the level '?' (any)."""
    pieces = name.split("#")
    out = []
    for piece in pieces:
        if piece.lower().startswith("c."):
            out.append((piece[2:], None))
        elif piece.lower().startswith("i."):
            out.append((piece[2:], "?"))
        elif "." in piece:
            level, _, variable = piece.rpartition(".")
            out.append((variable, level))
        else:
            out.append((piece, "?" if len(pieces) > 1 else None))
    return sorted(out, key=lambda item: item[0])


def _matches(wanted, have) -> bool:
    if [v for v, _ in wanted] != [v for v, _ in have]:
        return False
    return all(w == h or (w == "?") for (_, w), (_, h) in zip(wanted, have))
