"""Model comparison: likelihood-ratio tests, AIC and BIC, intraclass correlations, variance explained.

:func:`compare_models` fits two or more models to the same rows and reports

* likelihood-ratio tests between neighbouring nested models, as Stata's ``lrtest``. Models that
  differ in their fixed effects cannot be compared by REML likelihoods (each is the likelihood of
  a different set of error contrasts), so when REML was asked for and the fixed effects differ,
  every model is refitted by ML for the tests and a note says so. When the larger model adds one
  variance component, the null hypothesis puts it on the boundary of the parameter space and the
  statistic follows a chi-bar-square mixture (Self & Liang 1987; Stram & Lee 1994): adding one
  random intercept or an independent random slope gives 1/2 chi2(0) + 1/2 chi2(1); adding a
  random slope correlated with the q effects already at its level gives 1/2 chi2(q) +
  1/2 chi2(q+1). Added fixed effects shift both degrees of freedom. Other changes of several
  variance components get Stata's plain chi2 with a note that it is conservative.
* AIC = -2 ll + 2 k and BIC = -2 ll + k ln N (Stata's ``estat ic``; k counts fixed effects,
  variance parameters and the residual variance; N is the number of observations);
* intraclass correlations of random-intercept models per level, as Stata's ``estat icc``: the
  share of the total variance at and above the level (the correlation of two observations in the
  same group). Standard errors by the delta method from the observed information of the
  log standard deviations; confidence intervals on the logit scale, logit(icc) +/- 1.96 se /
  (icc (1 - icc)), mapped back, so that they stay inside (0, 1) (Stata's choice as well);
* the proportion of variance explained at each level relative to a null model (Raudenbush &
  Bryk's pseudo-R^2: (var_null - var_model) / var_null for the residual and the intercept
  variance of each level). The null model has the same levels, random intercepts only and no
  predictors, fitted by the same method to the same rows.

The ICCs and variance shares use the fits by the method asked for (REML by default in HLM,
which estimates variances without bias); the tests and information criteria use the fits they
are valid for (ML after a refit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import pandas as pd

from engine.centering import data_columns
from engine.distributions import chi2_sf
from engine.errors import UserInputError, require_columns
from engine.model_spec import Level, ModelSpec
from engine.results import FitResult
from engine.serialize import from_jsonable, to_jsonable
from engine.variance_shift import VarianceShift, variance_shifts

AUTOMATIC_NULL = "auto"
NULL_LABEL = "null model"  # the null model's name in the ICC rows
REML_FIXED_EFFECTS_NOTE = (
    "The models differ in their fixed effects, and REML likelihoods cannot compare mean structures "
    "(Stata: \"You're comparing the mean structure of models estimated using REML. Use ML instead.\"): "
    "for the likelihood-ratio tests and AIC/BIC every model was refitted by ML.")


@dataclass
class ComparedModel:
    """One model as used by the tests and information criteria."""

    label: str
    model: str  # Stata command
    method: str
    nobs: int
    loglik: float
    n_params: int  # Stata's df: fixed effects + variance parameters + residual variance
    aic: float
    bic: float
    converged: bool = True


@dataclass
class LikelihoodRatioTest:
    """LR test of ``restricted`` (the smaller model) against ``full``.

    ``distribution`` is ``"chi2"`` (with ``df``) or ``"chibar2"``, a mixture given in ``mixture``
    as [weight, df] pairs, e.g. [[0.5, 0], [0.5, 1]].
    """

    restricted: str
    full: str
    stat: float
    df: int
    p: float
    distribution: str = "chi2"
    mixture: list[list[float]] = field(default_factory=list)
    difference: str = ""  # what the full model adds, in words
    method: str = "ML"
    note: str = ""


@dataclass
class FixedEffectsTest:
    """Wald F test (with a df method) that the fixed effects ``full`` adds to ``restricted`` are zero,
    in ``full``'s fit: pbkrtest's ``KRmodcomp`` for Kenward-Roger, lmerTest's ``anova`` for Satterthwaite.
    Asked for with ``compare_models(dfmethod=...)``; both models must have the same random part."""

    restricted: str
    full: str
    columns: list[str]
    F: float
    df1: int
    df2: float
    p: float
    dfmethod: str


@dataclass
class IntraclassCorrelation:
    """ICC of one level of a random-intercept model; ``label`` follows Stata (``class|school``)."""

    model: str
    level: str
    label: str
    estimate: float
    se: Optional[float] = None
    ci: Optional[list[float]] = None


@dataclass
class VarianceExplained:
    """Raudenbush & Bryk's proportion of variance explained at one level (``Residual`` is level 1)."""

    model: str
    level: str
    parameter: str  # 'var(_cons)' or 'var(Residual)'
    null_variance: float
    model_variance: float
    proportion: float


