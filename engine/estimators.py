"""Estimators named by short strings, as the seed's comparison lists them.

An :class:`EstimatorSpec` is parsed from one of::

    ols                                   pooled OLS (Stata's regress)
    fe student_id                         fixed effects within student_id (xtreg, fe)
    re student_id                         random effects, Swamy-Arora GLS (xtreg, re)
    mixed || student_id:                  a nested mixed model (Stata's mixed; ML by default)
    mixed || dist_id: || school_id:, reml
    logit                                 pooled logistic regression (also probit, poisson)
    xtlogit student_id, re                random-effects logit (also xtprobit, xtpoisson): the
                                          one-level melogit with 12-point adaptive quadrature
    melogit || student_id:                a multilevel logistic model (also meprobit, mepoisson,
                                          meglm with family() link()); ML, Laplace unless intpoints()

``logit``, ``probit`` and ``poisson`` are the single-level models of binary and count outcomes
(Stata's commands of those names); ``melogit`` etc. with no level are the same models.
``ols``, ``fe`` and ``re`` take ``vce(robust)`` or ``vce(cluster <column>)`` after a comma, as
in Stata (``ols, vce(cluster school_id)``). The ``mixed`` form holds only the random part (levels
outermost first, their slopes and options, ``reml``/``ml``); the outcome and the predictors are
given once for every estimator (``--model "perform tutoring"``, outcome first) and combined
with the spec by :func:`run_estimator`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd

from engine.errors import Cancelled, UserInputError
from engine.model_spec import ModelSpec
from engine.results import FitResult
from engine.serialize import to_jsonable

KEYWORD_ALIASES = {"ols": "ols", "regress": "ols", "fe": "fe", "re": "re", "mixed": "mixed",
                   "logit": "mixed", "probit": "mixed", "poisson": "mixed", "melogit": "mixed",
                   "meprobit": "mixed", "mepoisson": "mixed", "meglm": "mixed",
                   "xtlogit": "mixed", "xtprobit": "mixed", "xtpoisson": "mixed"}
# Binary and count models: fitted as the GLMM of the same command (melogit with no level = logit).
POOLED_GLMM_COMMANDS = {"logit": "melogit", "probit": "meprobit", "poisson": "mepoisson"}
GLMM_COMMANDS = ("melogit", "meprobit", "mepoisson", "meglm")
# Stata's random-effects panel commands: the one-level GLMM by 12-point adaptive quadrature (their default).
PANEL_GLMM_COMMANDS = {"xtlogit": "melogit", "xtprobit": "meprobit", "xtpoisson": "mepoisson"}
PANEL_GLMM_INTPOINTS = 12
PANEL_METHODS = {"ols": "OLS", "fe": "within", "re": "GLS"}
EXPECTED_FORMS = ("expected 'ols', 'fe <group>', 're <group>' (each optionally followed by "
                  "', vce(robust)' or ', vce(cluster <column>)'), 'mixed || <level>: [|| <level>: ...] [, reml|ml]', "
                  "'logit', 'probit', 'poisson' or 'melogit || <level>: [|| <level>: ...]' (also meprobit, mepoisson)")
# Stands in for the outcome while the random part of a mixed estimator is checked on its own.
_OUTCOME_PLACEHOLDER = "__outcome__"
_OPTION_RE = re.compile(r"([A-Za-z_]+)\s*(?:\(([^)]*)\))?")
_ROBUST_WORDS = ("r", "ro", "rob", "robu", "robus", "robust")
_CLUSTER_WORDS = ("cl", "clu", "clus", "clust", "cluste", "cluster")
_CONVENTIONAL_WORDS = ("ols", "conventional", "conv")


@dataclass
class EstimatorSpec:
    """One estimator of a comparison, parsed from a short string.

    Attributes
    ----------
    text : str
        The string as given (outer spaces removed); fit results carry it as their ``name``.
    estimator : str
        'ols', 'fe', 're' or 'mixed' (binary and count models too: see ``command``).
    group : str or None
        The panel variable of 'fe', 're' and 'xtlogit' (xtprobit, xtpoisson).
    vce : str
        'conventional', 'robust' or 'cluster' (always 'conventional' for 'mixed').
    cluster : str or None
        The cluster column with ``vce='cluster'``.
    random_part : str
        For 'mixed': everything after the word ``mixed`` (levels, slopes, options), e.g.
        ``"|| dist_id: || student_id:, reml"``; empty otherwise.
    command : str
        The command word of a 'mixed' estimator: 'mixed' (linear); 'melogit', 'meprobit',
        'mepoisson', 'meglm' (binary and count outcomes); 'logit', 'probit', 'poisson' (their
        single-level models); 'xtlogit', 'xtprobit', 'xtpoisson' (one level, 12-point quadrature).
    """

    text: str
    estimator: str
    group: Optional[str] = None
    vce: str = "conventional"
    cluster: Optional[str] = None
    random_part: str = ""
    # The command of a 'mixed' estimator: 'mixed' (linear), 'melogit', 'meprobit', 'mepoisson' or
    # 'meglm' (binary and count outcomes), or 'logit', 'probit', 'poisson' (their single-level models).
    command: str = "mixed"

    @classmethod
    def parse(cls, text: str) -> "EstimatorSpec":
        """Parse an estimator string; see the module docstring for the forms.

        Parameters
        ----------
        text : str
            E.g. ``"fe student_id"`` or ``"mixed || school_id: || student_id:, reml"``.

        Returns
        -------
        EstimatorSpec

        Raises
        ------
        UserInputError
            Naming the string and saying what is expected.
        """
        return parse_estimator(text)

    # ----- derived ---------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """The estimation method as FitResult names it: 'OLS', 'within', 'GLS', 'REML' or 'ML'."""
        if self.estimator == "mixed":
            return self._placeholder_model().method
        return PANEL_METHODS[self.estimator]

    @property
    def level_names(self) -> list[str]:
        """Levels with random effects, outermost first: the mixed model's levels, or the FE/RE group."""
        if self.estimator == "mixed":  # xtlogit's group among them
            return self._placeholder_model().level_names
        return [self.group] if self.group else []

    def model_spec(self, outcome: str, predictors: list[str]) -> ModelSpec:
        """The mixed model of this spec for ``outcome`` and ``predictors`` (Stata notation).

        Builds the text ``outcome predictors || ...`` and parses it with :meth:`ModelSpec.parse`.

        Raises
        ------
        UserInputError
            If this is not a 'mixed' spec, or the combined model is not valid.
        """
        if self.estimator != "mixed":
            raise UserInputError(f"estimator {self.text!r} is {self.estimator}, not a mixed model")
        head = " ".join([outcome, *predictors])
        try:
            return ModelSpec.parse(f"{self._command_word()}{head} {self.random_part}".strip())
        except UserInputError as error:
            raise UserInputError(f"estimator {self.text!r}: {error}") from None

    @property
    def is_glmm(self) -> bool:
        """True for the binary and count models (logit ... melogit ...), False for linear ones."""
        return self.estimator == "mixed" and self.command != "mixed"

    @property
    def is_pooled(self) -> bool:
        """True for the single-level binary and count models (logit, probit, poisson)."""
        return self.command in POOLED_GLMM_COMMANDS

    def _command_word(self) -> str:
        """The GLMM command the model text starts with ('' for a linear mixed model)."""
        if self.command == "mixed":
            return ""
        word = POOLED_GLMM_COMMANDS.get(self.command) or PANEL_GLMM_COMMANDS.get(self.command, self.command)
        return word + " "

    def _placeholder_model(self) -> ModelSpec:
        return ModelSpec.parse(f"{self._command_word()}{_OUTCOME_PLACEHOLDER} {self.random_part}".strip())

    # ----- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict of the fields."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EstimatorSpec":
        """Rebuild from :meth:`to_dict` output by parsing its ``text`` again (the one source of truth)."""
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise UserInputError("estimator: expected an object with the estimator string under 'text'")
        return cls.parse(data["text"])


