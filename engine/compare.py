"""The seed's comparison: OLS, fixed effects, random effects and mixed models side by side.

:func:`compare` fits every estimator of a list to the same outcome and predictors and
tabulates, per estimator, the treatment coefficient (estimate, SE, 95% CI and whether the CI
covers the true value), each variance component it estimates and its fit time, next to the
truth when the data were simulated. Variance components carry the names of the truth and of
the mixed models (``"student_id:sd(_cons)"``, ``"Residual:sd(Residual)"``): the sigma_u of
``fe``/``re`` at a group is that group's ``sd(_cons)``, their sigma_e (and the root MSE of
``ols``) the residual sd. When a fixed-effects and a random-effects fit at the same group are
both in the list (conventional standard errors), the Hausman test is computed and attached.

Binary and count outcomes: the truth is on the latent scale (log-odds, probit, log-rate), which
only the models of the same family and link estimate (``logit``, ``melogit || ...``); any other
estimator in the list (a linear probability model) gets a ``truth_note`` and no truth or
coverage cells. :func:`default_estimators` gives such a design the GLM and GLMM estimators.

The JSON form (:meth:`Comparison.to_dict`) is ``{"estimators": [...], "truth": {...},
"table": [...], ...}``; each estimator has the shape of ``fit --json`` (``FitResult.to_dict``),
and the FE and RE ones carry the panel extras under the keys sigma_u, sigma_e, rho, theta,
corr_u_xb, f_test_u0 (``{"stat", "df1", "df2", "p"}``) and hausman (``{"stat", "df", "p"}``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import pandas as pd

from engine.design import RESIDUAL, Design, Truth
from engine.errors import Cancelled, UserInputError
from engine.estimators import EstimatorSpec, parse_estimator, run_estimator
from engine.hausman import hausman
from engine.model_spec import ModelSpec
from engine.results import FitResult, Test
from engine.serialize import from_jsonable, to_jsonable
from engine.variance_shift import VarianceShift, variance_shifts

RESIDUAL_KEY = f"{RESIDUAL}:sd({RESIDUAL})"
PANEL_EXTRA_KEYS = ("sigma_u", "sigma_e", "rho", "theta", "corr_u_xb", "f_test_u0", "hausman")
SHORT_LABELS = {"ols": "OLS", "fe": "FE", "re": "RE"}


# ----- the table -----------------------------------------------------------------------------
@dataclass
class CoefficientSummary:
    """The treatment coefficient of one estimator, with the truth when known.

    Attributes
    ----------
    term : str
        The coefficient's name.
    estimate, se : float
        Estimate and standard error.
    ci : list of float
        The 95% confidence interval [lower, upper] the estimator reports (t or z).
    truth : float or None
        The true value (simulated data only).
    covers : bool or None
        Whether ``ci`` contains ``truth``; None without a truth.
    stat, df, p : float or None
        The test that the coefficient is zero: t with ``df`` degrees of freedom, or z (``df`` None).
    """

    term: str
    estimate: float
    se: float
    ci: list[float]
    truth: Optional[float] = None
    covers: Optional[bool] = None
    stat: Optional[float] = None  # the Wald ratio: t when df is set, z otherwise
    df: Optional[float] = None
    p: Optional[float] = None


@dataclass
class ComponentSummary:
    """One variance component an estimator estimates, named ``"<level>:<param>"`` as the truth keys.

    Attributes
    ----------
    key : str
        E.g. ``"student_id:sd(_cons)"`` or ``"Residual:sd(Residual)"``.
    estimate : float
        The estimate (standard deviation or correlation scale).
    truth : float or None
        The true value when the data were simulated and the design has this component.
    """

    key: str
    estimate: float
    truth: Optional[float] = None


@dataclass
class EstimatorSummary:
    """One estimator's column of the comparison table.

    Attributes
    ----------
    name : str
        The estimator string as given, e.g. ``"fe student_id"``.
    estimator : str
        'ols', 'fe', 're' or 'mixed'.
    method : str
        'OLS', 'within', 'GLS', 'REML' or 'ML'.
    nobs : int
        Observations used.
    treatment : CoefficientSummary or None
        None when there is no treatment or this estimator dropped it (e.g. constant within
        the fixed-effects groups).
    components : list of ComponentSummary
        The variance components it estimates, in table order.
    fit_seconds : float
        Wall time of the fit, data preparation included.
    converged : bool
        False when an optimiser stopped short (mixed models).
    truth_note : str or None
        Set when the estimator's parameters are on another scale than the truth's (a linear
        model of a binary outcome against its latent-logit truth): its truth cells and coverage
        are then left blank and the note says why.
    """

    name: str
    estimator: str
    method: str
    nobs: int
    treatment: Optional[CoefficientSummary]
    components: list[ComponentSummary] = field(default_factory=list)
    fit_seconds: float = 0.0
    converged: bool = True
    truth_note: Optional[str] = None

    def component(self, key: str) -> Optional[ComponentSummary]:
        """The component named ``key``, or None when this estimator does not estimate it."""
        return next((row for row in self.components if row.key == key), None)


@dataclass
class HausmanPair:
    """The Hausman test of a fixed-effects fit against a random-effects fit at the same group."""

    fe: str
    re: str
    group: str
    stat: float
    df: float
    p: float


@dataclass
class Comparison:
    """Several estimators fitted to the same outcome and predictors, with the truth when known.

    Attributes
    ----------
    outcome : str
    predictors : list of str
    treatment : str or None
        The coefficient the table follows.
    estimators : list of FitResult
        One per estimator, in the order asked; ``name`` is the estimator string.
    truth : Truth or None
        The true parameters of simulated data.
    table : list of EstimatorSummary
        One per estimator, in the same order.
    hausman : list of HausmanPair
        One per group with both an FE and an RE fit (conventional standard errors).
    component_keys : list of str
        The table's variance-component rows: levels outermost first, the residual last.
    dfmethod : str or None
        The df method of the mixed models' t tests (Stata's ``dfmethod()`` name), when one was asked for;
        the table then shows each estimator's test statistic, df and p.
    """

    outcome: str
    predictors: list[str]
    treatment: Optional[str]
    estimators: list[FitResult]
    truth: Optional[Truth]
    table: list[EstimatorSummary]
    hausman: list[HausmanPair] = field(default_factory=list)
    component_keys: list[str] = field(default_factory=list)
    dfmethod: Optional[str] = None
    # Where each nested mixed fit puts the variance of a crossed factor, against the crossed fit.
    variance_shifts: list[VarianceShift] = field(default_factory=list)

    def summary(self, name: str) -> EstimatorSummary:
        """The table column of the estimator named ``name``."""
        for row in self.table:
            if row.name == name:
                return row
        raise KeyError(f"no estimator {name!r}; have {[row.name for row in self.table]}")

    def result(self, name: str) -> FitResult:
        """The fit result of the estimator named ``name``."""
        for result in self.estimators:
            if result.name == name:
                return result
        raise KeyError(f"no estimator {name!r}; have {[r.name for r in self.estimators]}")

    # ----- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict; FE and RE estimators carry the panel extras in the compare JSON shape."""
        data = to_jsonable(self)
        data["estimators"] = [estimator_to_json(result) for result in self.estimators]
        return data

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "Comparison":
        """Rebuild from :meth:`to_dict` output."""
        if not isinstance(data, dict) or not isinstance(data.get("estimators"), list):
            raise UserInputError("comparison: expected an object with a list of 'estimators'")
        rest = {key: value for key, value in data.items() if key != "estimators"}
        comparison = from_jsonable(cls, {**rest, "estimators": []})
        comparison.estimators = [estimator_from_json(entry) for entry in data["estimators"]]
        return comparison


