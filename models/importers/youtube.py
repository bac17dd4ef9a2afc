"""YouTube Spam Collection (TubeSpam): comments on music videos, labeled spam or not.

Files `YoutubeNN-Artist.csv`, header `COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS`, quoted CSV,
UTF-8. `CLASS` 1 = spam, 0 = legitimate; the collection says nothing about abuse, so
that head is left empty. Each example's `source` is `youtube:<Artist>` so that
evaluation can hold out whole videos (bot spam repeats within a video).

Quirks decoded here: some files carry the page's HTML (`<br />`, `<a href=...>`, `&amp;`,
`&#39;`), which is turned back into the plain text a commenter typed.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from models.examples import Example, csv_records
from models.importers.common import corpus_files, map_label, strip_html

NAME = "youtube"
FOLDER = "youtube-spam-collection"
PATTERN = "Youtube*.csv"
SPAM_LABELS = {"1": 1, "0": 0}
COLUMNS = ("AUTHOR", "CONTENT", "CLASS")
# "Youtube01-Psy.csv" -> "Psy"
_VIDEO = re.compile(r"^Youtube\d*-?(?P<video>.+)$", re.IGNORECASE)


def video_name(path: Path) -> str:
    """Return the video a file's comments belong to, from its name."""
    match = _VIDEO.match(path.stem)
    return match.group("video") if match else path.stem


def _read_file(path: Path) -> list[Example]:
    source = f"{NAME}:{video_name(path)}"
    examples = []
    for where, row in csv_records(path, COLUMNS):
        text = html.unescape(strip_html(row["CONTENT"])).strip()
        if not text:
            continue
        spam = map_label(row["CLASS"], SPAM_LABELS, where)
        author = html.unescape(row["AUTHOR"]).strip()  # "Romix &amp; Muffy", as the page had it
        examples.append(Example(text, author=author, spam=spam, source=source))
    return examples


def read(path: Path) -> list[Example]:
    """Read one YouTube file, or every `Youtube*.csv` in a folder."""
    return [example for file in corpus_files(path, PATTERN) for example in _read_file(file)]
