"""SMS Spam Collection: text messages labeled `spam` or `ham`.

One message a line, `label<TAB>text`, no header, and no newline after the last line.
Read without CSV quoting (QUOTE_NONE): messages contain unbalanced `"`, which a quoting
reader would take for the start of a field spanning several lines. Some messages carry
HTML entities (`&lt;#&gt;`), which are decoded. Spam only: the abuse head is left empty.
"""

from __future__ import annotations

import html
from pathlib import Path

from models.errors import DataError
from models.examples import Example, csv_rows
from models.importers.common import UNQUOTED_TSV, corpus_files, map_label

NAME = "sms"
FOLDER = "sms-spam-collection"
PATTERN = "SMSSpamCollection*"
SPAM_LABELS = {"spam": 1, "ham": 0}


def _read_file(path: Path) -> list[Example]:
    examples = []
    for where, row in csv_rows(path, UNQUOTED_TSV):
        if len(row) < 2:
            raise DataError(f"{where}: expected 'label<TAB>text'")
        # A tab inside the message would split it; keep everything after the label.
        text = html.unescape("\t".join(row[1:])).strip()
        if text:
            examples.append(Example(text, spam=map_label(row[0], SPAM_LABELS, where), source=NAME))
    return examples


def read(path: Path) -> list[Example]:
    """Read the collection file (or the folder holding it)."""
    return [example for file in corpus_files(path, PATTERN) for example in _read_file(file)]