# ----- the panel extras in the compare JSON --------------------------------------------------
def panel_extras_to_json(result: FitResult) -> dict:
    """The extras of an FE or RE fit under the compare JSON's key names.

    Parameters
    ----------
    result : FitResult
        A fit of estimator 'fe' or 're'.

    Returns
    -------
    dict
        ``sigma_u``, ``sigma_e``, ``rho``, ``theta`` (``FitResult.theta_re``: a number, a dict
        over panels, or None for FE), ``corr_u_xb``, ``f_test_u0`` as ``{"stat", "df1",
        "df2", "p"}`` and ``hausman`` as ``{"stat", "df", "p"}`` (None when not computed).
    """
    f_test = result.f_test_u0
    test = result.hausman
    return {
        "sigma_u": result.sigma_u,
        "sigma_e": result.sigma_e,
        "rho": result.rho,
        "theta": to_jsonable(result.theta_re),
        "corr_u_xb": result.corr_u_xb,
        "f_test_u0": None if f_test is None else to_jsonable(
            {"stat": f_test.stat, "df1": f_test.df, "df2": f_test.df2, "p": f_test.p}),
        "hausman": None if test is None else to_jsonable({"stat": test.stat, "df": test.df, "p": test.p}),
    }


def estimator_to_json(result: FitResult) -> dict:
    """``result.to_dict()`` (the ``fit --json`` shape), with the FE/RE extras under the compare keys."""
    data = result.to_dict()
    if result.estimator in ("fe", "re"):
        for key in ("theta_re", "f_test_u0", "hausman"):
            data.pop(key, None)
        data.update(panel_extras_to_json(result))
    return data


