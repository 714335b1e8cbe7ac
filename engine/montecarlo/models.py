"""The models of a study: a model string read against the design, and how to fit it to one data set.

Two forms are accepted:

* Stata ``mixed`` syntax with the outcome first: ``perform tutoring || dist_id: || school_id:, reml``;
* estimator strings of :mod:`engine.estimators` (``ols``, ``fe student_id``, ``re student_id``,
  ``mixed || student_id:, reml``), fitted to the design's outcome with its treatment and
  covariates as predictors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from engine.design import Design
from engine.design_matrix import term_variables
from engine.errors import UserInputError
from engine.estimators import GLMM_COMMANDS, KEYWORD_ALIASES, EstimatorSpec, run_estimator
from engine.model_spec import ModelSpec
from engine.results import FitResult


@dataclass(frozen=True)
class StudyModel:
    """One model of a study, ready to fit replication after replication.

    Attributes
    ----------
    text : str
        The model string as given: the label of its records and summary rows.
    variables : tuple of str
        Data columns the model reads.
    spec : ModelSpec or None
        The mixed model, for Stata syntax.
    estimator : EstimatorSpec or None
        The estimator, for estimator strings.
    outcome, predictors :
        The design's outcome and predictors, for estimator strings.
    """

    text: str
    variables: tuple[str, ...]
    spec: ModelSpec | None = None
    estimator: EstimatorSpec | None = None
    outcome: str = ""
    predictors: tuple[str, ...] = ()

    def fit(self, frame: pd.DataFrame) -> FitResult:
        """Fit the model to one simulated data set (no predicted random effects: not needed here)."""
        if self.spec is not None:
            from engine.mixed import fit_mixed  # scipy.optimize: not while the window starts

            return fit_mixed(frame, self.spec, predict=False)
        return run_estimator(self.estimator, frame, self.outcome, list(self.predictors), predict=False)


def is_estimator_string(text: str) -> bool:
    """True for ``ols``, ``regress``, ``fe g``, ``re g``, ``mixed || ...``, ``logit`` and ``melogit || ...``;
    False for Stata syntax (``[mixed] outcome predictors || ...``, ``melogit pass tutoring || ...``),
    whose first word after the command is the outcome."""
    first = re.match(r"\s*([A-Za-z_]+)", text or "")
    if first is None or first.group(1).lower() not in KEYWORD_ALIASES:
        return False
    rest = text[first.end():]
    if first.group(1).lower() in ("mixed", *GLMM_COMMANDS):  # 'melogit pass tutoring || ...' is Stata syntax
        return rest.strip() == "" or rest.strip().startswith(("||", ","))
    return rest == "" or rest[0].isspace() or rest[0] == ","


def load_model(text: str, design: Design, dfmethod: str | None = None) -> StudyModel:
    """Read one model string of a study.

    Parameters
    ----------
    text : str
        Stata mixed syntax (outcome first) or an estimator string (see the module docstring).
    design : Design
        Supplies the outcome and predictors of estimator strings.
    dfmethod : str, optional
        The study's df method (Stata's ``dfmethod()`` name), applied to a mixed model; a model
        text naming a different one is refused, and so is one the model cannot use (e.g.
        ``kroger`` with ML).

    Returns
    -------
    StudyModel

    Raises
    ------
    UserInputError
        If the string does not parse, or the df method does not apply to it.
    """
    if not isinstance(text, str) or not text.strip():
        raise UserInputError("a model is empty: write e.g. 'perform tutoring || school_id:, reml'")
    if not is_estimator_string(text):
        spec = with_dfmethod(ModelSpec.parse(text), dfmethod, text)
        return StudyModel(text=text, variables=tuple(spec.variables()), spec=spec)
    estimator = EstimatorSpec.parse(text)
    if estimator.estimator == "mixed" and dfmethod is not None:
        # Fitted as the equivalent Stata model, which carries the df method.
        predictors = tuple(design.variable_levels())
        spec = with_dfmethod(estimator.model_spec(design.outcome, list(predictors)), dfmethod, text)
        return StudyModel(text=text, variables=tuple(spec.variables()), spec=spec)
    predictors = tuple(design.variable_levels())
    variables = [design.outcome, *term_variables(list(predictors)), *estimator.level_names]
    if estimator.cluster:
        variables.append(estimator.cluster)
    if estimator.estimator == "mixed":
        variables += estimator.model_spec(design.outcome, list(predictors)).variables()
    return StudyModel(text=text, variables=tuple(dict.fromkeys(variables)), estimator=estimator,
                      outcome=design.outcome, predictors=predictors)


def with_dfmethod(spec: ModelSpec, dfmethod: str | None, text: str) -> ModelSpec:
    """``spec`` with the study's df method applied, checked against the model (REML for
    satterthwaite and kroger); errors name the model ``text``."""
    from engine.mixed.ddf import check_dfmethod
    from engine.model_spec import parse_dfmethod

    dfmethod = parse_dfmethod(dfmethod)
    if dfmethod is not None:
        if spec.dfmethod is not None and spec.dfmethod != dfmethod:
            raise UserInputError(f"model {text!r} says dfmethod({spec.dfmethod}) but the study's df method is "
                                 f"{dfmethod}: remove one of them")
        spec = spec.replace(dfmethod=dfmethod)
    try:
        check_dfmethod(spec)
    except UserInputError as error:
        raise UserInputError(f"model {text!r}: {error}") from None
    return spec
