"""Entries of S^-1 on the pattern of a sparse Cholesky factor (Takahashi's recurrence), kept sparse.

For P S P' = L D L' (L unit lower triangular), Z = S^-1 satisfies Z = D^-1 L^-1 + (I - L') Z.
Column j of Z below the diagonal needs Z on the rows of L[:, j] below j, which are all ancestors
of j in the elimination tree and form a clique of the factor's pattern; so Z is computed only on
that pattern, and the columns at one depth of the tree, being independent, are done together.
The pattern (and the positions every step reads) is fixed for a fixed sparsity pattern of S, so
it is worked out once and reused across evaluations.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class _Plan:
    """The theta-independent part: batches of columns and where each step reads and writes."""

    def __init__(self, strict: sp.csc_matrix, size: int):
        self.indptr = strict.indptr.copy()
        self.indices = strict.indices.copy()
        self.size = size
        self.queries: dict = {}  # the last entries() query's positions, reused when it recurs
        counts = np.diff(self.indptr)
        columns = np.repeat(np.arange(size), counts)
        self.keys = columns.astype(np.int64) * size + self.indices  # sorted: CSC with sorted rows
        parent = np.full(size, -1)
        has_rows = counts > 0
        parent[has_rows] = self.indices[self.indptr[:-1][has_rows]]
        depth = np.zeros(size, dtype=np.int64)
        for j in range(size - 1, -1, -1):  # parents come after their children
            if parent[j] >= 0:
                depth[j] = depth[parent[j]] + 1
        order = np.argsort(depth, kind="stable")
        self.batches = []
        for batch in np.split(order, np.flatnonzero(np.diff(depth[order])) + 1):
            width = int(counts[batch].max())
            if width == 0:
                self.batches.append((batch, None, None, None, None))
                continue
            offsets = np.arange(width)[None, :]
            valid = offsets < counts[batch][:, None]
            entry = np.where(valid, self.indptr[batch][:, None] + offsets, 0)  # positions of L[:, j]
            rows = np.where(valid, self.indices[entry], 0)
            a, b = rows[:, :, None], rows[:, None, :]
            pair_valid = valid[:, :, None] & valid[:, None, :]
            on_diagonal = pair_valid & (a == b)
            keys = np.minimum(a, b).astype(np.int64) * size + np.maximum(a, b)
            position = np.searchsorted(self.keys, keys)
            off = pair_valid & ~on_diagonal
            if np.any(off) and not np.array_equal(self.keys[position[off]], keys[off]):
                raise AssertionError("a step of the recurrence reads outside the factor's pattern")
            self.batches.append((batch, valid, entry, np.where(off, position, -1), np.where(on_diagonal, a, -1)))

    def matches(self, strict: sp.csc_matrix) -> bool:
        return np.array_equal(strict.indptr, self.indptr) and np.array_equal(strict.indices, self.indices)


class SparseSelectedInverse:
    """S^-1 on the factor's pattern: ``diagonal()`` and ``entries(rows, cols)`` in S's own order."""

    def __init__(self, plan: _Plan, off: np.ndarray, diag: np.ndarray, rank: np.ndarray,
                 decoupled: np.ndarray | None = None):
        self.plan, self.off, self.diag, self.rank = plan, off, diag, rank
        self.decoupled = decoupled  # by L's order: rows of S with no non-zero off the diagonal

    def diagonal(self) -> np.ndarray:
        return self.diag[self.rank]

    def padded_off(self) -> np.ndarray:
        """The off-diagonal values and one zero after them (the slot of entries known to be zero)."""
        return np.append(self.off, 0.0)

    def entries(self, rows, cols) -> np.ndarray:
        cached = self.plan.queries.get((id(rows), id(cols)))
        if cached is not None and cached[0] is rows and cached[1] is cols and np.array_equal(cached[2], self.rank):
            position, on_diagonal, low = cached[3:]
            return np.where(on_diagonal, self.diag[low], self.padded_off()[position])
        query_rows, query_cols = rows, cols
        rows, cols = self.rank[np.asarray(rows)], self.rank[np.asarray(cols)]
        low, high = np.minimum(rows, cols), np.maximum(rows, cols)
        keys = low.astype(np.int64) * self.plan.size + high
        position = np.minimum(np.searchsorted(self.plan.keys, keys), max(self.plan.keys.size - 1, 0))
        inside = (low == high) | (self.plan.keys[position] == keys) if self.plan.keys.size else (low == high)
        values = self.off[position] if self.plan.keys.size else np.zeros(keys.shape)
        if not np.all(inside):
            # A row of S that is a unit row (its random effects scaled to zero) is its own block:
            # S^-1 is zero beside its diagonal, though S's pattern may still list those entries.
            zero = ~inside & (self.decoupled[low] | self.decoupled[high]) if self.decoupled is not None else None
            if zero is None or not np.array_equal(zero, ~inside):
                raise ValueError("an entry outside the factor's pattern was asked for")
            values = np.where(zero, 0.0, values)
            position = np.where(zero, self.off.size, position)  # the cached query reads the zero slot
        if isinstance(query_rows, np.ndarray) and isinstance(query_cols, np.ndarray):
            # the same query arrays come back at every evaluation (the Schur pattern's rows and columns)
            self.plan.queries = {(id(query_rows), id(query_cols)): (query_rows, query_cols, self.rank.copy(),
                                                                    position, low == high, low)}
        return np.where(low == high, self.diag[low], values)


_cache: dict[str, _Plan] = {}


def selected_inverse(strict: sp.csc_matrix, diagonal: np.ndarray, rank: np.ndarray,
                     decoupled: np.ndarray | None = None) -> SparseSelectedInverse:
    """Z = (L D L')^-1 on the pattern of L = I + ``strict`` (sorted CSC); ``rank`` maps S's rows to L's.

    ``decoupled`` (by S's rows) marks rows of S without non-zero entries off the diagonal, whose
    entries off the diagonal of Z are zero even where S's pattern lists them."""
    size = diagonal.size
    plan = _cache.get("last")
    if plan is None or plan.size != size or not plan.matches(strict):
        plan = _cache["last"] = _Plan(strict, size)
    data = strict.data
    off = np.zeros(data.size + 1)  # the extra slot reads as zero for padding
    diag = np.zeros(size)
    for batch, valid, entry, off_position, diag_index in plan.batches:
        if valid is None:
            diag[batch] = 1.0 / diagonal[batch]
            continue
        values = np.where(valid, data[entry], 0.0)
        block = np.where(off_position >= 0, off[off_position], 0.0)
        block += np.where(diag_index >= 0, diag[np.maximum(diag_index, 0)], 0.0)
        column = -np.einsum("bij,bj->bi", block, values)
        off[entry[valid]] = column[valid]
        diag[batch] = 1.0 / diagonal[batch] - np.einsum("bi,bi->b", values, column)
    by_rank = None
    if decoupled is not None and decoupled.any():
        by_rank = np.zeros(size, dtype=bool)
        by_rank[rank[decoupled]] = True
    return SparseSelectedInverse(plan, off[:-1], diag, rank, by_rank)
