"""Import checks of a data set's hierarchy: which id columns nest in which, and in what order.

:func:`check_hierarchy` looks at candidate id columns (given, or every integer or text column
whose values repeat) and reports

* raw nesting: each value of an inner id belongs to one value of an outer id (``school_id`` in
  ``dist_id``);
* ids that are only unique within their parent ("teacher 1" in every school): used alone they
  would lump different units into one group. The engine forms a group from its id combined with
  every id above it, so in a fit with the parent listed above them they are handled correctly;
  the report says how many groups that makes;
* a proposed nesting order, outermost first, with the groups per level;
* missing values per column, the level at which each column is constant (a school-level
  variable such as ``sector``), and Stata/SPSS value labels.

The result, :class:`HierarchyReport`, is a plain dataclass (``to_dict`` gives JSON) with a
``format()`` text for the command line.

How the order is chosen: a raw nesting relation (inner value -> one outer value) puts the outer id
above. Between two ids where neither nests in the other, the one whose values restart within the
other's groups goes below: within every group of the parent (or at least 90% of them) the child
takes its smallest values, e.g. teachers 1..k in each school. When that does not decide (a
balanced layout, where the pattern is symmetric), the order of the file's columns decides and
a warning says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
import pandas as pd

from engine.crossing import CrossingEvidence, crossing_evidence
from engine.errors import UserInputError, require_columns
from engine.serialize import from_jsonable, to_jsonable

if TYPE_CHECKING:
    from engine.data_io import Dataset

#: An automatically chosen id column has at least this many distinct values (a level with two
#: groups cannot estimate a variance; binary columns are covariates).
MIN_ID_VALUES = 3
#: Automatically: an outer id whose groups hold fewer inner groups than this on average is a
#: variable of the inner level (e.g. school ``size``), not a level of its own.
MIN_CHILDREN_PER_GROUP = 1.5
#: Share of parent groups in which a child id must take its smallest values to count as restarting.
RESTART_SHARE = 0.9
#: Automatically at most this many candidates are compared pairwise (id-like names first).
MAX_AUTO_CANDIDATES = 12
#: Names that suggest an id column, preferred when there are too many candidates.
_ID_NAME_RE = re.compile(r"id|code|school|class|teach|student|pupil|dist|group|cluster|country|region|subject|"
                         r"person|family|household|hospital|clinic|ward|site|batch|firm|village|wave", re.IGNORECASE)
#: Value labels shown per column in ``format()``.
LABELS_SHOWN = 6


@dataclass
class LevelSummary:
    """One level of the proposed nesting.

    ``raw_values`` counts the id's distinct values; ``groups`` counts the groups formed with the
    ids above it (larger when the id restarts within its parent, named in ``restarts_within``).
    """

    name: str
    raw_values: int
    groups: int
    min_rows: int
    mean_rows: float
    max_rows: int
    restarts_within: Optional[str] = None
    missing: int = 0


@dataclass
class NestingRelation:
    """How two id columns relate, raw values only.

    kind: ``"nested"`` (each ``inner`` value lies in one ``outer`` value), ``"same_groups"``
    (the two ids split the rows identically) or ``"repeats"`` (``inner`` values recur in
    several ``outer`` groups: an id restarting within its parent, or crossed ids). ``pairs``
    counts the distinct (outer, inner) combinations. ``decided_by`` says what put ``outer``
    outside: ``"raw ids"``, ``"restart pattern"`` (the inner id takes its smallest values in
    each outer group, the outer does not in each inner group), ``"column order"`` (the data
    are symmetric, each restarts within the other; the column that comes first in the file goes
    outside) or ``"column order, neither restarts"`` (the ids look crossed).
    """

    outer: str
    inner: str
    kind: str
    pairs: int
    decided_by: str = "raw ids"


@dataclass
class ColumnSummary:
    """One column: type, distinct and missing values, the level it belongs to, labels.

    ``constant_within`` names the outermost level of the proposed order within whose groups the
    column takes one value (``sector`` -> ``school``); None when it varies within the groups of
    the innermost level (an observation-level variable). ``value_labels`` maps codes (as text)
    to labels; the data keep the numeric codes, so a model uses them as numbers (``i.sector``).
    """

    name: str
    dtype: str
    distinct: int
    missing: int
    role: str  # 'level' (an id of the proposed order), 'id candidate' (considered, not used), 'variable'
    constant_within: Optional[str] = None
    label: str = ""
    value_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class HierarchyReport:
    """The findings of :func:`check_hierarchy`; ``format()`` prints them, ``to_dict()`` is JSON-ready."""

    n_rows: int
    candidates: list[str]
    candidates_given: bool
    order: list[str]  # proposed nesting, outermost first
    levels: list[LevelSummary]
    relations: list[NestingRelation]
    columns: list[ColumnSummary]
    findings: list[str] = field(default_factory=list)  # what the check inferred, one sentence each
    warnings: list[str] = field(default_factory=list)  # what needs the user's attention
    outcome: str = ""  # the outcome the crossing check used ("" for the layout alone)
    crossed: list[CrossingEvidence] = field(default_factory=list)  # levels that look crossed with their parent

    # ----- look-ups ------------------------------------------------------------------------
    @property
    def restarted_ids(self) -> list[LevelSummary]:
        """Levels whose ids are only unique within their parent."""
        return [level for level in self.levels if level.restarts_within]

    @property
    def missing(self) -> dict[str, int]:
        """Missing values per column (every column, zeros included)."""
        return {column.name: column.missing for column in self.columns}

    def level(self, name: str) -> LevelSummary:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(f"no level {name!r} in the proposed order {self.order}")

    def column(self, name: str) -> ColumnSummary:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r}")

    def random_part(self) -> str:
        """The proposed levels in Stata syntax, e.g. ``|| dist_id: || school_id:``."""
        return " ".join(f"|| {name}:" for name in self.order)

    # ----- output --------------------------------------------------------------------------
    def format(self) -> str:
        """A plain-text report for the terminal."""
        return _format_report(self)

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "HierarchyReport":
        return from_jsonable(cls, data)


# ===== the check ===================================================================================

def check_dataset(dataset: "Dataset", id_columns: Sequence[str] | None = None,
                  outcome: str | None = None) -> HierarchyReport:
    """:func:`check_hierarchy` on a data set as read by :func:`engine.data_io.read_data`, with its labels.

    Parameters
    ----------
    dataset : Dataset
        Its frame, ``value_labels`` and ``variable_labels`` are used.
    id_columns : sequence of str, optional
        As in :func:`check_hierarchy`.
    outcome : str, optional
        As in :func:`check_hierarchy`.

    Returns
    -------
    HierarchyReport
    """
    return check_hierarchy(dataset.frame, id_columns, value_labels=dataset.value_labels,
                           variable_labels=dataset.variable_labels, outcome=outcome)


def check_hierarchy(frame: pd.DataFrame, id_columns: Sequence[str] | None = None, *,
                    value_labels: dict[str, dict] | None = None,
                    variable_labels: dict[str, str] | None = None,
                    outcome: str | None = None) -> HierarchyReport:
    """Infer the nesting of the id columns of ``frame`` and summarise its columns.

    Parameters
    ----------
    frame : DataFrame
        The data as read.
    id_columns : sequence of str, optional
        Candidate id columns, in any order: where the data cannot decide which of two ids lies
        inside the other, the one that comes first among the file's columns goes outside.
        By default every integer, integral-float or text column with at least
        :data:`MIN_ID_VALUES` distinct values, some of them repeated; automatically chosen
        candidates that turn out to be variables of another id (constant within its groups, at
        most ``1 / MIN_CHILDREN_PER_GROUP`` as many values), crossed with the others, or a
        row identifier are left out of the order.
    value_labels, variable_labels : dict, optional
        Stata/SPSS labels (``Dataset.value_labels``, ``Dataset.variable_labels``).
    outcome : str, optional
        A numeric outcome column: ids whose values recur across their parent's groups are
        tested for an effect shared across those groups (crossed, not nested; see
        engine/crossing.py). Without it only the layout is judged. It is never an id candidate.

    Returns
    -------
    HierarchyReport

    Raises
    ------
    UserInputError
        An id column that is not in the data, or given twice; an outcome that is not a numeric
        column of the data.
    """
    outcome_values = _outcome_values(frame, outcome)
    given = id_columns is not None
    if given:
        candidates = list(id_columns)
        _check_given(frame, candidates)
    else:
        candidates = [name for name in automatic_candidates(frame) if name != outcome]
    findings: list[str] = []
    warnings: list[str] = []
    if not given and len(candidates) > MAX_AUTO_CANDIDATES:
        ranked = sorted(candidates, key=lambda n: (not _ID_NAME_RE.search(str(n)), list(frame.columns).index(n)))
        left_out = len(candidates) - MAX_AUTO_CANDIDATES
        candidates = [n for n in candidates if n in ranked[:MAX_AUTO_CANDIDATES]]
        findings.append(f"{left_out} more integer or text columns could be ids but were not compared "
                        f"(at most {MAX_AUTO_CANDIDATES}); name the ids to check them.")
    codes = {name: _codes(frame[name]) for name in candidates}
    report_candidates = list(candidates)
    candidates = _drop_unusable(frame, candidates, codes, given, findings, warnings)
    candidates = sorted(candidates, key=list(frame.columns).index)  # ties follow the file's columns
    relations = pairwise_relations(candidates, codes)
    candidates = _drop_duplicates(candidates, relations, findings)
    if not given:
        candidates = _drop_group_variables(candidates, codes, relations, findings)
    order = propose_order(candidates, codes, relations)
    if not given:
        order = _drop_crossed(frame, order, codes, findings)
    complete = np.ones(len(frame), dtype=bool)
    for name in order:
        complete &= codes[name][0] >= 0
    levels = _level_summaries(frame, order, codes, complete)
    if not given:
        order, levels = _drop_repeated_groupings(frame, order, codes, complete, levels, findings)
    findings = _nesting_findings(levels, order) + findings
    crossed = _crossed_levels(frame, order, codes, complete, outcome_values)
    warnings += [evidence.message() for evidence in crossed]
    warnings += _order_warnings(relations, order)
    warnings += _level_warnings(frame, levels, order, given, report_candidates)
    columns = _column_summaries(frame, order, report_candidates, codes, complete, value_labels or {},
                                variable_labels or {})
    return HierarchyReport(len(frame), report_candidates, given, order, levels,
                           [r for r in relations if r.outer in order or r.inner in order],
                           columns, findings, warnings, outcome or "", crossed)


def _outcome_values(frame: pd.DataFrame, outcome: str | None) -> np.ndarray | None:
    if outcome is None or outcome == "":
        return None
    if outcome not in frame.columns:
        raise UserInputError(f"unknown outcome column {outcome!r}")
    column = frame[outcome]
    if not pd.api.types.is_numeric_dtype(column):  # True/False count as 1/0, as in the fit
        raise UserInputError(f"the outcome {outcome!r} is not numeric (e.g. {_show_value(column)})")
    return column.to_numpy(dtype=float)


def _crossed_levels(frame, order, codes, complete, outcome_values) -> list[CrossingEvidence]:
    """Levels of the order whose ids look crossed with the groups above them (engine/crossing.py)."""
    rows = complete.copy()
    if outcome_values is not None:
        rows &= np.isfinite(outcome_values)
    found = []
    parent = np.zeros(int(rows.sum()), dtype=np.int64)
    for depth, name in enumerate(order):
        values = codes[name][0][rows]
        if depth > 0:
            evidence = crossing_evidence(parent, values, inner_name=name, above=order[:depth],
                                         outcome=None if outcome_values is None else outcome_values[rows])
            if evidence is not None and evidence.looks_crossed:
                found.append(evidence)
        parent = _combine(parent, values)
    return found


def automatic_candidates(frame: pd.DataFrame) -> list[str]:
    """Columns that may be ids: integer, integral-float or text, 3+ distinct values, some repeated."""
    names = []
    for name in frame.columns:
        column = frame[name]
        if not _id_like_dtype(column):
            continue
        distinct = column.nunique(dropna=True)
        present = int(column.notna().sum())
        if MIN_ID_VALUES <= distinct < present:
            names.append(name)
    return names


def pairwise_relations(candidates: Sequence[str], codes: dict[str, tuple[np.ndarray, int]]) -> list[NestingRelation]:
    """The raw relation of every pair of candidates (rows missing either id are ignored)."""
    relations = []
    for i, first in enumerate(candidates):
        for second in candidates[i + 1:]:
            a, b = codes[first][0], codes[second][0]
            rows = (a >= 0) & (b >= 0)
            pairs = _n_pairs(a[rows], b[rows])
            n_first, n_second = _n_distinct(a[rows]), _n_distinct(b[rows])
            first_in_second = pairs == n_first  # each first value has one second value
            second_in_first = pairs == n_second
            if first_in_second and second_in_first:
                relations.append(NestingRelation(first, second, "same_groups", pairs))
            elif first_in_second:
                relations.append(NestingRelation(second, first, "nested", pairs))
            elif second_in_first:
                relations.append(NestingRelation(first, second, "nested", pairs))
            else:
                outer, inner, decided_by = _restart_direction(first, second, codes)
                relations.append(NestingRelation(outer, inner, "repeats", pairs, decided_by))
    return relations


def propose_order(candidates: Sequence[str], codes: dict[str, tuple[np.ndarray, int]],
                  relations: Sequence[NestingRelation]) -> list[str]:
    """Outermost first: a topological order of the 'outer above inner' relations.

    Ties (and cycles, which the heuristics can produce on crossed ids) are broken by the order
    of ``candidates`` (:func:`check_hierarchy` passes them in the order of the file's columns).
    """
    remaining = list(candidates)
    above: dict[str, set[str]] = {name: set() for name in remaining}
    for relation in relations:
        if relation.kind in ("nested", "repeats") and relation.inner in above and relation.outer in above:
            above[relation.inner].add(relation.outer)
    order: list[str] = []
    while remaining:
        free = [name for name in remaining if not (above[name] & set(remaining))]
        if not free:  # a cycle: take the one with fewest unplaced parents, then the first given
            free = sorted(remaining, key=lambda n: len(above[n] & set(remaining)))[:1]
        chosen = free[0]
        order.append(chosen)
        remaining.remove(chosen)
    return order


# ===== steps =======================================================================================

def _check_given(frame: pd.DataFrame, candidates: list[str]) -> None:
    require_columns(candidates, frame.columns, noun="id column")
    repeated = sorted({n for n in candidates if candidates.count(n) > 1})
    if repeated:
        raise UserInputError(f"id column {repeated[0]!r} is given more than once")


def _drop_unusable(frame, candidates, codes, given, findings, warnings) -> list[str]:
    kept = []
    for name in candidates:
        values, n_values = codes[name]
        present = int((values >= 0).sum())
        if n_values == 0:
            warnings.append(f"{name} has no values: it cannot be a level.")
            continue
        if n_values == 1:
            message = f"{name} takes a single value ({_show_value(frame[name])}): it is one group, not a level."
            (warnings if given else findings).append(message)
            continue
        if not given and n_values == present:
            findings.append(f"{name} is unique on every row: a row identifier, not a level.")
            continue
        kept.append(name)
    return kept


def _drop_duplicates(candidates, relations, findings) -> list[str]:
    kept = list(candidates)
    for relation in relations:
        if relation.kind == "same_groups" and relation.outer in kept and relation.inner in kept:
            kept.remove(relation.inner)
            findings.append(
                f"{relation.outer} and {relation.inner} split the rows into the same {relation.pairs} groups: "
                f"{relation.inner} is left out of the order (use one of them as the level).")
    return kept


def _drop_group_variables(candidates, codes, relations, findings) -> list[str]:
    """Automatic mode: an 'outer' id with about one inner group per value is a variable of the inner level."""
    kept = list(candidates)
    for relation in relations:
        if relation.kind != "nested" or relation.outer not in kept or relation.inner not in kept:
            continue
        n_outer, n_inner = codes[relation.outer][1], codes[relation.inner][1]
        if n_inner < MIN_CHILDREN_PER_GROUP * n_outer:
            kept.remove(relation.outer)
            findings.append(
                f"{relation.outer} is constant within {relation.inner} groups but has {n_outer} values for "
                f"{n_inner} groups: a variable of {relation.inner}, not a level above it.")
    return kept


def _drop_crossed(frame, order, codes, findings) -> list[str]:
    """Automatic mode: keep an id only if it nests in, or restarts within, the groups above it.

    A text column left out this way is reported as text (most are labels or categories, not ids)."""
    kept: list[str] = []
    parent = None
    for name in order:
        values = codes[name][0]
        if parent is not None:
            rows = (parent >= 0) & (values >= 0)
            pairs = _n_pairs(parent[rows], values[rows])
            nests = pairs == _n_distinct(values[rows])
            restarts = _prefix_share(parent[rows], values[rows]) >= RESTART_SHARE
            if not (nests or restarts):
                if _is_text(frame[name]):
                    findings.append(
                        f"{name} is a text column (e.g. {_show_value(frame[name])}) whose values do not nest in "
                        f"{', '.join(kept)}: it is not used as a level (tick it as a level if it is an id).")
                else:
                    findings.append(
                        f"{name} is crossed with {', '.join(kept)}: its values recur across their groups "
                        f"without restarting in each; it is not used as a nested level (nested below them, "
                        f"each ({', '.join([*kept, name])}) combination would be a unit of its own; if equal "
                        f"{name} values are one unit, the model needs crossed random effects: "
                        f"|| _all: R.{name} before the nested levels (lme4: (1|{name})).")
                continue
        kept.append(name)
        parent = values if parent is None else _combine(parent, values)
    return kept


def _level_summaries(frame, order, codes, complete) -> list[LevelSummary]:
    levels = []
    parent = np.zeros(len(frame), dtype=np.int64)
    for depth, name in enumerate(order):
        values = codes[name][0]
        combined = _combine(parent, values)
        counts = np.bincount(combined[complete]) if complete.any() else np.zeros(0, dtype=np.int64)
        counts = counts[counts > 0]
        groups = int(counts.size)
        raw = _n_distinct(values[complete])
        restarts = order[depth - 1] if depth > 0 and groups > raw else None
        levels.append(LevelSummary(
            name=name, raw_values=raw, groups=groups,
            min_rows=int(counts.min()) if groups else 0, mean_rows=float(counts.mean()) if groups else 0.0,
            max_rows=int(counts.max()) if groups else 0, restarts_within=restarts,
            missing=int(frame[name].isna().sum())))
        parent = combined
    return levels


def _drop_repeated_groupings(frame, order, codes, complete, levels, findings):
    """Automatic mode: a level forming the same groups as the one above it adds nothing (a combined id)."""
    kept = [levels[0].name] if levels else []
    for upper, lower in zip(levels[:-1], levels[1:]):
        if lower.groups == upper.groups:
            findings.append(f"{lower.name} forms the same {lower.groups} groups as {' > '.join(kept)}: "
                            f"it is a combined id and is left out of the order.")
        else:
            kept.append(lower.name)
    if kept == order:
        return order, levels
    return kept, _level_summaries(frame, kept, codes, complete)


def _order_warnings(relations, order) -> list[str]:
    """Say where the data could not decide the order (ids that look crossed are reported by
    :func:`_crossed_levels`)."""
    out = []
    symmetric = [r for r in relations if r.kind == "repeats" and r.decided_by == "column order"
                 and r.outer in order and r.inner in order]
    if symmetric:
        pairs = "; ".join(f"{r.outer} and {r.inner}" for r in symmetric)
        out.append(f"The data cannot tell which of these ids lies inside the other (within every group of "
                   f"each, the other takes its first values 1, 2, ...): {pairs}. The order follows the file's columns "
                   f"({' > '.join(n for n in order if any(n in (r.outer, r.inner) for r in symmetric))}); "
                   f"give the levels in the model in the order you mean.")
    return out


def _nesting_findings(levels: list[LevelSummary], order: list[str]) -> list[str]:
    """One sentence for the order and per level: raw nesting, or restarting ids and the groups they form."""
    out = []
    if order:
        out.append(f"Proposed nesting, outermost first: {' > '.join(order)} (model syntax: "
                   f"{' '.join(f'|| {name}:' for name in order)}).")
    for depth, level in enumerate(levels):
        if depth == 0:
            continue
        above = [lv.name for lv in levels[:depth]]
        if level.restarts_within:
            if depth == 1:
                formed = f"({above[0]}, {level.name}) pairs"
            else:
                formed = f"({', '.join(above)}, {level.name}) combinations"
            out.append(
                f"{level.name} restarts within {level.restarts_within}: groups are formed as {formed}, "
                f"{level.groups} groups ({level.name} alone has {level.raw_values} values; used alone, "
                f"without {level.restarts_within} above it, it would lump units of different "
                f"{level.restarts_within} groups into one group).")
        else:
            parent = levels[depth - 1].name
            out.append(f"{level.name} nests in {parent}: each {level.name} value belongs to one {parent} group "
                       f"({level.groups} groups).")
    if any(level.restarts_within for level in levels):
        out.append("The engine forms a group from its id combined with every id above it, so restarting ids "
                   "are nested correctly in a fit that lists their parent levels above them. If instead the same "
                   "value is meant to be the same unit in different parent groups, the ids are crossed: "
                   "fit them as crossed factors (|| _all: R.id, lme4's (1|id)).")
    return out


def _level_warnings(frame, levels, order, given, candidates) -> list[str]:
    out = []
    for level in levels:
        if level.missing:
            first = int(np.flatnonzero(frame[level.name].isna().to_numpy())[0])
            out.append(f"{level.name} has {level.missing} missing value(s) (first at row {first + 1}): "
                       f"a fit refuses rows without a group; fill or drop them.")
    for upper, lower in zip(levels[:-1], levels[1:]):
        if upper.groups == lower.groups:
            out.append(f"{upper.name} and {lower.name} form the same {lower.groups} groups: "
                       f"their variances cannot be told apart.")
    if levels and levels[-1].max_rows == 1:
        out.append(f"{levels[-1].name} has one row per group: its variance is confounded with the residual.")
    for level in levels:
        if level.groups < 5:
            out.append(f"{level.name} has only {level.groups} groups: its variance will be poorly estimated.")
    if given and order != list(candidates):
        out.append(f"The data nest as {' > '.join(order)}, not in the order given ({' > '.join(candidates)}).")
    return out


def _column_summaries(frame, order, candidates, codes, complete, value_labels, variable_labels) -> list[ColumnSummary]:
    level_codes, level_groups = [], []
    parent = np.zeros(len(frame), dtype=np.int64)
    for name in order:
        parent = _combine(parent, codes[name][0])
        level_codes.append(parent)
        level_groups.append(int(parent.max(initial=-1)) + 1)
    summaries = []
    for name in frame.columns:
        column = frame[name]
        values, n_values = codes[name] if name in codes else _codes(column, sort=False)
        role = "level" if name in order else ("id candidate" if name in candidates else "variable")
        summaries.append(ColumnSummary(
            name=str(name), dtype=str(column.dtype), distinct=n_values, missing=int((values < 0).sum()),
            role=role, constant_within=_constant_within(order, level_codes, level_groups, values, n_values, complete),
            label=str(variable_labels.get(name, "") or ""),
            value_labels={_label_key(k): str(v) for k, v in (value_labels.get(name) or {}).items()}))
    return summaries


def _constant_within(order, level_codes, level_groups, values, n_values, complete) -> Optional[str]:
    """The outermost level whose groups each hold one value of the column (missing values ignored)."""
    rows = complete & (values >= 0)
    if not order or not rows.any():
        return None
    found = None
    for depth in range(len(order) - 1, -1, -1):  # innermost first: most columns stop at once
        if n_values > level_groups[depth] and rows.all():
            break  # more distinct values than groups: some group holds two
        groups = level_codes[depth][rows]
        if _n_pairs(groups, values[rows]) != _n_distinct(groups):
            break
        found = order[depth]
    return found


# ===== small helpers ===============================================================================

def _id_like_dtype(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_integer_dtype(column):
        return True
    if pd.api.types.is_float_dtype(column):
        present = column.dropna().to_numpy()
        return present.size > 0 and bool(np.all(np.mod(present, 1) == 0))
    return (pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype))


def _codes(column: pd.Series, sort: bool = True) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of a column (-1 where missing), in sorted order of the values, and k."""
    values = column.to_numpy()
    if values.dtype.kind in "iu" and values.size:
        # Python ints for the range: ids near the ends of int64 (or in uint64) must not overflow.
        low, upper = int(values.min()), int(values.max()) - int(values.min()) + 1
        if upper <= _dense_limit(values.size):  # small-range integers: rank by a lookup table, no hashing
            shifted = (values - values.dtype.type(low)).astype(np.int64)
            present = np.zeros(upper, dtype=bool)
            present[shifted] = True
            rank = np.cumsum(present) - 1
            return rank[shifted], int(rank[-1]) + 1
    try:
        codes, uniques = pd.factorize(column, sort=sort)
    except TypeError:  # mixed types cannot be sorted: order of appearance
        codes, uniques = pd.factorize(column, sort=False)
    return np.asarray(codes, dtype=np.int64), len(uniques)


def _dense_limit(n_rows: int) -> int:
    """Largest code range handled with a lookup table (memory linear in the rows)."""
    return 4 * n_rows + (1 << 20)


def _pair_codes(outer: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, int]:
    """One code per (outer, inner) pair of non-negative codes, and the upper bound of the codes."""
    width = int(inner.max(initial=0)) + 1
    return outer.astype(np.int64) * np.int64(width) + inner, (int(outer.max(initial=0)) + 1) * width


def _distinct_sorted(values: np.ndarray, upper: int) -> np.ndarray:
    """The sorted distinct values of non-negative integer codes below ``upper``."""
    if upper <= _dense_limit(values.size):
        present = np.zeros(upper, dtype=bool)
        present[values] = True
        return np.flatnonzero(present)
    return np.unique(values)


def _n_distinct(values: np.ndarray) -> int:
    """How many distinct values non-negative integer codes take."""
    if values.size == 0:
        return 0
    upper = int(values.max()) + 1
    if upper <= _dense_limit(values.size):
        present = np.zeros(upper, dtype=bool)
        present[values] = True
        return int(np.count_nonzero(present))
    return int(pd.unique(values).size)


def _n_pairs(outer: np.ndarray, inner: np.ndarray) -> int:
    """How many distinct (outer, inner) pairs the rows hold."""
    if outer.size == 0:
        return 0
    pairs, upper = _pair_codes(outer, inner)
    if upper <= _dense_limit(pairs.size):
        return int(_distinct_sorted(pairs, upper).size)
    return int(pd.unique(pairs).size)


def _combine(parent: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Codes 0..k-1 of (parent, value) combinations in sorted order, -1 where either is missing."""
    missing = (parent < 0) | (values < 0)
    combined = np.full(parent.size, -1, dtype=np.int64)
    if (~missing).any():
        pairs, upper = _pair_codes(parent[~missing], values[~missing])
        if upper <= _dense_limit(pairs.size):
            present = np.zeros(upper, dtype=bool)
            present[pairs] = True
            combined[~missing] = (np.cumsum(present) - 1)[pairs]
        else:
            combined[~missing], _ = pd.factorize(pairs, sort=True)
    return combined


def _prefix_share(parent: np.ndarray, child: np.ndarray) -> float:
    """Share of parent groups in which the child takes exactly its k smallest values (k = how many it has)."""
    if child.size == 0:
        return 0.0
    codes, upper = _pair_codes(parent, child)
    pairs = _distinct_sorted(codes, upper)
    width = np.int64(int(child.max()) + 1)
    group, value = pairs // width, pairs % width
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, group.size])
    largest = value[starts + counts - 1]  # pairs are sorted, so the last of each run is its largest value
    return float(np.mean(largest == counts - 1))


def _restart_direction(first: str, second: str, codes) -> tuple[str, str, str]:
    """(outer, inner, reason) for two ids that do not nest: the one restarting within the other goes inside."""
    a, b = codes[first][0], codes[second][0]
    rows = (a >= 0) & (b >= 0)
    second_restarts = _prefix_share(a[rows], b[rows]) >= RESTART_SHARE
    first_restarts = _prefix_share(b[rows], a[rows]) >= RESTART_SHARE
    if first_restarts and not second_restarts:
        return second, first, "restart pattern"
    if second_restarts and not first_restarts:
        return first, second, "restart pattern"
    if first_restarts:
        return first, second, "column order"
    return first, second, "column order, neither restarts"


def _is_text(column: pd.Series) -> bool:
    return (pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)) and not \
        pd.api.types.is_numeric_dtype(column)


def _show_value(column: pd.Series) -> str:
    present = column.dropna()
    return repr(present.iloc[0]) if len(present) else "missing"


def _label_key(key) -> str:
    if isinstance(key, float) and key.is_integer():
        key = int(key)
    return str(key)


# ===== text ========================================================================================

def _format_report(report: HierarchyReport) -> str:
    lines = [f"Hierarchy check: {report.n_rows:,} rows, {len(report.columns)} columns"]
    source = "given" if report.candidates_given else "chosen automatically: integer or text columns with repeated values"
    lines.append(f"Id columns considered ({source}): {', '.join(report.candidates) or 'none'}")
    lines.append("")
    if report.levels:
        lines.append("Proposed nesting, outermost first:")
        lines.append(f"  {'level':<16}{'id values':>10}{'groups':>10}   rows per group (min / mean / max)")
        for level in report.levels:
            lines.append(f"  {level.name[:15]:<16}{level.raw_values:>10,}{level.groups:>10,}   "
                         f"{level.min_rows:,} / {level.mean_rows:,.1f} / {level.max_rows:,}")
        lines.append(f"  model syntax: {report.random_part()}")
    else:
        lines.append("No id columns form a nesting: name them with --levels.")
    if report.findings:
        lines += ["", "Findings:"] + [f"  - {text}" for text in report.findings]
    if report.warnings:
        lines += ["", "Warnings:"] + [f"  - {text}" for text in report.warnings]
    lines += ["", "Columns:",
              f"  {'name':<16}{'type':<10}{'values':>8}{'missing':>9}  {'constant within':<16}role / labels"]
    for column in report.columns:
        where = column.constant_within or "(varies by row)"
        extra = [column.role]
        if column.label:
            extra.append(f'"{column.label}"')
        if column.value_labels:
            shown = list(column.value_labels.items())[:LABELS_SHOWN]
            text = ", ".join(f"{code} = {label}" for code, label in shown)
            if len(column.value_labels) > LABELS_SHOWN:
                text += f", ... ({len(column.value_labels)} labels)"
            extra.append(f"labels: {text}")
        lines.append(f"  {column.name[:15]:<16}{column.dtype[:9]:<10}{column.distinct:>8,}{column.missing:>9,}  "
                     f"{where[:15]:<16}{'; '.join(extra)}")
    return "\n".join(lines) + "\n"
