"""Training out of core reads its data once per pass and decides what `train` decides in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models import out_of_core
from models.errors import DataError, TrainingError
from models.examples import Example, dedup_key, deduplicate, fingerprint
from models.out_of_core import _shuffled_chunks, build_index, out_of_core_steps, train_out_of_core
from models.seeding import seed_examples

SEED = seed_examples()
# Copies of one text (one of them disguised) whose labels fill in or conflict, among others.
WITH_COPIES = [
    Example("Cheap pills here", spam=1),
    Example("hello there", spam=0, abuse=0),
    Example("cheap p1lls here", spam=0, abuse=1),  # the same text normalized: fills abuse only
    Example("you absolute idiot", abuse=1),
    Example("CHEAP PILLS HERE", abuse=0),
    Example("you absolute idiot", spam=0, abuse=0),
    Example("a text with no labels"),
]


def test_the_index_keeps_and_labels_what_deduplicate_keeps() -> None:
    index = build_index(iter(WITH_COPIES), 0.5, seed=0)
    kept = [
        Example(example.text, spam=_label(row[0]), abuse=_label(row[1]))
        for example, row, keep in zip(WITH_COPIES, index.labels, index.kept, strict=True)
        if keep
    ]
    assert kept == [Example(e.text, spam=e.spam, abuse=e.abuse) for e in deduplicate(WITH_COPIES)]
    assert index.count == 7 and index.unique == 4
    assert index.fingerprint == fingerprint(WITH_COPIES)


def _label(code: int) -> int | None:
    return None if code == -1 else int(code)


def test_the_split_keeps_every_text_on_one_side_and_caps_the_validation_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    examples = [*SEED, *SEED[:100]]  # a hundred texts twice
    index = build_index(iter(examples), 0.2, seed=0)
    sides: dict[str, set[bool]] = {}
    for example, keep, held in zip(examples, index.kept, index.held_out, strict=True):
        if keep:
            sides.setdefault(dedup_key(example.text), set()).add(bool(held))
    assert all(len(side) == 1 for side in sides.values())
    assert not index.held_out[~index.kept].any()
    assert 0.12 < index.held_out.sum() / index.unique < 0.28
    assert build_index(iter(examples), 0.2, seed=1).held_out.tolist() != index.held_out.tolist()
    monkeypatch.setattr(out_of_core, "VALIDATION_CAP", 20)
    capped = build_index(iter(examples), 0.2, seed=0)
    assert capped.held_out.sum() == 20 and not (capped.held_out & ~index.held_out).any()
    assert build_index(iter(examples), 0.2, seed=2**70).unique == index.unique  # any int seeds it


def test_a_head_needs_both_classes_outside_the_validation_part() -> None:
    texts = [Example(f"an ordinary remark number {n}", spam=0) for n in range(200)]
    spam = [Example(f"cheap pills offer number {n}", spam=1) for n in range(200)]
    drawn = build_index(iter(spam), 0.2, seed=0).held_out
    held_spam = [example for example, held in zip(spam, drawn, strict=True) if held]
    # Every positive lies in the validation part, and nothing is refitted on all examples.
    with pytest.raises(TrainingError, match="outside the validation part"):
        train_out_of_core(lambda: iter([*texts, *held_spam]))


class Source:
    """Seed examples, read afresh at each call, counting the calls."""

    def __init__(self, examples: list[Example]) -> None:
        self.examples, self.reads = examples, 0

    def __call__(self) -> Iterator[Example]:
        self.reads += 1
        yield from self.examples


def test_training_reads_once_per_pass_and_calibrates_its_heads() -> None:
    source = Source(SEED)
    messages: list[str] = []
    result = train_out_of_core(source, epochs=3, progress=messages.append)
    assert source.reads == 2 + 3  # index, validation part, three epochs
    assert len(messages) == out_of_core_steps(3)
    heads = result.classifier.pipeline.named_steps["heads"]
    assert heads.heads_ == ("spam", "abuse") and heads.calibrated_ == (True, True)
    assert result.parameters["out_of_core"] is True and result.examples == len(deduplicate(SEED))
    for head in heads.heads_:
        # Calibrated: a review threshold in the model's working range, not SGD's raw 0.0006.
        assert 0.05 < result.thresholds[head]["review"] < 0.95
        assert result.metrics[head]["roc_auc"] > 0.9


@pytest.mark.parametrize(
    ("second", "now"),
    [(SEED[:-5], f"{len(SEED) - 5} now"), ([*SEED[:-1], Example("another text", spam=0)], "other examples")],
)
def test_data_that_changes_between_passes_is_refused(second: list[Example], now: str) -> None:
    reads = iter([SEED, second])
    with pytest.raises(DataError, match=f"changed while training .*: {len(SEED)} examples at first, {now}"):
        train_out_of_core(lambda: iter(next(reads)))


def test_chunks_are_shuffled_within_the_buffer_and_keep_every_example(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import random

    monkeypatch.setattr(out_of_core, "SHUFFLE_CHUNKS", 4)
    items = [Example(str(n)) for n in range(50)]
    chunks = list(_shuffled_chunks(iter(items), 5, random.Random(0)))
    assert all(len(chunk) == 5 for chunk in chunks) and len(chunks) == 10
    flat = [e.text for chunk in chunks for e in chunk]
    assert sorted(flat, key=int) == [e.text for e in items] and flat != [e.text for e in items]
    # Shuffled within runs of four chunks only: the first twenty stay the first twenty.
    assert {int(text) for text in flat[:20]} == set(range(20))