# ----- parsing -------------------------------------------------------------------------------
def parse_estimator(text: str) -> EstimatorSpec:
    """Parse an estimator string into an :class:`EstimatorSpec` (see :meth:`EstimatorSpec.parse`)."""
    if not isinstance(text, str) or not text.strip():
        raise UserInputError(f"empty estimator {text!r}: {EXPECTED_FORMS}")
    given = text.strip()
    first_word = re.match(r"[A-Za-z_]+", given)
    keyword = KEYWORD_ALIASES.get(first_word.group(0).lower()) if first_word else None
    if keyword is None:
        raise UserInputError(f"unknown estimator {given!r}: {EXPECTED_FORMS}")
    rest = given[first_word.end():]
    if rest and not (rest[0].isspace() or rest[0] in ",|"):
        raise UserInputError(f"unknown estimator {given!r}: {EXPECTED_FORMS}")
    command = first_word.group(0).lower()
    if command in POOLED_GLMM_COMMANDS:
        return _parse_pooled(given, command, rest.strip())
    if command in PANEL_GLMM_COMMANDS:
        return _parse_panel_glmm(given, command, rest)
    if keyword == "mixed":
        return _parse_mixed(given, rest.strip(), command)
    return _parse_panel(given, keyword, rest)


def _parse_mixed(given: str, random_part: str, command: str = "mixed") -> EstimatorSpec:
    """'mixed || level: ... [, options]' (or melogit, meprobit, mepoisson, meglm): only the random
    part; the fixed part comes from the model."""
    if random_part and not random_part.startswith(("||", ",")):
        fixed_text = random_part.split("||")[0].split(",")[0].strip()
        raise UserInputError(
            f"estimator {given!r}: write only the random part after '{command}', e.g. '{command} || student_id:'; "
            f"the outcome and predictors ({fixed_text!r} here) are given once for every estimator")
    if re.search(r"\bvce\s*\(", random_part, flags=re.IGNORECASE):
        raise UserInputError(
            f"estimator {given!r}: vce() is taken by ols, fe and re; {command} reports model-based standard errors")
    spec = EstimatorSpec(text=given, estimator="mixed", random_part=random_part, command=command)
    try:
        spec._placeholder_model()
    except UserInputError as error:
        options = "[, reml|ml]" if command == "mixed" else "[, intpoints(n)]"
        raise UserInputError(f"estimator {given!r}: {error}; expected '{command} || <level>: [|| <level>: ...] "
                             f"{options}'") from None
    return spec


