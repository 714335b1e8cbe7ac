"""The Schur complement S as independent diagonal blocks: the connected components of its pattern.

When crossing happens only inside some coarser unit (students who change teacher within their
school), S has no entries between units: after a symmetric permutation it is block diagonal.
Each block is then small and dense, so the blocks are factored as batches of equal size (padded
with unit rows, which change neither the log-determinant nor the other rows' solution) by
LAPACK's batched Cholesky, and S^-1 is formed block by block: exact everywhere, zero between
blocks. The arrangement depends only on S's pattern, so it is worked out once per criterion.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from engine.errors import UserInputError

MAX_BLOCK = 600  # the largest component factored densely; beyond it the general sparse factor
MAX_BLOCK_WORK = 2e8  # sum over blocks of size^3 (padded): beyond it the sparse factor is cheaper


class ComponentBlocks:
    """Where each entry of S's pattern goes in the padded batches of dense blocks."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, size: int, labels: np.ndarray):
        self.size = size
        counts = np.bincount(labels)
        padded = _padded_sizes(counts)
        self.batches = []  # (block size, number of blocks)
        batch_of_size = {}
        for width in np.unique(padded):
            batch_of_size[int(width)] = len(self.batches)
            self.batches.append((int(width), int(np.sum(padded == width))))
        # Each component's batch, slot within the batch, and each row's place in its block.
        component_batch = np.array([batch_of_size[int(w)] for w in padded], dtype=np.int64)
        component_slot = np.zeros(counts.size, dtype=np.int64)
        for b in range(len(self.batches)):
            members = np.flatnonzero(component_batch == b)
            component_slot[members] = np.arange(members.size)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        local = np.empty(size, dtype=np.int64)
        local[order] = np.arange(size) - np.repeat(starts, counts)
        widths = np.array([w for w, _ in self.batches], dtype=np.int64)
        batch_offsets = np.concatenate([[0], np.cumsum([w * w * n for w, n in self.batches])])
        self.row_batch = component_batch[labels]
        self.row_block = component_slot[labels]  # block within the batch
        self.row_local = local
        self.row_width = widths[self.row_batch]
        self.row_base = batch_offsets[self.row_batch] + self.row_block * self.row_width * self.row_width
        self.row_component = labels
        self.total = int(batch_offsets[-1])
        self.batch_offsets = batch_offsets
        # Flat target of each pattern entry, and the padded rows' diagonal positions (set to 1).
        columns = np.repeat(np.arange(size), np.diff(indptr))
        self.entry_target = self._flat(indices, columns)
        unit = []
        for b, (width, number) in enumerate(self.batches):
            filled = np.zeros((number, width), dtype=bool)
            in_batch = self.row_batch == b
            filled[self.row_block[in_batch], self.row_local[in_batch]] = True
            slot, place = np.nonzero(~filled)
            unit.append(batch_offsets[b] + slot * width * width + place * (width + 1))
        self.padding_diagonal = np.concatenate(unit) if unit else np.zeros(0, dtype=np.int64)
        every_row = np.arange(size)
        self.diagonal_target = self._flat(every_row, every_row)
        self.queries: dict = {}  # the last entries() query's flat positions, reused when it recurs
        # Rows of the right-hand sides gathered into (blocks, width) per batch.
        self.rhs_positions = []
        for b, (width, number) in enumerate(self.batches):
            in_batch = np.flatnonzero(self.row_batch == b)
            self.rhs_positions.append((in_batch, self.row_block[in_batch] * width + self.row_local[in_batch]))

    def _flat(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Flat index of S entries (row, col), both in one component, in the batches' storage."""
        return self.row_base[cols] + self.row_local[cols] * self.row_width[cols] + self.row_local[rows]

    def factor(self, values: np.ndarray) -> "BlockFactor":
        """Factor S given its values on the pattern (the pattern this arrangement was built for)."""
        storage = np.zeros(self.total)
        storage[self.entry_target] = values
        storage[self.padding_diagonal] = 1.0
        return BlockFactor(self, storage)


def component_blocks(matrix_pattern: sp.csc_matrix) -> ComponentBlocks | None:
    """The arrangement of S in independent dense blocks.

    Parameters
    ----------
    matrix_pattern : S's pattern (any values) as a CSC matrix with sorted rows, diagonal included.

    Returns
    -------
    The arrangement, or None when S is one component, or a block is too large to factor densely.
    """
    size = matrix_pattern.shape[0]
    if size == 0:
        return None
    n_components, labels = connected_components(matrix_pattern, directed=False)
    if n_components < 2:
        return None
    counts = np.bincount(labels)
    padded = _padded_sizes(counts)
    if counts.max() > MAX_BLOCK or float(np.sum(padded.astype(float) ** 3)) > MAX_BLOCK_WORK:
        return None
    return ComponentBlocks(matrix_pattern.indptr, matrix_pattern.indices, size, labels)


def _padded_sizes(counts: np.ndarray) -> np.ndarray:
    """Block sizes rounded up so that few distinct batch sizes remain (padding at most ~1/8)."""
    counts = np.asarray(counts, dtype=np.int64)
    step = np.maximum(1, 2 ** np.maximum(0, np.floor(np.log2(np.maximum(counts, 1))).astype(np.int64) - 3))
    return -(-counts // step) * step


class BlockFactor:
    """Cholesky factors and inverses of S's blocks: solves, log|S| and entries of S^-1."""

    def __init__(self, blocks: ComponentBlocks, storage: np.ndarray):
        self.blocks = blocks
        self.inverses = []
        logdet = 0.0
        for b, (width, number) in enumerate(blocks.batches):
            stack = storage[blocks.batch_offsets[b]: blocks.batch_offsets[b + 1]].reshape(number, width, width)
            try:
                chol = np.linalg.cholesky(stack)
            except np.linalg.LinAlgError:
                raise UserInputError("the random-effects cross-products are not positive definite") from None
            logdet += 2.0 * float(np.sum(np.log(np.einsum("bii->bi", chol))))
            chol_inverse = _lower_triangular_inverse(chol)
            self.inverses.append(np.matmul(np.swapaxes(chol_inverse, 1, 2), chol_inverse))
        self.logdet = logdet
        self.flat = np.concatenate([z.ravel() for z in self.inverses]) if self.inverses else np.zeros(0)
        self.symmetric = True
        self.size = blocks.size

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        rhs = np.asarray(rhs, dtype=float)
        vector = rhs.ndim == 1
        matrix = rhs[:, None] if vector else rhs
        out = np.empty_like(matrix)
        for (width, number), z, (rows, place) in zip(self.blocks.batches, self.inverses, self.blocks.rhs_positions):
            gathered = np.zeros((number * width, matrix.shape[1]))
            gathered[place] = matrix[rows]
            solved = np.matmul(z, gathered.reshape(number, width, -1)).reshape(number * width, -1)
            out[rows] = solved[place]
        return out[:, 0] if vector else out

    def inverse(self) -> "BlockFactor":
        return self  # S^-1 is already formed, block by block

    def diagonal(self) -> np.ndarray:
        return self.flat[self.blocks.diagonal_target]

    def entries(self, rows, cols) -> np.ndarray:
        """Entries (rows[k], cols[k]) of S^-1, any shape; zero between blocks."""
        queries = self.blocks.queries
        cached = queries.get((id(rows), id(cols)))
        if cached is not None and cached[0] is rows and cached[1] is cols:
            return np.where(cached[2], self.flat[cached[3]], 0.0)
        query = (rows, cols)
        rows, cols = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
        same = self.blocks.row_component[rows] == self.blocks.row_component[cols]
        flat = np.where(same, self.blocks._flat(rows, np.where(same, cols, rows)), 0)
        if isinstance(query[0], np.ndarray) and isinstance(query[1], np.ndarray):
            # the same query arrays come back at every evaluation (the Schur pattern's rows and columns)
            self.blocks.queries = {(id(query[0]), id(query[1])): (query[0], query[1], same, flat)}
        return np.where(same, self.flat[flat], 0.0)


def _lower_triangular_inverse(lower: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower triangular matrices by halves: [[A, 0], [C, D]]^-1 =
    [[A^-1, 0], [-D^-1 C A^-1, D^-1]]. Batched products of halves beat LAPACK's general inverse,
    called matrix by matrix, several times over for the small blocks met here."""
    size = lower.shape[-1]
    if size <= 16:  # below this LAPACK's inverse is as quick as further halving
        return np.linalg.inv(lower)
    half = size // 2
    out = np.zeros_like(lower)
    top = _lower_triangular_inverse(lower[:, :half, :half])
    bottom = _lower_triangular_inverse(lower[:, half:, half:])
    out[:, :half, :half] = top
    out[:, half:, half:] = bottom
    out[:, half:, :half] = -np.matmul(bottom, np.matmul(lower[:, half:, :half], top))
    return out
