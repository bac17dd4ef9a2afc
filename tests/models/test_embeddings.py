"""The pretrained token vectors branch: BERT's own word pieces, weighted by rarity, unit length."""

from __future__ import annotations

import numpy as np
import pytest

from models import embeddings
from models.embeddings import TokenVectors, load_vectors, split_word, wordpiece
from models.errors import ModelError


@pytest.fixture(scope="module")
def vocabulary() -> dict[str, int]:
    terms, _table = load_vectors()
    return {term: i for i, term in enumerate(terms)}


def _pieces(word: str, vocabulary: dict[str, int]) -> list[str]:
    terms = list(vocabulary)
    return [terms[i] for piece in split_word(word) for i in wordpiece(piece, vocabulary)]


@pytest.mark.parametrize(
    ("word", "pieces"),
    [
        ("idiot!", ["idiot", "!"]),
        ("moron", ["mor", "##on"]),
        ("naïve", ["naive"]),  # combining marks dropped, as BERT's uncased tokenizer does
        ("♥️", ["♥"]),  # the emoji variation selector too
        ("日本", ["日", "本"]),  # each CJK character a word of its own
        ("x" * 101, ["[UNK]"]),  # longer than WordPiece tries
        ("don't", ["don", "'", "t"]),
    ],
)
def test_words_are_cut_as_bert_cuts_them(vocabulary: dict[str, int], word: str, pieces: list[str]) -> None:
    assert _pieces(word, vocabulary) == pieces


def test_printable_ascii_words_are_cut_as_any_word_is() -> None:
    # The shortcut for plain ASCII against the character-by-character cut, on every
    # printable character alone, beside letters and digits, and in runs.
    printable = [chr(code) for code in range(33, 127)]
    words = [*printable, *(f"ab{c}9{c}{c}z" for c in printable), "".join(printable), "v1agra!!", "--a--"]
    for word in words:
        assert split_word(word) == embeddings._split_any_word(word), word


def test_a_piece_without_a_whole_cut_is_unknown() -> None:
    assert wordpiece("abz", {"a": 0, "##b": 1, "[UNK]": 2}) == [2]
    assert wordpiece("ab", {"a": 0, "##b": 1, "[UNK]": 2}) == [0, 1]


def test_rows_are_unit_weighted_means_and_rare_tokens_weigh_more() -> None:
    documents = ["the cat sat", "the dog ran", "the the idiot"] * 5
    branch = TokenVectors().fit(documents)
    rows = branch.transform(["the idiot", "", "cat"]).toarray()
    np.testing.assert_allclose(np.linalg.norm(rows[[0, 2]], axis=1), 1.0, rtol=1e-6)
    assert not rows[1].any()  # no token, no direction
    terms, table = load_vectors()
    the, idiot = terms.index("the"), terms.index("idiot")
    # Weight a / (a + p): "the" is 20 of the 45 training tokens, "idiot" 5, "dull" none.
    weight = np.linalg.norm(branch.weighted_, axis=1) / np.linalg.norm(table, axis=1)
    a = embeddings.SIF_A
    np.testing.assert_allclose(weight[[the, idiot]], [a / (a + 20 / 45), a / (a + 5 / 45)], rtol=1e-5)
    assert weight[terms.index("dull")] == pytest.approx(1.0)
    expected = branch.weighted_[the] + branch.weighted_[idiot]
    np.testing.assert_allclose(rows[0], expected / np.linalg.norm(expected), rtol=1e-5)
    assert branch.transform(["", "the"]).indptr.tolist() == [0, 0, rows.shape[1]]


def test_the_caches_are_not_stored() -> None:
    branch = TokenVectors().fit(["a b c"])
    branch.transform(["a b c"])
    state = branch.__getstate__()
    assert "_words" not in state and "_ids" not in state and "weighted_" in state


def test_missing_vectors_package_names_the_install_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "VECTORS_PACKAGE", "no_such_vectors_package")
    embeddings.load_vectors.cache_clear()
    try:
        with pytest.raises(ModelError, match=r"requirements-vectors\.txt"):
            load_vectors()
    finally:
        embeddings.load_vectors.cache_clear()
