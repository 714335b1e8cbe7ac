"""Stata text of crossed random factors: ``|| _all: R.teach_id``.

Stata writes a crossed factor as the level ``_all`` (one group holding every row, or every row of
one group of the nested levels before it) with one random intercept per value of the factor,
``R.x``: an identity covariance over the indicator variables of ``x``.
"""

from __future__ import annotations

import re

from engine.errors import UserInputError

_FACTOR = re.compile(r"^[Rr]\.([A-Za-z_][A-Za-z0-9_]*)$")
_DISPLAY_OPTIONS = ("stddev", "variance", "var")


def parse_stata_crossed(equation: str, body: str, options: list[tuple[str, str]], nested_above: list[str]):
    """The Level of ``_all: R.x`` written after the nested levels ``nested_above``.

    As in Stata, a factor written after nested levels varies within their groups: its groups are
    the combinations of those levels' ids with its own.
    """
    from engine.model_spec import Level

    tokens = body.split()
    if len(tokens) != 1 or not _FACTOR.match(tokens[0]):
        raise UserInputError(
            f"{equation.strip()!r}: after '_all:' write one factor as R.name (e.g. '_all: R.teach_id'); "
            f"random slopes on a crossed factor can be written as an lme4 formula (--formula), e.g. (0 + x | name)")
    name = _FACTOR.match(tokens[0]).group(1)
    for option, argument in options:
        if option in ("cov", "cova", "covar", "covariance") and argument.lower().startswith("id"):
            continue
        if option in ("reml", "ml", "mle") or option.startswith("dfm") or option in _DISPLAY_OPTIONS:
            continue  # handled by the caller or display only
        raise UserInputError(f"option {option!r} is not supported with '_all: R.{name}'")
    return Level(name=name, crossed=True, nested_in=list(nested_above))


def crossed_level_to_stata(level) -> str:
    """``_all: R.x``; slopes on a crossed factor have no `_all:` form in Stata's syntax."""
    text = f"_all: R.{level.name}"
    if level.slopes or not level.intercept:
        terms = " ".join(level.terms)
        text += f" /* random {terms} per {level.name}: see the lme4 formula */"
    return text
