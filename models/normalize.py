# ruff: noqa: RUF001, RUF002 - this module lists look-alike letters on purpose
"""Text normalization that undoes the usual obfuscations before features are taken.

Spammers and abusers write `v1agra`, `f r e e`, `f.r.e.e`, `ｆｒｅｅ`, `іdiot` (Cyrillic і)
or hide zero-width characters inside words so that a word list, or a model trained on
plain text, misses them. `normalize_text` maps all of those to the plain spelling, so
the model learns one feature per word instead of one per disguise.

Every step is a precompiled regular expression or a `str.translate` table, and a step
that cannot change a text (no link hint, no spaced letters, no digit beside a letter,
no run of three, no non-ASCII character) is skipped after a cheap test: normalizing a
corpus comment takes 15 to 30 microseconds, depending on the moment of this machine,
which matters because the same function runs for every comment at serving time.

Runs of three or more of one character are cut to two, which keeps `good` and `cool`;
a word whose run was of a letter is also given with that run cut to one, placed before
it (`moooron` -> `moron mooron`), so a word whose letter was single is restored too.
"""

from __future__ import annotations

import json
import re
import unicodedata
from importlib.resources import files

# Characters that render as nothing (or as a soft hyphen) and are used to split words
# so that "vi\u200bagra" escapes a word match. Variation selectors too, which only pick
# a glyph's style (an emoji's colour form) and slip into a word unseen ("id\ufe0fiot").
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e"
        "\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\ufeff"
        + "".join(map(chr, range(0xFE00, 0xFE10)))
        + "".join(map(chr, range(0xE0100, 0xE01F0))),
    ),
    None,
)

# Control characters other than whitespace: they render as nothing, as the invisible
# ones do, and the stored vocabulary (NumPy strings) cannot keep a term ending in NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def _unicode_look_alikes() -> dict[str, str]:
    """Unicode's confusable characters (UTS #39's confusables.txt, as the
    confusable-homoglyphs package ships it) that look like an ASCII letter or digit,
    each mapped to it in lower case, as the text is case-folded by then (Cherokee "Ꭺ"
    looks like "A" and is read as "a"): Cyrillic, Greek, Cherokee, Armenian, Lisu,
    Canadian syllabics and more. Only characters that case folding keeps and NFKC does
    not already make ASCII, as only those reach the folding below."""
    data = json.loads(files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    folded: dict[str, str] = {}
    for character, look_alikes in data.items():
        if len(character) != 1 or character.isascii() or character != character.casefold():
            continue
        if unicodedata.normalize("NFKC", character).isascii():
            continue
        for look_alike in (entry["c"] for entry in look_alikes):
            if len(look_alike) == 1 and look_alike.isascii() and look_alike.isalnum():
                folded[character] = look_alike.lower()
                break
    return folded


# Look-alike letters from other scripts, folded to the Latin letter they imitate:
# Unicode's list, and the lower-case forms it leaves out that are used the same way (the
# small-capital shapes of Cyrillic "в", "н", "т", letters with a stroke). Applied after
# case folding, so only lower-case forms are listed. Folding is applied to every word,
# not only to mixed-script ones: the mapping is deterministic, so text that is genuinely
# Cyrillic or Greek still maps every word to one consistent token.
_CONFUSABLES = str.maketrans(
    _unicode_look_alikes()
    | {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "һ": "h",
        "н": "h",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "к": "k",
        "ӏ": "l",
        "м": "m",
        "о": "o",
        "р": "p",
        "ԁ": "d",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "ԛ": "q",
        "ԝ": "w",
        "ь": "b",
        "г": "r",
        "п": "n",
        "и": "u",
        "з": "3",
        "ч": "4",
        # Greek
        "α": "a",
        "β": "b",
        "γ": "y",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "μ": "u",
        "ς": "s",
        # Latin letters that have no decomposition, so accent folding misses them
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ħ": "h",
        "ŧ": "t",
        "ƒ": "f",
        "ɑ": "a",
        "ɡ": "g",
        "ɩ": "i",
        "ɪ": "i",
        "ʏ": "y",
        "ᴀ": "a",
        "ᴇ": "e",
        "ᴏ": "o",
    }
)

_COMBINING_MARKS = re.compile("[\u0300-\u036f]+")
# Whether a text holds any character the tables above would change: most non-ASCII text
# (accents, emoji, quotation marks) holds none, and a search is cheaper than a translate.
_HAS_INVISIBLE = re.compile("[" + "".join(map(chr, _INVISIBLE)) + "]")
_HAS_CONFUSABLE = re.compile("[" + "".join(re.escape(chr(code)) for code in _CONFUSABLES) + "]")


def _fold_confusables(text: str) -> str:
    return text.translate(_CONFUSABLES) if _HAS_CONFUSABLE.search(text) else text


# Leetspeak: digits and symbols standing in for letters. Only applied inside words that
# also contain letters, so prices, years and phone numbers are left alone.
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "9": "g",
        "$": "s",
        "@": "a",
        "!": "i",
        "|": "l",
        "€": "e",
    }
)
# The look-behind makes the search start only at word starts, which keeps it linear.
_LEET_WORD = re.compile(r"(?<![a-z0-9$@!|€])[a-z0-9$@!|€]*(?:[a-z][0-9$@!|€]|[0-9$@!|€][a-z])[a-z0-9$@!|€]*")
# These stand for letters only between letters: "free!!!" keeps its exclamation marks.
_EDGE_ONLY = "!@|"

