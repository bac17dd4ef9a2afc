"""Importers for public labeled corpora, each producing canonical `Example`s.

Every importer maps its corpus's labels to the canonical heads explicitly and leaves
the head the corpus says nothing about as None (see each module's docstring):

    youtube   YouTube Spam Collection     spam   source "youtube:<video>"
    sms       SMS Spam Collection         spam   source "sms"
    kaggle    Kaggle insults (Impermium)  abuse  source "kaggle-insults"
    olid      OLID / OffensEval 2019      abuse  source "olid"
    davidson  Davidson hate & offensive   abuse  source "davidson"

A data argument is either a canonical file (`labels.jsonl`) or `importer:PATH`, where
PATH is the corpus file or the folder holding it (`youtube:/data/youtube-spam-collection`);
a prefix that is no importer's name is part of a file name (see `split_spec`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from models.errors import DataError
from models.examples import Example, stream_examples
from models.importers import davidson, kaggle, olid, sms, youtube

# Where tests and the benchmark look for the corpora, unless told otherwise.
DATASETS_ENV = "MODERATION_DATASETS"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASETS = _PROJECT_ROOT.parent / "shared" / "datasets"


@dataclass(frozen=True)
class Importer:
    """A corpus reader, the folder name it is usually shipped in, and the head it labels."""

    name: str
    folder: str
    head: str
    read: Callable[[Path], list[Example]]


IMPORTERS: dict[str, Importer] = {
    importer.name: importer
    for importer in (
        Importer(youtube.NAME, youtube.FOLDER, "spam", youtube.read),
        Importer(sms.NAME, sms.FOLDER, "spam", sms.read),
        Importer(kaggle.NAME, kaggle.FOLDER, "abuse", kaggle.read),
        Importer(olid.NAME, olid.FOLDER, "abuse", olid.read),
        Importer(davidson.NAME, davidson.FOLDER, "abuse", davidson.read),
    )
}


def datasets_dir() -> Path:
    """Return the corpora folder: `$MODERATION_DATASETS`, else `../shared/datasets` beside the project."""
    configured = os.environ.get(DATASETS_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_DATASETS


def split_spec(spec: str) -> tuple[Importer | None, Path]:
    """Return (importer or None for a canonical file, path) for a `--data` argument.

    `NAME:PATH` is an importer's only when NAME is a known importer's name; anything else
    is a file path, so that a file name holding a colon (`labels-2026-11-30T10:00.jsonl`,
    as a timestamp writes it) or a Windows drive reads as the file it is.

    Raises:
        DataError: no file or folder is at ``spec`` and the part before its first ':' is
            a plain name of two characters or more (`olid2:data`): most likely a mistyped
            importer, so it is named beside the known ones instead of reported as a
            missing file. A prefix that is no plain name (`labels-2026-11-30T10`), or of
            one letter (a drive), cannot be an importer's, and `stream` reports a missing
            file there as one.
    """
    name, sep, rest = spec.partition(":")
    importer = IMPORTERS.get(name) if sep and rest else None
    if importer is not None:
        return importer, Path(rest)
    path = Path(spec)
    plain_name = len(name) >= 2 and name.isascii() and name.isidentifier()
    if sep and rest and plain_name and not path.exists():
        known = ", ".join(IMPORTERS)
        raise DataError(
            f"{spec}: unknown importer {name!r} (known: {known}), and no such file; "
            "give IMPORTER:PATH or a canonical file"
        )
    return None, path


def load(spec: str) -> list[Example]:
    """Read the examples a `--data` argument names (canonical file or `importer:PATH`)."""
    return list(stream(spec))


def stream(spec: str) -> Iterator[Example]:
    """The examples a `--data` argument names, a JSON Lines file's read line by line (a
    public corpus is read whole: it is small, and its importer decodes it as one).

    Raises:
        DataError: naming what is wrong with the argument, or the file and line of a bad row.
    """
    importer, path = split_spec(spec)
    if importer is None:
        if path.is_dir():
            raise DataError(f"{path}: a folder; give a canonical file, or IMPORTER:PATH for a public corpus")
        if not path.exists():
            raise DataError(f"{path}: no such file")
        if not path.is_file():
            # Training out of core reads the data again for each pass, which a pipe cannot give.
            raise DataError(
                f"{path}: not a regular file (a pipe or a device); write the labels to a canonical "
                ".jsonl or .csv file first"
            )
        return stream_examples(path)
    return iter(importer.read(path))


def find_corpora(directory: Path, names: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Return {importer name: folder} for each known corpus present under `directory`."""
    wanted = names if names is not None else tuple(IMPORTERS)
    found = {}
    for name in wanted:
        folder = directory / IMPORTERS[name].folder
        if folder.is_dir():
            found[name] = folder
    return found


def load_corpus(name: str, directory: Path | None = None) -> list[Example]:
    """Read one known corpus from its usual folder under `directory` (default `datasets_dir()`)."""
    importer = IMPORTERS[name]
    return importer.read((directory or datasets_dir()) / importer.folder)


def load_all(directory: Path) -> list[Example]:
    """Read every known corpus found under `directory`.

    Raises:
        DataError: none of the known corpora is there.
    """
    found = find_corpora(directory)
    if not found:
        folders = ", ".join(importer.folder for importer in IMPORTERS.values())
        raise DataError(f"{directory}: none of the known corpus folders ({folders}) is there")
    return [example for name, folder in found.items() for example in IMPORTERS[name].read(folder)]
