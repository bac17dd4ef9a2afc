"""A hand-written word list of insults and swear words, counted in normalized text.

The n-gram branches learn each word separately, so an insult that is rare in the
labels (`nitwit`, `cretin`) gets little weight however plainly it is one. Counting
the words of a list written by hand gives every listed word the weight of the whole
list, and a third count, insulting or swear words shortly after `you`/`your`, tells an
insult aimed at the reader ("you are a pathetic liar") from one about a third person
or a swear word used for emphasis.

The lists are matched against `normalize_text` output, so `1d10t`, `idiot` spelled
with a Cyrillic i, and `i d i o t` are all found as `idiot`. A stem matches the words that start
with it (`idiot` -> `idiots`, `idiotic`); stems that are also the start of ordinary
words (`ass` -> `assume`, `hell` -> `hello`) match only as whole words or with a
short ending. Swear stems that are seldom part of an innocent word (`fuck`, `shit`)
match anywhere inside a word (`dumbfuck`, `bullshit`).

Beside the lists, the negative entries of VADER's sentiment lexicon (Hutto and Gilbert
2014, the `vaderSentiment` package, MIT; only its word list is used, not its rules, which
cost about 200 microseconds a comment) are summed: how negative the wording is, whatever
words carry it ("hate", "disgrace", "kill"). Its positive entries were measured too and
left out: they lowered the YouTube spam figures ("love this song" is written by people
and bots alike).

Counting is per word and each distinct word is looked up once (a bounded cache), so
it costs a dictionary lookup per word at serving time.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Final

# Stems matched at the start of a word: insults aimed at a person.
_INSULT_STEMS: Final = [
    "idiot",
    "moron",
    "stupid",
    "loser",
    "imbecil",
    "cretin",
    "dimwit",
    "halfwit",
    "nitwit",
    "dipshit",
    "jackass",
    "asshole",
    "arsehole",
    "dickhead",
    "douche",
    "cunt",
    "twat",
    "wanker",
    "bastard",
    "bitch",
    "slut",
    "whore",
    "scum",
    "clown",
    "coward",
    "hypocrit",
    "ignorant",
    "pathetic",
    "worthless",
    "disgusting",
    "ugly",
    "garbage",
    "freak",
    "pervert",
    "psycho",
    "lunatic",
    "bigot",
    "racist",
    "nazi",
    "nigger",
    "nigga",
    "tranny",
    "sucker",
    "shithead",
    "numbnut",
    "maggot",
    "vermin",
    "parasite",
    "degenerate",
    "incompetent",
    "brainless",
    "clueless",
    "ignoramus",
    "buffoon",
    "simpleton",
    "scumbag",
    "lowlife",
    "sleaze",
    "skank",
    "libtard",
    "snowflake",
    "traitor",
    "savage",
    "nutjob",
    "weirdo",
    "sissy",
    "pussy",
    "bimbo",
]
# Short insults that start ordinary words too (`pig` -> `pigment`, `dumb` -> `dumbbell`,
# `prick` -> `prickly`, `creep` -> `creeping`, `retard` -> `retardant`): whole words only.
_INSULT_WORDS: Final = frozenset(
    [
        "dumb",
        "dumber",
        "dumbest",
        "dumbass",
        "prick",
        "pricks",
        "creep",
        "creeps",
        "creepy",
        "retard",
        "retards",
        "retarded",
        "ass",
        "asses",
        "pig",
        "pigs",
        "rat",
        "rats",
        "fat",
        "hoe",
        "hoes",
        "gay",
        "fag",
        "fags",
        "faggot",
        "faggots",
        "homo",
        "hag",
        "witch",
        "loon",
        "fool",
        "fools",
        "foolish",
        "jerk",
        "jerks",
        "liar",
        "liars",
        "lying",
        "troll",
        "trolls",
        "crook",
        "crooks",
        "thug",
        "thugs",
        "trash",
        "trashy",
        "dolt",
        "dunce",
        "turd",
        "turds",
        "wimp",
        "queer",
        "cuck",
    ]
)
# Swear stems matched anywhere inside a word.
# `fsck` is `f$ck` after leetspeak folding ($ -> s).
_SWEAR_INFIXES: Final = ("fuck", "shit", "bullshit", "motherf", "fck", "fsck", "effing")
# Ordinary words that hold a swear infix or stem (`Fukushima` would hold `fuk`, which
# is matched whole for that reason).
_NOT_SWEARS: Final = frozenset(["shitake", "shiitake"])
# Short swear words matched whole or with a plain ending (`sucks`, `damned`, not `hello`).
_SWEAR_WORDS: Final = (
    "crap",
    "damn",
    "piss",
    "cock",
    "suck",
    "screw",
    "hell",
    "bloody",
    "stfu",
    "gtfo",
    "wtf",
    "fuk",
    "fukin",
    "fuking",
)
_SWEAR_ENDINGS: Final = ("", "s", "ed", "ing", "er", "ers", "y", "ty")
# Words that address the reader; an insult within `AIMED_WINDOW` words after one of
# them counts as aimed.
_SECOND_PERSON: Final = frozenset(
    [
        "you",
        "your",
        "youre",
        "ur",
        "u",
        "yourself",
        "yourselves",
        "ya",
        "yall",
        "thou",
        "yours",
        "urself",
        "ye",
    ]
)
AIMED_WINDOW: Final = 4

_INSULT_START = re.compile("|".join(_INSULT_STEMS))
_SWEAR_INSIDE = re.compile("|".join(_SWEAR_INFIXES))
_SWEAR_WHOLE = frozenset(word + ending for word in _SWEAR_WORDS for ending in _SWEAR_ENDINGS)
_WORD = re.compile(r"\w+")

NEUTRAL, INSULT, SWEAR, SECOND_PERSON = 0, 1, 2, 3
# Bound on cached words, as for the character n-gram cache: emptied when full.
_CACHE_SIZE = 100_000
_kinds: dict[str, tuple[int, float]] = {}


@cache
def negative_valences() -> dict[str, float]:
    """VADER's negative words with the size of their valence (`hate` -> 2.7), read once."""
    text = files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    valences: dict[str, float] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and float(fields[1]) < 0:
            valences[fields[0]] = -float(fields[1])
    return valences