def _parse_panel_glmm(given: str, command: str, rest: str) -> EstimatorSpec:
    """'xtlogit group[, re]' (xtprobit, xtpoisson): the random-effects model, Stata's default;
    ', fe' (conditional logit / Poisson) is not offered and is refused."""
    head, comma, option_text = rest.partition(",")
    words = head.split()
    if len(words) != 1:
        what = "needs the panel variable" if not words else f"takes one panel variable, not {len(words)}"
        raise UserInputError(f"estimator {given!r}: {command} {what}; expected e.g. '{command} student_id, re'")
    options = option_text.split()
    if options == ["fe"]:
        raise UserInputError(f"estimator {given!r}: {command}, fe (the conditional model) is not offered; the "
                             f"random-effects model is '{command} {words[0]}, re' or "
                             f"'{PANEL_GLMM_COMMANDS[command]} || {words[0]}:'")
    if comma and options != ["re"]:
        raise UserInputError(f"estimator {given!r}: unknown option {option_text.strip()!r}; expected "
                             f"'{command} {words[0]}, re'")
    spec = EstimatorSpec(text=given, estimator="mixed", group=words[0], command=command,
                         random_part=f"|| {words[0]}:, intpoints({PANEL_GLMM_INTPOINTS})")
    try:
        spec._placeholder_model()
    except UserInputError as error:
        raise UserInputError(f"estimator {given!r}: {error}") from None
    return spec