@dataclass
class ComponentRow:
    """One variance component (``"level:param"``, as the truth names it) across the models.

    ``estimates`` maps a model's label to its estimate (models without the component are absent);
    ``truth`` is the true value when the data were simulated.
    """

    key: str
    estimates: dict[str, float] = field(default_factory=dict)
    truth: Optional[float] = None


@dataclass
class ModelComparison:
    """Everything :func:`compare_models` reports; ``format()`` prints it, ``to_dict()`` is JSON-ready.

    ``fits`` (as asked for) and ``test_fits`` (used by the tests; the same objects unless refitted
    by ML) and ``null_fit`` ride along for display and are not serialised.
    """

    models: list[ComparedModel]
    tests: list[LikelihoodRatioTest]
    method: str  # of the tests and information criteria
    fit_method: str  # of the ICCs and variance shares
    refitted_by_ml: bool = False
    intraclass: list[IntraclassCorrelation] = field(default_factory=list)
    variance_explained: list[VarianceExplained] = field(default_factory=list)
    null_model: str = ""
    notes: list[str] = field(default_factory=list)
    fixed_tests: list[FixedEffectsTest] = field(default_factory=list)  # with a df method only
    dfmethod: Optional[str] = None
    # Variance components side by side (the fits as asked for), against the truth when known, and
    # where each nested fit puts a crossed factor's variance (engine.variance_shift).
    components: list[ComponentRow] = field(default_factory=list)
    variance_shifts: list[VarianceShift] = field(default_factory=list)
    fits: list[FitResult] = field(default_factory=list, metadata={"transient": True})
    test_fits: list[FitResult] = field(default_factory=list, metadata={"transient": True})
    null_fit: Optional[FitResult] = field(default=None, metadata={"transient": True})

    def model(self, label: str) -> ComparedModel:
        for model in self.models:
            if model.label == label:
                return model
        raise KeyError(f"no model {label!r}")

    def format(self) -> str:
        """Stata-like text: lrtest, estat ic, estat icc and the variance explained."""
        return _format_comparison(self)

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelComparison":
        return from_jsonable(cls, data)


# ===== the comparison ==============================================================================

