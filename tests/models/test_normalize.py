"""Normalization undoes obfuscation and leaves ordinary text readable."""

from __future__ import annotations

import pytest

from models.normalize import (
    EMAIL_PATTERN,
    domain_token,
    find_urls,
    normalize_author,
    normalize_forms,
    normalize_text,
    url_domain,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Buy V1AGRA now", "buy viagra now"),
        ("fr33 m0ney", "free money"),
        ("ca$h prizes", "cash prizes"),
        ("you are an 1d10t", "you are an idiot"),
        ("h@ck", "hack"),
        ("f r e e  m o n e y", "free money"),
        ("f.r.e.e", "free"),
        ("f-r-e-e stuff", "free stuff"),
        ("you i_d_i_o_t", "you idiot"),
        ("snake_case_name", "snake_case_name"),  # words, not single letters: kept
        ("you id\ufe0fiot", "you idiot"),  # a variation selector inside a word
        ("love it \u2764\ufe0f", "love it \u2764"),  # an emoji's colour form: the same emoji
        ("\u0456diot", "idiot"),  # Cyrillic i
        ("\u0455\u0435x", "sex"),  # Cyrillic s and e
        ("\u03bfk", "ok"),  # Greek omicron
        # Unicode's confusables beyond Cyrillic and Greek: Cherokee capitals and the small
        # letters that case folding turns into them, Armenian, Lisu.
        ("\u13aa\u13de\u13ac\u13a1\u13a2", "alert"),
        ("\uab83\uab8b\uab7a\uab72", "what"),
        ("\u0585nline", "online"),
        ("\ua4e2\ua4f3\ua4e0\ua4f0", "sone"),
        ("\uff26\uff32\uff25\uff25", "free"),  # fullwidth
        ("\U0001d41f\U0001d42b\U0001d41e\U0001d41e", "free"),  # mathematical bold
        ("vi\u200bag\u200dra", "viagra"),  # zero-width characters
        ("great video\x00", "great video"),  # control characters
        ("v\x01i\x7fagra\x85", "viagra"),
        ("caf\u00e9\x00", "cafe"),
        ("fr\u00e9\u00e9", "free"),  # accents
        # A run of three or more letters gives both the one- and the two-letter form,
        # since either may be the real word ("moron", "good").
        ("sooooo goooood", "so soo god good"),
        ("what a moooron", "what a moron mooron"),
        ("chaaaannel!!!", "channel!! chaannel!!"),
        ("good cool", "good cool"),
        ("wow!!!!!!", "wow!!"),
        ("free!!! now", "free!! now"),
        ("s|ut| free|", "slut| free|"),  # "|" is a letter only between letters, as "!" and "@" are
        ("cost $100 in 2024", "cost $100 in 2024"),
        ("win 1000000 now...", "win 1000000 now.."),  # digit runs are kept
        ("lines\n\n\n\napart", "lines apart"),
        ("call 555-123-4567", "call 555-123-4567"),
        ("e.g. this", "e.g. this"),
        ("the end.It was", "the end.it was"),
        ("  many   spaces\n\there ", "many spaces here"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("see https://www.Cheap-Pills.ru/buy-now?id=7", "see urltoken domain_cheap_pills_ru buy now"),
        ("visit cheap-pills.ru today", "visit urltoken domain_cheap_pills_ru today"),
        ("go to www.example.com.", "go to urltoken domain_example_com"),
        ("mail joe@gmail.com", "mail emailtoken domain_gmail_com"),
        ("visit \u0435x\u0430mple.com", "visit urltoken domain_example_com"),  # Cyrillic e, a
        # A host ending in a letter no table folds: the token has no "_" at its end.
        ("see http://shop.\u0440\u0444/buy", "see urltoken domain_shop_p buy"),
    ],
)
def test_urls_become_marker_and_domain(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_emails_within_rfc_lengths_are_found_whole() -> None:
    local = "a." * 31 + "bc"  # 64 characters, the most RFC 5321 allows
    assert EMAIL_PATTERN.fullmatch(f"{local}@mail.example.com")
    # A longer local part is not an address; only its last stretch after a word
    # boundary, within the limit, can still read as one.
    match = EMAIL_PATTERN.search(f"x{local}@mail.example.com")
    assert match is not None and len(match.group(0)) < len(f"x{local}@mail.example.com")
    assert not EMAIL_PATTERN.search("x" * 65 + "@mail.example.com")


# A guard against a hang, not a speed target: unbounded, the email pattern retried a
# failed match from every word boundary of such a run: about 20 s at 64 KB.
@pytest.mark.timeout(5)
@pytest.mark.parametrize("tail", ["@", "@x.", "@x.c"])
def test_long_runs_before_an_at_sign_are_normalized_in_linear_time(tail: str) -> None:
    body = "a." * 32_000 + tail
    assert "emailtoken" not in normalize_text(body)


def test_disguises_meet_their_plain_form() -> None:
    plain = normalize_text("free money, you idiot")
    for disguised in ("fr33 m0ney, y0u 1d10t", "FREE MONEY, YOU IDIOT", "f r e e money, you \u0456diot"):
        assert normalize_text(disguised) == plain


def test_repeated_letters_restore_the_plain_word() -> None:
    for disguised, plain in (("moooron", "moron"), ("idiooooot", "idiot"), ("freeeee", "free")):
        assert plain in normalize_text(disguised).split()


@pytest.mark.parametrize(
    ("raw", "both", "one"),
    [
        ("what a moooron!!!", "what a moron!! mooron!!", "what a moron!!"),
        ("baaaalls", "balls baalls", "balls"),  # a letter doubled in the word stays doubled
        ("no runs here", "no runs here", "no runs here"),
        ("wait... what??? 1000", "wait.. what?? 1000", "wait.. what?? 1000"),
    ],
)
def test_the_meaning_form_keeps_one_form_of_a_drawn_out_word(raw: str, both: str, one: str) -> None:
    assert normalize_forms(raw) == (both, one)
    assert normalize_text(raw) == both


def test_url_helpers() -> None:
    assert url_domain("HTTPS://www.Example.com:8080/path") == "example.com"
    assert domain_token("bit.ly") == "domain_bit_ly"
    assert domain_token("-cheap-pills-.example") == "domain_cheap_pills_example"
    assert find_urls("a http://x.com/1 and y.ru, not end.It") == ["http://x.com/1", "y.ru"]


def test_normalize_author_adds_website_domain() -> None:
    assert normalize_author("Cheap SEO", "https://seo.example/") == "cheap seo domain_seo_example"
    assert normalize_author("", "") == ""
