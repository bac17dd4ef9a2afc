"""The canonical labeled-data format: read, write, deduplicate and split examples.

One example a line, as UTF-8 JSON Lines (`.jsonl`) or CSV with a header (a leading
byte order mark, as Excel writes, is skipped):

    text    required, the comment body
    author  optional, the name the commenter gave
    url     optional, the website the commenter gave (the form's "Website" field)
    spam    0, 1, or absent/empty/null when the source does not say
    abuse   0, 1, or absent/empty/null when the source does not say
    source  optional, where the example came from (a corpus name, "moderator", ...)

Other columns and keys are ignored; a field's name in another case or with spaces
around it (`Spam`, ` abuse`) is refused, since its labels would be lost without a word.

Every importer for a public corpus produces these `Example` records, and training reads
nothing else, so the label semantics live in one place.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import random
import reprlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, TextIO

from models.atomic_files import replacing
from models.errors import DataError
from models.normalize import normalize_text
from models.records import holds_lone_surrogate, parse_json

LABELS = ("spam", "abuse")
FIELDS = ("text", "author", "url", "spam", "abuse", "source")


@dataclass(frozen=True, slots=True)
class Example:
    """One labeled comment; a label of None means the source does not say."""

    text: str
    author: str = ""
    spam: int | None = None
    abuse: int | None = None
    source: str = ""
    url: str = ""

    def label(self, head: str) -> int | None:
        """Return the label for `head` ("spam" or "abuse")."""
        value: int | None = getattr(self, head)
        return value


# Label texts as spreadsheets and dataframe exports write them: pandas writes a label
# column with gaps as floats (`1.0`, and `nan` or nothing for a gap).
_LABEL_TEXTS: dict[str, int | None] = {
    "": None,
    "null": None,
    "none": None,
    "nan": None,
    "0": 0,
    "1": 1,
    "0.0": 0,
    "1.0": 1,
    "false": 0,
    "true": 1,
}


def _parse_label(value: Any, field: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _LABEL_TEXTS:
        return _LABEL_TEXTS[value.strip().lower()]
    # bool is an int subclass; JSON true/false is accepted as 1/0 on purpose.
    if isinstance(value, bool | int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, float) and math.isnan(value):  # Python's JSON reads NaN, as pandas writes a gap
        return None
    raise DataError(f"{where}: {field} must be 0, 1 or empty, got {value!r}")


def optional_text(row: Mapping[str, Any], field: str, where: str) -> str:
    """The optional text field ``field`` of a parsed row: empty when absent or null.

    A number is taken as its digits (an author id of 0 is "0", not nothing); true, false,
    an object or a list is refused, as its text would be Python's spelling of it.
    """
    value = row.get(field)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{where}: {field!r} must be a string or a number, got {reprlib.repr(value)}")


def example_from_mapping(row: Mapping[str, Any], where: str) -> Example:
    """Build an `Example` from one parsed row; `where` ("file:line") names it in errors."""
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        # A number or a list is no missing text: say what is there instead (shortened, as
        # it can be a whole document).
        raise DataError(f"{where}: 'text' must be a string, got {reprlib.repr(text)}")
    if text is None or not text.strip():
        raise DataError(f"{where}: missing or empty 'text'")
    return Example(
        text=text,
        author=optional_text(row, "author", where),
        spam=_parse_label(row.get("spam"), "spam", where),
        abuse=_parse_label(row.get("abuse"), "abuse", where),
        source=optional_text(row, "source", where),
        url=optional_text(row, "url", where),
    )


@dataclass(frozen=True)
class CsvDialect:
    """How a delimited file is laid out, and whether undecodable bytes are an error."""

    delimiter: str = ","
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL
    # "replace" for a corpus known to mix encodings, where one stray byte must not lose it all.
    encoding_errors: str = "strict"


PLAIN_CSV = CsvDialect()


def _not_utf8(where: str, line: bytes, exc: UnicodeDecodeError) -> DataError:
    return DataError(f"{where}: not valid UTF-8 (byte 0x{line[exc.start]:02x}); save the file as UTF-8")


def json_lines(
    lines: Iterable[bytes], name: str, *, skip_blank: bool = False
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("NAME:LINE", object) for each line of JSON Lines, read as UTF-8 bytes.

    A byte order mark before the first line is skipped. A blank line is an error unless
    `skip_blank`: JSON Lines allows a final line separator, not empty lines.

    Raises:
        DataError: naming NAME and the first line that is not UTF-8, not JSON (or JSON
            Python cannot hold: nested too deeply, a number of thousands of digits), or
            not an object.
    """
    for number, raw in enumerate(lines, start=1):
        where = f"{name}:{number}"
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(where, raw, exc) from None
        if not line.strip():
            if skip_blank:
                continue
            raise DataError(f"{where}: blank line; expected a JSON object")
        try:
            row = parse_json(line)
        except ValueError as exc:
            if "\r" in line.rstrip("\r\n"):
                # A file from classic Mac OS: to Python it is one line of many objects.
                raise DataError(
                    f"{where}: its lines end with a carriage return alone; JSON Lines ends them "
                    "with a line feed (save the file with Unix or Windows line endings)"
                ) from None
            raise DataError(f"{where}: {exc}") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        for key, value in row.items():
            if isinstance(value, str) and holds_lone_surrogate(value):
                raise DataError(f"{where}: {key!r} holds half of a UTF-16 pair (an escape such as \\ud800)")
        yield where, row


