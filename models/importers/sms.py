"""SMS Spam Collection: text messages labeled `spam` or `ham`.

One message a line, `label<TAB>text`, no header, and no newline after the last line.
Read without CSV quoting (QUOTE_NONE): messages contain unbalanced `"`, which a quoting
reader would take for the start of a field spanning several lines. Some messages carry
HTML entities (`&lt;`, `&amp;`), which are decoded. Spam only: the abuse head is left empty.

The messages that are not spam come mostly from the NUS SMS Corpus, which replaced
numbers, amounts, times, links and emails with markers (`&lt;#&gt;`, `&lt;DECIMAL&gt;`,
`&lt;TIME&gt;`, `&lt;URL&gt;`, `&lt;EMAIL&gt;`; about 300 messages, none of them spam). They are
removed, as OLID's are: a comment never holds them, and a model would learn that they
mean "not spam".
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from models.errors import DataError
from models.examples import Example, csv_rows
from models.importers.common import UNQUOTED_TSV, corpus_files, map_label, without_placeholders

NAME = "sms"
FOLDER = "sms-spam-collection"
PATTERN = "SMSSpamCollection*"
SPAM_LABELS = {"spam": 1, "ham": 0}
_PLACEHOLDERS = re.compile(r"<(?:#|DECIMAL|TIME|URL|EMAIL)>")


def _read_file(path: Path) -> list[Example]:
    examples = []
    for where, row in csv_rows(path, UNQUOTED_TSV):
        if len(row) < 2:
            raise DataError(f"{where}: expected 'label<TAB>text'")
        # A tab inside the message would split it; keep everything after the label.
        text = without_placeholders(html.unescape("\t".join(row[1:])), _PLACEHOLDERS)
        if text:
            examples.append(Example(text, spam=map_label(row[0], SPAM_LABELS, where), source=NAME))
    return examples


def read(path: Path) -> list[Example]:
    """Read the collection file (or the folder holding it)."""
    return [example for file in corpus_files(path, PATTERN) for example in _read_file(file)]
