"""Turning a posted reply form into a clean ``Submission``, or into field-by-field problems.

Pure functions only: no database, no request object. The limits are the ones a blog
platform's comment form has, so sites can move their existing forms over unchanged.
The reader of whole numbers that the API's other inputs share lives here too.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

from email_validator import EmailNotValidError, validate_email

from models.records import holds_lone_surrogate
from service.errors import ValidationError

NAME_MAX_CHARS = 245
EMAIL_MAX_CHARS = 100
URL_MAX_CHARS = 200
THREAD_MAX_CHARS = 500
COMMENT_MAX_BYTES = 65_525
NOTE_MAX_CHARS = 2000
# The largest value a signed 64-bit column (and SQL offset) holds.
MAX_ID = 2**63 - 1

# Any C0/C1 control character or DEL, and in one-line fields the line and paragraph
# separators and the bidirectional embeddings, overrides and isolates (U+202E in a name
# turns the rest of the line that shows it around); the comment body keeps tab and newline.
ONE_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What a URL cannot hold as it is (RFC 3986), markup's quotes and brackets among them,
# and the apostrophe, which it may hold but which ends a single-quoted attribute.
_NOT_IN_URLS = re.compile(r"[\"'<>`{}|\\^]")
# An email address inside other text: something, an @, and a host with a dot, no spaces.
_EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
# Unicode's stream-safe limit (UAX #15): no text in any language stacks more marks than this
# that normalisation reorders (combining class other than 0) on one letter. CPython sorts
# each run of them by insertion when it normalises, so a run of thousands, in an order it
# must reverse, takes time quadratic in its length: a 240 KB form field of them held a web
# process for 28 s, and one in the `redirect` field, read after the comment was stored,
# outlasted gunicorn's 30 s timeout, so the worker was killed with the post unanswered.
MAX_NON_STARTERS = 30
# Format characters (zero-width spaces and joiners, soft hyphen, byte order mark...),
# separators, the letters that fonts draw as nothing, and the marks that only select how
# the character before them looks (variation selectors, the grapheme joiner, Mongolian
# free variation selectors): a value of only these shows blank.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc"})
_BLANK_CHARACTERS = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
# The fields a reply form shows, by the labels commenters see; the others are hidden inputs.
_LABELS = {"name": "Name", "email": "Email", "comment": "Comment", "url": "Website"}
TYPED_FIELDS = frozenset(_LABELS)
_FILL_IN = "Please fill this in."


@dataclass(frozen=True)
class Submission:
    """A comment as the reader sent it, trimmed, normalised and within limits."""

    name: str
    email: str
    comment: str
    thread: str
    parent_id: int | None = None
    url: str | None = None
    seconds_to_submit: float | None = None
    """From the page showing the form to its sending, as the page measured it."""


class FieldError(ValueError):
    """A refused value: ``str()`` says what is wrong for API clients, ``advice`` what a commenter can do."""

    def __init__(self, problem: str, advice: str) -> None:
        super().__init__(problem)
        self.advice = advice


class SubmissionError(ValidationError):
    """A refused submission; ``advice`` words the problems of the fields a commenter sees, by their labels."""

    def __init__(self, problems: dict[str, str], advice: dict[str, str]) -> None:
        super().__init__(problems)
        self.advice = advice


@functools.cache
def _non_starter_runs() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns of a run of more than ``MAX_NON_STARTERS`` characters that normalisation may
    reorder: a quick one, which takes every character past the BMP for one, and the exact one.

    Built once (a tenth of a second) from this Python's own Unicode tables: the characters
    of a combining class other than 0, and those whose compatibility decomposition starts
    with one (U+FF9E, U+0F73), which the classifier's NFKC (models/normalize.py) would turn
    into such a run in stored, NFC-normalised text. A class that holds characters past the
    BMP is matched range by range, 150 us for a comment of 1 KB; one of the BMP and a single
    range above it is looked up at once (13 us), so the exact class is tried only on a run
    the quick one found (31 emoji in a row, say).
    """
    combining, decomposition = unicodedata.combining, unicodedata.decomposition
    codes = [
        code
        for code, character in enumerate(map(chr, range(sys.maxunicode + 1)))
        if combining(character)
        or (decomposition(character) and combining(unicodedata.normalize("NFKD", character)[0]))
    ]
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])

    def run_of(members: list[list[int]]) -> re.Pattern[str]:
        members_class = "".join(f"\\U{first:08x}-\\U{last:08x}" for first, last in members)
        return re.compile(f"[{members_class}]{{{MAX_NON_STARTERS + 1},}}")

    beyond_bmp = [0x10000, sys.maxunicode]
    return run_of([*(pair for pair in ranges if pair[1] < 0x10000), beyond_bmp]), run_of(ranges)


def stream_safe(value: str) -> bool:
    """Whether normalising ``value`` (NFC, NFKC) takes time linear in its length: it stacks
    no more than ``MAX_NON_STARTERS`` reorderable marks in a row. Plain ASCII always does."""
    if value.isascii():
        return True
    quick, exact = _non_starter_runs()
    return quick.search(value) is None or exact.search(value) is None


