"""Analytic power beside simulated power: the textbook formula at every sweep value of a study.

For a study whose design has a textbook formula (:func:`engine.power.from_design.plan_from_design`),
:func:`analytic_power_curve` gives the formula's power for the treatment at each sweep value (the
design at that value, at the study's alpha). :func:`compare_power` sets it beside the simulated
power of every model that estimates the treatment, with the Monte Carlo SE, and marks the sweep
values where the two differ by more than 2 Monte Carlo SEs: unbalanced or small designs, where the
formulas are optimistic, or a model whose test differs from the formula's t test (a z test with
few clusters rejects too often).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from engine.errors import UserInputError
from engine.montecarlo.precision import conservative_rate_se
from engine.serialize import to_jsonable

DISAGREEMENT_SES = 2.0


@dataclass
class AnalyticPowerCurve:
    """The formula's power for ``term`` at each sweep index (None where no formula applies).

    ``design`` is the textbook design (``crt2``, ``msrt3``, ...) at the first sweep value that has
    one; ``notes`` what the formula assumed; ``reasons`` why a sweep value has none.
    """

    term: str
    alpha: float
    sweep: list[Optional[float]]
    power: list[Optional[float]]
    design: str = ""
    notes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def applies(self) -> bool:
        return any(value is not None for value in self.power)

    def to_dict(self) -> dict:
        return to_jsonable(self)


@dataclass
class PowerComparison:
    """Simulated and analytic power of the treatment for one model at one sweep value."""

    model: str
    sweep: Optional[float]
    simulated: Optional[float]
    mcse: Optional[float]
    analytic: Optional[float]
    difference: Optional[float]
    disagree: bool

    def to_dict(self) -> dict:
        data = to_jsonable(self)
        if self.sweep is not None and float(self.sweep).is_integer():
            data["sweep"] = int(self.sweep)
        return data


def analytic_power_curve(study, alpha: float | None = None) -> AnalyticPowerCurve | None:
    """The textbook power of the study's treatment at each sweep value.

    Parameters
    ----------
    study : engine.montecarlo.Study
    alpha : float, optional
        Two-sided level; default the study's (0.05 when it has none).

    Returns
    -------
    AnalyticPowerCurve or None
        None when the design has no treatment; otherwise one value per sweep index, None
        where no formula fits that design (the reason in ``reasons``).
    """
    from engine.power.from_design import plan_from_design

    design = study.design
    if design.treatment is None:
        return None
    alpha = float(study.alpha if alpha is None else alpha)
    curve = AnalyticPowerCurve(term=design.treatment.name, alpha=alpha, sweep=list(study.sweep_values), power=[])
    for index in range(len(study.sweep_values)):
        try:
            plan, notes = plan_from_design(study.design_at(index), alpha=alpha)
            value = plan.power() if plan.df() >= 1 else None
        except UserInputError as error:
            curve.power.append(None)
            if str(error) not in curve.reasons:
                curve.reasons.append(str(error))
            continue
        curve.power.append(value)
        curve.design = curve.design or plan.design
        curve.notes += [note for note in notes if note not in curve.notes and not note.startswith("effect ")]
    return curve


def compare_power(curve: AnalyticPowerCurve | None, summary: list) -> list[PowerComparison]:
    """Simulated against analytic power of the treatment, per model and sweep value.

    A disagreement is a difference larger than ``DISAGREEMENT_SES`` Monte Carlo SEs, the SE judged
    conservatively (the rate taken as (hits + 1) / (trials + 2), so that a simulated power of
    exactly 0 or 1 still has a nonzero error).
    """
    if curve is None or not curve.applies:
        return []
    by_sweep = {(None if value is None else float(value)): value_power
                for value, value_power in zip(curve.sweep, curve.power)}
    out = []
    for row in summary:
        if row.param != curve.term or row.power is None:
            continue
        sweep = None if row.sweep is None else float(row.sweep)
        analytic = by_sweep.get(sweep)
        if analytic is None:
            continue
        trials = _trials(row)
        judged = conservative_rate_se(row.power * trials, trials)
        difference = row.power - analytic
        out.append(PowerComparison(model=row.model, sweep=row.sweep, simulated=row.power, mcse=row.mcse_power,
                                   analytic=analytic, difference=difference,
                                   disagree=bool(abs(difference) > DISAGREEMENT_SES * judged)))
    return out


def _trials(row) -> int:
    rate, se = row.power, row.mcse_power
    if se is not None and se > 0 and 0 < rate < 1:
        return max(1, round(rate * (1 - rate) / se ** 2))
    return max(1, int(row.n))


def format_comparison(curve: AnalyticPowerCurve | None, comparisons: list[PowerComparison],
                      sweep_label: str | None, models: list[str] | None = None) -> str:
    """Plain text: per model (numbered as in ``models``, the study's) and sweep value, simulated
    power (MCSE), the formula's, and a mark where they disagree."""
    if curve is None:
        return ""
    if not curve.applies:
        reason = curve.reasons[0] if curve.reasons else "no formula fits the design"
        return f"Analytic power of {curve.term}: none ({reason})"
    if not comparisons:
        return f"Analytic power of {curve.term}: no model estimated {curve.term}"
    models = list(models) if models else list(dict.fromkeys(c.model for c in comparisons))
    lines = [f"Power of {curve.term} at alpha {curve.alpha:g}: simulated (Monte Carlo SE) against the "
             f"{curve.design} formula; * marks a difference beyond {DISAGREEMENT_SES:g} Monte Carlo SEs"]
    header = f"{'model':<6}{(sweep_label or '')[:10]:>10}{'simulated (mcse)':>20}{'analytic':>10}{'diff.':>8}"
    lines += [header, "-" * len(header)]
    for item in comparisons:
        sweep = "" if item.sweep is None else f"{item.sweep:g}"
        simulated = f"{item.simulated:.3f}" + (f" ({item.mcse:.3f})" if item.mcse is not None else "")
        lines.append(f"{'M' + str(models.index(item.model) + 1):<6}{sweep:>10}{simulated:>20}{item.analytic:>10.3f}"
                     f"{item.difference:>+8.3f}{' *' if item.disagree else ''}")
    lines += [f"  formula: {note}" for note in curve.notes]
    return "\n".join(lines)