def _read_text(path: Path, errors: str) -> str:
    # Read whole, not streamed, so that an undecodable byte can be placed on its line.
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)  # Excel's "CSV UTF-8" starts with one
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _not_utf8(f"{path}:{line}", data, exc) from None


def csv_rows(path: Path, dialect: CsvDialect = PLAIN_CSV) -> Iterator[tuple[str, list[str]]]:
    """Yield ("FILE:LINE", fields) for each row of a delimited UTF-8 file with a field that
    is not blank (a spreadsheet leaves rows of bare commas behind).

    LINE is the line the row starts on, or FIRST-LAST for a row that a quoted line break
    carries over several lines: a stray quote makes one row of everything up to the next
    quote, and its last line can be thousands past the mistake. A byte order mark is skipped.

    Raises:
        DataError: naming the file and line of undecodable bytes or of a row the csv
            module refuses (a quote never closed, or followed by more than a delimiter,
            or a field over its 128 KiB limit: an unbalanced quote).
    """
    # newline="" lets the csv module handle line breaks inside quoted fields.
    text = io.StringIO(_read_text(path, dialect.encoding_errors), newline="")
    # strict: else a quote never closed ends its row at the end of the file, and one closed
    # rows later ('"opens ... "closes" here') where the text goes on; in the last column
    # both read as one row with the right field count, the lines they swallowed lost.
    reader = csv.reader(text, delimiter=dialect.delimiter, quoting=dialect.quoting, strict=True)
    row_start = 1
    try:
        for row in reader:
            if any(field.strip() for field in row):
                lines = str(row_start) if reader.line_num == row_start else f"{row_start}-{reader.line_num}"
                yield f"{path}:{lines}", row
            row_start = reader.line_num + 1
    except csv.Error as exc:
        # The line the csv module stopped on can be far past a stray quote; the row's start is not.
        raise DataError(f"{path}:{row_start}: the row starting here is not valid CSV ({exc})") from None


def csv_records(
    path: Path, columns: Sequence[str], dialect: CsvDialect = PLAIN_CSV
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ("FILE:LINE", {column: field}) for each row after the header of a delimited file.

    Raises:
        DataError: the header lacks one of `columns`, a row has more or fewer fields
            than the header, or `csv_rows` refuses the file.
    """
    rows = csv_rows(path, dialect)
    where, header = next(rows, (f"{path}:1", []))
    missing = [name for name in columns if name not in header]
    if missing:
        raise DataError(f"{where}: header lacks column(s) {', '.join(missing)}; is this the right file?")
    repeated = sorted({name for name in header if name.strip() and header.count(name) > 1})
    if repeated:
        # Else the last of them would be read and the others dropped without a word.
        raise DataError(f"{where}: header names column(s) {', '.join(repeated)} more than once")
    for where, row in rows:
        if len(row) != len(header):
            # A short row would read as empty fields and a long one lose its tail; both mean a broken line.
            raise DataError(f"{where}: {len(row)} field(s) where the header has {len(header)}")
        yield where, dict(zip(header, row, strict=True))


def misspelled_field(names: Iterable[str]) -> tuple[str, str] | None:
    """(name, field) for the first of ``names`` that is a field of the format in another
    letter case or with spaces around it (`Spam`, ` abuse`), else None.

    Other names are read as no field, which is right for a column of the file's own (an
    id, a date), but such a near miss would drop a whole column of labels without a word.
    """
    for name in names:
        if name not in FIELDS and (field := name.strip().casefold()) in FIELDS:
            return name, field
    return None


def _read_jsonl(path: Path) -> Iterator[Example]:
    with path.open("rb") as lines:
        # Labeled files may hold blank lines; only `score` must answer line for line.
        for where, row in json_lines(lines, str(path), skip_blank=True):
            if misspelled := misspelled_field(row):
                raise DataError(
                    f"{where}: key {misspelled[0]!r} is not a field of the format; name it {misspelled[1]!r}"
                )
            yield example_from_mapping(row, where)


def _read_csv(path: Path) -> Iterator[Example]:
    for number, (where, row) in enumerate(csv_records(path, ("text",))):
        if number == 0 and (misspelled := misspelled_field(row)):
            raise DataError(
                # The header's own line is not known here (blank lines may come before it).
                f"{path}: header column {misspelled[0]!r} is not a field of the format; "
                f"name it {misspelled[1]!r}"
            )
        yield example_from_mapping(row, where)


def read_examples(path: str | Path) -> list[Example]:
    """Read canonical examples from a `.jsonl` or `.csv` file.

    Raises:
        DataError: (a ValueError) naming the file and line of the first bad row.
    """
    return list(stream_examples(path))


def stream_examples(path: str | Path) -> Iterator[Example]:
    """Yield the canonical examples of a `.jsonl` file line by line, or of a `.csv` file
    (read whole first, so that a byte that is not UTF-8 can be placed on its line).

    Raises:
        DataError: (a ValueError) naming the file and line of the first bad row.
    """
    path = Path(path)
    form = _format(path)
    if form is None:
        raise DataError(f"{path}: unknown format; use .jsonl or .csv")
    return _read_csv(path) if form == "csv" else _read_jsonl(path)


def _format(path: Path) -> Literal["csv", "jsonl"] | None:
    """The format a labelled file's suffix names, None for a suffix that names neither."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    return "jsonl" if suffix in (".jsonl", ".json", ".ndjson") else None