def _parse_pooled(given: str, command: str, rest: str) -> EstimatorSpec:
    """'logit', 'probit' or 'poisson': the single-level model, no group and no options."""
    if rest:
        raise UserInputError(f"estimator {given!r}: {command} takes no group variable or options here; expected "
                             f"'{command}' (for random effects: '{POOLED_GLMM_COMMANDS[command]} || <level>:')")
    return EstimatorSpec(text=given, estimator="mixed", command=command)


def _parse_panel(given: str, keyword: str, rest: str) -> EstimatorSpec:
    """'ols', 'fe group' or 're group', each with optional ', vce(...)'."""
    head, comma, option_text = rest.partition(",")
    if "(" in head:
        raise UserInputError(f"estimator {given!r}: options go after a comma, e.g. "
                             f"'{keyword}{' student_id' if keyword != 'ols' else ''}, vce(robust)'")
    words = head.split()
    if keyword == "ols" and words:
        raise UserInputError(f"estimator {given!r}: ols takes no group variable; expected 'ols' or "
                             f"'ols, vce(cluster {words[0]})' for standard errors clustered by {words[0]}")
    if keyword in ("fe", "re") and len(words) != 1:
        what = "needs the panel variable" if not words else f"takes one panel variable, not {len(words)}"
        raise UserInputError(f"estimator {given!r}: {keyword} {what}; expected e.g. '{keyword} student_id'")
    vce, cluster = _parse_vce_options(given, option_text) if comma else ("conventional", None)
    return EstimatorSpec(text=given, estimator=keyword, group=words[0] if words else None, vce=vce, cluster=cluster)


def _parse_vce_options(given: str, option_text: str) -> tuple[str, Optional[str]]:
    """Options of ols/fe/re: vce(robust), vce(cluster X), vce(conventional); robust and cluster(X) as shorthand."""
    options = [(m.group(1).lower(), (m.group(2) or "").strip()) for m in _OPTION_RE.finditer(option_text)]
    leftover = _OPTION_RE.sub("", option_text).strip()
    if leftover or not options:
        raise UserInputError(f"estimator {given!r}: cannot read the options {option_text.strip()!r}; "
                             f"expected vce(robust) or vce(cluster <column>)")
    if len(options) > 1:
        raise UserInputError(f"estimator {given!r}: one vce() option at most; expected vce(robust) or "
                             f"vce(cluster <column>)")
    name, argument = options[0]
    words = argument.split()
    if name == "vce" and words and words[0].lower() in _ROBUST_WORDS and len(words) == 1:
        return "robust", None
    if name == "robust" and not argument:
        return "robust", None
    if name == "vce" and words and words[0].lower() in _CONVENTIONAL_WORDS and len(words) == 1:
        return "conventional", None
    if name == "vce" and words and words[0].lower() in _CLUSTER_WORDS:
        if len(words) != 2:
            raise UserInputError(f"estimator {given!r}: vce(cluster) needs one cluster column, "
                                 f"expected e.g. vce(cluster school_id)")
        return "cluster", words[1]
    if name in _CLUSTER_WORDS and len(words) == 1:
        return "cluster", words[0]
    raise UserInputError(f"estimator {given!r}: unknown option {option_text.strip()!r}; "
                         f"expected vce(robust) or vce(cluster <column>)")