def word_kind(word: str) -> int:
    """Classify one normalized word: `INSULT`, `SWEAR`, `SECOND_PERSON` or `NEUTRAL`."""
    return _lookup(word)[0]


def _lookup(word: str) -> tuple[int, float]:
    """(kind, negative valence) of one normalized word, cached."""
    known = _kinds.get(word)
    if known is not None:
        return known
    if word in _SECOND_PERSON:
        kind = SECOND_PERSON
    elif word in _INSULT_WORDS or _INSULT_START.match(word):
        kind = INSULT
    elif word in _SWEAR_WHOLE or (_SWEAR_INSIDE.search(word) and word not in _NOT_SWEARS):
        kind = SWEAR
    else:
        kind = NEUTRAL
    if len(_kinds) >= _CACHE_SIZE:
        _kinds.clear()
    known = _kinds[word] = (kind, negative_valences().get(word, 0.0))
    return known


def lexicon_counts(normalized_text: str) -> tuple[int, int, int, float]:
    """Return (insulting words, swear words, those of either within a few words after `you`,
    summed negative sentiment valence)."""
    insults = swears = aimed = 0
    negative = 0.0
    last_you = -AIMED_WINDOW - 1
    for position, (kind, valence) in enumerate(map(_lookup, _WORD.findall(normalized_text))):
        negative += valence
        if kind == NEUTRAL:
            continue
        if kind == SECOND_PERSON:
            last_you = position
            continue
        if kind == INSULT:
            insults += 1
        else:
            swears += 1
        if position - last_you <= AIMED_WINDOW:
            aimed += 1
    return insults, swears, aimed, negative