def example_to_dict(example: Example) -> dict[str, Any]:
    """Return the canonical JSON object for `example`; a website not given is left out."""
    row = asdict(example)
    # Absent rather than empty: the corpora give none, and their canonical lines (and the
    # fingerprints of data sets made from them) stay what they were before the field.
    if not row["url"]:
        del row["url"]
    return row


def write_examples(path: str | Path, examples: Iterable[Example]) -> None:
    """Write examples as JSON Lines or CSV, chosen by the file suffix.

    A file is written beside its place and then moved there, so a write that fails (a
    full disk) leaves no half-written file, nor loses the one it would have replaced. A
    pipe or a device (``/dev/stdout``), which cannot be replaced, and a link, which
    would be replaced by a file instead of written through, are written in place.

    A file gets the format its suffix names; one whose suffix names neither is refused, as
    reading it back would be. A pipe or a device without a suffix gets JSON Lines.

    Raises:
        OSError: naming ``path``, for a file that could not be written.
        DataError: (a ValueError) naming ``path``, for a file whose suffix names no format.
    """
    path = Path(path)
    in_place = path.is_symlink() or (path.exists() and not path.is_file())
    form = _format(path)
    if form is None and not in_place:
        raise DataError(f"{path}: unknown format; use .jsonl or .csv")
    try:
        opened = path.open("w", encoding="utf-8", newline="") if in_place else replacing(path, newline="")
        with opened as out:
            _write_rows(out, form == "csv", examples)
    except OSError as exc:
        # A write or a flush reports no file name, and a file made or moved is the temporary.
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _write_rows(out: TextIO, as_csv: bool, examples: Iterable[Example]) -> None:
    if as_csv:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        for example in examples:
            row = example_to_dict(example)
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        return
    for example in examples:
        out.write(json.dumps(example_to_dict(example), ensure_ascii=False) + "\n")


def fingerprint(examples: Iterable[Example]) -> str:
    """Return the SHA-256 hex digest of the examples in canonical JSON Lines form."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(canonical_line(example))
    return digest.hexdigest()


def canonical_line(example: Example) -> bytes:
    """``example`` as one line of canonical JSON Lines, keys sorted, in UTF-8."""
    return json.dumps(example_to_dict(example), ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"


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
    return deduplicate_counting_conflicts(examples)[0]


def deduplicate_counting_conflicts(examples: Iterable[Example]) -> tuple[list[Example], dict[str, int]]:
    """`deduplicate`, and for each head how many of the texts kept have copies that label
    it both 0 and 1 (two sources, or two moderators, who disagree)."""
    kept: dict[str, Example] = {}
    seen: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for example in examples:
        key = dedup_key(example.text)
        seen[key].update((head, label) for head in LABELS if (label := example.label(head)) is not None)
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
    conflicts = {
        head: sum(1 for labels in seen.values() if {(head, 0), (head, 1)} <= labels) for head in LABELS
    }
    return list(kept.values()), conflicts


def conflict_notes(conflicts: Mapping[str, int]) -> list[str]:
    """What training says of texts labelled both ways (``deduplicate_counting_conflicts``)."""
    return [
        f"head {head!r}: {count} text(s) labelled both 0 and 1 by their copies (sources or moderators "
        "who disagree); each was trained on with its first label"
        for head, count in conflicts.items()
        if count
    ]


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
