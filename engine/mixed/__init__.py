"""Nested linear mixed models by REML and ML, at O(rows) cost per fit."""

from engine.mixed.fit import fit_mixed

__all__ = ["fit_mixed"]
