"""The fit result: one typed object for every estimator (mixed, OLS, FE, RE).

The CLI's ``--json``, the GUI's tables and saved projects all serialise this object; large
per-row and per-group arrays (predicted random effects, fitted values) ride along as transient
fields that are never written to JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from engine.model_spec import ModelSpec
from engine.serialize import from_jsonable, to_jsonable


@dataclass
class FixedEffect:
    """One coefficient row: estimate, SE, the Wald ratio coef / se, two-sided p and 95% interval.

    With ``df`` None the ratio is referred to the normal distribution (``z``); with ``df`` set it is
    a t statistic with ``df`` degrees of freedom (``t`` repeats it), and p and the interval use
    that t distribution. Under Kenward-Roger ``se`` is the adjusted standard error.
    """

    term: str
    coef: float
    se: float
    z: float
    p: float
    ci: list[float]
    df: Optional[float] = None
    t: Optional[float] = None
    ci_method: str = "wald"  # what made ``ci``: "wald" (z, or t with df) or "bootstrap" (percentile)


@dataclass
class RandomParam:
    """One random-effects parameter, e.g. level 'school_id', param 'sd(_cons)' or 'corr(ses_c,_cons)'."""

    level: str
    param: str
    estimate: float
    se: Optional[float] = None
    ci: Optional[list[float]] = None
    ci_method: str = "wald"  # what made ``ci``: "wald" (log-sd / atanh scale), "profile" or "bootstrap"


@dataclass
class GroupCount:
    """Groups at one level (counted with nesting) and the observations per group."""

    level: str
    groups: int
    min: int
    mean: float
    max: int


@dataclass
class BootstrapRun:
    """How the parametric-bootstrap intervals of a fit were made (``fit --ci bootstrap``).

    ``reps`` replicates were simulated from the fitted model (seed ``seed``); ``failed`` of them
    did not refit (an error or no convergence) and are left out of the percentiles.
    """

    reps: int
    seed: int
    failed: int = 0
    level: float = 0.95
    seconds: float = 0.0
    workers: int = 1
    backend: str = "processes"


@dataclass
class Test:
    """A test statistic: kind is 'chi2', 'chibar2', 'F' (then df2 is set) or 'none'."""

    stat: float
    df: float
    p: float
    kind: str = "chi2"
    df2: Optional[float] = None


@dataclass
class JointTest:
    """A Wald test that several coefficients are all zero (Stata's ``test`` / ``testparm``).

    Under a df method ``F`` with (``df1``, ``df2``) degrees of freedom (Kenward-Roger: the scaled F);
    with large-sample z statistics ``chi2`` with ``df1`` degrees of freedom and no ``df2``.
    """

    terms: list[str]  # as written, e.g. ["i.sector"] or ["c.x", "c.x#c.x"]
    columns: list[str]  # the coefficients tested
    F: Optional[float] = None
    df1: int = 0
    df2: Optional[float] = None
    p: float = float("nan")
    chi2: Optional[float] = None
    dfmethod: str = "z"


@dataclass
class LevelEffects:
    """Predicted random effects (BLUPs) of one level: one row per group, one column per term."""

    level: str
    terms: list[str]
    group_ids: Any  # pandas DataFrame: the id columns of this level and all levels above it
    estimates: Any  # numpy array (groups, terms)
    std_errors: Any  # numpy array (groups, terms): conditional sd given the data and fixed effects


@dataclass
class LinkCovariance:
    """Covariance of the freely estimated random-effects parameters on Stata's estimation scale.

    ``params`` name them as "level:sd(term)" (on the log scale), "level:corr(a,b)" (atanh) and
    "Residual:sd(Residual)" (log); parameters on the boundary or not identified are absent.
    """

    params: list[str]
    cov: list[list[float]]


@dataclass
class LevelICC:
    """Stata's ``estat icc`` at one level: the correlation of two observations that share their group
    at ``level`` and at every level above it. ``label`` is Stata's (``teach_id|school_id``)."""

    level: str
    label: str
    icc: float
    se: Optional[float] = None
    ci: Optional[list[float]] = None  # 95%, from the logit scale


@dataclass
class Reliability:
    """HLM's reliability of the groups' estimates of ``term`` at ``level``, averaged over its groups."""

    level: str
    term: str
    reliability: float
    groups: int


@dataclass
class FitResult:
    """Everything an estimator reports. JSON keys follow ``main.py fit --json``."""

    estimator: str  # 'mixed', 'ols', 'fe', 're'
    method: str  # 'REML', 'ML', 'OLS', 'within', 'GLS'
    nobs: int
    fixed: list[FixedEffect]
    name: str = ""
    model: str = ""  # the equivalent Stata command
    depvar: str = ""
    loglik: Optional[float] = None
    converged: bool = True
    random: list[RandomParam] = field(default_factory=list)  # sd and corr scale (Stata's stddev)
    random_variances: list[RandomParam] = field(default_factory=list)  # var and cov scale
    # Random-effect sds estimated at zero, as "level:sd(term)" (judged unit-free: see
    # engine.mixed.inference.on_boundary).
    boundary_params: list[str] = field(default_factory=list)
    link_covariance: Optional[LinkCovariance] = None
    groups: list[GroupCount] = field(default_factory=list)
    lr_test: Optional[Test] = None
    wald: Optional[Test] = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fit_seconds: float = 0.0
    dropped_rows: int = 0
    n_params: int = 0  # estimated parameters, for AIC and BIC
    iterations: list[float] = field(default_factory=list)  # (restricted) log-likelihood per iteration
    theta: list[float] = field(default_factory=list)  # relative covariance parameters at the optimum
    vcov: list[list[float]] = field(default_factory=list)  # covariance of the fixed effects
    spec: Optional[ModelSpec] = None
    # How the reported confidence intervals were made: "wald" (the default), "profile" (random-effects
    # parameters by profile likelihood) or "bootstrap" (all by parametric-bootstrap percentiles).
    # Each row's ``ci_method`` says what made its own interval.
    ci_method: str = "wald"
    bootstrap: Optional[BootstrapRun] = None
    # Extras of the panel estimators (Stata's xtreg), None elsewhere.
    sigma_u: Optional[float] = None
    sigma_e: Optional[float] = None
    rho: Optional[float] = None
    theta_re: Optional[Any] = None  # xtreg, re: theta (a number, or min/mean/max when panels differ)
    corr_u_xb: Optional[float] = None
    f_test_u0: Optional[Test] = None
    hausman: Optional[Test] = None
    r2: Optional[dict[str, float]] = None  # OLS: r2, r2_a; xtreg: within/between/overall; mixed: marginal/conditional
    # Small-sample inference of a mixed model: 'z' (large sample, Stata's default) or a dfmethod.
    dfmethod: Optional[str] = None
    tests: list[JointTest] = field(default_factory=list)  # joint Wald tests asked for
    # Binary and count outcomes (engine.glmm); None for linear models.
    family: Optional[str] = None  # 'binomial' or 'poisson'
    link: Optional[str] = None  # 'logit', 'probit' or 'log'
    nagq: Optional[int] = None  # integration points: 1 = Laplace, more = adaptive Gauss-Hermite
    integration: Optional[str] = None  # the integration method in words
    fixed_eform: list[FixedEffect] = field(default_factory=list)  # odds / incidence-rate ratios (or, irr)
    # Latent-scale intraclass correlations of a binary fit (Stata's estat icc after melogit): level is
    # Stata's label (school_id|dist_id), param 'icc'. Named apart from linear fits' ICCs on purpose.
    latent_icc: list[RandomParam] = field(default_factory=list)
    # Large arrays for plots; never serialised.
    level_effects: list[LevelEffects] = field(default_factory=list, metadata={"transient": True})
    fitted: Any = field(default=None, metadata={"transient": True})
    residuals: Any = field(default=None, metadata={"transient": True})
    # GLMM: predicted probabilities or rates from the fixed effects alone (random effects at 0);
    # ``fitted`` holds them with the predicted random effects.
    fitted_fixed_only: Any = field(default=None, metadata={"transient": True})
    # What joint tests need after the fit (engine.mixed.ddf.FixedEffectsInference); never serialised.
    inference: Any = field(default=None, metadata={"transient": True})
    # Mixed fits: estat icc, and HLM's reliability of each level's intercepts.
    icc: list[LevelICC] = field(default_factory=list)
    reliability: list[Reliability] = field(default_factory=list)

    # ----- look-ups --------------------------------------------------------------------------
    def coef(self, term: str) -> FixedEffect:
        for row in self.fixed:
            if row.term == term:
                return row
        raise KeyError(f"no fixed effect {term!r}; have {[r.term for r in self.fixed]}")

    def random_param(self, level: str, param: str) -> RandomParam:
        for row in self.random:
            if row.level == level and row.param == param:
                return row
        raise KeyError(f"no random-effects parameter {level}: {param}")

    def intercept_variance_shares(self) -> dict[str, float]:
        """Each level's intercept variance and the residual variance as shares of their sum.

        Random slopes are left out (their variance depends on the slope variable's values).
        Empty when the fit estimated no such variances.
        """
        variances = {row.level: row.estimate for row in self.random_variances
                     if row.param in ("var(_cons)", "var(Residual)")}
        total = sum(variances.values())
        return {level: value / total for level, value in variances.items()} if total > 0 else {}

    @property
    def aic(self) -> Optional[float]:
        return None if self.loglik is None else -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> Optional[float]:
        return None if self.loglik is None else -2 * self.loglik + math.log(self.nobs) * self.n_params

    # ----- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return to_jsonable(self)

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "FitResult":
        rows = data.get("fixed") or []
        if any("t_df" in row for row in rows):  # saved before `df` and `t` replaced `t_df`
            data = dict(data, fixed=[dict(row, df=row.get("t_df"), t=row.get("z") if row.get("t_df") is not None else None)
                                     for row in rows])
        return from_jsonable(cls, data)
