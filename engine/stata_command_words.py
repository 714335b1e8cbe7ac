"""Model text that is not a model this program reads, refused by name before it is misread.

``ModelSpec.parse`` reads Stata's ``mixed`` (``xtmixed``), ``melogit``, ``meprobit``, ``mepoisson``
and ``meglm`` and lme4's ``lmer(...)`` / ``glmer(...)`` calls. Without this check, other command
lines would be read as ``mixed`` text: ``regress y x`` as the outcome ``regress``, ``xtreg y x, fe``
as an unknown option, ``mixed y x if x > 0`` as the predictors ``if``, ``x``, ``>`` and ``0``,
``[fw=w]`` as a column. Each is refused here with a line that says what to write instead.
"""

from __future__ import annotations

import re

from engine.errors import UserInputError

_COMPARE = ("main.py compare DATA --model \"y x\" --estimator {estimator}")
_OTHER_COMMANDS = {
    "regress": f"OLS is fitted by {_COMPARE.format(estimator='ols')}",
    "reg": f"OLS is fitted by {_COMPARE.format(estimator='ols')}",
    "xtreg": (f"xtreg, fe and xtreg, re are fitted by {_COMPARE.format(estimator=repr('fe GROUP'))} "
              f"(or 're GROUP'); the ML random-intercept model is 'mixed y x || GROUP:'"),
    "areg": f"the within estimator is fitted by {_COMPARE.format(estimator=repr('fe GROUP'))}",
    "logit": "the single-level model is 'melogit y x' (no level)",
    "logistic": "the single-level model is 'melogit y x, or' (no level)",
    "probit": "the single-level model is 'meprobit y x' (no level)",
    "poisson": "the single-level model is 'mepoisson y x' (no level)",
    "xtlogit": "xtlogit, re is 'melogit y x || GROUP:, intpoints(12)' (its default 12-point quadrature)",
    "xtprobit": "xtprobit, re is 'meprobit y x || GROUP:, intpoints(12)' (its default 12-point quadrature)",
    "xtpoisson": "xtpoisson, re is 'mepoisson y x || GROUP:, intpoints(12)'; xtpoisson's default re model has a "
                 "gamma, not a normal, random effect",
    "xtmelogit": "write melogit (xtmelogit's default is 7-point adaptive quadrature: add intpoints(7) for one level)",
    "meqrlogit": "write melogit (meqrlogit's default is 7-point adaptive quadrature: add intpoints(7) for one level)",
    "xtmepoisson": "write mepoisson (xtmepoisson's default is 7-point adaptive quadrature: add intpoints(7) for "
                   "one level)",
    "meqrpoisson": "write mepoisson (meqrpoisson's default is 7-point adaptive quadrature: add intpoints(7) for "
                   "one level)",
    "mecloglog": "the complementary log-log link is not offered (melogit or meprobit are)",
    "meologit": "ordinal outcomes are not offered",
    "meoprobit": "ordinal outcomes are not offered",
    "menbreg": "negative binomial models are not offered (mepoisson is)",
    "metobit": "censored outcomes are not offered",
    "meintreg": "interval-censored outcomes are not offered",
    "mestreg": "survival models are not offered",
    "glm": "single-level GLMs are written 'melogit y x', 'meprobit y x' or 'mepoisson y x' (no level)",
    "nbreg": "negative binomial models are not offered (mepoisson is)",
    "lm": "a linear model without random effects is 'mixed y x' (fitted by ML; add reml for REML)",
    "glmmTMB": "write lme4's lmer(...) or glmer(...) call, or the model in Stata syntax",
    "lme": "write lme4's lmer(...) call, or the model in Stata syntax",
}
_FIRST_WORD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\(|\s+|$)")


def check_command_word(text: str) -> None:
    """Refuse a model line that starts with a command this program does not read as written.

    Parameters
    ----------
    text : str
        The model as the user wrote it.

    Raises
    ------
    UserInputError
        Naming the command and what to write instead.
    """
    match = _FIRST_WORD.match(text)
    if match is None:
        return
    word = match.group(1)
    if word in _OTHER_COMMANDS and (match.group(2).strip() == "(" or text[match.end():].strip()):
        raise UserInputError(
            f"'{word}' is not a model that fit reads ({_OTHER_COMMANDS[word]}); models are written as Stata's "
            f"mixed, melogit, meprobit, mepoisson or meglm, or lme4's lmer(...) or glmer(...) call. If {word!r} "
            f"is the outcome column, start with mixed: 'mixed {word} ...'")


def check_fixed_words(tokens: list[str], original: str) -> None:
    """Refuse Stata's ``if`` / ``in`` qualifiers, weights and lme4 formulas in the fixed part.

    Parameters
    ----------
    tokens : list of str
        The words of the fixed part, outcome first.
    original : str
        The whole model text, for the message.

    Raises
    ------
    UserInputError
        For ``if`` or ``in`` (read as columns otherwise), a ``[weight=...]`` and ``~``.
    """
    if any("~" in token for token in tokens):
        raise UserInputError(
            f"the model {original.strip()!r} looks like an lme4 formula ('~'): give it with --formula, or as "
            f"lmer(y ~ ..., data = d) or glmer(...); Stata syntax is 'y x || school:'")
    for token in tokens[1:]:
        if token in ("if", "in"):
            raise UserInputError(
                f"'{token}' in the model {original.strip()!r}: Stata's if and in qualifiers are not supported; "
                f"keep the rows you want in the data file (or a copy of it) and fit that")
        if "[" in token:
            raise UserInputError(
                f"weights {token!r} in the model {original.strip()!r} are not supported: every row counts once")
