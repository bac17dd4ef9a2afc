"""CSR matrices built from their parts with NumPy: the feature union made as one scipy matrix.

Scoring a few comments used to build about a dozen scipy sparse matrices (counts as COO,
their CSR form, each branch weighted, the union), and scipy's constructors and format
checks cost more than the arithmetic on so few rows: about half of scoring one
comment. Here each branch is kept as plain arrays, `Parts`, and the union is made once.
Every function gives exactly the values scipy's own operations give (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from models.word_cache import Columns, joined


class Parts(NamedTuple):
    """A CSR matrix as arrays: row ``i`` holds ``indices[indptr[i]:indptr[i + 1]]`` (sorted
    within the row) with values ``data[...]``, in a matrix ``columns`` wide."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    columns: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns), as a matrix has it; with ``data``, ``indices`` and ``indptr``
        this is all scikit-learn's in-place row normalizers read of a matrix."""
        return len(self.indptr) - 1, self.columns

    def matrix(self) -> sp.csr_matrix:
        """The scipy matrix of these parts."""
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


# The keys below come block by block (a row's, or a word's, at a time), so a stable sort,
# timsort merging the runs it finds, orders them in about half the time of the quicksort
# `np.unique` uses; the results are the same.


def _firsts(ordered: np.ndarray) -> np.ndarray:
    """Where each value of sorted ``ordered`` first appears, as a boolean mask."""
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return first


def unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_counts=True)``."""
    ordered = np.sort(keys, kind="stable")
    starts = np.flatnonzero(_firsts(ordered))
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def ranks_within_runs(ordered: np.ndarray) -> np.ndarray:
    """Each value's place (0, 1, ...) among the equal values of sorted ``ordered``."""
    starts = np.flatnonzero(_firsts(ordered))
    return np.arange(len(ordered)) - np.repeat(starts, np.diff(np.append(starts, len(ordered))))


def unique_inverse_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True, return_counts=True)``."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = _firsts(ordered)
    starts = np.flatnonzero(first)
    inverse = np.empty(len(keys), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return ordered[starts], inverse, np.diff(np.append(starts, len(ordered)))


def counted(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int], dtype: type) -> Parts:
    """How often each (row, column) pair occurs, as COO -> CSR conversion sums repeated pairs."""
    height, width = shape
    keys, counts = unique_counts(rows.astype(np.int64) * width + columns)
    indptr = np.zeros(height + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // width, minlength=height), out=indptr[1:])
    return Parts(indptr, keys % width, counts.astype(dtype), width)


def word_occurrences(
    documents: Iterable[str], columns_of: Callable[[list[str]], list[Columns]]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(row, column) of every column ``columns_of`` gives each whitespace-separated word of
    each document (it is given all the words of all the documents at once, and returns
    the columns of each), and the number of documents: what `counted` counts."""
    word_lists = [document.split() for document in documents]
    columns, sizes = joined(columns_of([word for words in word_lists for word in words]))
    words_per_document = np.fromiter(map(len, word_lists), dtype=np.int64, count=len(word_lists))
    rows = np.repeat(np.repeat(np.arange(len(word_lists)), words_per_document), sizes)
    return rows, columns, len(word_lists)


def of_matrix(matrix: sp.spmatrix | sp.sparray | np.ndarray) -> Parts:
    """The parts of any matrix, as `scipy.sparse.csr_matrix(matrix)` holds them (zeros left out)."""
    csr = sp.csr_matrix(matrix)
    csr.sort_indices()
    return Parts(csr.indptr, csr.indices, csr.data, csr.shape[1])


def side_by_side(blocks: Sequence[Parts], weights: Sequence[float | None]) -> sp.csr_matrix:
    """The blocks, each multiplied by its weight (None: left as it is), next to each other:
    `scipy.sparse.hstack([block * weight, ...], format="csr")` with sorted indices."""
    if not blocks:
        raise ValueError("no blocks to put side by side")
    height = len(blocks[0].indptr) - 1
    lengths = [np.diff(block.indptr) for block in blocks]
    indptr = np.zeros(height + 1, dtype=np.int64)
    np.cumsum(np.sum(lengths, axis=0), out=indptr[1:])
    # Each block's values are scaled in their own dtype, as scipy scales a block before stacking.
    pairs = zip(blocks, weights, strict=True)
    values = [block.data if weight is None else block.data * weight for block, weight in pairs]
    dtype = np.result_type(*values)
    data = np.empty(indptr[-1], dtype=dtype)
    indices = np.empty(indptr[-1], dtype=np.int64)
    # Where each block's part of a row starts: the row's start plus the earlier blocks' lengths.
    start = indptr[:-1].copy()
    offset = 0
    for block, length, scaled in zip(blocks, lengths, values, strict=True):
        row_of = np.repeat(np.arange(height), length)
        target = start[row_of] + (np.arange(len(block.indices)) - block.indptr[row_of])
        data[target] = scaled
        indices[target] = block.indices + offset
        start += length
        offset += block.columns
    return sp.csr_matrix((data, indices, indptr), shape=(height, offset))
