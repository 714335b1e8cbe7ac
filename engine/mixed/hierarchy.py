"""Nested grouping: integer codes per level, parents, counts, and checks of the nesting order.

A group at level l is the combination of its id with every id above it (Stata's and lme4's
rule), so ids that restart inside their parent are handled. Codes are assigned in sorted order
of (parent code, own id), which makes the children of each parent contiguous: sums over children
are then a single ``np.add.reduceat``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.crossing import CrossingEvidence, crossing_evidence
from engine.results import GroupCount


@dataclass
class Hierarchy:
    """Group codes of every row at every level (outermost first) and each group's parent."""

    level_names: list[str]
    row_codes: list[np.ndarray]  # per level: (rows,) group index
    parents: list[np.ndarray]  # per level: (groups,) index of the parent group (zeros at the top)
    group_counts: list[int]
    id_values: list[int]  # distinct values of each level's own id column, ignoring the levels above

    @property
    def n_levels(self) -> int:
        return len(self.level_names)

    def child_starts(self, level: int) -> np.ndarray:
        """Index of the first group of ``level`` under each group of the level above."""
        return first_index_of_runs(self.parents[level])

    def rows_per_group(self, level: int) -> np.ndarray:
        return np.bincount(self.row_codes[level], minlength=self.group_counts[level])

    def levels_sharing_groups(self) -> frozenset[int]:
        """Levels whose grouping equals that of an adjacent level (variances not separately identified)."""
        counts = self.group_counts
        return frozenset(i for i in range(len(counts))
                         if (i > 0 and counts[i] == counts[i - 1]) or (i + 1 < len(counts) and counts[i] == counts[i + 1]))

    def group_table(self) -> list[GroupCount]:
        table = []
        for level, name in enumerate(self.level_names):
            sizes = self.rows_per_group(level)
            table.append(GroupCount(level=name, groups=int(sizes.size), min=int(sizes.min()),
                                    mean=float(sizes.mean()), max=int(sizes.max())))
        return table

    def group_ids(self, frame: pd.DataFrame, level: int) -> pd.DataFrame:
        """The id columns (this level and all above) of each group at ``level``, one row per group."""
        codes = self.row_codes[level]
        first_row = np.full(self.group_counts[level], -1, dtype=np.int64)
        first_row[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
        names = self.level_names[: level + 1]
        return frame[names].iloc[first_row].reset_index(drop=True)


def first_index_of_runs(sorted_codes: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted array."""
    if sorted_codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])


def build_hierarchy(frame: pd.DataFrame, level_names: list[str]) -> Hierarchy:
    """Codes for strictly nested levels, outermost first."""
    row_codes: list[np.ndarray] = []
    parents: list[np.ndarray] = []
    counts: list[int] = []
    id_values: list[int] = []
    parent_codes = np.zeros(len(frame), dtype=np.int64)
    for name in level_names:
        own_codes, n_own = _dense_codes(frame[name].to_numpy())
        id_values.append(int(np.count_nonzero(np.bincount(own_codes, minlength=n_own))))
        combined = parent_codes * np.int64(n_own) + own_codes
        codes, uniques = pd.factorize(combined, sort=True)
        codes = codes.astype(np.int64, copy=False)
        row_codes.append(codes)
        parents.append(np.asarray(uniques, dtype=np.int64) // np.int64(n_own))
        counts.append(len(uniques))
        parent_codes = codes
    return Hierarchy(list(level_names), row_codes, parents, counts, id_values)


def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Order-preserving integer codes for an id column, and how many distinct codes there may be.

    Small-range integer ids are shifted rather than hashed (much faster on millions of rows);
    codes need not be contiguous, only ordered and distinct.
    """
    if values.dtype.kind in "iu" and values.size:
        low, high = int(values.min()), int(values.max())
        if high - low < 4 * values.size + 1024:
            return values.astype(np.int64) - low, high - low + 1
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64, copy=False), max(len(uniques), 1)


def nesting_notes(hierarchy: Hierarchy) -> list[str]:
    """Say where ids restart inside their parent, and how the groups were formed."""
    notes = []
    names = hierarchy.level_names
    for level in range(1, len(names)):
        if hierarchy.id_values[level] < hierarchy.group_counts[level]:
            above = ", ".join(names[:level])
            notes.append(
                f"{names[level]} ids repeat across {names[level - 1]} groups: each group is a "
                f"({above}, {names[level]}) combination, {hierarchy.group_counts[level]:,} groups from "
                f"{hierarchy.id_values[level]:,} distinct {names[level]} values.")
    return notes


def structure_warnings(hierarchy: Hierarchy, frame: pd.DataFrame, outcome: np.ndarray | None = None,
                       covariates: np.ndarray | None = None) -> list[str]:
    """Warnings about the nesting: ids that look crossed, repeated groupings, singleton levels, a
    likely reversed order. ``outcome`` (and the fixed-effect ``covariates`` it is residualised on)
    lets the crossing check test for effects shared across parent groups (engine/crossing.py)."""
    warnings = [evidence.message() for evidence in crossed_levels(hierarchy, frame, outcome, covariates)]
    names, counts = hierarchy.level_names, hierarchy.group_counts
    # Adjacent levels with the same number of groups partition the rows identically.
    runs: list[list[int]] = []
    for level in range(len(names)):
        if level > 0 and counts[level] == counts[level - 1]:
            runs[-1].append(level)
        else:
            runs.append([level])
    for run in runs:
        if len(run) > 1:
            listed = _join([names[i] for i in run])
            warnings.append(
                f"Levels {listed} have the same {counts[run[0]]} groups: every group at one of them is "
                f"exactly one group at the others, so their variances are not separately identified "
                f"(only their sum is).")
    if names:
        leaf_sizes = hierarchy.rows_per_group(len(names) - 1)
        if leaf_sizes.max() == 1:
            warnings.append(
                f"Level {names[-1]} has one observation per group: its variance is confounded with the "
                f"residual variance and cannot be told apart from it.")
    suggestion = suggested_order(hierarchy, frame)
    if suggestion is not None:
        order = " ".join(f"|| {name}:" for name in suggestion)
        warnings.append(
            f"The nesting order looks reversed: levels go outermost first, and the ids show that "
            f"{_join(names)} nest the other way round. Did you mean {order}?")
    return warnings


def crossed_levels(hierarchy: Hierarchy, frame: pd.DataFrame, outcome: np.ndarray | None = None,
                   covariates: np.ndarray | None = None) -> list[CrossingEvidence]:
    """The levels whose ids look crossed with the level above them (rule: engine/crossing.py)."""
    found = []
    names = hierarchy.level_names
    for level in range(1, len(names)):
        if hierarchy.id_values[level] == hierarchy.group_counts[level]:
            continue  # each id value lies in one parent group: nothing recurs
        evidence = crossing_evidence(hierarchy.row_codes[level - 1], frame[names[level]].to_numpy(),
                                     inner_name=names[level], above=names[:level], outcome=outcome,
                                     covariates=covariates)
        if evidence is not None and evidence.looks_crossed:
            found.append(evidence)
    return found


def suggested_order(hierarchy: Hierarchy, frame: pd.DataFrame) -> list[str] | None:
    """An order in which the raw ids nest properly, when the given order does not but that one does."""
    names = hierarchy.level_names
    if len(names) < 2 or not hierarchy.levels_sharing_groups():
        return None  # a reversed order makes adjacent levels share their groups
    distinct = dict(zip(names, hierarchy.id_values))
    candidate = sorted(names, key=lambda n: distinct[n])
    if candidate == names:
        return None
    if raw_ids_nest(frame, names) or not raw_ids_nest(frame, candidate):
        return None
    return candidate


def raw_ids_nest(frame: pd.DataFrame, order: list[str]) -> bool:
    """True when each raw id at an inner level belongs to a single group of the level above it."""
    for outer, inner in zip(order[:-1], order[1:]):
        pairs = frame[[inner, outer]].drop_duplicates()
        if pairs[inner].duplicated().any():
            return False
        if frame[outer].nunique() >= frame[inner].nunique():
            return False
    return True


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
