"""Predicted against observed outcomes of a binary or count fit, by bins of the prediction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.results import FitResult


@dataclass
class PredictionBins:
    """Rows grouped by deciles of the prediction with the random effects (``fitted``)."""

    predicted: np.ndarray  # mean prediction with the random effects, per bin
    predicted_fixed_only: np.ndarray | None  # mean prediction with the random effects at 0 (binary and count fits)
    observed: np.ndarray  # mean outcome per bin
    rows: np.ndarray  # rows per bin


def prediction_bins(result: FitResult, bins: int = 10) -> PredictionBins | None:
    """Deciles (by default) of the conditional prediction; None when the fit has no predictions
    (linear fits give their fitted values, without the random-effects-at-0 series)."""
    if result.fitted is None or result.residuals is None:
        return None
    fitted = np.asarray(result.fitted, dtype=float)
    observed = fitted + np.asarray(result.residuals, dtype=float)
    fixed_only = None if result.fitted_fixed_only is None else np.asarray(result.fitted_fixed_only, dtype=float)
    edges = np.unique(np.quantile(fitted, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    codes = np.searchsorted(edges, fitted, side="right")
    rows = np.bincount(codes, minlength=edges.size + 1).astype(float)
    keep = rows > 0

    def mean(values):
        return (np.bincount(codes, weights=values, minlength=edges.size + 1) / np.maximum(rows, 1))[keep]

    return PredictionBins(mean(fitted), None if fixed_only is None else mean(fixed_only), mean(observed), rows[keep])
