"""Cross-validation splits that never put the same text on both sides.

Examples are deduplicated first (`models.examples.deduplicate`: the same text after
normalization counts once), so every remaining text is unique and a fold split cannot
leak a copy. The splits here take that deduplicated list and return index arrays:

- `kfold`: stratified K folds on one head's labels;
- `leave_group_out`: one split per group, e.g. each YouTube video held out in turn,
  because a video's bot spam repeats with small changes that exact deduplication misses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold

from models.examples import Example, dedup_key

Split = tuple[np.ndarray, np.ndarray]


def labeled(examples: Sequence[Example], head: str) -> list[Example]:
    """The examples that carry a label for `head`."""
    return [example for example in examples if example.label(head) is not None]


def _require_unique(examples: Sequence[Example]) -> None:
    keys = [dedup_key(example.text) for example in examples]
    if len(set(keys)) != len(keys):
        raise ValueError("examples hold duplicate texts; pass them through deduplicate() first")


def kfold(examples: Sequence[Example], head: str, folds: int = 5, seed: int = 0) -> Iterator[Split]:
    """Yield (train indices, test indices) for stratified K-fold on `head`'s labels.

    Raises:
        ValueError: an example lacks the head's label, or two examples share a text.
    """
    _require_unique(examples)
    labels = [example.label(head) for example in examples]
    if any(label is None for label in labels):
        raise ValueError(f"every example needs a {head!r} label; filter with labeled() first")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    yield from splitter.split(np.zeros(len(labels)), np.asarray(labels))


def leave_group_out(
    examples: Sequence[Example], group: Callable[[Example], str]
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (group, train indices, test indices), holding out each group in turn, in sorted order."""
    _require_unique(examples)
    groups = np.asarray([group(example) for example in examples])
    for name in sorted(set(groups.tolist())):
        held_out = groups == name
        yield name, np.flatnonzero(~held_out), np.flatnonzero(held_out)
