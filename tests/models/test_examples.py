"""The canonical labeled format: reading, writing, validation, dedup and splits."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.errors import DataError
from models.examples import (
    Example,
    conflict_notes,
    dedup_key,
    deduplicate,
    deduplicate_counting_conflicts,
    fingerprint,
    read_examples,
    split_examples,
    write_examples,
)

EXAMPLES = [
    Example("Buy now at http://x.ru", author="bot", spam=1, abuse=0, source="t"),
    Example("You idiot", spam=None, abuse=1),
    Example('Quotes "and", commas\nand a line break', author="A, B", spam=0, abuse=None, source="t"),
    Example("Great deals here", author="Deals", spam=1, abuse=0, url="https://deals.example/x?a=1,2"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    write_examples(path, EXAMPLES)
    assert read_examples(path) == EXAMPLES


def test_a_website_not_given_is_left_out_of_the_canonical_line(tmp_path: Path) -> None:
    # The corpora give no website: their lines, and the fingerprints of data made from
    # them, stay what they were before the field.
    path = tmp_path / "d.jsonl"
    write_examples(path, [Example("hi", spam=0), Example("deals", spam=1, url="https://deals.example")])
    assert path.read_text(encoding="utf-8").splitlines() == [
        '{"text": "hi", "author": "", "spam": 0, "abuse": null, "source": ""}',
        '{"text": "deals", "author": "", "spam": 1, "abuse": null, "source": "", "url": "https://deals.example"}',
    ]
    assert fingerprint([Example("hi", spam=0)]) == fingerprint(read_examples(path)[:1])


def test_csv_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,abuse\nhello,0\nidiot,1\nunknown,\n", encoding="utf-8")
    assert read_examples(path) == [Example("hello", abuse=0), Example("idiot", abuse=1), Example("unknown")]


def test_labels_as_spreadsheets_and_dataframe_exports_write_them(tmp_path: Path) -> None:
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("text,spam,abuse\na,1.0,0.0\nb,TRUE,false\n,,\nc, ,nan\n", encoding="utf-8")
    expected = [Example("a", spam=1, abuse=0), Example("b", spam=1, abuse=0), Example("c")]
    assert read_examples(csv_path) == expected
    jsonl_path = tmp_path / "d.jsonl"
    jsonl_path.write_text(
        '{"text": "a", "spam": 1.0, "abuse": 0.0}\n{"text": "b", "spam": "true", "abuse": "0"}\n'
        '{"text": "c", "spam": NaN, "abuse": null}\n',
        encoding="utf-8",
    )
    assert read_examples(jsonl_path) == expected


def test_jsonl_takes_a_numeric_author_as_its_digits(tmp_path: Path) -> None:
    # Exports that key commenters by number: an id of 0 is an author, not none.
    path = tmp_path / "d.jsonl"
    rows = '{"text": "a", "author": 0, "source": 7}\n{"text": "b", "author": 12.5}\n'
    path.write_text(rows, encoding="utf-8")
    assert read_examples(path) == [Example("a", author="0", source="7"), Example("b", author="12.5")]


def test_jsonl_reads_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "a"}\r\n{"text": "b", "spam": 1}\r\n')
    assert read_examples(path) == [Example("a"), Example("b", spam=1)]


def test_jsonl_accepts_missing_and_null_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b", "spam": null, "abuse": true}\n', encoding="utf-8")
    assert read_examples(path) == [Example("a"), Example("b", abuse=1)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok"}\n{"author": "x"}\n', r"d\.jsonl:2: missing or empty 'text'"),
        ('{"text": "ok", "spam": 2}\n', r"d\.jsonl:1: spam must be 0, 1 or empty, got 2"),
        ('{"text": "ok", "spam": 0.5}\n', r"d\.jsonl:1: spam must be 0, 1 or empty, got 0\.5"),
        ('{"text": "ok", "abuse": "yes"}\n', r"d\.jsonl:1: abuse must be 0, 1 or empty"),
        ('{"text": "ok"\n', r"d\.jsonl:1: not valid JSON \(Expecting ',' delimiter at character 15\)$"),
        ('["text"]\n', r"d\.jsonl:1: expected a JSON object"),
        ('{"text": "   "}\n', r"d\.jsonl:1: missing or empty 'text'"),
        ('{"text": null}\n', r"d\.jsonl:1: missing or empty 'text'"),
        ('{"text": 42}\n', r"d\.jsonl:1: 'text' must be a string, got 42"),
        ('{"text": ["a"]}\n', r"d\.jsonl:1: 'text' must be a string, got \['a'\]"),
        # Its text would be Python's spelling of it ("{'name': 'Bob'}", "True").
        ('{"text": "ok", "author": {"name": "Bob"}}\n', r"d\.jsonl:1: 'author' must be a string or a number"),
        ('{"text": "ok", "url": ["https://a.example"]}\n', r"d\.jsonl:1: 'url' must be a string or a number"),
        ('{"text": "ok", "source": false}\n', r"d\.jsonl:1: 'source' must be .+, got False"),
        ('{"text": "ok"}\n{"text": "\\ud800 hi"}\n', r"d\.jsonl:2: 'text' holds half of a UTF-16 pair"),
        # A label under another spelling of its name would be dropped without a word.
        (
            '{"text": "ok", "spam": 1}\n{"text": "hi", "Abuse": 1}\n',
            r"d\.jsonl:2: key 'Abuse' is not a field of the format; name it 'abuse'",
        ),
        pytest.param(
            '{"text": "ok"}\n{"text": "ok", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
            r"d\.jsonl:2: not valid JSON \(it nests arrays or objects too deeply\)",
            id="nested-too-deeply",
        ),
        pytest.param(
            '{"text": "ok", "spam": 0}\r{"text": "buy now", "spam": 1}\r',
            r"d\.jsonl:1: its lines end with a carriage return alone; JSON Lines ends them with a line feed",
            id="classic-mac-line-endings",
        ),
        pytest.param(
            '{"text": "ok", "spam": ' + "1" * 5000 + "}\n",
            r"d\.jsonl:1: not readable JSON \(it holds a number longer than \d+ digits\)",
            id="number-too-long",
        ),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_examples(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,spam\nok,0\n,1\n", r"d\.csv:3: missing or empty 'text'"),
        ("text,spam\nok,maybe\n", r"d\.csv:2: spam must be 0, 1 or empty, got 'maybe'"),
        ("body,spam\nok,1\n", r"d\.csv:1: header lacks column\(s\) text"),
        # A stray quote runs its row on to the end of the file; the mistake is where it starts.
        pytest.param(
            'text,spam\n"oops,1\n' + "ok,0\n" * 2000,
            r"d\.csv:2: the row starting here is not valid CSV \(unexpected end of data\)",
            id="stray-quote",
        ),
        # In the last column, the field count cannot tell: the rows after it would be its text.
        pytest.param(
            'text\nok\n"never closed\nnext\nlast\n',
            r"d\.csv:3: the row starting here is not valid CSV \(unexpected end of data\)",
            id="stray-quote-in-the-only-column",
        ),
        pytest.param(
            'spam,text\n0,"opens\n1,next\n0,"closes" here\n1,fine\n',
            r"d\.csv:2: the row starting here is not valid CSV \(',' expected after '\"'\)",
            id="stray-quotes-in-the-last-column",
        ),
        ("text,spam,spam\nhi,1,0\n", r"d\.csv:1: header names column\(s\) spam more than once"),
        (
            "text, spam,Abuse\nhi,1,0\n",
            r"d\.csv: header column ' spam' is not a field of the format; name it 'spam'",
        ),
        ('text,spam\n"two\nlines",maybe\n', r"d\.csv:2-3: spam must be 0, 1 or empty"),
        ('text,spam\n"two\nlines",1\nok,maybe\n', r"d\.csv:4: spam must be 0, 1 or empty"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_examples(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.jsonl", b'{"text": "ok"}\n{"text": "caf\xff"}\n', r"d\.jsonl:2: not valid UTF-8 \(byte 0xff\)"),
        ("d.csv", b"text,spam\nok,0\r\ncaf\xe9,1\n", r"d\.csv:3: not valid UTF-8 \(byte 0xe9\)"),
        ("d.csv", b"text,spam\nok,0\nshort\n", r"d\.csv:3: 1 field\(s\) where the header has 2"),
        ("d.csv", b"text,spam\nok,0,1\n", r"d\.csv:2: 3 field\(s\) where the header has 2"),
        (
            "d.csv",
            b'text,spam\nok,0\n"' + b"x" * 140_000 + b'",1\n',
            r"d\.csv:3: .*field larger than field limit",
        ),
    ],
    ids=["jsonl-not-utf8", "csv-not-utf8", "csv-short-row", "csv-long-row", "csv-huge-field"],
)
def test_unreadable_files_name_file_and_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_examples(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_write_that_fails_half_way_leaves_the_file_it_would_replace(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"labels{suffix}"
    write_examples(path, EXAMPLES)
    before = path.read_bytes()

    def disk_fills_up() -> Iterator[Example]:
        yield from EXAMPLES
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match="No space left on device") as raised:
        write_examples(path, disk_fills_up())
    assert raised.value.filename == str(path)
    assert path.read_bytes() == before
    assert [child.name for child in tmp_path.iterdir()] == [path.name]


def test_a_link_is_written_through_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "kept" / "labels.jsonl"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "labels.jsonl"
    link.symlink_to(target)
    write_examples(link, EXAMPLES)
    assert link.is_symlink()
    assert read_examples(target) == EXAMPLES


def test_a_pipe_is_written_in_place(tmp_path: Path) -> None:
    # As `export-labels --out /dev/stdout`: a pipe (or a device) cannot be replaced by a file.
    pipe = tmp_path / "labels.jsonl"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    write_examples(pipe, EXAMPLES)
    reader.join(timeout=10)
    assert pipe.is_fifo()
    assert b"".join(received).decode().count("\n") == len(EXAMPLES)
    assert [child.name for child in tmp_path.iterdir()] == [pipe.name]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_byte_order_mark_is_skipped(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"excel{suffix}"
    write_examples(path, EXAMPLES)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_examples(path) == EXAMPLES


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown format"):
        read_examples(tmp_path / "d.txt")
    # Refused on the way out too: written, it could not be read back by training.
    with pytest.raises(DataError, match=r"d\.txt: unknown format; use \.jsonl or \.csv"):
        write_examples(tmp_path / "d.txt", EXAMPLES)
    assert not (tmp_path / "d.txt").exists()


def test_deduplicate_by_normalized_text_fills_missing_labels() -> None:
    examples = [
        Example("Buy viagra", spam=1),
        Example("BUY V1AGRA", spam=0, abuse=0),  # same text disguised; spam conflict
        Example("something else", spam=0),
    ]
    assert deduplicate(examples) == [
        Example("Buy viagra", spam=1, abuse=0),
        Example("something else", spam=0),
    ]


def test_texts_labelled_both_ways_are_counted() -> None:
    # Kept silently, a moderator team's disagreements (or two sources') would never show.
    examples = [
        Example("Buy viagra", spam=1),
        Example("BUY V1AGRA", spam=0, abuse=0),
        Example("buy viagra", spam=1, abuse=1),
        Example("you idiot", abuse=1),
        Example("You idiot", abuse=1),
    ]
    unique, conflicts = deduplicate_counting_conflicts(examples)
    assert unique == deduplicate(examples)
    assert conflicts == {"spam": 1, "abuse": 1}
    assert conflict_notes(conflicts) == [
        f"head {head!r}: 1 text(s) labelled both 0 and 1 by their copies (sources or moderators who "
        "disagree); each was trained on with its first label"
        for head in ("spam", "abuse")
    ]
    assert conflict_notes({"spam": 0, "abuse": 0}) == []


def test_fingerprint_depends_on_content() -> None:
    assert fingerprint(EXAMPLES) == fingerprint(list(EXAMPLES))
    assert fingerprint(EXAMPLES) != fingerprint(EXAMPLES[:2])


def test_split_never_puts_a_text_on_both_sides(tiny_examples: list[Example]) -> None:
    # Add disguised and exact copies so that groups have several members.
    examples = tiny_examples + [
        Example(e.text.upper(), spam=e.spam, abuse=e.abuse) for e in tiny_examples[::3]
    ]
    train, test = split_examples(examples, test_size=0.25, seed=1)
    assert len(train) + len(test) == len(examples)
    assert not {dedup_key(e.text) for e in train} & {dedup_key(e.text) for e in test}
    # Stratified: every class of the tiny set is on both sides.
    for side in (train, test):
        assert {(e.spam, e.abuse) for e in side} == {(1, 0), (0, 1), (0, 0)}


def test_split_is_deterministic(tiny_examples: list[Example]) -> None:
    assert split_examples(tiny_examples, 0.2, seed=3) == split_examples(tiny_examples, 0.2, seed=3)
    assert split_examples(tiny_examples, 0.2, seed=3) != split_examples(tiny_examples, 0.2, seed=4)


def test_split_rejects_bad_size(tiny_examples: list[Example]) -> None:
    with pytest.raises(ValueError, match="test_size"):
        split_examples(tiny_examples, 1.5)
