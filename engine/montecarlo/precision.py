"""Monte Carlo that knows when to stop: a target precision instead of a fixed number of replications.

A :class:`StoppingRule` holds one or more targets, e.g. "the Monte Carlo SE of power is at most
0.01" (``power=0.01``), and a round size. The study runs in whole rounds of replications (indices
0..k-1, then k..2k-1, ...) at every sweep value still going; after each round the rule is checked
on everything finished so far, per sweep value, and a sweep value whose every concerned statistic
(every model and every parameter the target applies to) meets its target stops. ``Study.reps`` is
the most replications any sweep value gets. Because a decision reads only whole rounds, and the
data of replication r come from its own seed, the result does not depend on the number of workers
or on the order in which chunks finish.

Binomial rates (power, coverage) are judged by a conservative Monte Carlo SE: the rate is taken as
(hits + 1) / (trials + 2), which lies between the observed rate and 1/2, so the judged SE is never
below the reported ``sqrt(r (1 - r) / m)`` and a rate of 0 or 1 after a few replications (reported
SE 0) does not stop the study at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from engine.errors import UserInputError
from engine.serialize import to_jsonable

#: statistic -> (summary field with its Monte Carlo SE, what it is)
STATISTICS = {
    "power": ("mcse_power", "power (fixed effects)"),
    "coverage": ("mcse_coverage", "coverage of the intervals"),
    "bias": ("mcse_bias", "bias (in the parameter's units)"),
}
DEFAULT_ROUND_REPS = 100
PRECISION_FORMS = ("write STATISTIC=TARGET or STATISTIC:PARAMETER=TARGET with STATISTIC one of "
                   + ", ".join(STATISTICS) + ", e.g. power=0.01, coverage=0.005 or power:tutoring=0.01")


@dataclass
class PrecisionTarget:
    """Stop when the Monte Carlo SE of ``statistic`` is at most ``target``.

    ``param`` restricts it to one parameter (``tutoring``, ``dist_id:sd(_cons)``); empty: every
    parameter that has the statistic (power: every fixed effect).
    """

    statistic: str
    target: float
    param: str = ""

    @classmethod
    def parse(cls, text: str) -> "PrecisionTarget":
        """Parse ``power=0.01``, ``coverage=0.005`` or ``power:tutoring=0.01``."""
        name, equals, value = (text or "").partition("=")
        statistic, _, param = name.strip().partition(":")
        try:
            target = float(value)
        except ValueError:
            target = math.nan
        made = cls(statistic=statistic.strip().lower(), target=target, param=param.strip())
        if not equals:
            raise UserInputError(f"--precision {text!r}: {PRECISION_FORMS}")
        made.check(f"--precision {text!r}")
        return made

    def check(self, where: str = "precision") -> None:
        if self.statistic not in STATISTICS:
            raise UserInputError(f"{where}: unknown statistic {self.statistic!r}; {PRECISION_FORMS}")
        if not isinstance(self.target, (int, float)) or not math.isfinite(self.target) or self.target <= 0:
            raise UserInputError(f"{where}: the target Monte Carlo SE must be a number > 0")
        if self.statistic in ("power", "coverage") and self.target >= 0.5:
            raise UserInputError(f"{where}: a rate's Monte Carlo SE is at most 0.5; give a target below 0.5")

    @property
    def label(self) -> str:
        return f"{self.statistic}{':' + self.param if self.param else ''}={self.target:g}"


@dataclass
class StoppingRule:
    """Targets that all must be met, checked after every ``round_reps`` replications."""

    targets: list[PrecisionTarget] = field(default_factory=list)
    round_reps: int = DEFAULT_ROUND_REPS

    @classmethod
    def parse(cls, texts: list[str], round_reps: int | None = None) -> "StoppingRule":
        rule = cls(targets=[PrecisionTarget.parse(text) for text in texts],
                   round_reps=DEFAULT_ROUND_REPS if round_reps is None else round_reps)
        rule.check()
        return rule

    def check(self) -> None:
        if not self.targets:
            raise UserInputError("a stopping rule needs at least one target, e.g. power=0.01")
        for target in self.targets:
            target.check()
        if not isinstance(self.round_reps, int) or isinstance(self.round_reps, bool) or self.round_reps < 1:
            raise UserInputError(f"the replications per round must be a whole number >= 1, got {self.round_reps!r}")

    def describe(self) -> str:
        """E.g. 'stop when the Monte Carlo SE of power <= 0.01 (checked every 100 replications)'."""
        parts = [f"{STATISTICS[t.statistic][1].split(' (')[0]}{' of ' + t.param if t.param else ''} <= {t.target:g}"
                 for t in self.targets]
        return (f"stop when the Monte Carlo SE of {' and of '.join(parts)} at every model, sweep value and "
                f"parameter concerned (checked after every {self.round_reps} replications)")

    def to_dict(self) -> dict:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StoppingRule":
        if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
            raise UserInputError("precision: expected an object with a list of targets")
        try:
            targets = [PrecisionTarget(statistic=str(t["statistic"]), target=float(t["target"]),
                                       param=str(t.get("param", ""))) for t in data["targets"]]
        except (KeyError, TypeError, ValueError) as error:
            raise UserInputError(f"precision: malformed target ({error})") from None
        rule = cls(targets=targets, round_reps=data.get("round_reps", DEFAULT_ROUND_REPS))
        rule.check()
        return rule


@dataclass
class SweepStop:
    """Where one sweep value stopped: after ``reps`` replications, and whether the targets were met
    (False: it reached the maximum first). ``worst`` is the largest judged MCSE over target ratio."""

    sweep_index: int
    sweep: Optional[float]
    reps: int
    met: bool
    worst: Optional[str] = None

    def to_dict(self) -> dict:
        data = to_jsonable(self)
        if self.sweep is not None and float(self.sweep).is_integer():
            data["sweep"] = int(self.sweep)
        return data


def conservative_rate_se(hits: float, trials: int) -> float:
    """Monte Carlo SE of a rate judged with the rate (hits + 1) / (trials + 2)."""
    if trials <= 0:
        return math.inf
    rate = (hits + 1.0) / (trials + 2.0)
    return math.sqrt(rate * (1.0 - rate) / trials)


def judged_mcse(row, statistic: str) -> Optional[float]:
    """The Monte Carlo SE a stopping rule judges for one summary row (None: not concerned)."""
    if statistic == "bias":
        value = row.mcse_bias
        return None if value is None else float(value)
    rate, reported = (row.power, row.mcse_power) if statistic == "power" else (row.coverage, row.mcse_coverage)
    if rate is None or reported is None:
        return None
    # The rate's denominator: r (1 - r) / se^2 when the rate is strictly inside (0, 1), else the
    # fits that gave the rate (n, the successful fits, bounds it from above).
    trials = round(rate * (1 - rate) / reported ** 2) if 0 < rate < 1 and reported > 0 else row.n
    return conservative_rate_se(rate * trials, max(int(trials), 0))


def unmet_targets(rule: StoppingRule, rows: list) -> list[str]:
    """Statistic/parameter pairs of ``rows`` (summary rows of one sweep value) not yet at their target.

    A target that concerns no row (e.g. power of a model without fixed effects, or a parameter
    that does not exist) is unmet until the maximum: it never judges the study precise by default.
    """
    unmet = []
    for target in rule.targets:
        concerned = [row for row in rows if row.param and (not target.param or row.param == target.param)]
        judged = [(row, judged_mcse(row, target.statistic)) for row in concerned]
        judged = [(row, value) for row, value in judged if value is not None]
        if not judged:
            unmet.append(f"{target.label} (no estimate yet)")
            continue
        for row, value in judged:
            if value > target.target:
                unmet.append(f"{target.statistic} of {row.param}: MCSE {value:.4f} > {target.target:g}")
    return unmet


def round_ranges(max_reps: int, round_reps: int) -> list[range]:
    """The replication indices of each round: 0..k-1, k..2k-1, ..., ending at ``max_reps``."""
    return [range(start, min(start + round_reps, max_reps)) for start in range(0, max_reps, round_reps)]


def format_stopping(rule: StoppingRule, stops: list[SweepStop], sweep_label: str | None) -> str:
    """Plain-text lines: the rule, then where each sweep value stopped."""
    lines = [f"Stopping rule: {rule.describe()}."]
    for stop in stops:
        where = "" if stop.sweep is None else f"{sweep_label} = {stop.sweep:g}: "
        if stop.met:
            lines.append(f"  {where}stopped after {stop.reps} replications: target met")
        else:
            lines.append(f"  {where}reached the maximum, {stop.reps} replications, before the target"
                         + (f" ({stop.worst})" if stop.worst else ""))
    return "\n".join(lines)
