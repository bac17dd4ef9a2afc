"""Reasons come from the model's own weights and point toward the label."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from models import explain, quotes_author
from models.author_reasons import author_label
from models.classifier import Classifier
from models.examples import Example
from models.explain import MAX_REASONS_PER_HEAD, Explainer, _domain_names, _label, _term_indexer, _word_key
from models.normalize import domain_token, normalize_text
from models.pipeline import VECTORS, prepare
from models.records import CommentText
from models.training import TrainingResult

REASON = re.compile(r"^(?P<label>.+) \+(?P<value>\d+\.\d) toward (?P<head>spam|abuse)$")


def parsed(reasons: list[str]) -> list[re.Match[str]]:
    matches = [REASON.match(reason) for reason in reasons]
    assert all(matches), reasons
    return [m for m in matches if m]


def test_spam_reasons_name_features_of_the_comment(trained: TrainingResult) -> None:
    comment = CommentText("Buy cheap v1agra, free money at http://cheap-pills.ru")
    score = trained.classifier.score_one(comment)
    reasons = parsed(score.reasons)
    assert reasons and all(m["head"] == "spam" for m in reasons)
    assert len(reasons) <= MAX_REASONS_PER_HEAD
    words = set(normalize_text(comment.text).split())
    allowed_meta = ("link", "digit", "capital", "length", "run", "author", "website", "phone", "wording")
    for match in reasons:
        label = match["label"]
        if label.startswith('"'):
            assert set(label.strip('"').split()) <= words | {"[link]"}, label
        else:
            assert any(word in label for word in allowed_meta), label
    values = [float(m["value"]) for m in reasons]
    assert values == sorted(values, reverse=True) and values[0] > 0


def test_no_reason_below_the_minimum_contribution_is_given(
    trained: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(explain, "MIN_CONTRIBUTION", 1.5)
    comments = [
        CommentText("Buy cheap v1agra, free money at http://cheap-pills.ru"),
        CommentText("You are a stupid idiot"),
    ]
    batched = [score.reasons for score in trained.classifier.score(comments)]
    # The row-by-row path too, which the batch falls back on for hashed features.
    pipeline = trained.classifier.pipeline
    prepared = [prepare(comment) for comment in comments]
    matrix = trained.classifier.feature_matrix(prepared)
    heads = list(enumerate(trained.classifier.heads))
    row_by_row = [
        Explainer(pipeline).reasons(
            comment,
            (
                matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]],
                matrix.data[matrix.indptr[i] : matrix.indptr[i + 1]],
            ),
            pipeline.named_steps["heads"].coef_,
            heads,
        )
        for i, comment in enumerate(prepared)
    ]
    for reasons in (*batched, *row_by_row):
        values = [float(m["value"]) for m in parsed(reasons)]
        assert values and min(values) >= 1.5, reasons


def test_abuse_reasons_point_toward_abuse(trained: TrainingResult) -> None:
    score = trained.classifier.score_one(CommentText("You are a stupid \u0456diot"))
    reasons = parsed(score.reasons)
    assert any(m["head"] == "abuse" for m in reasons)
    # The words themselves, or the word-list counts that found them (which on a small
    # training set carry more weight than any single word).
    named = ('"idiot"', '"stupid"', "2 insulting words", "negative wording (sentiment -4.7)")
    assert any(m["label"] in named for m in reasons), reasons


def test_author_reasons(
    tiny_examples: list[Example], make_result: Callable[..., TrainingResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    spam_authors = ["Cheap Pills", "SEO Expert http://seo.example", "Casino Bonus", "Free Money"]
    examples = [
        replace(e, author=spam_authors[i % 4] if e.spam else f"Reader {i}")
        for i, e in enumerate(tiny_examples)
    ]
    classifier = make_result(examples).classifier
    classifier.thresholds["spam"]["review"] = 0.0  # explain the spam head whatever its score
    # On so few examples each author word moves the score by about 0.1, at the cut-off.
    monkeypatch.setattr(explain, "MIN_CONTRIBUTION", 0.05)
    score = classifier.score_one(CommentText("Nice one, see my page", author="Cheap Pills Casino"))
    assert any(m["label"].startswith("author name ") for m in parsed(score.reasons)), score.reasons
    # An erasure finds the reasons that repeat the name by their wording.
    for reason in score.reasons:
        assert quotes_author(reason) == reason.startswith("author name "), reason


def test_reasons_that_repeat_the_name_or_website_are_recognised() -> None:
    assert quotes_author(author_label('"casino"', quoted=True) + " +0.9 toward spam")
    assert quotes_author(author_label("link to seo.example", quoted=False) + " +1.2 toward spam")
    for reason in (
        '"casino" +2.1 toward spam',
        "no author name +0.1 toward spam",
        "3 links +0.9 toward spam",
    ):
        assert not quotes_author(reason), reason


def test_terms_are_labelled_as_a_moderator_reads_them() -> None:
    comment = prepare(
        CommentText("Buy at https://www.Cheap-Pills.ru now", url="http://my-site.example/about")
    )
    domains = _domain_names(comment)
    pills, site = domain_token("cheap-pills.ru"), domain_token("my-site.example")
    # Domains as written, the commenter's website among them.
    assert (domains[pills], domains[site]) == ("cheap-pills.ru", "my-site.example")
    assert _label(pills, domains) == "link to cheap-pills.ru"
    # A domain within a phrase is a word of it, not a link of its own.
    assert _label(f"{pills} now", domains) == '"cheap-pills.ru now"'
    # A word of punctuation alone is its own term; other words lose the punctuation around them.
    assert (_word_key("idiot,"), _word_key("!!!")) == ("idiot", "!!!")


def test_ordinary_comment_has_no_reasons(trained: TrainingResult) -> None:
    assert (
        trained.classifier.score_one(CommentText("Thanks for the article about the council budget")).reasons
        == []
    )


def test_reasons_can_be_skipped(trained: TrainingResult) -> None:
    assert trained.classifier.score([CommentText("You stupid idiot")], reasons=False)[0].reasons == []


@pytest.mark.parametrize("out_of_core", [False, True])
def test_pieces_add_up_to_the_model_log_odds(
    out_of_core: bool, make_result: Callable[..., TrainingResult]
) -> None:
    """The grouping only redistributes x_i * coef_i: the pieces of each column add up to the
    row's value there (the token vectors' columns included), so they sum to the logit
    minus the intercept."""
    classifier = make_result(out_of_core=out_of_core).classifier
    pipeline = classifier.pipeline
    explainer = Explainer(pipeline)
    heads = pipeline.named_steps["heads"]
    union = pipeline.named_steps["features"]
    assert (VECTORS in union.named_transformers) is not out_of_core
    for text in (
        "Buy cheap v1agra at http://x.ru/buy-pills now!!!",
        "You idiot, idiot, IDIOT",
        "spam spam",
        "what a moooron",
    ):
        comment = prepare(CommentText(text, author="Best SEO http://seo.example"))
        row = union.transform([comment]).tocsr()
        _, _, columns, values = explainer._pieces(comment, (row.indices, row.data))
        rebuilt = np.bincount(columns, weights=values, minlength=row.shape[1])
        np.testing.assert_allclose(rebuilt, row.toarray().ravel(), rtol=1e-5, atol=1e-7)
        attributed = heads.coef_[:, columns] @ values
        expected = heads.decision_function(row)[0] - heads.intercept_
        np.testing.assert_allclose(attributed, expected, rtol=1e-6, atol=1e-9)


def test_hashed_term_index_matches_hashing_vectorizer() -> None:
    vectorizer = HashingVectorizer(n_features=2**10, alternate_sign=False, norm=None)
    index, size = _term_indexer(vectorizer)
    assert size == 2**10
    for term in ("free", "viagra", "domain_x_ru", "café", "idiot"):
        row = vectorizer.transform([term]).tocsr()  # a single word gives a single term
        assert list(row.indices) == [index(term)]


@pytest.mark.usefixtures("char_counting")
def test_batch_reasons_match_reasons_row_by_row(make_result: Callable[..., TrainingResult]) -> None:
    """`Explainer.batch_reasons` gives, for every row, what `Explainer.reasons` gives for it alone."""
    _batch_matches_rows(make_result().classifier)


def test_batch_reasons_match_reasons_row_by_row_out_of_core(
    make_result: Callable[..., TrainingResult],
) -> None:
    _batch_matches_rows(make_result(out_of_core=True).classifier)


def _batch_matches_rows(classifier: Classifier) -> None:
    for head in classifier.heads:
        classifier.thresholds.setdefault(head, {})["review"] = 0.0  # explain every head
    texts = [
        "Buy cheap v1agra at http://x.ru/buy-pills now!!!",
        "You idiot, idiot, IDIOT",
        "what a moooron, you stupid loser",
        "Thanks for the article about the council budget",
        "",
        "free free free money money, click here: cheap-pills.ru",
        "_idiot_ don't be a f r e e loser",
    ]
    comments = [CommentText(text, author="Best SEO http://seo.example") for text in texts]
    scores = classifier.score(comments)
    pipeline = classifier.pipeline
    explainer = Explainer(pipeline)
    heads = pipeline.named_steps["heads"]
    prepared = [prepare(c) for c in comments]
    matrix = classifier.feature_matrix(prepared)
    explain = list(enumerate(classifier.heads))
    for i, comment in enumerate(prepared):
        span = slice(matrix.indptr[i], matrix.indptr[i + 1])
        row = (matrix.indices[span], matrix.data[span])
        assert scores[i].reasons == explainer.reasons(comment, row, heads.coef_, explain), texts[i]