def estimator_from_json(data: dict) -> FitResult:
    """Inverse of :func:`estimator_to_json`."""
    if data.get("estimator") not in ("fe", "re"):
        return FitResult.from_dict(data)
    shaped = dict(data)
    theta_re = shaped.pop("theta", None)
    f_test = shaped.pop("f_test_u0", None)
    test = shaped.pop("hausman", None)
    result = FitResult.from_dict(shaped)
    result.theta_re = theta_re
    if f_test is not None:
        result.f_test_u0 = Test(stat=f_test["stat"], df=f_test["df1"], df2=f_test["df2"], p=f_test["p"], kind="F")
    if test is not None:
        result.hausman = Test(stat=test["stat"], df=test["df"], p=test["p"], kind="chi2")
    return result


# ----- comparing -----------------------------------------------------------------------------
def compare(frame: pd.DataFrame, outcome: str, predictors: Sequence[str],
            estimators: Sequence[EstimatorSpec | str], truth: Optional[Truth] = None,
            treatment: Optional[str] = None, should_stop: Optional[Callable[[], bool]] = None,
            progress: Optional[Callable[[int, int, str], None]] = None,
            dfmethod: Optional[str] = None) -> Comparison:
    """Fit every estimator to the same outcome and predictors and tabulate them against the truth.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    outcome : str
        The outcome column.
    predictors : sequence of str
        Stata-style predictors, shared by every estimator.
    estimators : sequence of EstimatorSpec or str
        E.g. ``["ols", "fe student_id", "re student_id", "mixed || student_id:"]``.
    truth : Truth, optional
        The true parameters (simulated data): adds the truth column and the "covers" flags.
    treatment : str, optional
        The coefficient to follow; default the first predictor (None without predictors).
    should_stop : callable, optional
        Polled between and during fits; returning True raises :class:`~engine.errors.Cancelled`.
    progress : callable, optional
        ``progress(done, total, name)``: before each fit with the number already done and the
        estimator about to run, and at the end with ``done == total`` and ``name == ""``.
    dfmethod : str, optional
        Small-sample t tests for every mixed model (Stata's ``dfmethod()``: residual, repeated,
        anova, satterthwaite, kroger); the table then shows each estimator's t (or z), df and p.
        A mixed model the method cannot apply to (satterthwaite or kroger with ML) is refused.

    Returns
    -------
    Comparison

    Raises
    ------
    UserInputError
        A bad estimator string, an unknown treatment, no estimator, or an estimator that
        cannot be fitted (its message starts with the estimator string).
    Cancelled
        When ``should_stop`` returns True.
    """
    from engine.model_spec import parse_dfmethod

    dfmethod = parse_dfmethod(dfmethod)
    predictors = list(predictors)
    specs = [parse_estimator(item) if isinstance(item, str) else item for item in estimators]
    if not specs:
        raise UserInputError("no estimator to compare: give at least one, e.g. 'ols' or 'fe student_id'")
    names = [spec.text for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserInputError(f"estimator {repeated[0]!r} is listed more than once")
    if treatment is None:
        treatment = predictors[0] if predictors else None
    elif treatment not in predictors:
        raise UserInputError(f"treatment {treatment!r} is not among the predictors "
                             f"({', '.join(predictors) or 'none'})")

    results = []
    for done, spec in enumerate(specs):
        if should_stop is not None and should_stop():
            raise Cancelled("comparison stopped")
        if progress is not None:
            progress(done, len(specs), spec.text)
        results.append(run_estimator(spec, frame, outcome, predictors, should_stop=should_stop, dfmethod=dfmethod))
    if progress is not None:
        progress(len(specs), len(specs), "")

    return comparison_of_results(results, truth, predictors, treatment, specs, dfmethod=dfmethod)


def comparison_of_results(results: Sequence[FitResult], truth: Optional[Truth], predictors: Sequence[str],
                          treatment: Optional[str] = None,
                          specs: Optional[Sequence[EstimatorSpec]] = None,
                          dfmethod: Optional[str] = None) -> Comparison:
    """Tabulate fits already made (named by their estimator strings) against the truth.

    ``compare`` fits and then calls this; the window, which fits with live progress, calls it
    directly. ``treatment`` defaults to the first predictor; ``dfmethod`` records the df method
    the mixed models were fitted with (the table then shows t, df and p).
    """
    results = list(results)
    if not results:
        raise UserInputError("no fits to compare")
    specs = list(specs) if specs is not None else [parse_estimator(result.name) for result in results]
    if treatment is None:
        treatment = predictors[0] if predictors else None
    hausman_pairs = hausman_tests(specs, results)
    table = [summarize(spec, result, treatment, truth) for spec, result in zip(specs, results)]
    shifts = variance_shifts([(f"({k})", result) for k, result in enumerate(results, start=1)], truth)
    return Comparison(outcome=results[0].depvar, predictors=list(predictors), treatment=treatment,
                      estimators=results, truth=truth, table=table, hausman=hausman_pairs,
                      component_keys=ordered_component_keys(specs, table, truth), dfmethod=dfmethod,
                      variance_shifts=shifts)


def summarize(spec: EstimatorSpec, result: FitResult, treatment: Optional[str],
              truth: Optional[Truth]) -> EstimatorSummary:
    """One estimator's column: the treatment coefficient, the variance components and the fit time.

    An estimator whose parameters are not on the truth's scale (:func:`scale_mismatch`) gets no
    truth and no coverage, and a note saying why."""
    note = scale_mismatch(result, truth)
    comparable_truth = None if note is not None else truth
    return EstimatorSummary(
        name=spec.text, estimator=result.estimator, method=result.method, nobs=result.nobs,
        treatment=treatment_summary(result, treatment, comparable_truth),
        components=[ComponentSummary(key=key, estimate=value, truth=true_component(comparable_truth, key))
                    for key, value in variance_components(spec, result)],
        fit_seconds=result.fit_seconds, converged=result.converged, truth_note=note)


def truth_scale(truth: Optional[Truth]) -> Optional[tuple[str, str]]:
    """The (family, link) of the design a truth was simulated from; None when the truth carries no design."""
    if truth is None or not isinstance(truth.design, dict):
        return None
    family = truth.design.get("family", "gaussian")
    return family, truth.design.get("link", "identity" if family == "gaussian" else "")


def scale_mismatch(result: FitResult, truth: Optional[Truth]) -> Optional[str]:
    """Why ``result`` cannot be held against ``truth``, or None when it can.

    A binary or count design's truth is on the latent (logit, probit or log-rate) scale; a
    linear model of that outcome (ols, fe, re, mixed) estimates effects on the probability or
    count scale, and a model with another link on another latent scale.
    """
    scale = truth_scale(truth)
    if scale is None:
        return None
    family, link = scale
    fitted = (result.family or "gaussian", result.link or "identity")
    if fitted == (family, link):
        return None
    if fitted[0] == "gaussian":
        kind = "linear probability model" if family == "binomial" else "linear model of the counts"
        return f"{kind}: not comparable with the latent-scale truth ({family}, {link} link)"
    if family == "gaussian":
        return f"{fitted[0]} model of a continuous outcome: not comparable with the truth"
    return f"{fitted[0]} model with {fitted[1]} link: not comparable with the truth on the {link} scale"


def treatment_summary(result: FitResult, treatment: Optional[str],
                      truth: Optional[Truth]) -> Optional[CoefficientSummary]:
    """The treatment row of ``result`` with its true value and coverage, or None if not estimated."""
    if treatment is None:
        return None
    row = next((row for row in result.fixed if row.term == treatment), None)
    if row is None:
        return None
    true_value = None if truth is None else truth.fixed.get(treatment)
    covers = None
    if true_value is not None and all(math.isfinite(bound) for bound in row.ci):
        covers = bool(row.ci[0] <= true_value <= row.ci[1])
    return CoefficientSummary(term=row.term, estimate=row.coef, se=row.se, ci=list(row.ci),
                              truth=true_value, covers=covers, stat=row.z, df=row.df, p=row.p)


def variance_components(spec: EstimatorSpec, result: FitResult) -> list[tuple[str, float]]:
    """The (key, estimate) pairs of the variance components an estimator reports.

    Mixed models: every random-effects parameter (sd and corr scale). FE and RE: sigma_u as
    ``"<group>:sd(_cons)"`` and sigma_e as ``"Residual:sd(Residual)"``. OLS: its root MSE as
    the residual sd (the one variance it estimates, all levels lumped together).
    """
    if result.estimator == "mixed":
        return [(f"{row.level}:{row.param}", row.estimate) for row in result.random]
    pairs = []
    if result.estimator in ("fe", "re") and result.sigma_u is not None:
        pairs.append((f"{spec.group}:sd(_cons)", result.sigma_u))
    if result.sigma_e is not None:
        pairs.append((RESIDUAL_KEY, result.sigma_e))
    return pairs


def true_component(truth: Optional[Truth], key: str) -> Optional[float]:
    """The true value of a component, or None (no truth, or a component the design lacks).

    A correlation the design leaves at zero is not in ``Truth.random``; it is 0 then.
    """
    if truth is None:
        return None
    if key in truth.random:
        return truth.random[key]
    level, _, param = key.partition(":")
    if param.startswith("corr(") and f"{level}:sd(_cons)" in truth.random:
        return 0.0
    return None


def hausman_tests(specs: Sequence[EstimatorSpec], results: Sequence[FitResult]) -> list[HausmanPair]:
    """Hausman tests of FE against RE at each group that has both (conventional errors).

    The first FE and the first RE fit with conventional standard errors at a group are paired;
    the test is stored on both results (``FitResult.hausman``). A pair the test refuses (e.g.
    no common coefficient) gets a note on the FE result instead.
    """
    pairs = []
    conventional = [(spec, result) for spec, result in zip(specs, results) if spec.vce == "conventional"]
    groups = list(dict.fromkeys(spec.group for spec, _ in conventional if spec.estimator in ("fe", "re")))
    for group in groups:
        fe = next(((s, r) for s, r in conventional if s.estimator == "fe" and s.group == group), None)
        re = next(((s, r) for s, r in conventional if s.estimator == "re" and s.group == group), None)
        if fe is None or re is None:
            continue
        try:
            test = hausman(fe[1], re[1])
        except UserInputError as error:
            fe[1].notes.append(f"Hausman test against {re[0].text!r} not computed: {error}")
            continue
        re[1].hausman = test
        pairs.append(HausmanPair(fe=fe[0].text, re=re[0].text, group=group, stat=test.stat, df=test.df, p=test.p))
    return pairs


def ordered_component_keys(specs: Sequence[EstimatorSpec], table: Sequence[EstimatorSummary],
                           truth: Optional[Truth]) -> list[str]:
    """Rows for variance components: by level, outermost first (the truth's order, then the
    estimators'), the parameters of a level in first-seen order, the residual last."""
    levels: list[str] = []
    keys: list[str] = list(truth.random) if truth is not None else []
    for key in keys:
        levels.append(key.partition(":")[0])
    for spec in specs:
        if spec.estimator == "mixed":
            levels.extend(spec.level_names)
    for summary in table:
        keys.extend(row.key for row in summary.components)
        levels.extend(row.key.partition(":")[0] for row in summary.components)
    levels = [level for level in dict.fromkeys(levels) if level != RESIDUAL] + [RESIDUAL]
    keys = list(dict.fromkeys(keys))
    return sorted(keys, key=lambda key: (levels.index(key.partition(":")[0]), keys.index(key)))


# ----- the seed's own set ------------------------------------------------------------------
def design_levels_with_replication(design: Design) -> list[str]:
    """Levels whose units hold more than one row: every level when there are occasions,
    else all but the bottom one (one row per bottom unit confounds it with the residual)."""
    names = design.level_names
    return names if design.occasions is not None else names[:-1]


def design_model(design: Design) -> tuple[str, list[str]]:
    """The outcome and predictors of a design: the treatment first, then the covariates."""
    predictors = list(design.variable_levels())
    return design.outcome, predictors


def default_estimators(design: Design) -> list[EstimatorSpec]:
    """The seed's own set of estimators for a design.

    ``ols``; ``fe`` and ``re`` at the bottom level id; ``mixed`` with the bottom level only;
    ``mixed`` with all levels by REML and by ML. For the tutoring preset::

        ols, fe student_id, re student_id, mixed || student_id:,
        mixed || dist_id: || school_id: || teach_id: || student_id:, reml   (and , ml)

    "Bottom level" means the lowest level whose units hold several rows (see
    :func:`design_levels_with_replication`). ``fe`` is left out when no predictor varies
    within that level (xtreg, fe could estimate nothing), and the bottom-level-only mixed
    model when it is the all-levels one.

    A binary or count design (``design.family`` not gaussian) gets their counterparts instead,
    all by maximum likelihood (Laplace) and compared with the truth on the latent scale: the
    single-level model (``logit``, ``probit`` or ``poisson``), the GLMM with the bottom level only,
    the GLMM with all levels, and the nested GLMM without the levels units move between and the
    crossed GLMM when something is crossed (see :func:`glmm_estimators`). The linear estimators
    are left out: on a 0/1 or count outcome they estimate other parameters than the truth's.

    Raises
    ------
    UserInputError
        When no level holds more than one row.
    """
    levels = design_levels_with_replication(design)
    if not levels:
        raise UserInputError(f"design {design.name or ''}: no level holds more than one row, "
                             f"so there is nothing to compare against OLS")
    if design.family != "gaussian":
        return glmm_estimators(design)
    bottom = levels[-1]
    _, predictors = design_model(design)
    variable_levels = design.variable_levels()
    bottom_depth = design.variable_depth(bottom)
    varies_within_bottom = any(design.variable_depth(variable_levels[name]) > bottom_depth
                               for name in predictors)
    all_levels = " ".join(f"|| {name}:" for name in levels)
    texts = ["ols"]
    if varies_within_bottom:
        texts.append(f"fe {bottom}")
    texts.append(f"re {bottom}")
    if len(levels) > 1:
        texts.append(f"mixed || {bottom}:")
    texts += [f"mixed {all_levels}, reml", f"mixed {all_levels}, ml"]
    without_moving = [name for name in levels if design.level(name).move_prob == 0]
    if len(without_moving) < len(levels) and without_moving:
        # The nesting the data do have (students in schools), without the level students move
        # between: its fit shows where that level's variance goes.
        texts.append("mixed " + " ".join(f"|| {name}:" for name in without_moving) + ", reml")
    crossed = crossed_model_text(design)
    if crossed is not None:  # crossed factors: the crossed model beside the nested ones
        texts.append(crossed)
    return [parse_estimator(text) for text in texts]


def glmm_command(design: Design) -> str:
    """Stata's multilevel command for a design's outcome: melogit, meprobit or mepoisson."""
    from engine.glmm.spec import STATA_COMMAND

    return STATA_COMMAND.get((design.family, design.link), "meglm")


def glmm_estimators(design: Design) -> list[EstimatorSpec]:
    """The comparison's estimators for a binary or count design (see :func:`default_estimators`).

    For the tutoring_binary preset::

        logit, melogit || student_id:, melogit || dist_id: || school_id: || teach_id: || student_id:

    All by maximum likelihood with the Laplace approximation (REML is not defined for these
    models); a design with an exposure-free Poisson outcome gets ``poisson`` and ``mepoisson``.
    """
    from engine.glmm.single_level import pooled_command

    levels = design_levels_with_replication(design)
    command = glmm_command(design)
    pooled = pooled_command(design.family, design.link)
    texts = [pooled if pooled in ("logit", "probit", "poisson") else command]
    if len(levels) > 1:
        texts.append(f"{command} || {levels[-1]}:")
    texts.append(f"{command} " + " ".join(f"|| {name}:" for name in levels))
    without_moving = [name for name in levels if design.level(name).move_prob == 0]
    if len(without_moving) < len(levels) and without_moving:
        texts.append(f"{command} " + " ".join(f"|| {name}:" for name in without_moving))
    crossed = crossed_model_text(design)
    if crossed is not None:
        texts.append(crossed)
    return [parse_estimator(text) for text in dict.fromkeys(texts)]


def crossed_model_text(design: Design) -> str | None:
    """The crossed mixed model of a design, by REML (by ML, as melogit, meprobit or mepoisson, for a
    binary or count design); None when nothing is crossed.

    Bottom units that move between a level's units (``move_prob``): the levels above the first
    such level nested, it and every level below it crossed (``|| _all: R.x``). A crossed factor
    (``Design.crossed``) is written ``|| _all: R.f`` right after the level it lies within (first
    when it lies within none), so its groups are its own ids within that level's units. Levels
    whose units hold one row each are left out, as in :func:`default_estimators`.
    """
    if not design.crossed_names():
        return None
    levels = design_levels_with_replication(design)
    moving = [index for index, name in enumerate(levels) if design.level(name).move_prob > 0]
    first = moving[0] if moving else len(levels)
    parts = [f"|| _all: R.{factor.name}" for factor in design.crossed if factor.within is None]
    for name in levels[:first]:
        parts.append(f"|| {name}:")
        parts += [f"|| _all: R.{factor.name}" for factor in design.crossed if factor.within == name]
    parts += [f"|| _all: R.{name}" for name in levels[first:]]
    if design.family != "gaussian":
        return f"{glmm_command(design)} " + " ".join(parts)
    return "mixed " + " ".join(parts) + ", reml"


def nested_and_crossed_models(design: Design) -> list[ModelSpec]:
    """The nested and the crossed models of a design with something crossed, as ModelSpecs to
    compare side by side (the Compare models tab): every level nested, the nesting without the
    levels units move between (when units move), and the crossed model; all by REML, with the
    design's outcome and predictors (binary and count designs: the GLMMs, by ML). Empty when
    nothing is crossed."""
    if not design.crossed_names():
        return []
    outcome, predictors = design_model(design)
    method = "REML" if design.family == "gaussian" else "ML"
    return [spec.model_spec(outcome, predictors) for spec in default_estimators(design)
            if spec.estimator == "mixed" and spec.method == method and len(spec.level_names) > 1]


# ----- the printed table -------------------------------------------------------------------
LABEL_WIDTH = 24
COLUMN_WIDTH = 12


def format_comparison(comparison: Comparison) -> str:
    """A fixed-width table: rows are the treatment coefficient, its SE, whether the 95% CI
    covers the truth, each variance component and the fit seconds; columns are the
    estimators (numbered, named in a legend below) and the truth when known.

    Parameters
    ----------
    comparison : Comparison

    Returns
    -------
    str
        The table, the legend, the Hausman tests and the estimators' notes and warnings.
    """
    table = comparison.table
    truth = comparison.truth
    has_truth = truth is not None
    width = LABEL_WIDTH + COLUMN_WIDTH * (len(table) + has_truth)
    rule = "-" * width

    def line(label: str, cells: list[str], truth_cell: str = "") -> str:
        text = f"{label[:LABEL_WIDTH - 1]:<{LABEL_WIDTH}}" + "".join(f"{cell:>{COLUMN_WIDTH}}" for cell in cells)
        if has_truth:
            text += f"{truth_cell:>{COLUMN_WIDTH}}"
        return text.rstrip()

    first = comparison.estimators[0] if comparison.estimators else None
    lines = [f"Comparison of estimators: {comparison.outcome} on "
             f"{' '.join(comparison.predictors) or 'a constant'}"
             + (f" ({first.nobs:,} observations)" if first is not None else "")]
    if comparison.dfmethod is not None:
        lines.append(f"Mixed models: t tests with dfmethod({comparison.dfmethod}); other estimators their own "
                     f"t tests (z where df is blank)")
    if has_truth:
        scale = truth_scale(truth)
        latent = f", on the latent {scale[1]} scale" if scale is not None and scale[0] != "gaussian" else ""
        lines.append("Truth: the parameters the data were simulated from"
                     + (f" (seed {truth.seed}{latent})" if truth.seed is not None else f" ({latent[2:]})" if latent else ""))
    lines += ["", line("", [f"({k})" for k in range(1, len(table) + 1)]),
              line("", [short_label(row) for row in table], "Truth" if has_truth else ""), rule]

    treatment = comparison.treatment
    if treatment is not None:
        true_effect = truth.fixed.get(treatment) if has_truth else None
        lines.append(line(treatment, [number(row.treatment and row.treatment.estimate) for row in table],
                          number(true_effect)))
        lines.append(line("  SE", [number(row.treatment and row.treatment.se) for row in table]))
        if comparison.dfmethod is not None:
            lines.append(line("  t (z if no df)", [number(row.treatment and row.treatment.stat) for row in table]))
            lines.append(line("  df", [df_cell(row.treatment) for row in table]))
            lines.append(line("  P>|t|", [number(row.treatment and row.treatment.p) for row in table]))
        if true_effect is not None:
            lines.append(line("  95% CI covers truth", [yes_no(row.treatment and row.treatment.covers)
                                                        for row in table]))
        lines.append(rule)
    for key in comparison.component_keys:
        cells = []
        for row in table:
            component = row.component(key)
            cells.append(number(component.estimate if component else None))
        lines.append(line(key, cells, number(true_component(truth, key))))
    if comparison.component_keys:
        lines.append(rule)
    lines.append(line("Fit seconds", [f"{row.fit_seconds:.3f}" for row in table]))
    lines.append(rule)

    lines.append("")
    for k, (row, result) in enumerate(zip(table, comparison.estimators), start=1):
        lines.append(f"({k}) {row.name}    [{result.model}]")
    for pair in comparison.hausman:
        lines.append(f"Hausman test ({pair.fe} vs {pair.re}): chi2({int(pair.df)}) = {pair.stat:.2f}, "
                     f"Prob > chi2 = {pair.p:.4f}")
    for k, (row, result) in enumerate(zip(table, comparison.estimators), start=1):
        if row.truth_note is not None:
            lines.append(f"Note ({k}): {row.truth_note}; its truth cells and coverage are left blank.")
        elif has_truth and result.family == "binomial" and not result.random:
            lines.append(f"Note ({k}): a single-level {short_label(row)} model estimates the population-averaged "
                         f"effect, smaller in size than the truth's within-group (conditional) effect when the "
                         f"levels vary.")
        elif has_truth and result.family == "poisson" and not result.random:
            # With a log link random intercepts only shift the marginal intercept (by half their
            # variance): the slopes are the conditional ones, but the rows are treated as independent.
            lines.append(f"Note ({k}): a single-level {short_label(row)} model estimates the same effects as the "
                         f"mixed model (with a log link the levels shift only the intercept), but treats the rows "
                         f"as independent: its standard errors are too small when the levels vary.")
    for k, result in enumerate(comparison.estimators, start=1):
        for note in result.notes:
            lines.append(f"Note ({k}): {note}")
        for warning in result.warnings:
            lines.append(f"Warning ({k}): {warning}")
        if not result.converged:
            lines.append(f"Warning ({k}): the optimiser did not converge")
    for shift in comparison.variance_shifts:
        lines.append(f"Where the {shift.factor} variance went: {shift.text}")
    if treatment is not None:
        missing = [f"({k})" for k, row in enumerate(table, start=1) if row.treatment is None]
        if missing:
            lines.append(f"Note: {', '.join(missing)} did not estimate {treatment} (see the notes above).")
    return "\n".join(lines) + "\n"


def short_label(summary: EstimatorSummary) -> str:
    """The column heading of an estimator: OLS, FE, RE, 'Mixed ML' or 'Mixed REML' (+ ' rob.'/' cl.');
    for binary and count models Stata's command: logit, probit, poisson, melogit, meprobit, mepoisson."""
    label = SHORT_LABELS.get(summary.estimator, f"Mixed {summary.method}")
    try:
        spec = parse_estimator(summary.name)
    except UserInputError:  # a name from elsewhere (e.g. an old JSON file): the generic heading
        return label
    if summary.estimator in SHORT_LABELS:
        label += {"robust": " rob.", "cluster": " cl."}.get(spec.vce, "")
    elif spec.command in ("xtlogit", "xtprobit", "xtpoisson"):
        label = f"{spec.command} RE"
    elif spec.is_glmm:
        label = spec.command
    return label


def number(value: Optional[float]) -> str:
    """A table cell: 4 decimals, scientific for very large or small values, blank for None."""
    if value is None:
        return ""
    if not math.isfinite(value):
        return "."
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e6 or magnitude < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}"


def df_cell(summary: Optional[CoefficientSummary]) -> str:
    """The df of a treatment's test: 2 decimals, blank for z or no treatment."""
    if summary is None or summary.df is None:
        return ""
    return f"{summary.df:.2f}"


def yes_no(value: Optional[bool]) -> str:
    """'yes', 'no', or blank when unknown."""
    return "" if value is None else ("yes" if value else "no")


__all__ = ["Comparison", "CoefficientSummary", "ComponentSummary", "EstimatorSummary", "HausmanPair",
           "compare", "default_estimators", "design_model", "glmm_estimators", "scale_mismatch", "truth_scale", "format_comparison", "estimator_to_json",
           "estimator_from_json", "panel_extras_to_json"]
