"""The retraining gate: a stable held-out split, and activation only when not worse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from models import Example, activate, active_version, list_versions
from models.artifacts import MODEL_FILE
from models.errors import ModelNotFoundError
from models.registry import clear_shadow, load_version, set_shadow, shadow_version
from models.retraining import MIN_PER_CLASS, compare, evaluate_on, in_holdout, retrain, split_holdout
from models.seeding import seed_examples
from models.training import TrainingResult

SEED = seed_examples()[:150]


def _labels() -> list[Example]:
    spam = [f"cheap pills number {n} at http://pills{n}.example buy now" for n in range(60)]
    ordinary = [f"the council meeting on item {n} ran long but was useful" for n in range(60)]
    return [Example(text, spam=1, abuse=None) for text in spam] + [
        Example(text, spam=0, abuse=0) for text in ordinary
    ]


def test_holdout_membership_depends_on_the_text_only() -> None:
    example = Example("A comment about the harbour", spam=0)
    assert in_holdout(example) == in_holdout(Example("A comment about the harbour", spam=1, author="x"))
    training, holdout = split_holdout(_labels())
    assert not {e.text for e in training} & {e.text for e in holdout}
    assert 10 <= len(holdout) <= 40


def test_no_text_is_held_out_at_0_percent_and_every_text_at_100() -> None:
    examples = [Example(f"comment number {n} on the harbour plan") for n in range(1000)]
    assert not any(in_holdout(example, percent=0) for example in examples)
    assert all(in_holdout(example, percent=100) for example in examples)


def test_first_retrain_activates_when_nothing_is_active(tmp_path: Path) -> None:
    outcome = retrain(tmp_path, _labels(), SEED)
    assert outcome.activated and active_version(tmp_path) == outcome.version
    assert outcome.comparison.reasons == ["no active model to beat"]


def test_a_candidate_replaces_an_active_model_that_no_longer_loads(tmp_path: Path) -> None:
    first = retrain(tmp_path, _labels(), SEED)
    model_file = tmp_path / first.version / MODEL_FILE
    model_file.write_bytes(model_file.read_bytes()[:-1])
    outcome = retrain(tmp_path, _labels(), SEED)
    assert outcome.activated and active_version(tmp_path) == outcome.version
    assert outcome.comparison.reasons[0] == "no active model to beat"
    assert outcome.comparison.reasons[1].startswith(f"the active version {first.version} cannot be loaded (")


def test_candidate_is_judged_against_the_active_model_on_the_same_labels(tmp_path: Path) -> None:
    first = retrain(tmp_path, _labels(), SEED)
    labels = _labels()
    second = retrain(tmp_path, labels, SEED, activate_if_better=False)
    holdout = [example for example in labels if in_holdout(example)]
    assert second.comparison.holdout_size == len(holdout)
    # Both scored on exactly the held-out labels: the active model's figures are its own
    # figures there, computed apart from the run.
    active = load_version(tmp_path, first.version)
    assert second.comparison.active == evaluate_on(active, holdout)
    assert second.comparison.candidate == evaluate_on(load_version(tmp_path, second.version), holdout)
    assert set(second.comparison.active) == {"spam"}
    assert second.comparison.active["spam"]["examples"] == len(holdout)
    assert second.version in list_versions(tmp_path)


def test_a_worse_candidate_is_refused(tmp_path: Path) -> None:
    first = retrain(tmp_path, _labels(), SEED)
    active = load_version(tmp_path, first.version)
    assert compare(active, active, split_holdout(_labels())[1]).passed
    # Training labels flipped, held-out ones kept: the candidate ranks them backwards.
    misled = [
        e if in_holdout(e) else Example(e.text, spam=1 - (e.spam or 0), abuse=e.abuse) for e in _labels()
    ]
    # The seed's abuse labels alone give the candidate the abuse head the active model has.
    outcome = retrain(tmp_path, misled, [replace(e, spam=None) for e in SEED])
    assert not outcome.comparison.passed and not outcome.activated
    [reason] = outcome.comparison.reasons
    assert reason.startswith("spam:") and reason.endswith("worse")
    assert active_version(tmp_path) == first.version


def test_a_candidate_never_replaces_a_version_activated_while_it_was_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = retrain(tmp_path, _labels(), SEED)
    second = retrain(tmp_path, _labels(), SEED, activate_if_better=False)
    judge = compare

    def judged_while_another_goes_live(*args: Any) -> Any:
        comparison = judge(*args)
        activate(tmp_path, second.version)  # an operator, or another run, meanwhile
        return comparison

    monkeypatch.setattr("models.retraining.compare", judged_while_another_goes_live)
    outcome = retrain(tmp_path, _labels(), SEED)
    assert outcome.comparison.passed and not outcome.activated
    assert active_version(tmp_path) == second.version != first.version
    assert outcome.comparison.reasons[-1] == (
        f"not activated: version {second.version} became active meanwhile, and the candidate "
        "was not compared with it"
    )


def test_too_few_held_out_labels_cannot_beat_an_active_model(tmp_path: Path) -> None:
    retrain(tmp_path, _labels(), SEED)
    outcome = retrain(tmp_path, _labels()[:8], SEED)
    assert not outcome.activated and "too few held-out labels" in outcome.comparison.reasons[0]


def test_corpus_text_equal_to_a_held_out_label_is_not_trained_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.retraining

    trained_on: list[Example] = []
    real_train = models.retraining.train

    def recording(examples: list[Example]) -> Any:
        trained_on.extend(examples)
        return real_train(examples)

    monkeypatch.setattr(models.retraining, "train", recording)
    labels = _labels()
    held_out = split_holdout(labels)[1]
    # The same texts in the corpora, as their normalization reads them the same.
    copies = [Example(f"  {example.text.upper()} ", spam=example.spam) for example in held_out]
    outcome = retrain(tmp_path, labels, [*SEED, *copies])
    assert not {example.text for example in trained_on} & {example.text for example in [*held_out, *copies]}
    assert outcome.training_examples == len(labels) - len(held_out) + len(SEED)


def test_shadow_pointer(tmp_path: Path) -> None:
    version = retrain(tmp_path, _labels(), SEED, activate_if_better=False).version
    assert shadow_version(tmp_path) is None
    set_shadow(tmp_path, version)
    assert shadow_version(tmp_path) == version
    clear_shadow(tmp_path)
    assert shadow_version(tmp_path) is None
    with pytest.raises(ModelNotFoundError):
        set_shadow(tmp_path, "no-such-version")


def _without_abuse(examples: list[Example]) -> list[Example]:
    return [replace(example, abuse=None) for example in examples]


def test_a_candidate_without_a_head_the_active_model_has_is_refused(tmp_path: Path) -> None:
    first = retrain(tmp_path, _labels(), SEED)
    assert "abuse" in load_version(tmp_path, first.version).heads
    # Corpora without abuse labels train a candidate that has no abuse head at all.
    outcome = retrain(tmp_path, _without_abuse(_labels()), _without_abuse(SEED))
    assert "abuse" not in load_version(tmp_path, outcome.version).heads
    assert not outcome.activated and not outcome.comparison.passed
    assert "candidate has no abuse head" in outcome.comparison.reasons[0]
    assert active_version(tmp_path) == first.version


def test_the_comparison_names_heads_too_few_held_out_labels_could_judge(tmp_path: Path) -> None:
    retrain(tmp_path, _labels(), SEED)
    # The held-out labels say nothing about abuse but "not abuse": that head is not judged.
    comparison = retrain(tmp_path, _labels(), SEED, activate_if_better=False).comparison
    assert comparison.unjudged == ["abuse"] and comparison.as_dict()["unjudged"] == ["abuse"]
    assert [reason.split(":")[0] for reason in comparison.reasons] == ["spam"]


def test_a_head_with_too_few_labels_of_either_class_is_not_judged(trained: TrainingResult) -> None:
    spam = [Example(f"cheap pills number {n} at http://pills{n}.example", spam=1) for n in range(20)]
    ordinary = [Example(f"the council meeting on item {n} ran long", spam=0) for n in range(MIN_PER_CLASS)]
    assert "spam" in evaluate_on(trained.classifier, spam + ordinary)
    assert "spam" not in evaluate_on(trained.classifier, spam + ordinary[1:])  # too few negatives
    assert "spam" not in evaluate_on(trained.classifier, spam[: MIN_PER_CLASS - 1] + ordinary)


def test_held_out_labels_are_scored_with_their_website(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    # The worker scores a comment with the website given; a candidate that learned from
    # websites must be judged on them too, or what it learned is never measured.
    taught = make_result([replace(e, url="https://deals.example") if e.spam else e for e in tiny_examples])
    texts = [f"thanks for the article on item {n}" for n in range(MIN_PER_CLASS)]
    held_out = [Example(text, spam=1, url="https://deals.example") for text in texts] + [
        Example(text, spam=0) for text in texts
    ]
    assert evaluate_on(taught.classifier, held_out)["spam"]["roc_auc"] > 0.9
