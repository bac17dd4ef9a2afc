"""The corpus importers, on small files written here that reproduce each corpus's quirks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.errors import DataError
from models.examples import Example, write_examples
from models.importers import IMPORTERS, find_corpora, load, load_all, split_spec
from models.importers.common import strip_html
from models.importers.kaggle import decode_comment
from models.importers.olid import clean_tweet

YOUTUBE_A = (
    "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
    'id1,Spam Bot,2014-01-01T00:00:00,"Check out my channel, please subscribe!!!<br />'
    '<a href=""http://example.com/x"">http://example.com/x</a>",1\n'
    "id2,Ann &amp; Bo,2014-01-02T00:00:00,I love this song &amp; the video&#39;s dance\ufeff,0\n"
)
YOUTUBE_B = (
    "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
    'id3,Bob,2015-01-01T00:00:00,"skip to <a href=""http://www.youtube.com/watch?v=x&amp;t=1m"">1:00</a>",0\n'
)
# No newline after the last line, an unbalanced quote in a message, entities, and the
# NUS corpus's markers for what it cut out.
SMS = (
    'ham\tOk lar... "joking wif u\nspam\tFREE entry! Text WIN &amp; call &lt;80086&gt; now\n'
    "ham\tRef  &lt;#&gt;  for Rs. &lt;DECIMAL&gt; at &lt;TIME&gt;, see &lt;URL&gt;\n"
    "ham\t&lt;#&gt;\nham\tSee you at 5"
)
# CRLF line endings; triple-quoted, Python-escaped comments; escaped twice; UTF-8 bytes as escapes.
KAGGLE = (
    "Insult,Date,Comment\r\n"
    '1,20120618192155Z,"""You\\\'re an idiot.\\xa0"""\r\n'
    '0,,"""First line\\\\nsecond line"""\r\n'
    '0,20120528192215Z,"""A\\\\xc2\\\\xa0majority \\u2019yes\\u2019"""\r\n'
)
OLID = (
    "id\ttweet\tsubtask_a\tsubtask_b\tsubtask_c\n"
    '1\t@USER @USER Go home you"re drunk!!! URL\tOFF\tTIN\tIND\n'
    "2\tNice weather &amp; sun today @USER\tNOT\tNULL\tNULL\n"
)
DAVIDSON = (
    ",count,hate_speech,offensive_language,neither,class,tweet\n"
    "0,3,2,1,0,0,hateful words &amp; more\n"
    "1,3,0,3,0,1,rude words &#128514;\n"
    "2,3,0,0,3,2,!!! RT @someone: lovely day &lt;3\n"
)


def write(path: Path, text: str, newline: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline=newline) as handle:
        handle.write(text)
    return path


@pytest.fixture
def corpora(tmp_path: Path) -> Path:
    """A datasets folder laid out like the real one, holding the small files above."""
    write(tmp_path / "youtube-spam-collection" / "Youtube07-Alpha.csv", YOUTUBE_A)
    write(tmp_path / "youtube-spam-collection" / "Youtube08-Beta.csv", YOUTUBE_B)
    write(tmp_path / "sms-spam-collection" / "SMSSpamCollection", SMS)
    write(tmp_path / "kaggle-insults-impermium" / "train.csv", KAGGLE)
    write(tmp_path / "olid-offenseval2019" / "olid-training-v1.0.tsv", OLID)
    write(tmp_path / "davidson-hate-offensive" / "labeled_data.csv", DAVIDSON)
    return tmp_path


def test_youtube_keeps_the_video_and_strips_html(corpora: Path) -> None:
    examples = load(f"youtube:{corpora / 'youtube-spam-collection'}")
    assert [e.source for e in examples] == ["youtube:Alpha", "youtube:Alpha", "youtube:Beta"]
    assert examples[0] == Example(
        "Check out my channel, please subscribe!!!\nhttp://example.com/x",
        author="Spam Bot",
        spam=1,
        source="youtube:Alpha",
    )
    assert examples[1].text == "I love this song & the video's dance\ufeff"
    assert examples[1].author == "Ann & Bo"
    assert examples[2].text == "skip to 1:00" and examples[2].spam == 0
    assert all(e.abuse is None for e in examples)


def test_youtube_reads_a_single_file(corpora: Path) -> None:
    examples = load(f"youtube:{corpora / 'youtube-spam-collection' / 'Youtube08-Beta.csv'}")
    assert len(examples) == 1 and examples[0].source == "youtube:Beta"


def test_sms_reads_unquoted_tsv_without_final_newline_or_placeholders(corpora: Path) -> None:
    examples = load(f"sms:{corpora / 'sms-spam-collection'}")
    assert [(e.text, e.spam, e.abuse) for e in examples] == [
        ('Ok lar... "joking wif u', 0, None),
        ("FREE entry! Text WIN & call <80086> now", 1, None),
        ("Ref for Rs. at , see", 0, None),
        ("See you at 5", 0, None),
    ]


