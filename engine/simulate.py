"""Simulate data from a ``Design``: vectorised with numpy, reproducible from a seed.

Units are built level by level (a loop over levels, never over units): counts per parent, then
the draws made once per unit. Rows are sorted by the hierarchy and then the occasion, as in the
seed, so each unit's rows are contiguous and its ids and draws reach them by ``np.repeat`` over
the rows per unit. Ids are numbered 1..N at each level, unique across the data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.design import OBSERVATION, CovariateDesign, CrossedFactor, Design, LevelDesign, Truth, UnitCount
from engine.errors import UserInputError

TRUE_EFFECT_PREFIX = "true_u_"


@dataclass
class SimulatedData:
    """Simulated rows with the design, the true parameters and the seed that made them."""

    frame: pd.DataFrame
    design: Design
    truth: Truth
    seed: int

    @property
    def truth_columns(self) -> list[str]:
        return true_effect_columns(self.frame)


def true_effect_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding true random effects (``true_u_<level>``, ``true_u_<level>_<variable>``);
    views hide them by default."""
    return [name for name in frame.columns if str(name).startswith(TRUE_EFFECT_PREFIX)]


def simulate(design: Design, seed: int | None = None) -> SimulatedData:
    """Draw one data set from ``design``.

    Parameters
    ----------
    design : Design
        Validated here; a bad design raises UserInputError.
    seed : int, optional
        Seed for ``numpy.random.default_rng``; None draws a fresh one (reported in ``.seed``).

    Returns
    -------
    SimulatedData
        ``.frame`` has one id column per level, the occasion, the treatment, the covariates, the
        outcome and the true effects per level.
    """
    design.validate()
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserInputError(f"seed must be a whole number >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    variable_levels = design.variable_levels()

    # Units, level by level: how many under each parent, and the draws made once per unit.
    counts_per_parent: list[np.ndarray] = []
    unit_effects: list[list[np.ndarray]] = []  # per level: intercepts, then one array per slope
    unit_variables: dict[str, np.ndarray] = {}
    units = 1
    for depth, level in enumerate(design.levels):
        counts = _draw_counts(rng, level.units, units)
        counts_per_parent.append(counts)
        units = int(counts.sum())
        unit_effects.append(_draw_effects(rng, level, units))
        for name, variable_level in variable_levels.items():
            if variable_level == level.name:
                unit_variables[name] = _draw_variable(
                    rng, design, name, units, blocks=lambda: _block_codes(design, counts_per_parent, depth))

    # Rows of each bottom unit: its occasions less the missing ones.
    occasion_column = None
    if design.occasions is None:
        rows_per_unit = np.ones(units, dtype=np.int64)
    else:
        per_unit = design.occasions.count
        occasion_dtype = _small_int_dtype(per_unit)
        if design.occasions.missing_prob > 0:
            present = rng.random((units, per_unit)) >= design.occasions.missing_prob
            rows_per_unit = present.sum(axis=1)
            occasion_column = (np.flatnonzero(present) % per_unit + 1).astype(occasion_dtype)
            del present
        else:
            rows_per_unit = np.full(units, per_unit, dtype=np.int64)
            occasion_column = np.tile(np.arange(1, per_unit + 1, dtype=occasion_dtype), units)
    rows = int(rows_per_unit.sum())

    # Rows are sorted by the hierarchy, so a unit's rows are contiguous: per-unit values reach
    # the rows by np.repeat over the rows of each unit (sequential, faster than a gather).
    rows_per_level: list[np.ndarray] = [rows_per_unit]
    for counts in reversed(counts_per_parent[1:]):
        rows_per_level.insert(0, _segment_sums(rows_per_level[0], counts))

    # Levels whose units the bottom units move between (crossed levels): each row's own unit.
    moved_codes = {depth: _moved_unit_codes(rng, design, depth, counts_per_parent, rows_per_level, occasion_column)
                   for depth, level in enumerate(design.levels) if level.move_prob > 0}

    def spread(values: np.ndarray, depth: int) -> np.ndarray:
        if depth in moved_codes:
            return values[moved_codes[depth]]
        return np.repeat(values, rows_per_level[depth])

    row_variables = {}
    for name, variable_level in variable_levels.items():
        if variable_level == OBSERVATION:
            row_variables[name] = _draw_variable(
                rng, design, name, rows, occasion_column,
                blocks=lambda: _row_block_codes(design, counts_per_parent, rows_per_level, rows))
        else:
            row_variables[name] = spread(unit_variables.pop(name), design.level_names.index(variable_level))

    outcome = rng.standard_normal(rows)
    outcome *= design.residual_sd if design.family == "gaussian" else 0.0  # GLMM: no residual on the latent scale
    outcome += design.intercept
    if design.treatment is not None:
        _add_scaled(outcome, row_variables[design.treatment.name], design.treatment.effect)
    for covariate in design.covariates:
        _add_scaled(outcome, row_variables[covariate.name], covariate.coef)

    ids = []
    true_columns = {}
    for depth, level in enumerate(design.levels):
        level_units = len(rows_per_level[depth])
        ids.append(spread(np.arange(1, level_units + 1, dtype=_id_dtype(level_units)), depth))
        intercepts, *slopes = unit_effects[depth]
        row_intercepts = spread(intercepts, depth)
        outcome += row_intercepts
        true_columns[f"{TRUE_EFFECT_PREFIX}{level.name}"] = row_intercepts
        for slope, effects in zip(level.slopes, slopes):
            row_slopes = spread(effects, depth)
            outcome += row_slopes * row_variables[slope.variable]
            true_columns[f"{TRUE_EFFECT_PREFIX}{level.name}_{slope.variable}"] = row_slopes
    del unit_effects

    columns = {level.name: level_ids for level, level_ids in zip(design.levels, ids)}
    # Crossed factors draw last, so a design without them gives the same data as before they existed.
    for factor in design.crossed:
        codes, effects = _crossed_factor_draws(rng, design, factor, counts_per_parent, rows_per_level)
        columns[factor.name] = (codes + 1).astype(_id_dtype(effects.size))
        row_effects = effects[codes]
        outcome += row_effects
        true_columns[f"{TRUE_EFFECT_PREFIX}{factor.name}"] = row_effects
    if design.occasions is not None:
        columns[design.occasions.name] = occasion_column
    columns.update(row_variables)
    if design.family != "gaussian":
        from engine.glmm.simulate import draw_outcome

        outcome = draw_outcome(rng, design.family, design.link, outcome)
    columns[design.outcome] = outcome
    columns.update(true_columns)
    # copy=False: the arrays are ours; copying 8 million rows would double the peak memory.
    frame = pd.DataFrame(columns, copy=False)
    truth = design.truth()
    truth.seed = seed
    return SimulatedData(frame=frame, design=design.copy(), truth=truth, seed=seed)


# ----- draws ---------------------------------------------------------------------------------------

def _draw_counts(rng: np.random.Generator, units: UnitCount, parents: int) -> np.ndarray:
    """Units under each of ``parents`` parents."""
    if units.distribution == "fixed":
        return np.full(parents, int(units.n), dtype=np.int64)
    if units.distribution == "uniform":
        return rng.integers(int(units.min), int(units.max), size=parents, endpoint=True, dtype=np.int64)
    if units.distribution == "empirical":
        # Without replacement in rounds: as many parents as sizes get exactly the observed sizes.
        sizes = np.asarray(units.sizes, dtype=np.int64)
        rounds = -(-parents // len(sizes))
        return rng.permuted(np.tile(sizes, (rounds, 1)), axis=1).ravel()[:parents]
    return 1 + rng.poisson(units.mean - 1.0, size=parents).astype(np.int64)


def _draw_effects(rng: np.random.Generator, level: LevelDesign, units: int) -> list[np.ndarray]:
    """Random intercepts and slopes of one level: one array per term, intercept first."""
    if not level.slopes:
        intercepts = rng.standard_normal(units)
        intercepts *= level.sd
        intercepts += 0.0  # turns the -0.0 of a zero sd into 0.0
        return [intercepts]
    sds = np.array([level.sd] + [slope.sd for slope in level.slopes])
    correlation = np.eye(len(sds))
    for position, slope in enumerate(level.slopes, start=1):
        correlation[0, position] = correlation[position, 0] = slope.corr
    # A symmetric square root instead of Cholesky: it also works when a correlation is +-1.
    values, vectors = np.linalg.eigh(correlation)
    root = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    draws = rng.standard_normal((units, len(sds))) @ (root * sds[None, :]) + 0.0
    return [np.ascontiguousarray(draws[:, k]) for k in range(len(sds))]


def _draw_variable(rng: np.random.Generator, design: Design, name: str, size: int,
                   occasion_column: np.ndarray | None = None, blocks=None) -> np.ndarray:
    """One draw of a treatment or covariate per unit (or per row).

    ``blocks`` returns the block code of each unit (or row), for a fixed treatment allocation.
    """
    if design.treatment is not None and name == design.treatment.name:
        if design.treatment.allocation == "fixed":
            return _fixed_allocation(rng, design.treatment, blocks())
        return _bernoulli(rng, design.treatment.probability, size)
    covariate: CovariateDesign = next(c for c in design.covariates if c.name == name)
    if covariate.distribution == "normal":
        return rng.normal(covariate.mean, covariate.sd, size)
    if covariate.distribution == "binary":
        return _bernoulli(rng, covariate.probability, size)
    if covariate.distribution == "uniform":
        return rng.uniform(covariate.low, covariate.high, size)
    return occasion_column - np.asarray(1, dtype=occasion_column.dtype)  # time: 0..count-1


def _moved_unit_codes(rng: np.random.Generator, design: Design, depth: int, counts_per_parent: list[np.ndarray],
                      rows_per_level: list[np.ndarray], occasion_column: np.ndarray) -> np.ndarray:
    """The unit of level ``depth`` each row belongs to when bottom units move between its units.

    A bottom unit starts in its own unit; at each occasion after the first it moves, with the
    level's ``move_prob``, to another unit of the same parent (uniformly among the others), and
    stays there until it moves again.
    """
    last = len(design.levels) - 1
    counts = counts_per_parent[depth]  # units of this level under each parent
    parent_of = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    first_of_parent = np.cumsum(counts) - counts
    unit = np.arange(int(counts_per_parent[last].sum()), dtype=np.int64)  # bottom units -> their unit here
    for level in range(last, depth, -1):
        unit = np.repeat(np.arange(counts_per_parent[level].size, dtype=np.int64), counts_per_parent[level])[unit]
    occasions = design.occasions.count
    by_occasion = np.empty((unit.size, occasions), dtype=np.int64)
    by_occasion[:, 0] = unit
    probability = design.levels[depth].move_prob
    for occasion in range(1, occasions):
        parent = parent_of[unit]
        siblings = counts[parent]
        movers = (rng.random(unit.size) < probability) & (siblings > 1)
        position = unit[movers] - first_of_parent[parent[movers]]
        step = 1 + rng.integers(0, siblings[movers] - 1)  # 1 .. siblings-1: never the unit it leaves
        unit = unit.copy()
        unit[movers] = first_of_parent[parent[movers]] + (position + step) % siblings[movers]
        by_occasion[:, occasion] = unit
    bottom_of_row = np.repeat(np.arange(unit.size, dtype=np.int64), rows_per_level[last])
    return by_occasion[bottom_of_row, occasion_column.astype(np.int64) - 1]


def _crossed_factor_draws(rng: np.random.Generator, design: Design, factor: CrossedFactor,
                          counts_per_parent: list[np.ndarray], rows_per_level: list[np.ndarray]):
    """The unit of a crossed factor each row belongs to (0-based codes) and the units' effects.

    The factor's units are made per unit of ``within`` (or once for the whole data); each bottom
    unit picks one of the units of its own ``within`` unit uniformly at random, and all its rows
    carry it.
    """
    last = len(design.levels) - 1
    bottom_units = int(counts_per_parent[last].sum())
    parent = np.zeros(bottom_units, dtype=np.int64)  # each bottom unit's unit of `within`
    parents = 1
    if factor.within is not None:
        target = design.level_names.index(factor.within)
        parents = int(counts_per_parent[target].sum())
        parent = np.arange(bottom_units, dtype=np.int64)
        for level in range(last, target, -1):  # up the hierarchy to the `within` level
            parent = np.repeat(np.arange(counts_per_parent[level].size, dtype=np.int64),
                               counts_per_parent[level])[parent]
    counts = _draw_counts(rng, factor.units, parents)
    effects = rng.standard_normal(int(counts.sum()))
    effects *= factor.sd
    effects += 0.0  # turns the -0.0 of a zero sd into 0.0
    first = np.cumsum(counts) - counts
    chosen = first[parent] + np.floor(rng.random(bottom_units) * counts[parent]).astype(np.int64)
    return np.repeat(chosen, rows_per_level[last]), effects


def _fixed_allocation(rng: np.random.Generator, treatment, block_codes: np.ndarray) -> np.ndarray:
    """Exactly the stated number of treated units in each block, at random positions.

    ``block_codes`` are sorted (units are generated block by block), so a block's units are one
    run; a random key ranks the units within their run and the lowest ranks are treated.
    """
    from engine.errors import UserInputError

    size = block_codes.size
    if size == 0:
        return np.zeros(0, dtype=np.int8)
    starts = np.flatnonzero(np.r_[True, block_codes[1:] != block_codes[:-1]])
    block_sizes = np.diff(np.r_[starts, size])
    wanted = np.array([treatment.treated_in_block(int(m)) for m in block_sizes], dtype=np.int64) \
        if treatment.treated is None else np.full(block_sizes.size, int(treatment.treated), dtype=np.int64)
    short = np.flatnonzero(wanted > block_sizes)
    if short.size:
        where = f"each {treatment.block}" if treatment.block else "the sample"
        raise UserInputError(
            f"treatment {treatment.name}: {int(wanted[short[0]])} treated units wanted in {where}, but a block "
            f"has only {int(block_sizes[short[0]])} {treatment.level} units")
    run = np.repeat(np.arange(block_sizes.size), block_sizes)
    order = np.lexsort((rng.random(size), run))  # within each block, a random order
    rank = np.empty(size, dtype=np.int64)
    rank[order] = np.arange(size) - np.repeat(starts, block_sizes)
    return (rank < np.repeat(wanted, block_sizes)).astype(np.int8)


def _block_codes(design: Design, counts_per_parent: list[np.ndarray], depth: int) -> np.ndarray:
    """Block of each unit at ``depth``: its ancestor at the treatment's block level (or 0)."""
    block = design.treatment.block
    units = int(counts_per_parent[depth].sum())
    if block is None:
        return np.zeros(units, dtype=np.int64)
    target = design.level_names.index(block)
    codes = np.arange(units, dtype=np.int64)
    for level in range(depth, target, -1):  # map each unit to its parent, up to the block level
        parents = np.repeat(np.arange(counts_per_parent[level].size, dtype=np.int64), counts_per_parent[level])
        codes = parents[codes]
    return codes


def _row_block_codes(design: Design, counts_per_parent, rows_per_level, rows: int) -> np.ndarray:
    """Block of each row (an observation-level treatment)."""
    block = design.treatment.block
    if block is None:
        return np.zeros(rows, dtype=np.int64)
    depth = design.level_names.index(block)
    return np.repeat(np.arange(len(rows_per_level[depth]), dtype=np.int64), rows_per_level[depth])


# ----- helpers -------------------------------------------------------------------------------------

def _bernoulli(rng: np.random.Generator, probability: float, size: int) -> np.ndarray:
    """0/1 draws as int8; float32 uniforms halve the temporary (probability resolution 2**-24)."""
    return (rng.random(size, dtype=np.float32) < probability).view(np.int8)


def _segment_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of consecutive runs of ``values`` of lengths ``counts`` (children grouped by parent)."""
    ends = np.cumsum(values)
    boundaries = np.cumsum(counts) - 1
    totals = ends[boundaries]
    totals[1:] -= totals[:-1].copy()
    return totals


def _add_scaled(target: np.ndarray, values: np.ndarray, coef: float) -> None:
    """target += coef * values, without a float temporary for 0/1 variables."""
    if coef == 0:
        return
    if values.dtype == np.int8 and values.max(initial=0) <= 1 and values.min(initial=0) >= 0:
        np.add(target, coef, out=target, where=values.view(np.bool_))
    else:
        target += coef * values


def _id_dtype(largest: int) -> type:
    return np.int32 if largest < np.iinfo(np.int32).max else np.int64


def _small_int_dtype(largest: int) -> type:
    for dtype in (np.int8, np.int16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.int64
