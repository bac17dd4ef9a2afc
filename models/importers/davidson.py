"""Davidson et al. 2017, "Hate Speech and Offensive Language": tweets in three classes.

CSV with an unnamed index column, vote counts, `class` (0 hate speech, 1 offensive
language, 2 neither) and `tweet`. Hate speech and offensive language both map to
abuse 1, neither to abuse 0; spam is left empty. The text carries HTML entities
(`&amp;`, `&#128514;` for emoji), which are decoded.

The corpus was sampled with a hate-speech lexicon, so 83% of it is abusive and
almost every tweet holds a slur or profanity: useful extra abuse data, a poor picture
of ordinary comments.
"""

from __future__ import annotations

import html
from pathlib import Path

from models.examples import Example
from models.importers.common import AbuseTable, read_abuse_table

NAME = "davidson"
FOLDER = "davidson-hate-offensive"


def clean_tweet(text: str) -> str:
    """The tweet with its HTML entities decoded."""
    return html.unescape(text).strip()


TABLE = AbuseTable(
    pattern="labeled_data*.csv",
    text_column="tweet",
    label_column="class",
    labels={"0": 1, "1": 1, "2": 0},
    source=NAME,
    clean=clean_tweet,
)


def read(path: Path) -> list[Example]:
    """Read the labeled tweets file (or the folder holding it)."""
    return read_abuse_table(path, TABLE)
