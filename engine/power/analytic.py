"""Analytic power and MDES for cluster-randomised and multisite (blocked) trials.

The standardised standard error of the treatment effect comes from the formulas of Dong &
Maynard (2013, PowerUp!; the same as Raudenbush's Optimal Design and Hedges & Rhoads 2010) for
balanced designs. Effects are in units of the outcome's total sd. As PowerUp! computes them:

- power, two-sided: 1 - T(t_crit; df, lambda) + T(-t_crit; df, lambda), T the noncentral t
  distribution with noncentrality lambda = effect / SE;
- MDES = M * SE with the multiplier M = t_(1 - alpha/2; df) + t_(power; df);
- the units needed at the top level: the fewest whose power reaches the target (PowerUp!'s MRSS
  rounds the fixed point of ``units = (M / effect)^2 * variance terms`` to the nearest whole
  number instead, so it can answer one unit fewer, whose power is a hair under the target).

``tests/test_power_published.py`` reproduces PowerUpR's published examples with these conventions.

Designs (levels counted from the bottom, level 1 the individuals):

========  =====================================================  ===========================
crt2      clusters (level 2) randomised                            PowerUp! CRA2_2r
crt3      level-3 units randomised                                 CRA3_3r
crt4      level-4 units randomised                                 CRA4_4r
msrt2     individuals randomised within sites (random effects)    BIRA2_1r
msrt3     level-2 units randomised within level-3 sites           BCRA3_2r
          (``treatment_level=1``: individuals within level-3 sites) BIRA3_1r
========  =====================================================  ===========================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.distributions import noncentral_t_cdf, t_quantile
from engine.errors import UserInputError
from engine.serialize import from_jsonable, to_jsonable

DESIGNS = ("crt2", "crt3", "crt4", "msrt2", "msrt3")
LEVELS = {"crt2": 2, "crt3": 3, "crt4": 4, "msrt2": 2, "msrt3": 3}
MAX_UNITS_SEARCHED = 1_000_000


@dataclass
class TrialPlan:
    """A balanced trial to plan: the textbook parameters of one of ``DESIGNS``.

    ``units`` are counts from the top level down: ``units[0]`` top-level units (clusters or
    sites), then units per parent at each lower level, ending with individuals per level-2 unit.
    ``icc`` holds the share of the outcome's variance at each level above level 1, top down;
    ``r2`` the share of each level's variance explained by covariates, top down ending at level
    1; ``omega`` (multisite only) the variance of the treatment effect across sites over the
    sites' intercept variance, and ``r2_effect`` the share of it explained by site covariates.
    """

    design: str
    units: list[int]
    icc: list[float]
    effect: float | None = None
    treated_share: float = 0.5
    r2: list[float] = field(default_factory=list)
    covariates_top: int = 0
    omega: float = 0.0
    r2_effect: float = 0.0
    treatment_level: int | None = None  # msrt3 only: 2 (default) or 1
    alpha: float = 0.05
    target: float = 0.8

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.design not in DESIGNS:
            raise UserInputError(f"design must be one of {', '.join(DESIGNS)}, got {self.design!r}")
        self._check_finite()
        levels = LEVELS[self.design]
        if len(self.units) != levels:
            raise UserInputError(
                f"{self.design}: give {levels} unit counts (top-level units, then units per parent down to "
                f"individuals per level-2 unit), got {len(self.units)}")
        for index, count in enumerate(self.units):
            if not float(count).is_integer() or count < 1:
                raise UserInputError(f"{self.design}: unit counts must be whole numbers >= 1, got {count!r}")
        if len(self.icc) != levels - 1:
            raise UserInputError(f"{self.design}: give {levels - 1} ICC(s), top level first, got {len(self.icc)}")
        if any(not 0 <= value < 1 for value in self.icc) or sum(self.icc) >= 1:
            raise UserInputError(f"{self.design}: ICCs must be in [0, 1) and sum to less than 1, got {self.icc}")
        if not self.r2:
            self.r2 = [0.0] * levels
        if len(self.r2) != levels:
            raise UserInputError(f"{self.design}: give {levels} R-squared values (top level first), got {len(self.r2)}")
        for name, value in [("R-squared", v) for v in self.r2] + [("treatment-effect R-squared", self.r2_effect)]:
            if not 0 <= value < 1:
                raise UserInputError(f"{self.design}: {name} must be in [0, 1), got {value}")
        if not 0 < self.treated_share < 1:
            raise UserInputError(f"treated share must be strictly between 0 and 1, got {self.treated_share}")
        if self.omega < 0:
            raise UserInputError(f"omega (treatment-effect heterogeneity) must be >= 0, got {self.omega}")
        if self.omega and not self.design.startswith("msrt"):
            raise UserInputError(f"omega applies to multisite designs (msrt2, msrt3), not {self.design}")
        if self.treatment_level is not None and self.design != "msrt3":
            raise UserInputError("the treatment level is chosen only for msrt3 (2: clusters, 1: individuals)")
        if self.treatment_level not in (None, 1, 2):
            raise UserInputError(f"msrt3: the treatment level must be 1 or 2, got {self.treatment_level}")
        if not 0 < self.alpha < 1:
            raise UserInputError(f"alpha must be between 0 and 1, got {self.alpha}")
        if not 0 < self.target < 1:
            raise UserInputError(f"the target power must be between 0 and 1, got {self.target}")
        if self.covariates_top < 0:
            raise UserInputError(f"the number of top-level covariates must be >= 0, got {self.covariates_top}")
        if self.df(self.units[0]) < 1:
            raise UserInputError(
                f"{self.design}: {self.units[0]} top-level units leave {self.df(self.units[0])} degrees of freedom "
                f"with {self.covariates_top} top-level covariate(s); add units")

    def _check_finite(self) -> None:
        """nan or inf anywhere would come out as a power of nan (or 'not reachable'): refuse it, by name."""
        named = [("unit count", v) for v in self.units] + [("ICC", v) for v in self.icc]
        named += [("R-squared", v) for v in self.r2] + [
            ("effect", self.effect), ("treated share", self.treated_share), ("omega", self.omega),
            ("treatment-effect R-squared", self.r2_effect), ("alpha", self.alpha), ("target power", self.target),
            ("number of top-level covariates", self.covariates_top)]
        for name, value in named:
            if value is not None and isinstance(value, (int, float)) and not math.isfinite(value):
                raise UserInputError(f"{self.design}: {name} must be a finite number, got {value}")
        if not float(self.covariates_top).is_integer():
            raise UserInputError(
                f"the number of top-level covariates must be a whole number, got {self.covariates_top}")

    # ----- the formulas -------------------------------------------------------------------------
    def df(self, top_units: int | None = None) -> int:
        """Degrees of freedom of the test: top-level units less covariates less 2 (CRT) or 1 (multisite)."""
        top = self.units[0] if top_units is None else top_units
        return int(top - self.covariates_top - (2 if self.design.startswith("crt") else 1))

    def standard_error(self, top_units: int | None = None) -> float:
        """Standardised standard error of the treatment effect (in total-sd units)."""
        counts = list(self.units)
        if top_units is not None:
            counts[0] = top_units
        p = self.treated_share
        pq = p * (1.0 - p)
        rho = list(self.icc)  # top down, levels L..2
        r2 = list(self.r2)  # top down, levels L..1
        level1 = 1.0 - sum(rho)
        # Units of each level in the whole sample: cumulative products of the counts.
        totals = []
        running = 1
        for count in counts:
            running *= count
            totals.append(running)
        if self.design.startswith("crt"):
            # Every level's variance is divided by its number of units (all of them between arms).
            variance = sum(rho[k] * (1 - r2[k]) / (pq * totals[k]) for k in range(len(rho)))
            variance += level1 * (1 - r2[-1]) / (pq * totals[-1])
            return math.sqrt(variance)
        sites = totals[0]
        if self.design == "msrt2":
            variance = rho[0] * self.omega * (1 - self.r2_effect) / sites
            variance += level1 * (1 - r2[-1]) / (pq * totals[-1])
            return math.sqrt(variance)
        # msrt3: sites at level 3; level-2 units (default) or individuals randomised within them.
        variance = rho[0] * self.omega * (1 - self.r2_effect) / sites
        if (self.treatment_level or 2) == 2:
            variance += rho[1] * (1 - r2[1]) / (pq * totals[1])
        # With individuals randomised, level-2 units hold both arms; their intercepts drop out
        # (the level-2 treatment-effect variance is taken as zero).
        variance += level1 * (1 - r2[-1]) / (pq * totals[-1])
        return math.sqrt(variance)

    def power(self, effect: float | None = None, top_units: int | None = None) -> float:
        """Two-sided power for ``effect`` (default: the plan's) with the noncentral t."""
        effect = self.effect if effect is None else effect
        if effect is None:
            raise UserInputError("power needs an effect size (in sd units of the outcome)")
        return noncentral_t_power(effect / self.standard_error(top_units), self.df(top_units), self.alpha)

    def mdes(self, power: float | None = None) -> float:
        """Minimum detectable effect size at ``power`` (default: the target), PowerUp!'s multiplier."""
        power = self.target if power is None else power
        df = self.df()
        t_alpha = t_quantile(1 - self.alpha / 2, df)
        t_power = t_quantile(power, df)
        return float((t_alpha + t_power) * self.standard_error())

    def top_units_needed(self, effect: float | None = None) -> int | None:
        """Fewest top-level units with power >= target (None if even a million do not reach it)."""
        return self.units_needed(effect, level=0)

    def units_needed(self, effect: float | None = None, level: int = 0) -> int | None:
        """Fewest units at ``level`` (0 = top; else units per parent there) with power >= target.

        Power rises with the units at any level, so the answer is found by doubling, then
        bisection. None when even a million are not enough (a lower level's variance sets a floor).
        """
        effect = self.effect if effect is None else effect
        if effect is None:
            raise UserInputError("the number of units needed depends on the effect size: give one")
        if not 0 <= level < len(self.units):
            raise UserInputError(f"{self.design}: level index {level} out of range 0..{len(self.units) - 1}")

        def enough(count: int) -> bool:
            counts = list(self.units)
            counts[level] = count
            top = counts[0]
            if self.df(top) < 1:
                return False
            return noncentral_t_power(effect / self._se_for(counts), self.df(top), self.alpha) >= self.target

        low = self.covariates_top + (3 if self.design.startswith("crt") else 2) if level == 0 else 1
        if enough(low):
            return low
        high = 2 * low
        while not enough(high):
            if high > MAX_UNITS_SEARCHED:
                return None
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            if enough(middle):
                high = middle
            else:
                low = middle
        return high

    def power_curve(self, top_units: list[int], effect: float | None = None) -> list[float]:
        """Power at each number of top-level units (NaN where the df would be below 1)."""
        return [self.power(effect, count) if self.df(count) >= 1 else math.nan for count in top_units]

    def _se_for(self, counts: list[int]) -> float:
        saved = self.units
        try:
            self.units = counts
            return self.standard_error()
        finally:
            self.units = saved

    # ----- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrialPlan":
        return from_jsonable(cls, data)


def noncentral_t_power(noncentrality: float, df: float, alpha: float) -> float:
    """Two-sided power of a t test with ``df`` degrees of freedom at noncentrality ``noncentrality``."""
    critical = t_quantile(1 - alpha / 2, df)
    upper = 1.0 - noncentral_t_cdf(critical, df, noncentrality)
    return float(upper + noncentral_t_cdf(-critical, df, noncentrality))


@dataclass
class PowerAnswer:
    """What ``python main.py power`` reports (and writes with --json)."""

    plan: TrialPlan
    power: float | None
    mdes: float
    df: int
    standard_error: float
    clusters_needed: int | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_jsonable(self)


def answer(plan: TrialPlan) -> PowerAnswer:
    """Power for the plan's effect, the MDES at its target power, and the top-level units needed."""
    needed = plan.top_units_needed() if plan.effect is not None else None
    notes = []
    if plan.effect is not None and needed is None:
        notes.append(f"even {MAX_UNITS_SEARCHED:,} top-level units do not reach power {plan.target:g}: the "
                     f"effect is below what the lower levels can detect")
    return PowerAnswer(plan=plan, power=plan.power() if plan.effect is not None else None, mdes=plan.mdes(),
                       df=plan.df(), standard_error=plan.standard_error(), clusters_needed=needed, notes=notes)


def format_answer(result: PowerAnswer) -> str:
    """Plain-text report of an answer."""
    plan = result.plan
    lines = [f"Design {plan.design}: units {' x '.join(str(u) for u in plan.units)} (top level first), "
             f"ICC {', '.join(f'{v:g}' for v in plan.icc)}, treated share {plan.treated_share:g}, "
             f"alpha {plan.alpha:g} (two-sided)"]
    if any(plan.r2) or plan.covariates_top:
        lines.append(f"R-squared by level (top first) {', '.join(f'{v:g}' for v in plan.r2)}; "
                     f"{plan.covariates_top} top-level covariate(s)")
    if plan.design.startswith("msrt"):
        lines.append(f"Treatment-effect heterogeneity omega {plan.omega:g} (explained {plan.r2_effect:g})")
    lines.append(f"Degrees of freedom {result.df}; standardised SE {result.standard_error:.4f}")
    if result.power is not None:
        lines.append(f"Power for effect {plan.effect:g} sd: {result.power:.4f}")
    lines.append(f"MDES at power {plan.target:g}: {result.mdes:.4f} sd")
    if plan.effect is not None:
        needed = "not reachable" if result.clusters_needed is None else f"{result.clusters_needed:,}"
        lines.append(f"Top-level units needed for power {plan.target:g} at effect {plan.effect:g}: {needed}")
    lines += [f"Note: {note}" for note in result.notes]
    return "\n".join(lines)
