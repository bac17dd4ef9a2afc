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

import csv
import html
from pathlib import Path

from models.examples import Example
from models.importers.common import corpus_files, map_label, require_columns

NAME = "davidson"
FOLDER = "davidson-hate-offensive"
PATTERN = "labeled_data*.csv"
ABUSE_LABELS = {"0": 1, "1": 1, "2": 0}
COLUMNS = ("class", "tweet")


def _read_file(path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        require_columns(reader.fieldnames, COLUMNS, path)
        for row in reader:
            text = html.unescape(row["tweet"]).strip()
            if text:
                abuse = map_label(row["class"], ABUSE_LABELS, f"{path}:{reader.line_num}")
                examples.append(Example(text, abuse=abuse, source=NAME))
    return examples


def read(path: Path) -> list[Example]:
    """Read the labeled tweets file (or the folder holding it)."""
    return [example for file in corpus_files(path, PATTERN) for example in _read_file(file)]
