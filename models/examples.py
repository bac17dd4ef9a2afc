"""The canonical labeled-data format: read, write, deduplicate and split examples.

One example a line, as JSON Lines (`.jsonl`) or CSV with a header:

    text    required, the comment body
    author  optional, the name the commenter gave
    spam    0, 1, or absent/empty/null when the source does not say
    abuse   0, 1, or absent/empty/null when the source does not say
    source  optional, where the example came from (a corpus name, "moderator", ...)

Every importer for a public corpus produces these `Example` records, and training reads
nothing else, so the label semantics live in one place.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from models.errors import DataError
from models.normalize import normalize_text

LABELS = ("spam", "abuse")
FIELDS = ("text", "author", "spam", "abuse", "source")


@dataclass(frozen=True, slots=True)
class Example:
    """One labeled comment; a label of None means the source does not say."""

    text: str
    author: str = ""
    spam: int | None = None
    abuse: int | None = None
    source: str = ""

    def label(self, head: str) -> int | None:
        """Return the label for `head` ("spam" or "abuse")."""
        value: int | None = getattr(self, head)
        return value


def _parse_label(value: Any, field: str, where: str) -> int | None:
    if value is None or value == "":
        return None
    # bool is an int subclass; JSON true/false is accepted as 1/0 on purpose.
    if isinstance(value, bool | int) and int(value) in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    if isinstance(value, str) and value.strip().lower() in ("null", "none"):
        return None
    raise DataError(f"{where}: {field} must be 0, 1 or empty, got {value!r}")


def example_from_mapping(row: Mapping[str, Any], where: str) -> Example:
    """Build an `Example` from one parsed row; `where` ("file:line") names it in errors."""
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: missing or empty 'text'")
    return Example(
        text=text,
        author=str(row.get("author") or ""),
        spam=_parse_label(row.get("spam"), "spam", where),
        abuse=_parse_label(row.get("abuse"), "abuse", where),
        source=str(row.get("source") or ""),
    )


def _read_jsonl(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object")
            yield example_from_mapping(row, where)


def _read_csv(path: Path) -> Iterator[Example]:
    # newline="" lets the csv module handle line breaks inside quoted comments.
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise DataError(f"{path}:1: CSV header must include a 'text' column")
        for row in reader:
            # line_num is the last physical line read, which is right for error messages.
            yield example_from_mapping(row, f"{path}:{reader.line_num}")


def read_examples(path: str | Path) -> list[Example]:
    """Read canonical examples from a `.jsonl` or `.csv` file.

    Raises:
        DataError: (a ValueError) naming the file and line of the first bad row.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return list(_read_csv(path))
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return list(_read_jsonl(path))
    raise DataError(f"{path}: unknown format; use .jsonl or .csv")


def example_to_dict(example: Example) -> dict[str, Any]:
    """Return the canonical JSON object for `example`."""
    return asdict(example)


def write_examples(path: str | Path, examples: Iterable[Example]) -> None:
    """Write examples as JSON Lines or CSV, chosen by the file suffix."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            for example in examples:
                row = example_to_dict(example)
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        return
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example_to_dict(example), ensure_ascii=False) + "\n")


def fingerprint(examples: Iterable[Example]) -> str:
    """Return the SHA-256 hex digest of the examples in canonical JSON Lines form."""
    digest = hashlib.sha256()
    for example in examples:
        line = json.dumps(example_to_dict(example), ensure_ascii=False, sort_keys=True)
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def dedup_key(text: str) -> str:
    """Return the key under which two texts count as the same comment."""
    # The full normalization, so "v1agra now" and "viagra now" are one text: a disguised
    # copy on the other side of a split would leak the answer just like an exact copy.
    return normalize_text(text)


def deduplicate(examples: Iterable[Example]) -> list[Example]:
    """Keep the first example of each text; later copies only fill in missing labels.

    A later copy never overrides a label the first one has, so the result does not
    depend on which of two conflicting sources happens to come last.
    """
    kept: dict[str, Example] = {}
    for example in examples:
        key = dedup_key(example.text)
        first = kept.get(key)
        if first is None:
            kept[key] = example
            continue
        merged = replace(
            first,
            spam=first.spam if first.spam is not None else example.spam,
            abuse=first.abuse if first.abuse is not None else example.abuse,
        )
        if merged != first:
            kept[key] = merged
    return list(kept.values())


def _stratum(group: Sequence[Example]) -> tuple[int | None, ...]:
    """The group's label per head: 1 if any member says 1, else 0 if any says 0, else None."""
    stratum: list[int | None] = []
    for head in LABELS:
        labels = {label for e in group if (label := e.label(head)) is not None}
        stratum.append(max(labels) if labels else None)
    return tuple(stratum)


def split_examples(
    examples: Sequence[Example], test_size: float, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Split into (train, test) so that no normalized text appears on both sides.

    Examples are grouped by `dedup_key`; whole groups are assigned to one side. Groups
    are stratified by their labels so that a small data set still has positives of each
    head on both sides. The split depends only on the data and `seed`.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    keys = [dedup_key(example.text) for example in examples]
    groups: dict[str, list[Example]] = defaultdict(list)
    for key, example in zip(keys, examples, strict=True):
        groups[key].append(example)
    strata: dict[tuple[int | None, ...], list[str]] = defaultdict(list)
    for key in sorted(groups):
        strata[_stratum(groups[key])].append(key)
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    test_keys: set[str] = set()
    for stratum in sorted(strata, key=repr):
        members = strata[stratum]
        rng.shuffle(members)
        # At least one group of each stratum goes to test when there are two or more.
        count = max(round(len(members) * test_size), 1) if len(members) > 1 else 0
        test_keys.update(members[:count])
    train = [e for k, e in zip(keys, examples, strict=True) if k not in test_keys]
    test = [e for k, e in zip(keys, examples, strict=True) if k in test_keys]
    return train, test
