"""Ids that look crossed rather than nested (raters x items, plates x samples, students who change teacher).

A nested model treats each group at a level as the combination of its id with every id above it:
the same inner value under two parent groups is two unrelated units. That is right for ids that
restart inside their parent (teacher 1 in every school) and wrong for crossed factors (the same
rater scores items of every school; the same student is taught by two teachers). Both layouts
give inner values that recur across parent groups, so the layout alone cannot always tell them
apart. The rule used here, for each level below the top (``inner``) and the groups of the level
above it (``parent``, the combination of every id above):

1. **Recurrence.** Some inner values occur in two or more parent groups. Otherwise the level
   nests and there is nothing to say.
2. **With an outcome** (a fit, the window's nesting check, ``check --outcome``): the equal
   values must share an effect. Over the rows whose inner value recurs, a two-way analysis of
   variance of the outcome (residualised on the fixed effects when they are given) tests the
   inner id's main effect after the parent groups against the variation between (parent,
   inner) cells, which is what a nested model calls the inner level's variance. Labels that
   merely restart carry no effect of their own across parents (teacher 1 of one school has
   nothing in common with teacher 1 of another), so the test statistic is about 1 whatever the
   number of rows per cell; a crossed factor's values do. The ids look crossed when
   p < :data:`P_VALUE` and F >= :data:`MIN_F`. This needs no replicates within cells
   (lme4's Penicillin has one row per plate x sample cell and is caught).
3. **Without an outcome** (``check`` alone), or when the test has no degrees of freedom or
   would be too large to solve: the layout only. The ids look crossed when the
   recurring values do not restart within their parent (in fewer than
   :data:`~engine.hierarchy_check.RESTART_SHARE` of the parent groups do the inner values run
   1, 2, ..., k) and the (parent, inner) cells hold more than one row on average, i.e. the inner
   id is a unit observed repeatedly, not a row number. Balanced layouts in which every parent
   holds the same inner values look the same nested or crossed; they are not flagged without an
   outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd


#: An effect shared across parent groups is significant below this p-value ...
P_VALUE = 1e-3
#: ... and at least this large relative to the variation between cells (F ratio).
MIN_F = 1.5
#: Largest inner x inner system the test solves (entries); beyond it only the layout is judged.
MAX_SYSTEM_ENTRIES = 20_000_000
#: Share of parent groups in which the inner values must run 1..k to count as restarting (the
#: same threshold as engine.hierarchy_check.RESTART_SHARE).
RESTART_SHARE = 0.9


@dataclass
class CrossingEvidence:
    """How the ids of level ``inner`` relate to the groups of the level above it (``parent``).

    ``recurring_values`` of the ``inner_values`` occur in several parent groups, on average in
    ``parents_per_value`` of them; ``rows_per_cell`` is the mean number of rows per (parent
    group, inner value) cell over all rows; ``restarts`` says whether the inner values run
    1..k within (nearly) every parent group. ``f_stat``, ``df`` and ``p_value`` are the test of
    an effect shared by equal inner values across parent groups (None without an outcome or
    when the layout leaves no degrees of freedom); ``looks_crossed`` is the verdict and
    ``basis`` what it rests on: ``"shared effect"`` or ``"layout"``.
    """

    inner: str
    parent: str
    above: list[str]
    inner_values: int
    recurring_values: int
    parents_per_value: float
    rows_per_cell: float
    restarts: bool
    f_stat: Optional[float] = None
    df: Optional[list[int]] = None
    p_value: Optional[float] = None
    looks_crossed: bool = False
    basis: str = ""

    def message(self) -> str:
        """Plain words: what was seen, what a nested fit assumes instead, that crossed fits are not available."""
        combination = f"({', '.join([*self.above, self.inner])})"
        seen = (f"{self.recurring_values:,} of its {self.inner_values:,} values occur in more than one "
                f"{self.parent} group (in {self.parents_per_value:.1f} on average; "
                f"{self.rows_per_cell:.1f} rows per {self.parent} x {self.inner} cell)")
        if self.basis == "shared effect":
            seen += (f", and rows with the same {self.inner} value resemble each other across {self.parent} "
                     f"groups (a shared effect: F({self.df[0]:,}, {self.df[1]:,}) = {self.f_stat:.1f}, "
                     f"p {_p_text(self.p_value)})")
        else:
            seen += f", and they do not restart at 1, 2, ... within each {self.parent} group"
        return (f"{self.inner} looks crossed with {self.parent}, not nested in it: {seen}. "
                f"A nested fit treats every {combination} combination as a separate unit with an effect of "
                f"its own, so the same {self.inner} under different {self.parent} groups counts as unrelated "
                f"units; if equal values are one unit (one rater, one sample, one student), its shared effect "
                f"is split between the levels and the residual, and variances and standard errors can be "
                f"wrong. Fit a crossed model instead: {self.inner} as a random effect of its own, "
                f"|| _all: R.{self.inner} before the nested levels (lme4: (1|{self.parent}) + (1|{self.inner})).")


def _p_text(p: Optional[float]) -> str:
    if p is None:
        return "= ."
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def crossing_evidence(parent_codes: np.ndarray, inner: pd.Series | np.ndarray, *, inner_name: str,
                      above: list[str], outcome: Optional[np.ndarray] = None,
                      covariates: Optional[np.ndarray] = None) -> Optional[CrossingEvidence]:
    """Evidence that ``inner`` is crossed with the parent groups, or None when it nests in them.

    Parameters
    ----------
    parent_codes : ndarray of int
        Group code of every row at the level above (combined with every id above it), 0..k-1.
    inner : Series or ndarray
        The inner level's raw id values (no missing values).
    inner_name : str
        The inner level's name, for the message.
    above : list of str
        The names of the levels above, outermost first (the last is the parent).
    outcome : ndarray, optional
        The outcome; without it only the layout is judged (rule 3 of the module's docstring).
    covariates : ndarray, optional
        Fixed-effect columns (rows x p) the outcome is residualised on first.

    Returns
    -------
    CrossingEvidence or None
    """
    parent_codes = np.asarray(parent_codes, dtype=np.int64)
    inner_codes, inner_uniques = pd.factorize(np.asarray(inner), sort=True)
    inner_codes = inner_codes.astype(np.int64)
    n_inner = len(inner_uniques)
    if parent_codes.size == 0 or n_inner == 0:
        return None
    cells, cell_parent, cell_inner = _cells(parent_codes, inner_codes)
    parents_of_value = np.bincount(cell_inner, minlength=n_inner)
    recurring = parents_of_value >= 2
    if not recurring.any():
        return None
    evidence = CrossingEvidence(
        inner=inner_name, parent=above[-1], above=list(above), inner_values=n_inner,
        recurring_values=int(recurring.sum()), parents_per_value=float(parents_of_value[recurring].mean()),
        rows_per_cell=float(parent_codes.size / cell_parent.size),
        restarts=_restart_share(cell_parent, cell_inner) >= RESTART_SHARE)
    if outcome is not None:
        y = np.asarray(outcome, dtype=float)
        if covariates is not None and covariates.size:
            coef, *_ = np.linalg.lstsq(covariates, y, rcond=None)
            y = y - covariates @ coef
        rows = recurring[inner_codes] & np.isfinite(y)
        test = shared_effect_test(parent_codes[rows], inner_codes[rows], y[rows]) if rows.any() else None
        if test is not None:
            evidence.f_stat, evidence.df, evidence.p_value = test
            if evidence.p_value < P_VALUE and evidence.f_stat >= MIN_F:
                evidence.looks_crossed, evidence.basis = True, "shared effect"
            return evidence
    # Without an outcome, or when it cannot be tested (no degrees of freedom, too large): the layout.
    if not evidence.restarts and evidence.rows_per_cell > 1.0:
        evidence.looks_crossed, evidence.basis = True, "layout"
    return evidence


def shared_effect_test(parent: np.ndarray, inner: np.ndarray, y: np.ndarray
                       ) -> Optional[tuple[float, list[int], float]]:
    """F test of the inner id's main effect after the parent groups, against the cell variation.

    Two-way layout with parent groups and inner values as factors (unbalanced, possibly
    incomplete): the sum of squares of the inner factor adjusted for the parent (type II) over
    the interaction, i.e. the (parent, inner) cells' deviation from the additive model.

    Returns
    -------
    (F, [df_inner, df_cells], p) or None when either has no degrees of freedom, or the system
    to solve would exceed :data:`MAX_SYSTEM_ENTRIES`.
    """
    # scipy.sparse costs a few tenths of a second to import; most fits never come here.
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import spsolve

    from engine.distributions import f_sf

    parent = _dense(parent)
    inner = _dense(inner)
    n_parent, n_inner = int(parent.max()) + 1, int(inner.max()) + 1
    cell_code, cell_parent, cell_inner = _cells(parent, inner)
    n_cells = cell_parent.size
    values_per_parent = np.bincount(cell_parent, minlength=n_parent).astype(float)
    if float(np.sum(values_per_parent ** 2)) > MAX_SYSTEM_ENTRIES:
        return None
    cell_of_row = cell_code
    # Sums of squares within cells and within parent groups.
    cell_n = np.bincount(cell_of_row, minlength=n_cells).astype(float)
    cell_mean = np.bincount(cell_of_row, weights=y, minlength=n_cells) / cell_n
    ss_within = float(np.sum((y - cell_mean[cell_of_row]) ** 2))
    parent_n = np.bincount(parent, minlength=n_parent).astype(float)
    parent_mean = np.bincount(parent, weights=y, minlength=n_parent) / parent_n
    ss_parent = float(np.sum((y - parent_mean[parent]) ** 2))
    # Inner effects after absorbing the parent groups: (diag(n_b) - N' D^-1 N) g = s_b - N' ybar_p,
    # with N the parent x inner count table; one inner value per connected component is pinned.
    counts = sp.csr_matrix((cell_n, (cell_parent, cell_inner)), shape=(n_parent, n_inner))
    inner_n = np.asarray(counts.sum(axis=0)).ravel()
    normal = (sp.diags(inner_n) - counts.T @ sp.diags(1.0 / parent_n) @ counts).tocsc()
    rhs = np.bincount(inner, weights=y, minlength=n_inner) - counts.T @ parent_mean
    graph = sp.bmat([[None, counts], [counts.T, None]])
    n_components, labels = connected_components(graph, directed=False)
    inner_labels = labels[n_parent:]
    _, pinned = np.unique(inner_labels, return_index=True)
    free = np.setdiff1d(np.arange(n_inner), pinned)
    df_inner = n_inner - n_components
    df_cells = n_cells - n_parent - n_inner + n_components
    if df_inner < 1 or df_cells < 1 or free.size == 0:
        return None
    reduced = normal[free][:, free]
    effects = spsolve(reduced, rhs[free]) if free.size > 1 else rhs[free] / reduced.toarray().ravel()
    ss_inner = float(np.dot(np.atleast_1d(effects), rhs[free]))
    ss_cells = ss_parent - ss_inner - ss_within
    scale = max(ss_parent, np.finfo(float).tiny)
    if ss_cells <= 1e-12 * scale:
        return (float("inf"), [df_inner, df_cells], 0.0) if ss_inner > 1e-12 * scale else None
    f_stat = (ss_inner / df_inner) / (ss_cells / df_cells)
    return float(f_stat), [int(df_inner), int(df_cells)], float(f_sf(f_stat, df_inner, df_cells))


def _dense(codes: np.ndarray) -> np.ndarray:
    _, dense = np.unique(codes, return_inverse=True)
    return dense.astype(np.int64)


def _cells(parent: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell code of each row, and each cell's parent and inner code (cells sorted by parent, inner)."""
    width = np.int64(int(inner.max()) + 1)
    pair = parent.astype(np.int64) * width + inner
    uniques, cell_code = np.unique(pair, return_inverse=True)
    return cell_code.astype(np.int64), uniques // width, uniques % width


def _restart_share(cell_parent: np.ndarray, cell_inner: np.ndarray) -> float:
    """Share of parent groups whose inner values are exactly the k smallest (codes 0..k-1)."""
    starts = np.flatnonzero(np.r_[True, cell_parent[1:] != cell_parent[:-1]])
    counts = np.diff(np.r_[starts, cell_parent.size])
    largest = cell_inner[starts + counts - 1]
    return float(np.mean(largest == counts - 1))
