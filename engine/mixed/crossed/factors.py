"""Grouping factors of a model with crossed random factors, and whether they nest after all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.model_spec import ModelSpec


@dataclass
class GroupingFactor:
    """The groups of one random-effects level: a code per row and the id columns that form them."""

    name: str
    columns: list[str]
    codes: np.ndarray  # (rows,) group index 0..n_groups-1
    n_groups: int


def group_table(factors: list[GroupingFactor]):
    """Groups per factor and rows per group (minimum, mean, maximum), as the fit's header shows them."""
    from engine.results import GroupCount

    table = []
    for factor in factors:
        sizes = np.bincount(factor.codes, minlength=factor.n_groups)
        table.append(GroupCount(level=factor.name, groups=factor.n_groups, min=int(sizes.min()),
                                mean=float(sizes.mean()), max=int(sizes.max())))
    return table


def level_groupings(spec: ModelSpec) -> list[list[str]]:
    """Per level, the id columns whose combinations are its groups.

    A nested level's groups combine its id with every nested level above it; a crossed factor's
    groups are its own ids (within the nested levels written before it, as in Stata).
    """
    nested: list[str] = []
    out = []
    for level in spec.levels:
        if level.crossed:
            out.append(level.grouping)
        else:
            nested.append(level.name)
            out.append(list(nested))
    return out


def grouping_factors(frame: pd.DataFrame, spec: ModelSpec) -> list[GroupingFactor]:
    factors = []
    for level, columns in zip(spec.levels, level_groupings(spec)):
        codes = np.zeros(len(frame), dtype=np.int64)
        for column in columns:
            own, _ = pd.factorize(frame[column], sort=True)
            combined = codes * np.int64(own.max() + 1) + own
            codes, uniques = pd.factorize(combined, sort=True)
            codes = codes.astype(np.int64, copy=False)
        factors.append(GroupingFactor(level.name, columns, codes, int(codes.max()) + 1 if codes.size else 0))
    return factors


def nesting_order(factors: list[GroupingFactor]) -> list[int] | None:
    """Indices of the factors outermost first when every factor nests in the next coarser one, else None."""
    order = sorted(range(len(factors)), key=lambda i: (factors[i].n_groups, i))
    for coarse, fine in zip(order[:-1], order[1:]):
        a, b = factors[coarse], factors[fine]
        # Nested when every fine group lies in one coarse group: the coarse code of one row of
        # each fine group (here the last written) must be that of all its rows.
        parent = np.empty(b.n_groups, dtype=a.codes.dtype)
        parent[b.codes] = a.codes
        if not np.array_equal(parent[b.codes], a.codes):
            return None
    return order


def nested_equivalent(spec: ModelSpec, order: list[int]) -> ModelSpec:
    """The same model with its factors as nested levels, outermost first."""
    from engine.model_spec import Level

    levels = []
    for index in order:
        level = spec.levels[index]
        covariance = level.covariance if len(level.terms) > 1 else "independent"
        levels.append(Level(name=level.name, slopes=list(level.slopes), intercept=level.intercept,
                            covariance=covariance))
    return spec.replace(levels=levels)


def fit_as_nested(fit, frame: pd.DataFrame, spec: ModelSpec, order: list[int], factors: list[GroupingFactor],
                  start_theta, **options):
    """The factors nest in the data: fit the equivalent nested model with ``fit`` (the linear or the
    GLMM fast path), reported as written, with a note saying so."""
    from engine.mixed.covariance import LevelCovariance

    nested = nested_equivalent(spec, order)
    if start_theta is not None:  # the caller's start values follow the written order of the factors
        sizes = [LevelCovariance(len(level.terms), level.covariance).n_params for level in spec.levels]
        offsets = np.cumsum([0] + sizes)
        start_theta = np.concatenate([np.asarray(start_theta)[offsets[i]:offsets[i + 1]] for i in order])
    result = fit(frame, nested, start_theta=start_theta, **options)
    result.spec = spec
    result.model = result.name = spec.to_stata()
    names = ", ".join(factors[i].name for i in order)
    result.notes.append(f"The random factors nest in these data ({names}, outermost first): the model was fitted "
                        f"as nested levels (the same model, on the fast nested path).")
    return result
