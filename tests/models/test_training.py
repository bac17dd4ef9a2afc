"""Training gives the heads the labels support, deterministic models and honest metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from models.classifier import Score
from models.errors import TrainingError
from models.examples import Example
from models.metrics import DEFAULT_REVIEW, NO_AUTOMATIC_REJECT
from models.records import CommentText
from models.training import TrainingResult, label_matrix, make_version, train

SPAMMY = CommentText("Buy cheap viagra online, free money at http://cheap-pills.ru")
ABUSIVE = CommentText("You are a stupid idiot and a loser")
ORDINARY = CommentText("Thanks for the article about the council budget")


def test_both_heads_and_sensible_scores(trained: TrainingResult) -> None:
    classifier = trained.classifier
    assert classifier.heads == ("spam", "abuse")
    spammy, abusive, ordinary = classifier.score([SPAMMY, ABUSIVE, ORDINARY])
    assert spammy.spam is not None and ordinary.spam is not None
    assert abusive.abuse is not None and ordinary.abuse is not None
    assert spammy.spam > 0.5 > ordinary.spam
    assert abusive.abuse > 0.5 > ordinary.abuse
    assert spammy.model_version == classifier.version


def test_score_one_matches_batch(trained: TrainingResult) -> None:
    batch = trained.classifier.score([SPAMMY, ABUSIVE])
    assert trained.classifier.score_one(ABUSIVE) == batch[1]


def test_score_accepts_strings(trained: TrainingResult) -> None:
    assert trained.classifier.score(["You idiot"])[0] == trained.classifier.score_one(
        CommentText("You idiot")
    )


def test_score_as_dict(trained: TrainingResult) -> None:
    data = trained.classifier.score_one(ABUSIVE).as_dict()
    assert set(data) == {"spam", "abuse", "reasons", "model_version"}
    assert isinstance(data["reasons"], list)


def test_probabilities_are_in_range(trained: TrainingResult) -> None:
    probabilities = trained.classifier.probabilities([SPAMMY, ABUSIVE, ORDINARY, CommentText("")])
    for values in probabilities.values():
        assert ((values > 0) & (values < 1)).all()


def test_the_website_a_commenter_gave_is_learned_from(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    # Comment spam comes with a website more often than not: a model must learn from the
    # field as it scores with it, not see it empty in every example it trains on.
    with_sites = [replace(e, url="https://deals.example/shop") if e.spam else e for e in tiny_examples]
    plain, taught = make_result(tiny_examples), make_result(with_sites)
    comment = CommentText("Nice post, visit my site", url="https://deals.example")
    before, after = plain.classifier.score_one(comment), taught.classifier.score_one(comment)
    assert before.spam is not None and after.spam is not None
    assert before.spam < 0.5 < after.spam
    assert after.reasons[0].startswith("a website given +")
    assert after.reasons[1].startswith("link to deals.example in the author name or website +")


def test_head_without_labels_is_absent(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    spam_only = [replace(e, abuse=None) for e in tiny_examples]
    result = make_result(spam_only)
    assert result.classifier.heads == ("spam",)
    assert set(result.metrics) == {"spam"} and set(result.thresholds) == {"spam"}
    assert any("abuse" in note for note in result.notes)
    score = result.classifier.score_one(ABUSIVE)
    assert score.abuse is None and score.spam is not None
    assert all("abuse" not in reason for reason in score.reasons)


def test_head_with_one_class_is_absent(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    no_abuse = [replace(e, abuse=0) for e in tiny_examples]
    assert make_result(no_abuse).classifier.heads == ("spam",)


@pytest.mark.parametrize(
    "examples",
    [
        [Example("buy pills now", spam=1), Example("nice video", spam=0)],
        [Example(f"buy pills now {i}", spam=1) for i in range(7)]
        + [Example(f"nice video {i}", spam=0) for i in range(7)]
        + [Example("you idiot", abuse=1), Example("lovely day", abuse=0)],
    ],
)
def test_a_head_without_validation_labels_gets_the_fallback_thresholds(
    examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    # Too few labels for a head to have any in the validation part: trained all the same,
    # with thresholds that send everything doubtful to a human.
    result = make_result(examples)
    unvalidated = [
        h for h, m in result.metrics.items() if m["thresholds_from"].startswith("default: no validation")
    ]
    assert unvalidated == list(result.classifier.heads)[-1:]
    assert result.thresholds[unvalidated[0]] == {"review": DEFAULT_REVIEW, "reject": NO_AUTOMATIC_REJECT}


def test_no_usable_labels_is_an_error(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    unlabeled = [Example(e.text) for e in tiny_examples]
    with pytest.raises(TrainingError, match="no head can be trained"):
        make_result(unlabeled)


def test_texts_without_words_are_a_training_error_before_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    punctuation = [Example("!!!", spam=1), Example("???", spam=0), Example("\U0001f600", spam=1)]
    with pytest.raises(
        TrainingError, match=r"the text of the 3 examples holds no word \(letters or digits\)"
    ):
        train(punctuation)
    # Words only in the validation part leave the split model none to fit on.
    worded = [Example("hello there", spam=1, abuse=0), Example("good day", spam=1, abuse=0)]
    with pytest.raises(
        TrainingError, match="outside the validation part, the text of the 2 examples holds no"
    ):
        train(punctuation[:2] + worded, validation_size=0.9)
    # A large set keeps only the words two texts share.
    monkeypatch.setattr("models.training.MIN_DF_THRESHOLD", 4)
    distinct = [Example(text, spam=n % 2) for n, text in enumerate(["apple", "banana", "cherry", "damson"])]
    with pytest.raises(TrainingError, match="holds no word that appears in 2 texts or more"):
        train(distinct)


def test_same_data_same_model(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    first, second = make_result(), make_result()
    assert first.data_fingerprint == second.data_fingerprint
    heads_a = first.classifier.pipeline.named_steps["heads"]
    heads_b = second.classifier.pipeline.named_steps["heads"]
    np.testing.assert_array_equal(heads_a.coef_, heads_b.coef_)
    assert first.thresholds == second.thresholds
    assert first.metrics == second.metrics


def test_metrics_report_baseline_and_thresholds(trained: TrainingResult) -> None:
    for head in ("spam", "abuse"):
        metrics = trained.metrics[head]
        assert metrics["positives"] > 0
        assert metrics["roc_auc"] > metrics["baseline"]["roc_auc"] == 0.5
        assert metrics["review"]["threshold"] == trained.thresholds[head]["review"]
        assert metrics["reject"]["threshold"] == trained.thresholds[head]["reject"]
        assert trained.thresholds[head]["review"] <= trained.thresholds[head]["reject"]
    assert trained.parameters["seed"] == 0 and trained.examples == 60


def test_calibration_is_used_when_there_are_enough_labels(trained: TrainingResult) -> None:
    assert trained.classifier.pipeline.named_steps["heads"].calibrated_ == (True, True)


@pytest.mark.parametrize("out_of_core", [False, True])
def test_a_head_left_uncalibrated_is_noted(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult], out_of_core: bool
) -> None:
    # Six spam examples are too few to fit a sigmoid on: the score is then the regression's
    # own, not a calibrated probability, and whoever picks thresholds by hand must know.
    few_spam = [e for e in tiny_examples if not e.spam][:40] + [e for e in tiny_examples if e.spam][:6]
    result = make_result(few_spam, out_of_core=out_of_core)
    heads = result.classifier.pipeline.named_steps["heads"]
    uncalibrated = [
        h for h, calibrated in zip(heads.heads_, heads.calibrated_, strict=True) if not calibrated
    ]
    assert "spam" in uncalibrated
    assert [note for note in result.notes if "not calibrated" in note] == [
        f"head {h!r} not calibrated: too few labels of a class to fit its sigmoid on (or scores that rank "
        "them backwards), so its scores are the model's own, not calibrated probabilities"
        for h in uncalibrated
    ]


@pytest.mark.parametrize("out_of_core", [False, True])
def test_texts_labelled_both_ways_are_noted(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult], out_of_core: bool
) -> None:
    # Two moderators who decided copies of a comment differently: training says so.
    disputed = [replace(e, spam=1 - e.spam) for e in tiny_examples[:3] if e.spam is not None]
    result = make_result(tiny_examples + disputed, out_of_core=out_of_core)
    assert [note for note in result.notes if "labelled both" in note] == [
        "head 'spam': 3 text(s) labelled both 0 and 1 by their copies (sources or moderators who "
        "disagree); each was trained on with its first label"
    ]


def test_out_of_core_trains_both_heads(make_result: Callable[..., TrainingResult]) -> None:
    result = make_result(out_of_core=True)
    classifier = result.classifier
    assert classifier.heads == ("spam", "abuse")
    assert result.parameters["out_of_core"] is True
    spammy, abusive, ordinary = classifier.score([SPAMMY, ABUSIVE, ORDINARY])
    assert spammy.spam is not None and ordinary.spam is not None
    assert abusive.abuse is not None and ordinary.abuse is not None
    assert spammy.spam > ordinary.spam and abusive.abuse > ordinary.abuse


def test_out_of_core_absent_head(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult]
) -> None:
    spam_only = [replace(e, abuse=None) for e in tiny_examples]
    assert make_result(spam_only, out_of_core=True).classifier.heads == ("spam",)


def test_label_matrix_uses_nan_for_missing() -> None:
    matrix = label_matrix([Example("a", spam=1), Example("b", abuse=0)])
    assert matrix.shape == (2, 2)
    assert matrix[0, 0] == 1 and np.isnan(matrix[0, 1]) and np.isnan(matrix[1, 0]) and matrix[1, 1] == 0


def test_version_name(trained: TrainingResult) -> None:
    assert make_version(trained.created_at, "0123456789abcdef").endswith("Z-01234567")
    assert trained.classifier.version == make_version(trained.created_at, trained.data_fingerprint)


def test_score_type(trained: TrainingResult) -> None:
    assert isinstance(trained.classifier.score_one(ORDINARY), Score)