def compare_models(frame: pd.DataFrame, models: Sequence[Union[ModelSpec, str]], *,
                   labels: Sequence[str] | None = None, method: str | None = None,
                   null_model: Union[ModelSpec, str, None] = AUTOMATIC_NULL,
                   should_stop: Callable[[], bool] | None = None,
                   dfmethod: str | None = None, truth=None) -> ModelComparison:
    """Fit ``models`` to the same rows of ``frame`` and compare them.

    Parameters
    ----------
    frame : DataFrame
        The data. Rows missing a value any of the models reads are dropped from all of them, so
        that every model (and the null model) uses the same rows.
    models : sequence of ModelSpec or str
        Two or more models (Stata ``mixed`` syntax is parsed). Neighbours in the list are tested
        against each other, the one with fewer parameters as the restricted model.
    labels : sequence of str, optional
        Names for the models; ``A``, ``B``, ... by default.
    method : {"REML", "ML"}, optional
        Overrides each model's own method. When the fits would be REML but the fixed effects of
        a tested pair differ, or the models' methods differ, the tests use ML refits.
    null_model : ModelSpec, str or None
        The reference of the variance explained: ``"auto"`` (random intercepts at the levels of
        the model with most levels, no predictors), a model, or None to skip it.
    should_stop : callable, optional
        Passed to each fit: returning True cancels.
    dfmethod : str, optional
        Fit every model with this df method (Stata's ``dfmethod()``; satterthwaite and kroger need
        REML) and add, for each neighbouring pair with the same random part whose fixed effects
        are nested, the F test of the added fixed effects with that method's df (``fixed_tests``).
    truth : engine.design.Truth, optional
        The true parameters of simulated data: the variance components table gets a truth column,
        and the readings of where nested fits put a crossed factor's variance name the true value.

    Returns
    -------
    ModelComparison

    Raises
    ------
    UserInputError
        Fewer than two models, different outcomes, or a fitting problem.
    """
    specs = [m if isinstance(m, ModelSpec) else ModelSpec.parse(m) for m in models]
    if len(specs) < 2:
        raise UserInputError("a comparison needs at least two models")
    labels = list(labels) if labels is not None else [_default_label(i) for i in range(len(specs))]
    if len(labels) != len(specs) or len(set(labels)) != len(labels):
        raise UserInputError("give one distinct label per model")
    outcomes = sorted({spec.outcome for spec in specs})
    if len(outcomes) > 1:
        raise UserInputError(f"the models have different outcomes ({', '.join(outcomes)}): they cannot be compared")
    if method is not None:
        specs = [spec.replace(method=method) for spec in specs]
    if dfmethod is not None:
        specs = _with_dfmethod(specs, labels, dfmethod)
        dfmethod = specs[0].dfmethod
    notes: list[str] = []
    data, dropped = common_rows(frame, specs)
    if dropped:
        notes.append(f"{dropped} rows missing a value some model reads were dropped from every model, "
                     f"so that all models use the same {len(data)} rows.")

    from engine.mixed import fit_mixed

    fits = [fit_mixed(data, spec, predict=False, should_stop=should_stop) for spec in specs]
    methods = {fit.method for fit in fits}
    refit_reasons = []
    if len(methods) > 1:
        refit_reasons.append("The models were fitted by different methods: for the tests and AIC/BIC every "
                             "model was refitted by ML.")
    elif methods == {"REML"} and _fixed_effects_differ(fits):
        refit_reasons.append(REML_FIXED_EFFECTS_NOTE)
    if refit_reasons:
        notes += refit_reasons
        test_fits = [fit if fit.method == "ML" else
                     fit_mixed(data, fit.spec.replace(method="ML", dfmethod=None), predict=False, should_stop=should_stop,
                               start_theta=fit.theta)
                     for fit in fits]
    else:
        test_fits = fits
    fit_method = fits[0].method if len(methods) == 1 else "mixed"
    test_method = test_fits[0].method if len({f.method for f in test_fits}) == 1 else "mixed"
    if test_method == "REML":
        notes.append("REML likelihoods: the tests and AIC/BIC compare variance structures of models with the "
                     "same fixed effects.")

    compared = [_compared_model(label, fit) for label, fit in zip(labels, test_fits)]
    tests = []
    for i in range(len(test_fits) - 1):
        first, second = (i, i + 1)
        if test_fits[second].n_params < test_fits[first].n_params:
            first, second = second, first
        try:
            tests.append(likelihood_ratio_test(test_fits[first], test_fits[second], labels[first], labels[second]))
        except NotNested as reason:
            notes.append(f"{labels[first]} and {labels[second]} are not nested ({reason}): no LR test; "
                         f"compare them by AIC and BIC.")

    fixed_tests = fixed_effects_tests(fits, labels) if dfmethod is not None else []
    if dfmethod is not None and not fixed_tests:
        notes.append(f"No F test with dfmethod({dfmethod}): no neighbouring models share their random part and "
                     f"differ only by added fixed effects.")

    intraclass: list[IntraclassCorrelation] = []
    for label, fit in zip(labels, fits):
        if fit.spec.has_crossed:
            notes.append(f"{label}: no intraclass correlation, since with crossed random factors which pairs of "
                         f"observations share which effects depends on the data (as Stata's estat icc).")
        elif _random_intercepts_only(fit.spec):
            intraclass += intraclass_correlations(fit, label)
        elif fit.spec.levels:
            notes.append(f"{label}: no intraclass correlation, since with random slopes the share of variance "
                         f"between groups depends on the slope variables.")

    null_fit = None
    explained: list[VarianceExplained] = []
    null_text = ""
    if null_model is not None:
        null_spec = _null_spec(specs, null_model, fits[0].method if len(methods) == 1 else "ML")
        null_text = null_spec.to_stata()
        null_fit = fit_mixed(data, null_spec, predict=False, should_stop=should_stop)
        if _random_intercepts_only(null_spec) and not null_spec.has_crossed:
            intraclass = intraclass_correlations(null_fit, NULL_LABEL) + intraclass
        for label, fit in zip(labels, fits):
            explained += variance_explained(fit, null_fit, label)
        if any(row.proportion < 0 for row in explained):
            notes.append("A negative proportion means a variance grew against the null model (for instance, "
                         "a group-mean-centred level-1 predictor can raise the variance between groups).")
        if any(spec.levels and not _random_intercepts_only(spec) for spec in specs):
            notes.append("With random slopes, var(_cons) is the intercept variance where the slope variables "
                         "are zero: the variance explained at that level depends on their centring.")
    return ModelComparison(models=compared, tests=tests, method=test_method, fit_method=fit_method,
                           refitted_by_ml=bool(refit_reasons), intraclass=intraclass,
                           variance_explained=explained, null_model=null_text, notes=notes,
                           fixed_tests=fixed_tests, dfmethod=dfmethod,
                           components=component_rows(labels, fits, truth),
                           variance_shifts=variance_shifts(list(zip(labels, fits)), truth),
                           fits=fits, test_fits=test_fits, null_fit=null_fit)


