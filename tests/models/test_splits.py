"""Splits never put the same (normalized) text on both sides."""

from __future__ import annotations

import pytest

from models.examples import Example, dedup_key, deduplicate, split_examples
from models.splits import kfold, labeled, leave_group_out


def corpus() -> list[Example]:
    """Bot spam repeated with disguises, across two groups, and ordinary comments."""
    examples = []
    for i in range(30):
        examples.append(Example(f"great song number {i}", spam=0, source=f"youtube:{'AB'[i % 2]}"))
        spam = ["Check out my channel", "check out my CHANNEL", "Check out my ch\u0430nnel"][i % 3]
        examples.append(Example(f"{spam} {i % 5}", spam=1, source=f"youtube:{'AB'[i % 2]}"))
    return examples


def keys(examples: list[Example], indices: object) -> set[str]:
    return {dedup_key(examples[int(i)].text) for i in indices}  # type: ignore[attr-defined]


def test_kfold_has_no_text_on_both_sides() -> None:
    unique = deduplicate(corpus())
    assert len(unique) == 35  # the disguised copies of each spam collapse into one
    seen = set()
    for train, test in kfold(unique, "spam", folds=5):
        assert not keys(unique, train) & keys(unique, test)
        seen |= set(test.tolist())
    assert seen == set(range(len(unique)))


def test_kfold_refuses_duplicates_and_missing_labels() -> None:
    with pytest.raises(ValueError, match="deduplicate"):
        next(kfold(corpus(), "spam"))
    unique = deduplicate(corpus())
    with pytest.raises(ValueError, match="deduplicate"):  # one copy is one too many
        next(kfold([*unique, Example(unique[0].text.upper(), spam=unique[0].spam)], "spam"))
    with pytest.raises(ValueError, match="label"):
        next(kfold([Example("a", spam=1), Example("b")], "spam", folds=2))


def test_leave_group_out_holds_out_whole_groups() -> None:
    unique = deduplicate(corpus())
    splits = list(leave_group_out(unique, lambda e: e.source))
    assert [name for name, _, _ in splits] == ["youtube:A", "youtube:B"]
    for name, train, test in splits:
        assert {unique[i].source for i in test} == {name}
        assert name not in {unique[i].source for i in train}
        assert not keys(unique, train) & keys(unique, test)


def test_split_examples_keeps_disguised_copies_together() -> None:
    examples = corpus()
    train, test = split_examples(examples, 0.3, seed=1)
    assert len(train) + len(test) == len(examples)
    assert not {dedup_key(e.text) for e in train} & {dedup_key(e.text) for e in test}


def test_labeled_keeps_only_that_head() -> None:
    assert labeled([Example("a", spam=1), Example("b", abuse=0)], "abuse") == [Example("b", abuse=0)]
