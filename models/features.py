"""Comment metadata features: links, shouting, repeated characters, length, digits, word lists.

These complement the word and character n-grams with signals that live in the shape of
a comment rather than its words, and with counts of listed insults and swear words
(`models.lexicon`), which give a word rare in the labels the weight of the whole list.
The transformer is stateless: every value is scaled by a fixed formula (a logarithm or
a share), so the same features work for the in-memory and the out-of-core pipeline and
nothing has to be fitted or stored.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from models.lexicon import lexicon_counts
from models.normalize import EMAIL_PATTERN, find_urls, normalize_text, url_domain
from models.records import as_comment

_PUNCTUATION_RUN = re.compile(r"[!?]{3,}")
_CHARACTER_RUN = re.compile(r"(\S)\1+")
_TRIPLE = re.compile(r"(\S)\1\1")
_DOUBLE = re.compile(r"(\S)\1")
# For plain ASCII text, letters, capitals and digits are counted by deleting them with
# `str.translate`, which runs in C; other text is counted character by character.
_LETTERS = string.ascii_letters.encode()
_CAPITALS = string.ascii_uppercase.encode()
_DIGITS = string.digits.encode()


def _count_ascii(text: str, characters: bytes) -> int:
    """How many of `characters` the ASCII `text` holds (deleted by `bytes.translate`, in C)."""
    data = text.encode("ascii")
    return len(data) - len(data.translate(None, characters))


_PHONE_DIGITS = 7
_DIGIT = re.compile(r"\d")
# Seven or more digits, possibly split by spaces, dots, dashes or brackets: 555-123-4567.
_PHONE = re.compile(r"(?:\+?\d[\s().-]?){7,}")
# Below this many letters a share of capitals says nothing ("OK", "USA").
_MIN_LETTERS_FOR_CAPITALS = 8
# Only the part of the length beyond a long comment counts. A feature that is non-zero
# for every comment acts as a second intercept: the model would lean on it for every
# comment and moderators would see "length" among the reasons for all of them.
_LONG_COMMENT = 500


def _plural(count: float, word: str) -> str:
    number = int(count)
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def _capital_share(text: str) -> float:
    if text.isascii():
        letters = _count_ascii(text, _LETTERS)
        if letters < _MIN_LETTERS_FOR_CAPITALS:
            return 0.0
        return _count_ascii(text, _CAPITALS) / letters
    # map() over the str methods keeps the per-character loop in C.
    letters = sum(map(str.isalpha, text))
    if letters < _MIN_LETTERS_FOR_CAPITALS:
        return 0.0
    return sum(map(str.isupper, text)) / letters


def _longest_run(text: str) -> float:
    # Most comments have no run of three; then the answer is 2 or 1 without a full scan.
    if not _TRIPLE.search(text):
        return 2.0 if _DOUBLE.search(text) else 1.0
    return float(max((len(m.group(0)) for m in _CHARACTER_RUN.finditer(text)), default=1))


def _phone_numbers(text: str) -> float:
    # A phone-number-like run needs seven digits; plain ASCII text with fewer has none.
    if text.isascii() and _count_ascii(text, _DIGITS) < _PHONE_DIGITS:
        return 0.0
    return float(len(_PHONE.findall(text)))


def _author_has_link(author: str) -> float:
    return float(bool(find_urls(author) or EMAIL_PATTERN.search(author)))


@dataclass(frozen=True, slots=True)
class Measured:
    """The fields a metadata feature is measured on."""

    text: str
    author: str
    url: str
    # Digits are counted after normalization: the 1 in "v1agra" is a disguised letter,
    # and counting it would make the disguise itself move the score.
    normalized_text: str
    urls: list[str]  # found once, used by two features
    # (insulting words, swear words, either after "you", negative sentiment), counted once.
    lexicon: tuple[int, int, int, float]


def _measured(record: Any) -> Measured:
    normalized = getattr(record, "normalized_text", None)
    if normalized is not None:  # a prepared comment: the raw fields are beside it
        text, author, url = record.text, record.author, record.url
    else:
        comment = as_comment(record)
        text, author, url = comment.text, comment.author, comment.url
        normalized = normalize_text(text)
    return _measure_fields(text, author, url, normalized)


def _measure_fields(text: str, author: str, url: str, normalized_text: str) -> Measured:
    return Measured(text, author, url, normalized_text, find_urls(text), lexicon_counts(normalized_text))


def measure_fields(text: str, author: str, url: str, normalized_text: str) -> tuple[float, ...]:
    """Return the raw value of every metadata feature from a comment's fields and normalized text."""
    measured = _measure_fields(text, author, url, normalized_text)
    return tuple(f.measure(measured) for f in FEATURES)


