"""Every row's group at each random-effects level, for drawing new random effects (parametric
bootstrap, p-value checks): nested levels and crossed factors alike."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.model_spec import ModelSpec


def row_groups(frame: pd.DataFrame, spec: ModelSpec) -> list[tuple[np.ndarray, int]]:
    """Per level of ``spec``, every row's group code and the number of groups.

    Nested levels combine their id with the levels above; a crossed factor's groups are its own
    ids, so one drawn effect is shared by every row of that id whatever the other factors.
    """
    if spec.has_crossed:
        from engine.mixed.crossed.factors import grouping_factors

        return [(factor.codes, factor.n_groups) for factor in grouping_factors(frame, spec)]
    from engine.mixed.hierarchy import build_hierarchy

    hierarchy = build_hierarchy(frame, spec.level_names)
    return list(zip(hierarchy.row_codes, hierarchy.group_counts))