def clean_text(value: str) -> str:
    """Unicode NFC, trimmed, with Windows and old Mac line ends made plain newlines."""
    return unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n").strip()


def whole_number(text: str, most: int, *, clamp: bool = False) -> int:
    """``text`` as a whole number from 1 to ``most``; a larger one is ``most`` when ``clamp``.

    Raises ``ValueError`` saying which bound ``text`` breaks.
    """
    # str.isdigit() alone also passes digits such as "²" that int() refuses.
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit() and digits):
        raise ValueError("must be a whole number of at least 1")
    # Comparing lengths first keeps int() from reading thousands of digits.
    if len(digits) > len(str(most)) or int(digits) > most:
        if clamp:
            return most
        raise ValueError(f"must be at most {most}")
    return int(digits)


def check_unicode(value: str) -> None:
    """Raise ``ValueError`` when ``value`` cannot be stored as UTF-8: it holds a lone surrogate."""
    if holds_lone_surrogate(value):
        raise ValueError("is not valid Unicode (it holds a lone surrogate)")


def _too_long(value: str, max_chars: int, max_bytes: int | None = None) -> FieldError | None:
    """The problem with ``value`` being over a limit, or None when it is within them."""
    if len(value) > max_chars:
        problem = f"is longer than {max_chars} characters"
    elif max_bytes is not None and len(value.encode()) > max_bytes:
        problem = f"is longer than {max_bytes} bytes"
    else:
        return None
    fits = value[:max_chars]
    if max_bytes is not None:
        # Cutting the UTF-8 at the limit may split a character; ignoring that last piece
        # leaves the longest start of the text that fits.
        fits = fits.encode()[:max_bytes].decode(errors="ignore")
    # Commenters count characters, not bytes: say how many cut from the end make it fit.
    cut = len(value) - len(fits)
    return FieldError(problem, f"This is too long; shorten it by about {cut:,} characters.")


def _text(
    raw: Any, *, max_chars: int, max_bytes: int | None = None, control: re.Pattern[str] = ONE_LINE_CONTROL
) -> str:
    if raw is None:
        raise FieldError("is required", _FILL_IN)
    if not isinstance(raw, str):
        raise FieldError("must be a string", _FILL_IN)
    try:
        check_unicode(raw)
    except ValueError as exc:
        raise FieldError(str(exc), "This contains characters that cannot be stored; type it again.") from None
    # Before normalising, which is what such a value would make slow.
    if not stream_safe(raw):
        raise FieldError(
            f"stacks more than {MAX_NON_STARTERS} combining marks on one character",
            "This stacks too many accents or marks on one letter; type it again.",
        )
    value = clean_text(raw)
    # Controls first: a value of nothing else (a NUL) is not missing but broken, and the
    # message must say so rather than ask for what was sent.
    if control.search(value):
        raise FieldError(
            "contains control characters", "This contains invisible control characters; type it again."
        )
    if _blank(value):
        raise FieldError("is required", _FILL_IN)
    problem = _too_long(value, max_chars, max_bytes)
    if problem:
        raise problem
    return value


def _blank(value: str) -> bool:
    """Whether ``value`` shows nothing: it holds only format characters, spaces, blank
    letters and variation selectors."""
    return all(
        character in _BLANK_CHARACTERS or unicodedata.category(character) in _INVISIBLE_CATEGORIES
        for character in value
    )