@dataclass(frozen=True)
class MetadataFeature:
    """One metadata feature: how it is measured, scaled for the model, and described."""

    name: str
    measure: Callable[[Measured], float]
    scale: Callable[[float], float]
    describe: Callable[[float], str]


def _log(value: float) -> float:
    return math.log1p(value)


FEATURES: tuple[MetadataFeature, ...] = (
    MetadataFeature(
        "links",
        lambda m: float(len(m.urls)),
        _log,
        lambda v: _plural(v, "link"),
    ),
    MetadataFeature(
        "link_domains",
        lambda m: float(len({url_domain(u) for u in m.urls})),
        _log,
        lambda v: _plural(v, "distinct link domain"),
    ),
    MetadataFeature(
        "author_link",
        lambda m: _author_has_link(m.author),
        float,
        lambda v: "a link in the author name",
    ),
    MetadataFeature(
        "website",
        lambda m: float(bool(m.url.strip())),
        float,
        lambda v: "a website given",
    ),
    MetadataFeature(
        "capitals",
        lambda m: _capital_share(m.text),
        float,
        lambda v: f"{v:.0%} capital letters",
    ),
    MetadataFeature(
        "punctuation_runs",
        lambda m: float(len(_PUNCTUATION_RUN.findall(m.text))),
        _log,
        lambda v: _plural(v, "run") + " of !!! or ???",
    ),
    MetadataFeature(
        "longest_run",
        lambda m: _longest_run(m.text),
        # Doubled letters are ordinary ("good"); only runs of three or more count.
        lambda v: math.log1p(max(v - 2.0, 0.0)),
        lambda v: f"a character repeated {int(v)} times",
    ),
    MetadataFeature(
        "length",
        lambda m: float(len(m.text)),
        lambda v: math.log(max(v, _LONG_COMMENT) / _LONG_COMMENT),
        lambda v: f"length {int(v)} characters",
    ),
    MetadataFeature(
        "digits",
        lambda m: float(len(_DIGIT.findall(m.normalized_text))),
        _log,
        lambda v: _plural(v, "digit"),  # counted after normalization, see `Measured`
    ),
    MetadataFeature(
        "phone_numbers",
        lambda m: _phone_numbers(m.text),
        _log,
        lambda v: _plural(v, "phone-number-like run"),
    ),
    # Counted in the normalized text, so disguised spellings count as the plain word.
    MetadataFeature(
        "insult_words",
        lambda m: float(m.lexicon[0]),
        _log,
        lambda v: _plural(v, "insulting word"),
    ),
    MetadataFeature(
        "swear_words",
        lambda m: float(m.lexicon[1]),
        _log,
        lambda v: _plural(v, "swear word"),
    ),
    MetadataFeature(
        "aimed_insults",
        lambda m: float(m.lexicon[2]),
        _log,
        lambda v: _plural(v, "insulting or swear word") + " aimed at 'you'",
    ),
    MetadataFeature(
        "negative_words",
        lambda m: m.lexicon[3],
        _log,
        lambda v: f"negative wording (sentiment -{v:.1f})",
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in FEATURES)


def measure(record: Any) -> list[float]:
    """Return the raw (unscaled) value of every metadata feature for one record."""
    known: tuple[float, ...] = getattr(record, "metadata", ())
    if known:  # a prepared comment, measured when it was prepared
        return list(known)
    measured = _measured(record)
    return [f.measure(measured) for f in FEATURES]


def measure_one(record: Any, index: int) -> float:
    """Return the raw value of metadata feature `index` alone (`measure(record)[index]`)."""
    known: tuple[float, ...] = getattr(record, "metadata", ())
    return known[index] if known else FEATURES[index].measure(_measured(record))


def describe(index: int, raw_value: float) -> str:
    """Return the moderator-facing description of feature `index` at `raw_value`."""
    return FEATURES[index].describe(raw_value)


class MetadataFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Stateless transformer from comment records to scaled metadata features.

    Accepts any sequence of records that `models.records.as_comment` understands:
    `CommentText`, strings, mappings, or objects with `text`, `author` and `url`.
    """

    def fit(self, records: Sequence[Any], y: Any = None) -> MetadataFeatures:
        """Do nothing: the features have fixed scales."""
        return self

    def transform(self, records: Sequence[Any]) -> np.ndarray:
        """Return an array of shape (len(records), len(FEATURES)), in single precision like
        the other branches: one double-precision branch would make the whole shared matrix
        double, half again its size in memory."""
        rows = [
            [f.scale(raw) for f, raw in zip(FEATURES, measure(record), strict=True)] for record in records
        ]
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return the feature names, in column order."""
        return np.asarray(FEATURE_NAMES, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