def component_rows(labels: Sequence[str], fits: Sequence[FitResult], truth=None) -> list[ComponentRow]:
    """The variance components of ``fits`` row by row: levels in the truth's order (outermost
    first), then in the fits' order, a level's parameters in first-seen order, the residual last."""
    from engine.compare import RESIDUAL_KEY, true_component

    keys = list(truth.random) if truth is not None else []
    for fit in fits:
        keys += [f"{row.level}:{row.param}" for row in fit.random]
    keys = list(dict.fromkeys(keys))
    levels = list(dict.fromkeys(key.partition(":")[0] for key in keys))
    order = {key: (key == RESIDUAL_KEY, levels.index(key.partition(":")[0]), position)
             for position, key in enumerate(keys)}
    rows = []
    for key in sorted(keys, key=order.get):
        estimates = {label: row.estimate for label, fit in zip(labels, fits)
                     for row in fit.random if f"{row.level}:{row.param}" == key}
        rows.append(ComponentRow(key=key, estimates=estimates, truth=true_component(truth, key)))
    return rows


def _with_dfmethod(specs: list[ModelSpec], labels: list[str], dfmethod: str) -> list[ModelSpec]:
    """The specs with ``dfmethod`` set; one it cannot apply to is refused, naming its label."""
    from engine.mixed.ddf import check_dfmethod
    from engine.model_spec import parse_dfmethod

    name = parse_dfmethod(dfmethod)
    changed = []
    for label, spec in zip(labels, specs):
        spec = spec.replace(dfmethod=name)
        try:
            check_dfmethod(spec)
        except UserInputError as error:
            raise UserInputError(f"model {label} ({spec.to_stata()}): {error}") from None
        changed.append(spec)
    return changed


def fixed_effects_tests(fits: Sequence[FitResult], labels: Sequence[str]) -> list[FixedEffectsTest]:
    """F tests, with each larger fit's df method, of the fixed effects it adds to its neighbour.

    Only pairs with the same random part (levels, terms, covariances) whose fixed effects are
    nested are tested: the test is then a Wald F of the added coefficients in the larger model.
    """
    from engine.wald_tests import joint_test

    tests = []
    for i in range(len(fits) - 1):
        small, large = (i, i + 1) if len(fits[i].fixed) <= len(fits[i + 1].fixed) else (i + 1, i)
        if fits[small].spec.levels != fits[large].spec.levels:
            continue
        try:
            added = _added_fixed_effects(fits[small], fits[large])
        except NotNested:
            continue
        if not added:
            continue
        test = joint_test(fits[large], added)
        if test.F is None:
            continue
        tests.append(FixedEffectsTest(restricted=labels[small], full=labels[large], columns=list(test.columns),
                                      F=test.F, df1=int(test.df1), df2=float(test.df2), p=test.p,
                                      dfmethod=test.dfmethod))
    return tests


