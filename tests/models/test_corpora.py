"""Each importer on its real corpus (skipped when the datasets folder is absent).

The expected counts are the ones each corpus's SOURCE.md documents.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from models.importers import IMPORTERS, load

# importer -> (rows, positives, labeled head)
EXPECTED = {
    "youtube": (1138, 586, "spam"),
    "sms": (5574, 747, "spam"),
    "kaggle": (3947, 1049, "abuse"),
    "olid": (13240, 4400, "abuse"),
    "davidson": (24783, 20620, "abuse"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_corpus(datasets: Path, name: str) -> None:
    folder = datasets / IMPORTERS[name].folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    examples = load(f"{name}:{folder}")
    rows, positives, head = EXPECTED[name]
    other = "abuse" if head == "spam" else "spam"
    assert len(examples) == rows
    assert sum(e.label(head) == 1 for e in examples) == positives
    assert all(e.label(head) in (0, 1) and e.label(other) is None for e in examples)
    assert all(e.text.strip() for e in examples)


def test_real_youtube_keeps_three_videos(datasets: Path) -> None:
    folder = datasets / IMPORTERS["youtube"].folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    sources = Counter(e.source for e in load(f"youtube:{folder}"))
    assert sources == {"youtube:Psy": 350, "youtube:KatyPerry": 350, "youtube:LMFAO": 438}


def test_real_kaggle_has_no_escapes_left(datasets: Path) -> None:
    folder = datasets / IMPORTERS["kaggle"].folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    texts = [e.text for e in load(f"kaggle:{folder}")]
    assert not any("\\n" in t or "\\x" in t or "\\u" in t for t in texts)
    assert not any(t.startswith('"') and t.endswith('"') for t in texts)
