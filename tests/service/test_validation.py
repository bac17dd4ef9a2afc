"""The reply form's rules: what is accepted, how it is cleaned, and what each refusal says."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import ValidationError
from service.validation import (
    COMMENT_MAX_BYTES,
    Submission,
    SubmissionError,
    moderator_note,
    parse_submission,
    stream_safe,
    thread_key,
    whole_number,
)

VALID = {"name": "Ann", "email": "ann@example.com", "comment": "Good piece.", "thread": "/news/1"}


def _with(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def test_a_valid_form_becomes_a_submission() -> None:
    assert parse_submission(VALID) == Submission("Ann", "ann@example.com", "Good piece.", "/news/1")


def test_text_is_trimmed_and_normalised() -> None:
    submission = parse_submission(_with(name="  Zoe\u0301 ", comment=" line one\r\nline two \n"))
    assert submission.name == "Zoé"  # NFC folds e + combining accent into one character
    assert submission.comment == "line one\nline two"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "name is required"),
        ({"name": None}, "name", "name is required"),
        ({"name": 42}, "name", "name must be a string"),
        ({"name": "x" * 246}, "name", "name is longer than 245 characters"),
        ({"name": "bad\x00name"}, "name", "name contains control characters"),
        ({"name": "\x00"}, "name", "name contains control characters"),  # broken, not missing
        ({"email": "not-an-address"}, "email", "email is not a valid email address"),
        ({"email": "a" * 95 + "@b.com"}, "email", "email is longer than 100 characters"),
        ({"comment": "   "}, "comment", "comment is required"),
        # Only what draws nothing: zero-width spaces, a byte order mark, a word joiner, a
        # blank Braille pattern, the Hangul filler, a soft hyphen, a line separator.
        ({"comment": "\u200b\u200b"}, "comment", "comment is required"),
        ({"comment": "\ufeff \u2060\u2800"}, "comment", "comment is required"),
        ({"name": "\u3164"}, "name", "name is required"),
        ({"name": "\u00ad\u2028"}, "name", "name is required"),
        ({"name": "\ufe0f\u034f\U000e0100"}, "name", "name is required"),
        ({"email": "\u200b"}, "email", "email is required"),
        ({"thread": "\u200d"}, "thread", "thread is required"),
        # Bidirectional overrides and line separators in one-line fields.
        ({"name": "Ann\u202eetidE"}, "name", "name contains control characters"),
        ({"name": "A\u2028B"}, "name", "name contains control characters"),
        ({"thread": "/a/\u2066b"}, "thread", "thread contains control characters"),
        ({"url": "http://blog.example/\u202e"}, "url", "url contains control characters"),
        # Nothing but controls is a broken field, not an empty one, as in the other fields.
        ({"url": "\x00"}, "url", "url contains control characters"),
        ({"url": " \x84 "}, "url", "url contains control characters"),
        ({"url": "\u202e"}, "url", "url contains control characters"),
        ({"comment": "é" * (COMMENT_MAX_BYTES // 2 + 1)}, "comment", "comment is longer than 65525 bytes"),
        ({"comment": "bell\x07"}, "comment", "comment contains control characters"),
        ({"thread": ""}, "thread", "thread is required"),
        ({"url": "ftp://files.example"}, "url", "url must be a web address"),
        # What urlsplit cannot read, or reads as a host with a port that is no number.
        ({"url": "http://[::1"}, "url", "url must be a web address"),
        ({"url": "http://ex\uff03ample.com"}, "url", "url must be a web address"),
        ({"url": "javascript:alert(1)"}, "url", "url must be a web address"),
        ({"url": 'http://x"onmouseover=alert(1)'}, "url", "url must be a web address"),
        ({"url": "http://x'onmouseover='alert(1)'.example/"}, "url", "url must be a web address"),
        ({"url": "http://<b>.example/"}, "url", "url must be a web address"),
        ({"url": "https://blog.example:99999/"}, "url", "url must be a web address"),
        # A space of any script, as a plain one is: a no-break space pasted into the host
        # leaves a link no browser can follow.
        ({"url": "http://my\u00a0blog.example/"}, "url", "url must be a web address"),
        ({"url": "my\u3000blog.example"}, "url", "url must be a web address"),
        ({"url": "http://" + "a" * 200 + ".com"}, "url", "url is longer than 200 characters"),
        # The listing publishes the address: an email typed into it would be published with it.
        ({"url": "ann@example.com"}, "url", "url must be a web address without a user name or password"),
        ({"url": "mailto:ann@example.com"}, "url", "url must be a web address without a user name"),
        ({"url": "https://bank.example@evil.example/"}, "url", "url must be a web address without a user"),
        # The listing publishes the name too, and shows it to moderators unmasked.
        ({"name": "ann@example.com"}, "name", "name must not hold an email address"),
        ({"name": "Ann (Ann.Reader@Example.com)"}, "name", "name must not hold an email address"),
        ({"url": "http://user:secret@blog.example/"}, "url", "url must be a web address without a user"),
        ({"parent_id": "abc"}, "parent_id", "parent_id must be a comment id"),
        ({"parent_id": 0}, "parent_id", "parent_id must be a comment id"),
        ({"parent_id": True}, "parent_id", "parent_id must be a comment id"),
        ({"parent_id": "²"}, "parent_id", "parent_id must be a comment id"),  # isdigit() but not int()
        (
            {"parent_id": "9" * 5000},
            "parent_id",
            "parent_id must be a comment id",
        ),  # past int()'s digit limit
        ({"parent_id": 2**63}, "parent_id", "parent_id must be a comment id"),  # past a 64-bit column
        ({"parent_id": 7.5}, "parent_id", "parent_id must be a comment id"),
        ({"parent_id": float("inf")}, "parent_id", "parent_id must be a comment id"),
        ({"parent_id": 1e19}, "parent_id", "parent_id must be a comment id"),  # past a 64-bit column
        ({"name": "\ud800"}, "name", "name is not valid Unicode (it holds a lone surrogate)"),
        ({"email": "a\udfff@b.com"}, "email", "email is not valid Unicode (it holds a lone surrogate)"),
        ({"comment": "x\ud800y"}, "comment", "comment is not valid Unicode (it holds a lone surrogate)"),
        ({"thread": "/a/\udc80"}, "thread", "thread is not valid Unicode (it holds a lone surrogate)"),
        ({"url": "http://a.example/\ud800"}, "url", "url is not valid Unicode (it holds a lone surrogate)"),
    ],
)
def test_each_problem_is_named(changes: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_submission(_with(**changes))
    assert caught.value.problems[field].startswith(message)


@pytest.mark.parametrize(
    ("changes", "advice"),
    [
        ({"name": " "}, {"name": "Name: Please fill this in."}),
        ({"name": "x" * 250}, {"name": "Name: This is too long; shorten it by about 5 characters."}),
        (
            {"name": "bad\x00name"},
            {"name": "Name: This contains invisible control characters; type it again."},
        ),
        ({"email": "nope"}, {"email": "Email: An email address must have an @-sign."}),
        # Under the character limit, over the byte limit: 7,238 "é" (2 bytes each) must go.
        (
            {"comment": "é" * 40_000},
            {"comment": "Comment: This is too long; shorten it by about 7,238 characters."},
        ),
        # Over both: cutting to 65,525 characters still leaves too many bytes.
        (
            {"comment": "é" * 70_000},
            {"comment": "Comment: This is too long; shorten it by about 37,238 characters."},
        ),
        (
            {"comment": "x" * 65_000 + "€" * 200},
            {"comment": "Comment: This is too long; shorten it by about 25 characters."},
        ),
        (
            {"url": "ftp://files.example"},
            {"url": "Website: Enter a web address starting with http:// or https://, or leave this empty."},
        ),
        (
            {"url": "http://[::1"},
            {"url": "Website: Enter a web address starting with http:// or https://, or leave this empty."},
        ),
        (
            {"url": "ann@example.com"},
            {"url": "Website: Enter your website's address here, not an email address, or leave this empty."},
        ),
        ({"name": "ann@example.com"}, {"name": "Name: Enter your name here, not an email address."}),
        # Hidden fields get no advice: a commenter cannot fix them (the page says the form is broken).
        ({"thread": "", "parent_id": "x"}, {}),
    ],
)
def test_commenters_are_told_what_to_fix_by_the_field_label(
    changes: dict[str, Any], advice: dict[str, str]
) -> None:
    with pytest.raises(SubmissionError) as caught:
        parse_submission(_with(**changes))
    assert caught.value.advice == advice
    assert set(caught.value.problems) == {*changes}


def test_the_thread_key_is_cleaned_by_the_function_lookups_share() -> None:
    assert thread_key(" cafe\u0301 ") == "café" == parse_submission(_with(thread=" cafe\u0301 ")).thread
    with pytest.raises(ValueError, match="is required"):
        thread_key("  ")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_submission({"comment": "hi"})
    assert set(caught.value.problems) == {"name", "email", "thread"}


def test_optional_fields() -> None:
    submission = parse_submission(_with(url="blog.example/me", parent_id="7", submit="Post Comment"))
    assert submission.url == "http://blog.example/me"
    assert submission.parent_id == 7
    assert parse_submission(_with(url="", parent_id="")).url is None


def test_a_parent_id_of_spaces_is_none_as_an_empty_one_is() -> None:
    # As an empty seconds_to_submit is: a hidden field a page filled with a space says nothing.
    assert parse_submission(_with(parent_id=" \t")).parent_id is None


def test_an_at_sign_after_the_host_is_part_of_a_website() -> None:
    # Profile pages are written so (a Mastodon account); only one before the host is refused.
    assert parse_submission(_with(url="https://social.example/@ann")).url == "https://social.example/@ann"
    assert parse_submission(_with(url="blog.example/?by=ann@x")).url == "http://blog.example/?by=ann@x"


@pytest.mark.parametrize("name", ["@ann", "Ann @ the harbour", "ann@home", "Ann.Reader"])
def test_a_name_may_hold_an_at_sign_that_is_no_email_address(name: str) -> None:
    assert parse_submission(_with(name=name)).name == name


def test_characters_a_url_cannot_hold_are_escaped_after_its_host() -> None:
    url = parse_submission(_with(url='blog.example/a"b<c>d`e{f}g|h\\i^j\'k?q="x"#<y>')).url
    assert url == "http://blog.example/a%22b%3Cc%3Ed%60e%7Bf%7Dg%7Ch/i%5Ej%27k?q=%22x%22#%3Cy%3E"
    assert parse_submission(_with(url="https://blog.example/caf%C3%A9?a=1&b=2#top")).url == (
        "https://blog.example/caf%C3%A9?a=1&b=2#top"
    )


# Marks of two combining classes in the order NFC must reverse: CPython sorts them by
# insertion, so normalising a run of n of them takes time that grows with n squared.
def _reversed_marks(count: int) -> str:
    return "a" + "\u0300" * (count // 2) + "\u0316" * (count // 2)


@pytest.mark.parametrize("field", ["name", "email", "comment", "thread", "url"])
def test_a_field_stacking_more_marks_than_unicode_allows_is_refused_before_it_is_normalised(
    field: str,
) -> None:
    # 120,000 marks (a 240 KB body) kept a web process busy for 28 s before they were refused;
    # 40,000 took 3 s.
    raw = _reversed_marks(40_000)
    with pytest.raises(SubmissionError) as caught:
        parse_submission(_with(**{field: f"http://{raw}.example" if field == "url" else raw}))
    assert caught.value.problems[field] == f"{field} stacks more than 30 combining marks on one character"
    if field != "thread":
        label = {"name": "Name", "email": "Email", "comment": "Comment", "url": "Website"}[field]
        advice = "This stacks too many accents or marks on one letter; type it again."
        assert caught.value.advice[field] == f"{label}: {advice}"


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("plain ASCII " * 1000, True),
        ("Tiếng Việt có dấu, Ελληνικά, हिन्दी, 한국어", True),
        ("a" + "\u0301" * 30, True),  # Unicode's stream-safe limit, still taken
        ("a" + "\u0301" * 31, False),
        ("a" + "\u0300\u0316" * 16, False),
        # Starters whose compatibility decomposition is a mark: the classifier's NFKC would
        # make a run of them in text that NFC leaves alone.
        ("a" + "\u0301\uff9e" * 16, False),
        ("\u0f73" * 31, False),
        (("a" + "\u0301" * 30) * 100, True),
        # Past the BMP: emoji are no marks; Brahmi's virama and the musical symbols' are.
        ("\U0001f600" * 40 + "\u0301", True),
        ("\U0001f600" * 40 + "\U00011046" * 31, False),
        ("a" + "\u0301\U0001d167" * 16, False),
    ],
)
def test_stream_safe_counts_the_marks_normalisation_reorders(text: str, safe: bool) -> None:
    assert stream_safe(text) is safe


def test_comment_may_keep_newlines_and_tabs() -> None:
    assert parse_submission(_with(comment="a\tb\nc")).comment == "a\tb\nc"


def test_invisible_characters_are_kept_beside_visible_ones() -> None:
    # Joiners build emoji and Persian words; right-to-left text may embed left-to-right.
    family, persian = (
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    )
    submission = parse_submission(_with(name=persian, comment=f"{family} \u202bquoted\u202c"))
    assert (submission.name, submission.comment) == (persian, f"{family} \u202bquoted\u202c")
    assert parse_submission(_with(url="\u200b")).url is None


def test_comment_at_the_byte_limit_is_accepted() -> None:
    assert len(parse_submission(_with(comment="x" * COMMENT_MAX_BYTES)).comment) == COMMENT_MAX_BYTES


def test_a_parent_id_written_with_a_zero_fraction_is_that_id() -> None:
    # JSON has one kind of number: 7.0 is the number 7, an integer to JSON Schema too.
    assert parse_submission(_with(parent_id=7.0)).parent_id == 7


def test_the_largest_64_bit_parent_id_is_accepted() -> None:
    assert parse_submission(_with(parent_id=str(2**63 - 1))).parent_id == 2**63 - 1
    assert parse_submission(_with(parent_id="007")).parent_id == 7


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (None, None),
        ("", None),
        (" ", None),
        (0, 0.0),
        (42, 42.0),
        (" 12.5 ", 12.5),
        # Trimmed as every field is, by all that Python counts as space: float() alone trims less.
        ("\x1f\u2028 12.5\x0b", 12.5),
        (3600.25, 3600.25),
    ],
)
def test_the_time_taken_to_post_is_read_in_seconds(raw: Any, seconds: float | None) -> None:
    assert parse_submission(_with(seconds_to_submit=raw)).seconds_to_submit == seconds


@pytest.mark.parametrize(
    "raw", ["soon", "-5", -0.5, "1e3", "1_000", "\uff11", float("nan"), float("inf"), 10**400, True, [1]]
)
def test_a_time_taken_to_post_that_is_no_time_is_refused(raw: Any) -> None:
    with pytest.raises(SubmissionError) as refused:
        parse_submission(_with(seconds_to_submit=raw))
    assert refused.value.problems == {
        "seconds_to_submit": "seconds_to_submit must be the seconds from the form being shown to its "
        "sending, 0 or more"
    }
    assert refused.value.advice == {}  # a hidden field: the page is broken, not the commenter's typing


@pytest.mark.parametrize(
    ("text", "clamp", "outcome"),
    [
        ("1", False, 1),
        ("0010", False, 10),
        ("10", False, 10),
        ("11", False, "must be at most 10"),
        ("9" * 5000, False, "must be at most 10"),
        ("9" * 5000, True, 10),
        ("0", False, "must be a whole number of at least 1"),
        ("", False, "must be a whole number of at least 1"),
        ("²", False, "must be a whole number of at least 1"),
        ("\u0661", False, "must be a whole number of at least 1"),  # an Arabic-Indic one: int() reads it
        ("-1", False, "must be a whole number of at least 1"),
        (" 1", False, "must be a whole number of at least 1"),
    ],
)
def test_whole_number_takes_ascii_digits_within_bounds(text: str, clamp: bool, outcome: int | str) -> None:
    if isinstance(outcome, int):
        assert whole_number(text, 10, clamp=clamp) == outcome
        return
    with pytest.raises(ValueError, match=outcome):
        whole_number(text, 10, clamp=clamp)


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        (None, None),
        ("", None),
        (" \r\n\t ", None),  # only blanks: no note at all
        ("  seen twice\r\nsame text  ", "seen twice\nsame text"),
    ],
)
def test_a_moderator_note_is_trimmed_and_a_blank_one_is_none(raw: str | None, note: str | None) -> None:
    assert moderator_note(raw) == note