def common_rows(frame: pd.DataFrame, specs: Sequence[ModelSpec]) -> tuple[pd.DataFrame, int]:
    """The rows with a value in every column any of ``specs`` reads, and how many were dropped."""
    columns = list(dict.fromkeys(name for spec in specs for name in data_columns(spec)))
    require_columns(columns, frame.columns)
    complete = frame[columns].notna().all(axis=1).to_numpy()
    dropped = int(complete.size - complete.sum())
    return (frame.loc[complete] if dropped else frame), dropped


# ===== the likelihood-ratio test ===================================================================

class NotNested(UserInputError):
    """The two models are not nested; the message says where."""


def likelihood_ratio_test(restricted: FitResult, full: FitResult, restricted_label: str = "A",
                          full_label: str = "B") -> LikelihoodRatioTest:
    """LR test of two fitted nested models (Stata's ``lrtest``), with a chi-bar-square mixture on the boundary.

    Parameters
    ----------
    restricted, full : FitResult
        Mixed-model fits on the same rows; ``restricted`` is nested in ``full``.
    restricted_label, full_label : str

    Returns
    -------
    LikelihoodRatioTest

    Raises
    ------
    NotNested
        The fixed effects or random parts of ``restricted`` are not contained in ``full``'s.
    UserInputError
        Different samples, or REML fits whose fixed effects differ (refit by ML; use
        :func:`compare_models`, which does so).
    """
    if restricted.spec is None or full.spec is None or restricted.loglik is None or full.loglik is None:
        raise UserInputError("LR tests need mixed-model fits with a log-likelihood")
    if restricted.nobs != full.nobs:
        raise UserInputError(f"the models use different samples ({restricted.nobs} and {full.nobs} observations): "
                             f"an LR test needs the same rows")
    if restricted.method != full.method:
        raise UserInputError(f"one model was fitted by {restricted.method}, the other by {full.method}: refit both by ML")
    added_fixed = _added_fixed_effects(restricted, full)
    if restricted.method == "REML" and (added_fixed or len(restricted.fixed) != len(full.fixed)):
        raise UserInputError("You're comparing the mean structure of models estimated using REML. Use ML instead.")
    random = _random_difference(restricted.spec, full.spec)
    df = full.n_params - restricted.n_params
    if df <= 0:
        raise NotNested(f"{full_label} has no more parameters than {restricted_label}")
    if df != len(added_fixed) + random.n_params:
        raise NotNested(f"their parameter counts differ by {df}, not by the {len(added_fixed) + random.n_params} "
                        f"parameters {full_label} adds")
    stat = max(0.0, 2.0 * (full.loglik - restricted.loglik))
    pieces = []
    if added_fixed:
        pieces.append(f"fixed effect{'s' if len(added_fixed) > 1 else ''} {', '.join(added_fixed)}")
    pieces += random.described
    difference = "; ".join(pieces)
    if random.boundary_q is not None:
        mixture = [[0.5, float(df - 1)], [0.5, float(df)]]
        return LikelihoodRatioTest(
            restricted_label, full_label, stat, df, chibar2_p_value(stat, mixture), "chibar2", mixture,
            difference, full.method,
            note="One variance component on the boundary under the null: p from the chi-bar-square mixture "
                 f"1/2 chi2({df - 1}) + 1/2 chi2({df}).")
    note = ""
    if random.n_boundary > 1:
        note = (f"{random.n_boundary} variance components are on the boundary under the null: the chi2 p-value "
                f"is conservative (too large), as Stata notes.")
    return LikelihoodRatioTest(restricted_label, full_label, stat, df, float(chi2_sf(stat, df)), "chi2", [],
                               difference, full.method, note)


