"""OLID (OffensEval 2019): tweets labeled offensive or not (level A).

TSV with header `id tweet subtask_a subtask_b subtask_c`, read without CSV quoting
(QUOTE_NONE: tweets contain unbalanced `"`). Level A `OFF` -> abuse 1, `NOT` -> abuse 0;
levels B and C (targeted, target type) are not used. Spam is left empty.

The corpus replaced user names with `@USER` and links with `URL`. Those markers are not
text anyone wrote, and a comment form never sends them, so they are removed: otherwise
the model would learn how many people a tweet mentioned in this one corpus. Tweets keep
Twitter's HTML escapes (`&amp;`, `&gt;`), which are decoded.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from models.examples import Example
from models.importers.common import UNQUOTED_TSV, AbuseTable, read_abuse_table, without_placeholders

NAME = "olid"
FOLDER = "olid-offenseval2019"
_PLACEHOLDERS = re.compile(r"@USER\b|\bURL\b")


def clean_tweet(text: str) -> str:
    """Remove the corpus's `@USER` and `URL` placeholders, and decode HTML escapes."""
    return html.unescape(without_placeholders(text, _PLACEHOLDERS))


TABLE = AbuseTable(
    pattern="olid-training*.tsv",
    text_column="tweet",
    label_column="subtask_a",
    labels={"OFF": 1, "NOT": 0},
    source=NAME,
    clean=clean_tweet,
    dialect=UNQUOTED_TSV,
)


def read(path: Path) -> list[Example]:
    """Read the OLID training file (or the folder holding it)."""
    return read_abuse_table(path, TABLE)
