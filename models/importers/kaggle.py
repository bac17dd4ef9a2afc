r"""Kaggle "Detecting Insults in Social Commentary" (Impermium, 2012).

CSV with CRLF line endings, header `Insult,Date,Comment`; `Insult` 1 = an insult aimed
at a participant, 0 = not. Mapped to the abuse head; spam is left empty.

The comment is a Python string literal's body inside three double quotes
(`You're an idiot.\xa0` between them), with escapes written out (`\n`, `\xa0`,
`\u2019`), sometimes escaped twice (`\\n`), and sometimes holding the UTF-8 bytes of a
character as separate escapes (`\\xc2\\xa0` for a no-break space), i.e. mojibake.
`decode_comment` undoes all three; what it cannot decode is left as written, not dropped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from models.examples import CsvDialect, Example
from models.importers.common import AbuseTable, read_abuse_table

NAME = "kaggle"
SOURCE = "kaggle-insults"
FOLDER = "kaggle-insults-impermium"

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[nrt\\'\"])")
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
# Runs of characters that could be UTF-8 bytes misread one byte per character.
_HIGH_BYTES = re.compile(r"[\x80-\xff]{2,}")
# Escaping was applied at most a few times over; more passes would eat real backslashes.
MAX_UNESCAPE_PASSES = 3


def _unescape_match(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] in "xuU":
        value = int(code[1:], 16)
        return chr(value) if value <= sys.maxunicode else match.group(0)  # "\\UFFFFFFFF" is no character
    return _SIMPLE[code]


def _join_surrogates(text: str) -> str:
    """``text`` with each UTF-16 pair written as two escapes ("\\ud83d\\ude00") made the one
    character it stands for, and a half of a pair left alone made U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _fix_mojibake(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        return run.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return run  # genuine Latin-1 letters ("Käse"), not UTF-8 bytes


def decode_comment(raw: str) -> str:
    """Return the comment text from its escaped, triple-quoted form (see the module docstring)."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]  # the csv module has already turned the outer """ into one "
    for _ in range(MAX_UNESCAPE_PASSES):
        decoded = _ESCAPE.sub(_unescape_match, text)
        if decoded == text:
            break
        text = decoded
    return _join_surrogates(_HIGH_BYTES.sub(_fix_mojibake, text)).strip()


TABLE = AbuseTable(
    pattern="train*.csv",
    text_column="Comment",
    label_column="Insult",
    labels={"1": 1, "0": 0},
    source=SOURCE,
    clean=decode_comment,
    # The file mixes encodings; a stray byte must not lose the whole corpus.
    dialect=CsvDialect(encoding_errors="replace"),
)


def read(path: Path) -> list[Example]:
    """Read the competition's labeled file (or the folder holding it)."""
    return read_abuse_table(path, TABLE)