def test_kaggle_decodes_escapes_and_mojibake(corpora: Path) -> None:
    examples = load(f"kaggle:{corpora / 'kaggle-insults-impermium' / 'train.csv'}")
    assert [(e.text, e.abuse, e.spam) for e in examples] == [
        ("You're an idiot.", 1, None),
        ("First line\nsecond line", 0, None),
        ("A\xa0majority \u2019yes\u2019", 0, None),
    ]
    assert {e.source for e in examples} == {"kaggle-insults"}


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ('"plain"', "plain"),
        ('"caf\\xe9 K\\xe4se"', "caf\xe9 K\xe4se"),  # Latin-1 letters, not UTF-8 bytes: kept
        ('"it\\\\xe2\\\\x80\\\\x99s"', "it\u2019s"),  # UTF-8 bytes of a quote mark, escaped twice
        ('"tab\\there"', "tab\there"),
        ('"smile \\ud83d\\ude00"', "smile \U0001f600"),  # a UTF-16 pair written as two escapes
        ('"half \\ud83d of a pair"', "half \ufffd of a pair"),
        ('"\\UFFFFFFFF"', "\\UFFFFFFFF"),  # past the last character: left as written
        ('"\\U0010ffff"', "\U0010ffff"),  # the last character there is
        ('"Gr\\xfc\\xdfe"', "Gr\xfc\xdfe"),  # adjacent Latin-1 letters that are no UTF-8: kept
        ('"', '"'),  # a lone quote mark is the text, not quotes around nothing
    ],
)
def test_decode_comment(raw: str, text: str) -> None:
    assert decode_comment(raw) == text


def test_olid_maps_level_a_and_drops_placeholders(corpora: Path) -> None:
    examples = load(f"olid:{corpora / 'olid-offenseval2019'}")
    assert [(e.text, e.abuse, e.spam) for e in examples] == [
        ('Go home you"re drunk!!!', 1, None),
        ("Nice weather & sun today", 0, None),
    ]
    assert clean_tweet("@USER @USER URL") == ""


def test_davidson_maps_hate_and_offensive_to_abuse(corpora: Path) -> None:
    examples = load(f"davidson:{corpora / 'davidson-hate-offensive' / 'labeled_data.csv'}")
    assert [(e.text, e.abuse, e.spam) for e in examples] == [
        ("hateful words & more", 1, None),
        ("rude words \U0001f602", 1, None),
        ("!!! RT @someone: lovely day <3", 0, None),
    ]


def test_load_all_finds_every_corpus(corpora: Path) -> None:
    assert set(find_corpora(corpora)) == set(IMPORTERS)
    assert len(load_all(corpora)) == 3 + 4 + 3 + 2 + 3


def test_load_all_without_corpora_says_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="youtube-spam-collection"):
        load_all(tmp_path)


def test_canonical_files_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    write_examples(path, [Example("hello", spam=0)])
    assert load(str(path)) == [Example("hello", spam=0)]
    assert split_spec(str(path)) == (None, path)


@pytest.mark.parametrize(
    ("name", "when_missing"),
    [
        ("labels-2026-11-30T10:00.jsonl", r"^labels-2026-11-30T10:00\.jsonl: no such file$"),
        ("c:labels.jsonl", r"^c:labels\.jsonl: no such file$"),  # a drive letter
        ("notes:1.jsonl", "unknown importer 'notes'"),  # a plain name: most likely a mistyped importer
    ],
)
def test_a_colon_makes_an_importer_spec_only_after_an_importer_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, when_missing: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_examples(tmp_path / name, [Example("hello", spam=0)])
    for spec in (name, str(tmp_path / name)):
        assert split_spec(spec) == (None, Path(spec))
        assert load(spec) == [Example("hello", spam=0)]
    (tmp_path / name).unlink()
    with pytest.raises(DataError, match=when_missing):
        load(name)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch:/tmp/x", "unknown importer 'nosuch'"),
        ("youtube:/does/not/exist", "no such file or folder"),
        ("/does/not/exist.jsonl", "no such file"),
    ],
)
def test_bad_specs_are_data_errors(spec: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load(spec)


def test_a_pipe_given_as_a_canonical_file_is_not_called_missing(tmp_path: Path) -> None:
    # As `--data <(zcat labels.jsonl.gz)`, or a named pipe: there, but no file to read again.
    pipe = tmp_path / "labels.jsonl"
    os.mkfifo(pipe)
    for spec in (str(pipe), f"youtube:{pipe}"):
        with pytest.raises(DataError) as caught:
            load(spec)
        assert str(caught.value).startswith(f"{pipe}: not a regular file (a pipe or a device)")


def test_a_row_whose_text_cleans_to_nothing_is_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "olid.tsv",
        OLID_HEADER.decode() + "1\t@USER URL\tOFF\tTIN\tIND\n2\tfine\tNOT\tNULL\tNULL\n",
    )
    assert [(e.text, e.abuse) for e in load(f"olid:{path}")] == [("fine", 0)]


