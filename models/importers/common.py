"""Helpers shared by the corpus importers: locating files, reading rows and reporting bad ones.

Rows come from `models.examples.csv_rows` and `csv_records`, which turn undecodable
bytes, short rows and oversized fields into a `DataError` naming the file and line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.errors import DataError
from models.examples import PLAIN_CSV, CsvDialect, Example, csv_records

_TAG = re.compile(r"<[^>]*>")
_ANCHOR = re.compile(r"<a\b[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]{2,}")
# For corpora whose texts hold unbalanced `"` (see the sms and olid modules).
UNQUOTED_TSV = CsvDialect(delimiter="\t", quoting=csv.QUOTE_NONE)


def without_placeholders(text: str, placeholders: re.Pattern[str]) -> str:
    """``text`` with a corpus's anonymization markers removed and runs of spaces made one.

    Such markers (OLID's `@USER`, the SMS collection's `<#>`) stand where the corpus's
    makers cut something out: no commenter types them, and where they sit on one side of
    the labels only, a model would learn the corpus's editing instead of its language.
    """
    return _SPACES.sub(" ", placeholders.sub(" ", text)).strip()


def corpus_files(path: Path, pattern: str) -> list[Path]:
    """Return `path` itself when it is a file, else the files in it matching `pattern`, sorted.

    Raises:
        DataError: the path does not exist, or a folder holds no matching file.
    """
    if path.is_file():
        return [path]
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise DataError(f"{path}: not a regular file (a pipe or a device); save the corpus to a file first")
    files = sorted(p for p in path.glob(pattern) if p.is_file())
    if not files:
        raise DataError(f"{path}: no file matching {pattern!r} in this folder")
    return files


def map_label(value: str, mapping: dict[str, int], where: str) -> int:
    """Return `mapping[value]`, or raise a `DataError` naming the row and the accepted values."""
    try:
        return mapping[value.strip()]
    except KeyError:
        accepted = ", ".join(sorted(mapping))
        raise DataError(f"{where}: unexpected label {value!r} (expected one of {accepted})") from None


def strip_html(text: str) -> str:
    """Return `text` with HTML markup removed: links keep their visible text, <br> is a line break."""
    text = _LINE_BREAK.sub("\n", text)
    text = _ANCHOR.sub(lambda match: match.group(1), text)
    return _TAG.sub("", text)


@dataclass(frozen=True)
class AbuseTable:
    """How an abuse corpus lays out its delimited file: which columns, labels and cleaning."""

    pattern: str
    text_column: str
    label_column: str
    labels: dict[str, int]
    source: str
    clean: Callable[[str], str]
    dialect: CsvDialect = PLAIN_CSV


def _read_table(path: Path, table: AbuseTable) -> list[Example]:
    examples = []
    for where, row in csv_records(path, (table.text_column, table.label_column), table.dialect):
        text = table.clean(row[table.text_column])
        if text:
            abuse = map_label(row[table.label_column], table.labels, where)
            examples.append(Example(text, abuse=abuse, source=table.source))
    return examples


def read_abuse_table(path: Path, table: AbuseTable) -> list[Example]:
    """Every labelled row of the corpus file (or the matching files in the folder) `path`."""
    return [example for file in corpus_files(path, table.pattern) for example in _read_table(file, table)]