# Three or more single letters separated by one repeated separator: "f r e e", "f.r.e.e",
# "i_d_i_o_t".
_SPACED_LETTERS = re.compile(r"\b[^\W_](?P<sep>[ .*\-_])[^\W_](?:(?P=sep)[^\W_])+\b")
# Digits are left out so that phone numbers such as 555-0100 keep their shape.
_REPEATS = re.compile(r"(\D)\1{2,}")
# A run of three or more of one letter: "moooron", "chaaaannel", "goooood".
_LETTER_RUN = re.compile(r"([^\W\d_])\1{2,}")
_WORD_WITH_LETTER_RUN = re.compile(r"(?<!\S)\S*?([^\W\d_])\1{2,}\S*")
# Cheap tests that let most comments skip a step whose pattern cannot match them.
# Any character three times over, digits too: a class such as \D makes the search
# twice as slow, and the steps it lets through look at the run again.
_RUN_HINT = re.compile(r"(.)\1\1", re.DOTALL)
_LEET_HINT = re.compile(r"[a-z][0-9$@!|€]|[0-9$@!|€][a-z]")

# Top-level domains recognized without a scheme ("cheap-pills.ru"). A fixed list, matched
# in lower case only, keeps a sentence that lacks a space after its full stop
# ("the end.It was") from being read as a link.
_TLDS = (
    "com|net|org|info|biz|ru|su|ua|io|co|us|uk|de|fr|it|nl|pl|es|eu|ca|au|jp|cn|in|br|"
    "xyz|top|online|site|club|shop|store|live|me|tk|ml|ga|cf|gq|pw|ly|gl|cc|tv|ws|win|"
    "bid|loan|click|link|app|dev|ai|to|gd|am|fm|sh|news|blog|icu|buzz|cyou|rest|fun|"
    "space|website|tech|pro|vip|work|life|today|world|email|example"
)
URL_PATTERN = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+"
    rf"|(?<![\w.@-])(?:[a-z0-9][a-z0-9-]*\.)+(?-i:{_TLDS})\b(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