def test_olid_unquotes_a_tweet_written_as_a_quoted_field(tmp_path: Path) -> None:
    # Every OLID tweet holding a `"` is written as a CSV field: wrapped in quotes, its own
    # quotes doubled (1,057 of 13,240 in the training file).
    path = write(
        tmp_path / "olid.tsv",
        OLID_HEADER.decode()
        + '1\t"@USER Ppl who say I\'m not racist"" are racist. Repeat after me"""\tOFF\tTIN\tIND\n'
        + '2\t"""Fake news"" again URL"\tNOT\tNULL\tNULL\n',
    )
    assert [(e.text, e.abuse) for e in load(f"olid:{path}")] == [
        ('Ppl who say I\'m not racist" are racist. Repeat after me"', 1),
        ('"Fake news" again', 0),
    ]


def test_a_label_is_read_without_surrounding_spaces(tmp_path: Path) -> None:
    path = write(tmp_path / "olid.tsv", OLID_HEADER.decode() + "1\tgo away\t OFF \tTIN\tIND\n")
    assert [(e.text, e.abuse) for e in load(f"olid:{path}")] == [("go away", 1)]


def test_a_line_break_tag_in_any_case_is_a_line_break() -> None:
    assert strip_html("one<BR>two<Br />three") == "one\ntwo\nthree"


def test_unknown_label_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "SMSSpamCollection", "ham\tfine\nmaybe\tunsure")
    with pytest.raises(DataError, match=r"SMSSpamCollection:2: unexpected label 'maybe'"):
        load(f"sms:{path}")


def test_wrong_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match="header lacks column"):
        load(f"kaggle:{path}")


YOUTUBE_HEADER = b"COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
OLID_HEADER = b"id\ttweet\tsubtask_a\tsubtask_b\tsubtask_c\n"
DAVIDSON_HEADER = b",count,hate_speech,offensive_language,neither,class,tweet\n"
HUGE = b"x" * 140_000  # over the csv module's 128 KiB field limit


@pytest.mark.parametrize(
    ("spec", "content", "message"),
    [
        ("youtube:Youtube01-A.csv", YOUTUBE_HEADER + b"id1,Ann\n", r"Youtube01-A\.csv:2: 2 field\(s\) where"),
        ("youtube:Youtube01-A.csv", YOUTUBE_HEADER + b"i,A,d,caf\xe9,0\n", r"A\.csv:2: not valid UTF-8"),
        (
            "youtube:Youtube01-A.csv",
            YOUTUBE_HEADER + b'i,A,d,"' + HUGE + b'",0\n',
            r"A\.csv:2: .*field limit",
        ),
        ("sms:SMSSpamCollection", b"ham\tok\nspam\tcaf\xe9\n", r"SMSSpamCollection:2: not valid UTF-8"),
        ("sms:SMSSpamCollection", b"ham\tok\nham\t" + HUGE, r"SMSSpamCollection:2: .*field limit"),
        ("kaggle:train.csv", b"Insult,Date,Comment\r\n1,20120618192155Z\r\n", r"train\.csv:2: 2 field\(s\)"),
        (
            "kaggle:train.csv",
            b'Insult,Date,Comment\r\n1,,"' + HUGE + b'"\r\n',
            r"train\.csv:2: .*field limit",
        ),
        ("olid:olid-training.tsv", OLID_HEADER + b"1\tnice\tNOT\n", r"olid-training\.tsv:2: 3 field\(s\)"),
        (
            "olid:olid-training.tsv",
            OLID_HEADER + b"1\t\xff\tNOT\tx\ty\n",
            r"training\.tsv:2: not valid UTF-8",
        ),
        ("davidson:labeled_data.csv", DAVIDSON_HEADER + b"0,3,2\n", r"labeled_data\.csv:2: 3 field\(s\)"),
        (
            "davidson:labeled_data.csv",
            DAVIDSON_HEADER + b'0,3,2,1,0,0,"' + HUGE,
            r"data\.csv:2: .*field limit",
        ),
        # The tweet is the last column: a quote never closed would make it every line after.
        (
            "davidson:labeled_data.csv",
            DAVIDSON_HEADER + b'0,3,0,3,0,1,"opens\n1,3,0,0,3,2,next tweet\n',
            r"data\.csv:2: the row starting here is not valid CSV \(unexpected end of data\)",
        ),
    ],
    ids=[
        "youtube-short-row",
        "youtube-not-utf8",
        "youtube-huge-field",
        "sms-not-utf8",
        "sms-huge-field",
        "kaggle-short-row",
        "kaggle-huge-field",
        "olid-short-row",
        "olid-not-utf8",
        "davidson-short-row",
        "davidson-huge-field",
        "davidson-unclosed-quote",
    ],
)
def test_unreadable_corpus_files_name_file_and_line(
    tmp_path: Path, spec: str, content: bytes, message: str
) -> None:
    name, _, filename = spec.partition(":")
    (tmp_path / filename).write_bytes(content)
    with pytest.raises(DataError, match=message):
        load(f"{name}:{tmp_path / filename}")


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "\ufeff" + KAGGLE)
    assert len(load(f"kaggle:{path}")) == 3