def chibar2_p_value(stat: float, mixture: Sequence[Sequence[float]]) -> float:
    """P(X >= stat) for X a mixture of chi2 distributions, given as [weight, df] pairs (df 0: a point mass at 0)."""
    if stat <= 0:
        return 1.0
    return float(sum(weight * (chi2_sf(stat, df) if df > 0 else 0.0) for weight, df in mixture))


@dataclass
class _RandomDifference:
    n_params: int  # variance parameters the full model adds
    n_boundary: int  # of which variances (on the boundary under the null)
    boundary_q: Optional[int]  # q when the full model adds exactly one variance (and its q covariances)
    described: list[str]


def _random_difference(restricted: ModelSpec, full: ModelSpec) -> _RandomDifference:
    names_r, names_f = restricted.level_names, full.level_names
    missing = [n for n in names_r if n not in names_f]
    if missing:
        raise NotNested(f"level {missing[0]} is not in the larger model")
    if [n for n in names_f if n in names_r] != names_r:
        raise NotNested("the levels are in a different order")
    n_params = n_boundary = 0
    described: list[str] = []
    single: list[tuple[int, bool]] = []  # (q, adds exactly one variance and its covariances) per changed level
    for level in full.levels:
        old = next((lv for lv in restricted.levels if lv.name == level.name), None)
        old_terms = old.terms if old is not None else []
        extra = [t for t in old_terms if t not in level.terms]
        if extra:
            raise NotNested(f"random term {extra[0]} at level {level.name} is not in the larger model")
        if old is not None and not _covariance_within(old, level):
            raise NotNested(f"level {level.name} has a {old.covariance} covariance in the smaller model "
                            f"and {level.covariance} in the larger")
        added_params = _n_variance_params(level) - (_n_variance_params(old) if old is not None else 0)
        if added_params == 0:
            continue
        new_terms = [t for t in level.terms if t not in old_terms]
        added_variances = 0 if level.covariance in ("identity", "exchangeable") and old_terms else len(new_terms)
        n_params += added_params
        n_boundary += added_variances
        q = len(old_terms)
        kept_structure = old is None or old.covariance == level.covariance or len(old.terms) == 1
        expected = 1 + (q if level.covariance == "unstructured" and len(level.terms) > 1 else 0)
        single.append((q, added_variances == 1 and kept_structure and added_params == expected))
        if old is None:
            described.append(f"level {level.name} ({', '.join(level.terms)})")
        elif new_terms:
            kind = f", {level.covariance}" if len(level.terms) > 1 else ""
            described.append(f"random {', '.join(new_terms)} at {level.name}{kind}")
        else:
            described.append(f"{level.covariance} covariance at {level.name}")
    boundary_q = single[0][0] if len(single) == 1 and single[0][1] else None
    return _RandomDifference(n_params, n_boundary, boundary_q, described)


def _covariance_within(small: Level, large: Level) -> bool:
    """Whether ``small``'s covariance structure is a special case of ``large``'s: identity lies in
    every structure, independent and exchangeable in unstructured, but neither in the other."""
    if len(small.terms) == 1:
        return True
    if len(large.terms) == 1:
        return small.covariance == "identity"
    return small.covariance in ("identity", large.covariance) or large.covariance == "unstructured"


def _n_variance_params(level: Level) -> int:
    q = len(level.terms)
    if level.covariance == "identity" or q == 1:
        return 1
    if level.covariance == "exchangeable":
        return 2
    if level.covariance == "independent":
        return q
    return q * (q + 1) // 2


def _added_fixed_effects(restricted: FitResult, full: FitResult) -> list[str]:
    small, large = [r.term for r in restricted.fixed], [r.term for r in full.fixed]
    extra = [t for t in small if t not in large]
    if extra:
        raise NotNested(f"fixed effect {extra[0]} is not in the larger model")
    return [t for t in large if t not in small]


def _fixed_effects_differ(fits: Sequence[FitResult]) -> bool:
    terms = [tuple(sorted(r.term for r in fit.fixed)) for fit in fits]
    return len(set(terms)) > 1


# ===== intraclass correlations and variance explained ==============================================