def moderator_note(raw: Any) -> str | None:
    """A moderator's optional note, trimmed; None when empty. ``ValueError`` saying what is
    wrong: not text, longer than ``NOTE_MAX_CHARS``, or holding what the database cannot
    store (control characters such as NUL, lone surrogates)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > NOTE_MAX_CHARS:
        raise ValueError(f"must be text of at most {NOTE_MAX_CHARS} characters")
    check_unicode(raw)
    note = raw.replace("\r\n", "\n").strip()
    if _BODY_CONTROL.search(note):
        raise ValueError("contains control characters")
    return note or None


def seen_time(raw: Any) -> datetime:
    """A time the service gave a client (a comment's ``updated_at``, a cursor's key), as the
    client gives it back: ISO 8601 with its UTC offset, in UTC. ``ValueError`` saying what
    is wrong."""
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) and len(raw) <= 64 else None
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is not None:
        try:
            return moment.astimezone(UTC)
        except OverflowError:  # an offset that carries it past year 1 or 9999
            pass
    raise ValueError("must be a time with its UTC offset, as updated_at gives it")


def thread_key(raw: Any) -> str:
    """The thread key ``raw`` names, cleaned as the intake stores it (NFC, trimmed), so that
    lookups find what was posted; ``ValueError`` saying what is wrong with it."""
    return _text(raw, max_chars=THREAD_MAX_CHARS)


def _name(raw: Any) -> str:
    value = _text(raw, max_chars=NAME_MAX_CHARS)
    # The name is published with the comment and shown in full to moderators: an email
    # typed into it (a browser's autofill, a commenter unsure of the fields) would be too,
    # where the form promises that the address is not, and past its masking in the queue.
    if _EMAIL_LIKE.search(value):
        raise FieldError(
            "must not hold an email address (the name is published; the address goes in email)",
            "Enter your name here, not an email address.",
        )
    return value


def _comment(raw: Any) -> str:
    # The character limit never refuses more than the byte limit; it is the cheap first check.
    return _text(raw, max_chars=COMMENT_MAX_BYTES, max_bytes=COMMENT_MAX_BYTES, control=_BODY_CONTROL)


def email_address(raw: Any) -> str:
    """The address ``raw`` holds, normalised as the intake stores it; ``ValueError`` saying
    what is wrong with it."""
    value = _text(raw, max_chars=EMAIL_MAX_CHARS)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        # email-validator's own sentences are written for the person typing the address.
        raise FieldError(f"is not a valid email address ({exc})", str(exc)) from None


def web_address(value: str) -> SplitResult | None:
    """The parts of ``value`` when it is an http(s) URL with a host that a browser could
    follow, else None (never ``ValueError``).

    A value that is not ``stream_safe`` is None too: ``urlsplit`` normalises (NFKC) a
    non-ASCII host part to check it, and the form's ``redirect`` field, read whole, can be
    as large as the body.
    """
    if not stream_safe(value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - read for its ValueError: "javascript:alert(1)" read as host and port
    except ValueError:  # "http://[::1", a host NFKC turns into other characters
        return None
    # urlsplit gives the scheme in lower case.
    return parts if parts.scheme in {"http", "https"} and parts.hostname else None


def _escaped(found: re.Match[str]) -> str:
    # A backslash is a slash to browsers; escaped, it would name another address.
    character = found.group()
    return "/" if character == "\\" else f"%{ord(character):02X}"


def _url(raw: Any) -> str | None:
    # A value that shows nothing is no website; one of controls is a broken field, and _text says so.
    if raw is None or (isinstance(raw, str) and _blank(raw) and not ONE_LINE_CONTROL.search(raw.strip())):
        return None
    value = _text(raw, max_chars=URL_MAX_CHARS)
    if "://" not in value:
        value = f"http://{value}"
    # Any space, not only U+0020: a no-break or ideographic one in a host leaves a link
    # that no browser can follow.
    parts = web_address(value)
    if parts is None or any(character.isspace() for character in value) or _NOT_IN_URLS.search(parts.netloc):
        raise FieldError(
            "must be a web address starting with http:// or https://",
            "Enter a web address starting with http:// or https://, or leave this empty.",
        )
    # A user name or password before the host is never a commenter's website, and the
    # listing publishes the address: an email typed into the Website field
    # ("ann@example.com" read as http://ann@example.com) would be shown to every reader, and
    # "http://bank.example@evil.example" shows one host while linking to another.
    if "@" in parts.netloc:
        raise FieldError(
            "must be a web address without a user name or password (an email address goes in email)",
            "Enter your website's address here, not an email address, or leave this empty.",
        )
    # Escaped after the host (browsers escape most of them there too), so that a site that
    # puts the address into its markup without escaping it cannot be made to end an
    # attribute or open a tag by it.
    value = _NOT_IN_URLS.sub(_escaped, value)
    problem = _too_long(value, URL_MAX_CHARS)
    if problem:
        raise problem
    return value


def _parent_id(raw: Any) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, float) and raw.is_integer():
        # JSON has one kind of number, and some encoders write every one with a fraction:
        # 7.0 is the id 7 (an integer to JSON Schema, and so to the API's document).
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError("must be a comment id (a positive whole number)")
    text = raw.strip() if isinstance(raw, str) else str(raw)
    try:
        return whole_number(text, MAX_ID)
    except ValueError:
        raise ValueError("must be a comment id (a positive whole number)") from None


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # ASCII only: \d takes any script's digits


def _seconds_to_submit(raw: Any) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    problem = ValueError("must be the seconds from the form being shown to its sending, 0 or more")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise problem
    if isinstance(raw, str):
        raw = raw.strip()
        if not _DECIMAL.fullmatch(raw):
            raise problem
    try:
        value = float(raw)
    except OverflowError:  # an integer of hundreds of digits, which JSON allows
        raise problem from None
    if not math.isfinite(value) or value < 0:
        raise problem
    return value


_FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "email": email_address,
    "comment": _comment,
    "thread": thread_key,
    "parent_id": _parent_id,
    "url": _url,
    "seconds_to_submit": _seconds_to_submit,
}


# The fields of the comment form that a submission is read from.
SUBMISSION_FIELDS = tuple(_FIELDS)


def parse_submission(fields: Mapping[str, Any]) -> Submission:
    """Validate every field at once; raise ``SubmissionError`` listing each problem.

    Unknown fields (submit buttons, a site's own hidden inputs) are ignored.
    """
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    advice: dict[str, str] = {}
    for field, parse in _FIELDS.items():
        try:
            values[field] = parse(fields.get(field))
        except ValueError as exc:
            problems[field] = f"{field} {exc}"
            if isinstance(exc, FieldError) and field in _LABELS:
                advice[field] = f"{_LABELS[field]}: {exc.advice}"
    if problems:
        raise SubmissionError(problems, advice)
    return Submission(**values)