# Every link URL_PATTERN finds contains "://", "www." or "." before a known top-level
# domain; a text with none of them skips the (slower) full pattern.
_URL_HINT = re.compile(rf"://|www\.|\.(?:{_TLDS})\b", re.IGNORECASE)
# Bounded by the lengths RFC 5321 allows (a local part of 64 characters, labels of 63,
# a domain of 253). Unbounded, a failed match was retried from every word boundary of a
# long run such as "a.a.a.…@": quadratic, a 64 KB comment took seconds to normalize.
EMAIL_PATTERN = re.compile(
    r"\b[a-z0-9._%+-]{1,64}@((?:[a-z0-9-]{1,63}\.){1,126}[a-z]{2,63})\b", re.IGNORECASE
)
_SCHEME = re.compile(r"^(?:https?://)?(?:www\.)?", re.IGNORECASE)
_HOST_END = re.compile(r"[/?#:]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_PATH_WORD = re.compile(r"[a-z]{3,20}")

URL_MARKER = "urltoken"
EMAIL_MARKER = "emailtoken"
DOMAIN_PREFIX = "domain_"


def url_domain(url: str) -> str:
    """Return the lower-cased host of `url` without `www.` ("https://www.Ex.com/a" -> "ex.com")."""
    rest = _SCHEME.sub("", url.strip().rstrip(".,;:!?)]}'\""))
    return _HOST_END.split(rest, maxsplit=1)[0].lower()


def domain_token(domain: str) -> str:
    """Return the single word that stands for `domain` in normalized text."""
    folded = domain.casefold().translate(_CONFUSABLES)
    return DOMAIN_PREFIX + _NON_ALNUM.sub("_", folded).strip("_")


def find_urls(text: str) -> list[str]:
    """Return the links in `text`, with or without a scheme, in order of appearance."""
    if not _URL_HINT.search(text):
        return []
    return URL_PATTERN.findall(text)


def _replace_url(match: re.Match[str]) -> str:
    url = match.group(0)
    host = url_domain(url)
    path = url[url.lower().find(host) + len(host) :] if host else ""
    # Words in the path ("/buy-cheap-pills") are often the spam itself; query strings
    # and ids are noise, so only short alphabetic runs before any "?" are kept.
    words = _PATH_WORD.findall(path.split("?", 1)[0].lower())
    return f" {URL_MARKER} {domain_token(host)} {' '.join(words)} "


def _replace_email(match: re.Match[str]) -> str:
    return f" {EMAIL_MARKER} {domain_token(match.group(1))} "


def _join_letters(match: re.Match[str]) -> str:
    return match.group(0).replace(match.group("sep"), "")


def _fold_leet(match: re.Match[str]) -> str:
    word = match.group(0)
    core = word.strip(_EDGE_ONLY)
    if not core:
        return word
    start = word.find(core)
    return word[:start] + core.translate(_LEET) + word[start + len(core) :]


def fold_unicode(text: str) -> str:
    """Remove invisible characters, apply NFKC and fold accents (case is kept)."""
    if text.isascii():
        return text  # nothing invisible, nothing to fold
    if _HAS_INVISIBLE.search(text):
        text = text.translate(_INVISIBLE)
    if not text.isascii():
        # NFKC maps fullwidth and mathematical letters to plain ones; NFD then splits
        # accents off so "fréé" and "free" meet; NFC puts other scripts back together.
        text = unicodedata.normalize("NFKC", text)
        text = _COMBINING_MARKS.sub("", unicodedata.normalize("NFD", text))
        text = unicodedata.normalize("NFC", text)
    return text


def _both_forms(match: re.Match[str]) -> str:
    # "moooron" -> "moron mooron": the run cut to one restores a word whose letter was
    # single ("moron"), the run cut to two keeps one whose letter was double ("good").
    word = match.group(0)
    return _LETTER_RUN.sub(r"\1", word) + " " + word


def _one_form(match: re.Match[str]) -> str:
    return _LETTER_RUN.sub(r"\1", match.group(0))


def _fold_runs(text: str) -> tuple[str, str]:
    """Cut runs of three or more characters to two, giving a word with a drawn-out letter
    in both forms (`_both_forms`), and in the second text in the one-letter form only."""
    if not _RUN_HINT.search(text):
        return text, text
    # Most runs are of punctuation or spaces ("...", "!!!"); then both texts are the same,
    # and the word pattern, which tries every word, is not needed.
    if not _LETTER_RUN.search(text):
        folded = _REPEATS.sub(r"\1\1", text)
        return folded, folded
    both = _REPEATS.sub(r"\1\1", _WORD_WITH_LETTER_RUN.sub(_both_forms, text))
    return both, _REPEATS.sub(r"\1\1", _WORD_WITH_LETTER_RUN.sub(_one_form, text))


def normalize_text(text: str) -> str:
    """Return `text` with obfuscations undone, ready for word and character n-grams.

    >>> normalize_text("Fr33 V1AGRA at https://www.Cheap-Pills.ru/buy now!!!!!")
    'free viagra at urltoken domain_cheap_pills_ru buy now!!'
    >>> normalize_text("what a moooron")
    'what a moron mooron'
    """
    return normalize_forms(text)[0]


def normalize_forms(text: str) -> tuple[str, str]:
    """`normalize_text(text)`, and the same text with a drawn-out letter cut to one only.

    The second serves the pretrained token vectors, which read a word for its meaning:
    there both forms of a drawn-out word would be two words, and the made-up one
    (`mooron`) moves the comment's meaning. Both come from one pass over the text.

    >>> normalize_forms("what a moooron!!!")
    ('what a moron!! mooron!!', 'what a moron!!')
    """
    if _CONTROL.search(text):  # rare: a search is cheaper than a substitution
        text = _CONTROL.sub("", text)
    # Every step below that handles invisible characters, look-alike letters or
    # accents is a no-op on plain ASCII text, which is most comments.
    ascii_only = text.isascii()
    if not ascii_only:
        # Look-alike letters are folded once before link detection too, so that a
        # domain spelled with Cyrillic letters is still recognized as a link.
        text = _fold_confusables(fold_unicode(text))
    # Addresses and links before case folding (bare domains are recognized by their
    # lower-case ending) and before the steps that rewrite dots and digits. Each becomes
    # a marker word plus its domain, so domains can be learned.
    if "@" in text:
        text = EMAIL_PATTERN.sub(_replace_email, text)
    if _URL_HINT.search(text):
        text = URL_PATTERN.sub(_replace_url, text)
    text = text.lower() if ascii_only else _fold_confusables(text.casefold())
    if _SPACED_LETTERS.search(text):  # rare: a search is cheaper than a substitution
        text = _SPACED_LETTERS.sub(_join_letters, text)
    if _LEET_HINT.search(text):
        text = _LEET_WORD.sub(_fold_leet, text)
    both, one = _fold_runs(text)
    joined = " ".join(both.split())
    # `_fold_runs` gives one text twice unless a letter is drawn out.
    return joined, (joined if one is both else " ".join(one.split()))


def normalize_author(author: str, url: str = "") -> str:
    """Return the author name (and website domain, if any) normalized like comment text."""
    parts = [normalize_text(author)]
    if url.strip():
        parts.append(domain_token(url_domain(url)))
    return " ".join(part for part in parts if part)
