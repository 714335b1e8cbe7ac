"""The comparison of the fits of one run against the truth, from the engine's comparison module.

The fits are already made (with live progress), so the engine's ``compare()``, which fits,
is not called; its table is assembled from the results with the same engine functions.
"""

from __future__ import annotations

import logging

import pandas as pd

from engine.design import Truth
from engine.errors import UserInputError
from engine.results import FitResult

# Imported on the UI thread at start-up, not on the worker (see gui/jobs.py).
from engine.compare import comparison_of_results, short_label, true_component

log = logging.getLogger(__name__)


def comparison_of(results: list[FitResult], truth: Truth | None, predictors: list[str]):
    """An ``engine.compare.Comparison`` of ``results`` (named by their estimator strings), or
    None when the results cannot be compared."""
    if not results:
        return None
    try:
        # The mixed fits' df method (the Model tab's choice): the table then shows t, df and p.
        dfmethod = next((r.dfmethod for r in results if r.estimator == "mixed" and r.dfmethod not in (None, "z")), None)
        return comparison_of_results(results, truth, predictors, dfmethod=dfmethod)
    except (UserInputError, KeyError, ValueError) as error:
        log.info("no comparison for these fits: %s", error)
        return None


def comparison_table(comparison) -> pd.DataFrame:
    """Rows: the treatment coefficient, its SE and CI coverage, each variance component, the fit
    time; columns: the estimators, then the truth. Empty cells are None."""
    truth = comparison.truth
    columns = [f"({k}) {short_label(row)}" for k, row in enumerate(comparison.table, start=1)]
    rows: list[tuple[str, list, object]] = []
    treatment = comparison.treatment
    if treatment is not None:
        true_effect = truth.fixed.get(treatment) if truth is not None else None
        rows.append((treatment, [row.treatment.estimate if row.treatment else None for row in comparison.table],
                     true_effect))
        rows.append((f"SE of {treatment}", [row.treatment.se if row.treatment else None for row in comparison.table],
                     None))
        if getattr(comparison, "dfmethod", None) is not None:  # t tests asked for: show them
            for label, field in (("t (z if no df)", "stat"), ("df", "df"), ("P>|t|", "p")):
                rows.append((f"{label} of {treatment}", [getattr(row.treatment, field) if row.treatment else None
                                                         for row in comparison.table], None))
        if true_effect is not None:
            rows.append(("95% CI covers truth",
                         [None if not row.treatment or row.treatment.covers is None
                          else ("yes" if row.treatment.covers else "no") for row in comparison.table], None))
    for key in comparison.component_keys:
        cells = []
        for row in comparison.table:
            component = row.component(key)
            cells.append(component.estimate if component else None)
        rows.append((key, cells, true_component(truth, key)))
    rows.append(("Fit seconds", [row.fit_seconds for row in comparison.table], None))
    data = {"Parameter": [label for label, _, _ in rows]}
    for index, column in enumerate(columns):
        data[column] = [cells[index] for _, cells, _ in rows]
    if truth is not None:
        data["Truth"] = [true_value for _, _, true_value in rows]
    return pd.DataFrame(data)


def comparison_legend(comparison) -> str:
    """What each numbered column is, and the Hausman tests."""
    lines = [f"({k}) {row.name}" for k, row in enumerate(comparison.table, start=1)]
    # Estimators on another scale than the truth (a linear model of a 0/1 outcome): no truth cells.
    lines += [f"Note ({k}): {row.truth_note}; its coverage is left blank."
              for k, row in enumerate(comparison.table, start=1) if getattr(row, "truth_note", None)]
    for pair in comparison.hausman:
        lines.append(f"Hausman test ({pair.fe} vs {pair.re}): chi2({int(pair.df)}) = {pair.stat:.2f}, "
                     f"Prob > chi2 = {pair.p:.4f}")
    lines += [f"Where the {shift.factor} variance went: {shift.text}" for shift in comparison.variance_shifts]
    return "\n".join(lines)