def parse_model_terms(text: str) -> tuple[str, list[str]]:
    """The outcome and predictors of ``--model``, Stata order: outcome first.

    Parameters
    ----------
    text : str
        E.g. ``"perform tutoring"`` or ``"score i.sector ses"``.

    Returns
    -------
    outcome : str
    predictors : list of str

    Raises
    ------
    UserInputError
        If the text is empty, has a random part (``||``) or options.
    """
    given = (text or "").strip()
    if given.startswith(("mixed ", "regress ", "xtreg ")):
        given = given.split(None, 1)[1] if " " in given else ""
    if "||" in given:
        raise UserInputError(
            f"model {text!r}: give only the outcome and the predictors here (e.g. 'perform tutoring'); "
            f"the random part belongs to the estimator, e.g. --estimator 'mixed || student_id:'")
    if "," in given:
        raise UserInputError(f"model {text!r}: options are not taken here; expected the outcome and the "
                             f"predictors, e.g. 'perform tutoring'")
    words = given.split()
    if not words:
        raise UserInputError(f"model {text!r} is empty: expected the outcome and the predictors, "
                             f"e.g. 'perform tutoring'")
    from engine.stata_command_words import check_fixed_words

    check_fixed_words(words, text)  # if / in qualifiers, weights, an lme4 formula
    return words[0], words[1:]


# ----- fitting -------------------------------------------------------------------------------
def run_estimator(spec: EstimatorSpec | str, frame: pd.DataFrame, outcome: str, predictors: list[str],
                  should_stop: Optional[Callable[[], bool]] = None, *, predict: bool = False,
                  dfmethod: Optional[str] = None) -> FitResult:
    """Fit one estimator of ``outcome`` on ``predictors``.

    Parameters
    ----------
    spec : EstimatorSpec or str
        The estimator (a string is parsed).
    frame : pandas.DataFrame
        The data.
    outcome : str
        The outcome column.
    predictors : list of str
        Stata-style predictors (``x``, ``i.x``, ``c.a#c.b``).
    should_stop : callable, optional
        Polled before the fit and, for mixed models, at every evaluation of the criterion;
        returning True raises :class:`~engine.errors.Cancelled`.
    predict : bool
        Mixed models: also predict the random effects (not needed for a comparison).
    dfmethod : str, optional
        Mixed models: t tests with this df method (Stata's ``dfmethod()`` name) instead of the
        model's own; refused (naming the estimator) where it cannot apply, e.g. kroger with ML.

    Returns
    -------
    FitResult
        With ``name`` set to the estimator string as given and ``fit_seconds`` the wall time
        of the whole estimation (data preparation included, the same for every estimator).

    Raises
    ------
    UserInputError
        Bad string, unknown column, or a model that cannot be estimated (e.g. fixed effects
        when no predictor varies within the groups); the message starts with the estimator string.
    Cancelled
        When ``should_stop`` returns True.
    """
    from engine.mixed import fit_mixed
    from engine.panel import fit_fe, fit_ols, fit_re

    if isinstance(spec, str):
        spec = parse_estimator(spec)
    if should_stop is not None and should_stop():
        raise Cancelled(f"stopped before {spec.text}")
    terms = list(predictors)
    model = spec.model_spec(outcome, terms) if spec.estimator == "mixed" else None
    # Binary and count models report z tests: a comparison's df method is for the linear mixed models.
    if model is not None and dfmethod is not None and not spec.is_glmm:
        from engine.mixed.ddf import check_dfmethod

        model = model.replace(dfmethod=dfmethod)
        try:
            check_dfmethod(model)
        except UserInputError as error:
            raise UserInputError(f"{spec.text}: {error}") from None
    started = time.perf_counter()
    try:
        if spec.estimator == "ols":
            result = fit_ols(frame, outcome, terms, vce=spec.vce, cluster=spec.cluster)
        elif spec.estimator == "fe":
            result = fit_fe(frame, outcome, terms, spec.group, vce=spec.vce, cluster=spec.cluster)
        elif spec.estimator == "re":
            result = fit_re(frame, outcome, terms, spec.group, vce=spec.vce, cluster=spec.cluster)
        else:
            result = fit_mixed(frame, model, predict=predict, should_stop=should_stop)
    except UserInputError as error:
        raise UserInputError(f"{spec.text}: {error}") from None
    result.fit_seconds = time.perf_counter() - started
    result.name = spec.text
    return result