def intraclass_correlations(fit: FitResult, label: str = "") -> list[IntraclassCorrelation]:
    """ICC per level of a random-intercept model (Stata's ``estat icc``), with delta-method SEs.

    Parameters
    ----------
    fit : FitResult
        A fit of a model whose levels have random intercepts only.
    label : str
        The model's name in the rows.

    Returns
    -------
    list of IntraclassCorrelation
        Outermost level first; level k's ICC is (sum of the intercept variances of levels 1..k) /
        (sum of all variances + residual variance).
    """
    from engine.icc_r2 import intraclass_correlations as level_iccs

    spec = fit.spec
    if spec is None or not spec.levels:
        return []
    if not _random_intercepts_only(spec):
        raise UserInputError("intraclass correlations need a model with random intercepts only")
    return [IntraclassCorrelation(label, row.level, row.label, row.icc, row.se, row.ci) for row in level_iccs(fit)]


def variance_explained(fit: FitResult, null_fit: FitResult, label: str = "") -> list[VarianceExplained]:
    """Raudenbush & Bryk's proportion of variance explained per level, against ``null_fit``.

    For the residual (level 1) and the intercept variance var(_cons) of every level: (null
    variance - model variance) / null variance. Empty unless the two models have the same levels
    (a variance moves between levels when one is dropped, so shares would mislead).
    """
    rows = []
    levels = [lv.name for lv in (fit.spec.levels if fit.spec else [])]
    if fit.family is not None:  # the latent scale is rescaled when predictors are added: shares would mislead
        return rows
    if fit.spec is None or null_fit.spec is None or levels != null_fit.spec.level_names:
        return rows
    levels.append("Residual")
    for level in levels:
        parameter = "var(Residual)" if level == "Residual" else "var(_cons)"
        try:
            model_value = _variance_row(fit, level, parameter)
            null_value = _variance_row(null_fit, level, parameter)
        except KeyError:
            continue
        if null_value > 0:
            rows.append(VarianceExplained(label, level, parameter, null_value, model_value,
                                          (null_value - model_value) / null_value))
    return rows


def _variance_row(fit: FitResult, level: str, parameter: str) -> float:
    for row in fit.random_variances:
        if row.level == level and row.param == parameter:
            return row.estimate
    raise KeyError(parameter)


def _random_intercepts_only(spec: ModelSpec) -> bool:
    return all(level.terms == ["_cons"] for level in spec.levels)


def _null_spec(specs: Sequence[ModelSpec], null_model, method: str) -> ModelSpec:
    if isinstance(null_model, ModelSpec):
        return null_model.replace(method=method) if null_model.method != method else null_model
    if isinstance(null_model, str) and null_model != AUTOMATIC_NULL:
        return ModelSpec.parse(null_model, method=method)
    widest = max(specs, key=lambda s: len(s.levels))
    # random intercepts at the same levels, crossed factors kept crossed (a nested null would be another model)
    levels = [Level(level.name, crossed=level.crossed, nested_in=list(level.nested_in)) for level in widest.levels]
    return ModelSpec(outcome=widest.outcome, fixed=[], levels=levels,
                     method=method, family=widest.family, link=widest.link, nagq=widest.nagq,
                     offset=widest.offset, exposure=widest.exposure)


def _compared_model(label: str, fit: FitResult) -> ComparedModel:
    return ComparedModel(label, fit.model, fit.method, fit.nobs, float(fit.loglik), fit.n_params,
                         float(fit.aic), float(fit.bic), fit.converged)


