"""Where a nested model puts the variance of a crossed factor.

When students change teacher (or live in neighbourhoods that cut across schools), the teacher's
random effect is crossed with the students', not nested above them. A nested model fitted to such
data still explains the same total variance, but it must put the crossed factor's share
somewhere: at a level it has (the students, who carry their teacher's effect while they stay),
the residual (the teacher changes between a student's rows) or the levels above (students of one
school share teachers). :func:`variance_shift` measures this against the crossed fit of the same
data: the change in each intercept variance, nested minus crossed.

Only intercept variances (``sd(_cons)`` squared) and the residual variance are compared; random
slopes have no single variance to move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from engine.design import RESIDUAL, Truth
from engine.errors import UserInputError
from engine.results import FitResult


@dataclass
class VarianceShift:
    """The variance of one crossed ``factor`` in a nested fit, against the crossed fit.

    Attributes
    ----------
    factor : str
        The crossed factor, e.g. ``"teach_id"``.
    nested, crossed : str
        Labels of the nested and the crossed fit (e.g. ``"(5)"`` or ``"B"``).
    crossed_variance : float
        The factor's intercept variance in the crossed fit.
    truth : float or None
        Its true variance (simulated data).
    kept : float or None
        The factor's variance in the nested fit; None when the nested model has no such level.
    moved : dict of str to float
        Every other variance the two fits share (levels and ``Residual``): nested minus crossed,
        largest change first.
    text : str
        The one-line reading.
    """

    factor: str
    nested: str
    crossed: str
    crossed_variance: float
    truth: Optional[float] = None
    kept: Optional[float] = None
    moved: dict[str, float] = field(default_factory=dict)
    text: str = ""


def intercept_variances(result: FitResult) -> dict[str, float]:
    """Level (or factor) name -> var(_cons), and ``Residual`` -> the residual variance."""
    variances = {}
    for row in result.random:
        if row.param == "sd(_cons)":
            variances[row.level] = row.estimate ** 2
        elif row.param == f"sd({RESIDUAL})":
            variances[RESIDUAL] = row.estimate ** 2
    return variances


def variance_shift(nested: FitResult, crossed: FitResult, factor: str, nested_label: str, crossed_label: str,
                   truth: Optional[Truth] = None) -> Optional[VarianceShift]:
    """Where ``nested`` puts the intercept variance that ``crossed`` gives the crossed ``factor``.

    Returns None when the crossed fit has no intercept variance for ``factor``.
    """
    crossed_variances = intercept_variances(crossed)
    if factor not in crossed_variances:
        return None
    nested_variances = intercept_variances(nested)
    true_sd = truth.random.get(f"{factor}:sd(_cons)") if truth is not None else None
    moved = {name: nested_variances[name] - value for name, value in crossed_variances.items()
             if name != factor and name in nested_variances}
    moved = dict(sorted(moved.items(), key=lambda item: -abs(item[1])))
    shift = VarianceShift(factor=factor, nested=nested_label, crossed=crossed_label,
                          crossed_variance=crossed_variances[factor],
                          truth=None if true_sd is None else true_sd ** 2,
                          kept=nested_variances.get(factor), moved=moved)
    shift.text = _reading(shift)
    return shift


def _reading(shift: VarianceShift) -> str:
    truth = f", truth {shift.truth:.2f}" if shift.truth is not None else ""
    changes = ", ".join(f"{name} {value:+.2f}" for name, value in shift.moved.items() if round(value, 2) != 0)
    if shift.kept is None:
        return (f"{shift.nested} has no {shift.factor} level: its variance ({shift.crossed_variance:.2f} in "
                f"{shift.crossed}{truth}) moves to {changes or 'no other level'}")
    return (f"{shift.nested} keeps var({shift.factor}) at {shift.factor}: {shift.kept:.2f} against "
            f"{shift.crossed_variance:.2f} in {shift.crossed}{truth}; other variances change by {changes or 'nothing'}")


def crossed_factors_of(result: FitResult) -> list[str]:
    """The factors a fit writes as crossed (``_all: R.x``), in the model's order."""
    spec = result.spec
    return [level.name for level in spec.levels if level.crossed] if spec is not None else []


def variance_shifts(labelled: Sequence[tuple[str, FitResult]], truth: Optional[Truth] = None,
                    factors: Optional[Sequence[str]] = None) -> list[VarianceShift]:
    """For each nested mixed fit (by the crossed fit's method), where it puts each crossed factor's
    variance of the first crossed fit.

    Parameters
    ----------
    labelled : sequence of (label, FitResult)
        The fits of one comparison (other estimators than mixed models are passed over).
    truth : Truth, optional
        The true parameters (simulated data).
    factors : sequence of str, optional
        The crossed factors to follow. Default: the crossed factors of the design the truth came
        from (levels units move between, and crossed factors) that the crossed fit has; without a
        design, the crossed fit's factor with the fewest groups (the teachers rather than the
        students they teach).

    Returns
    -------
    list of VarianceShift
        Empty when there is no crossed fit or no nested fit.
    """
    mixed = [(label, result) for label, result in labelled
             if result.estimator == "mixed" and result.spec is not None and result.family in (None, "gaussian")]
    crossed = next(((label, result) for label, result in mixed if result.spec.has_crossed), None)
    if crossed is None:
        return []
    crossed_label, crossed_fit = crossed
    # Nested fits by the crossed fit's method: REML and ML variances differ by more than a shift.
    nested = [(label, result) for label, result in mixed
              if not result.spec.has_crossed and result.spec.levels and result.method == crossed_fit.method]
    if factors is None:
        factors = _default_factors(crossed_fit, truth)
    shifts = []
    for label, result in nested:
        for factor in factors:
            shift = variance_shift(result, crossed_fit, factor, label, crossed_label, truth)
            if shift is not None:
                shifts.append(shift)
    return shifts


def _default_factors(crossed_fit: FitResult, truth: Optional[Truth]) -> list[str]:
    written = crossed_factors_of(crossed_fit)
    if truth is not None and truth.design:

        try:
            named = truth.source_design().crossed_names()
        except UserInputError:  # a truth from a foreign file: fall back to the groups
            named = []
        chosen = [name for name in named if name in written]
        if chosen:
            return chosen
    groups = {group.level: group.groups for group in crossed_fit.groups}
    counted = [name for name in written if name in groups]
    return [min(counted, key=lambda name: groups[name])] if counted else written[:1]
