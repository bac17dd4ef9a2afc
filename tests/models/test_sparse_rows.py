"""CSR parts built with NumPy hold exactly what scipy's own operations give."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.sparse_rows import (
    counted,
    of_matrix,
    ranks_within_runs,
    side_by_side,
    unique_counts,
    unique_inverse_counts,
)


def _same(ours: sp.csr_matrix, theirs: sp.csr_matrix) -> None:
    theirs = sp.csr_matrix(theirs)
    theirs.sort_indices()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_array_equal(ours.data, theirs.data)


@pytest.mark.parametrize("height", [0, 1, 7])
def test_counted_is_coo_to_csr_summing_repeats(height: int) -> None:
    rng = np.random.default_rng(height)
    pairs = 0 if height == 0 else 60
    rows = rng.integers(0, max(height, 1), pairs)
    columns = rng.integers(0, 9, pairs)  # few columns, so pairs repeat
    ours = counted(rows, columns, (height, 9), np.float32).matrix()
    theirs = sp.coo_matrix((np.ones(pairs, dtype=np.float32), (rows, columns)), shape=(height, 9)).tocsr()
    _same(ours, theirs)


@pytest.mark.parametrize("size", [0, 1, 2, 500])
def test_unique_counts_are_numpys(size: int) -> None:
    rng = np.random.default_rng(size)
    # Ascending blocks of repeated, unordered keys, as rows of n-gram columns come.
    keys = np.sort(rng.integers(0, 5, size)) * 100 + rng.integers(0, 30, size)
    expected = np.unique(keys, return_inverse=True, return_counts=True)
    for ours, theirs in zip(unique_inverse_counts(keys), expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    for ours, theirs in zip(unique_counts(keys), (expected[0], expected[2]), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_side_by_side_is_hstack_of_the_weighted_blocks() -> None:
    rng = np.random.default_rng(0)
    dense = rng.random((5, 4)) * (rng.random((5, 4)) > 0.5)
    dense[2] = 0  # a row with nothing in this block
    counts = sp.random(5, 30, density=0.2, format="csr", dtype=np.float32, random_state=1)
    empty = sp.csr_matrix((5, 0), dtype=np.float32)
    blocks = [counts, empty, sp.csr_matrix(dense), counts]
    weights = [1.25, None, 0.5, None]
    ours = side_by_side([of_matrix(block) for block in blocks], weights)
    theirs = sp.hstack(
        [block if weight is None else block * weight for block, weight in zip(blocks, weights, strict=True)],
        format="csr",
    )
    _same(ours, theirs)


def test_parts_of_a_dense_array_leave_its_zeros_out() -> None:
    parts = of_matrix(np.array([[0.0, 2.0], [0.0, 0.0], [3.0, 0.0]]))
    assert parts.indptr.tolist() == [0, 1, 1, 2] and parts.indices.tolist() == [1, 0]
    assert parts.data.tolist() == [2.0, 3.0] and parts.shape == (3, 2)


def test_side_by_side_needs_a_block() -> None:
    with pytest.raises(ValueError, match="no blocks"):
        side_by_side([], [])


@pytest.mark.parametrize(
    ("ordered", "ranks"),
    [([], []), ([4], [0]), ([1, 1, 1, 2, 5, 5], [0, 1, 2, 0, 0, 1]), ([0, 1, 2], [0, 0, 0])],
)
def test_ranks_within_runs_count_from_each_runs_start(ordered: list[int], ranks: list[int]) -> None:
    assert ranks_within_runs(np.asarray(ordered, dtype=np.int64)).tolist() == ranks
