"""OLID (OffensEval 2019): tweets labeled offensive or not (level A).

TSV with header `id tweet subtask_a subtask_b subtask_c`, read without CSV quoting
(QUOTE_NONE), so that a stray `"` could never swallow the lines after it. Level A `OFF`
-> abuse 1, `NOT` -> abuse 0; levels B and C (targeted, target type) are not used. Spam
is left empty.

A tweet that holds a `"` is written as a CSV field all the same: wrapped in quotes, its
own quotes doubled (`"say ""no"" now"`; 1,057 of the 13,240 tweets). That quoting is
undone here, tweet by tweet, and only where the whole field has that shape.

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


# A whole field quoted as CSV quotes it: inside the outer quotes, a quote only doubled.
_QUOTED_FIELD = re.compile(r'"((?:[^"]|"")*)"', re.DOTALL)


def unquote(text: str) -> str:
    """The tweet inside a field written with CSV quoting; any other field as it is."""
    quoted = _QUOTED_FIELD.fullmatch(text)
    return quoted.group(1).replace('""', '"') if quoted else text


def clean_tweet(text: str) -> str:
    """Undo the field's CSV quoting, remove the corpus's `@USER` and `URL` placeholders,
    and decode HTML escapes."""
    return html.unescape(without_placeholders(unquote(text), _PLACEHOLDERS))


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