def _default_label(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"M{index + 1}"


# ===== text ========================================================================================

def _format_comparison(comparison: ModelComparison) -> str:
    rule = "-" * 78
    lines = ["Models:"]
    for model in comparison.models:
        lines.append(f"  {model.label}: {model.model}")
    if comparison.null_model:
        lines.append(f"  null: {comparison.null_model}")
    lines += ["", "Likelihood-ratio tests" + (f" ({comparison.method})" if comparison.method else "")]
    if not comparison.tests:
        lines.append("  none: no pair of neighbouring models is nested")
    for test in comparison.tests:
        lines.append(f"  {test.restricted} nested in {test.full}: {test.full} adds {test.difference or 'nothing'}")
        if test.distribution == "chibar2":
            dfs = "".join(str(int(df)) for _, df in test.mixture)
            lines.append(f"    LR chibar2({dfs}) = {test.stat:10.2f}    Prob >= chibar2 = {test.p:.4f}")
        else:
            lines.append(f"    LR chi2({test.df}) = {test.stat:10.2f}    Prob > chi2 = {test.p:.4f}")
        if test.note:
            lines.append(f"    Note: {test.note}")
    if comparison.fixed_tests:
        lines += ["", f"F tests of added fixed effects (dfmethod({comparison.dfmethod}), in the larger model's fit)"]
    for test in comparison.fixed_tests:
        lines.append(f"  {test.restricted} nested in {test.full}: {test.full} adds {', '.join(test.columns)}")
        lines.append(f"    F({test.df1}, {test.df2:.2f}) = {test.F:10.2f}    Prob > F = {test.p:.4f}")
    lines += ["", "Akaike's and Bayesian information criteria", rule,
              f"{'Model':>12} | {'N':>9} {'ll(model)':>14} {'df':>5} {'AIC':>14} {'BIC':>14}", "-" * 13 + "+" + "-" * 64]
    for model in comparison.models:
        lines.append(f"{model.label[:12]:>12} | {model.nobs:>9,} {model.loglik:>14.3f} {model.n_params:>5} "
                     f"{model.aic:>14.3f} {model.bic:>14.3f}")
    lines += [rule, "Note: BIC uses N = number of observations."]
    if comparison.intraclass:
        lines += ["", f"Intraclass correlations ({comparison.fit_method}; delta-method SE, CI on the logit scale)",
                  rule, f"{'Model':>8} {'Level':>20} | {'ICC':>10} {'Std. Err.':>10}   [95% Conf. Interval]",
                  "-" * 30 + "+" + "-" * 47]
        for row in comparison.intraclass:
            se = f"{row.se:10.6f}" if row.se is not None else f"{'.':>10}"
            ci = f"{row.ci[0]:10.6f} {row.ci[1]:10.6f}" if row.ci else f"{'.':>10} {'.':>10}"
            lines.append(f"{row.model[:8]:>8} {row.label[:20]:>20} | {row.estimate:10.6f} {se}   {ci}")
        lines.append(rule)
    if comparison.variance_explained:
        lines += ["", f"Proportion of variance explained against the null model ({comparison.fit_method})", rule,
                  f"{'Model':>8} {'Level':>12} {'Parameter':>14} | {'null':>12} {'model':>12} {'explained':>10}",
                  "-" * 37 + "+" + "-" * 40]
        for row in comparison.variance_explained:
            lines.append(f"{row.model[:8]:>8} {row.level[:12]:>12} {row.parameter:>14} | {row.null_variance:12.5f} "
                         f"{row.model_variance:12.5f} {row.proportion:10.4f}")
        lines.append(rule)
    if comparison.components:
        lines += _format_components(comparison)
    for note in comparison.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"


def _format_components(comparison: ModelComparison) -> list[str]:
    """The variance components side by side (and the truth), then where the variance went."""
    labels = [model.label for model in comparison.models]
    has_truth = any(row.truth is not None for row in comparison.components)
    width = 26 + 12 * (len(labels) + has_truth)
    header = f"{'':<26}" + "".join(f"{label[:11]:>12}" for label in labels) + (f"{'Truth':>12}" if has_truth else "")
    lines = ["", f"Variance components ({comparison.fit_method})", "-" * width, header, "-" * width]
    for row in comparison.components:
        cells = "".join(f"{row.estimates[label]:>12.4f}" if label in row.estimates else f"{'':>12}"
                        for label in labels)
        truth = (f"{row.truth:>12.4f}" if row.truth is not None else "") if has_truth else ""
        lines.append(f"{row.key[:25]:<26}{cells}{truth}".rstrip())
    lines.append("-" * width)
    lines += [f"Where the {shift.factor} variance went: {shift.text}" for shift in comparison.variance_shifts]
    return lines

