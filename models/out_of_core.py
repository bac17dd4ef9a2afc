"""Training out of core: the labelled examples are read again for each pass, never held.

`train_out_of_core(read)` calls `read()` once per pass, and each call yields the same
examples again (from files on disk, say). What stays in memory is:

- an index of the examples: an 8-byte digest of each one's normalized text, its two
  labels and a split draw, about 14 bytes an example (a few times that while it is
  sorted), from which deduplication is decided as `train` decides it in memory (the
  first copy of a text is kept, later copies only fill in labels it lacks) and a split
  that never puts a text on both sides;
- the validation part, at most `VALIDATION_CAP` examples;
- a shuffle buffer of `SHUFFLE_CHUNKS` chunks and one chunk's feature matrix.

The passes: one to index; one to collect the validation part; then `epochs` passes of
`partial_fit` over the training part, its chunks shuffled within the buffer (a file
holding one corpus after another would otherwise pull the heads towards the last).
Each head's Platt sigmoid is then fitted on the validation part and folded into its
weights, and the thresholds are picked there. Unlike `train`, nothing is refitted on
all examples: the refit would have no held-out data left to calibrate it on, and a
label set this large loses little by keeping a fifth out.

The split is drawn per text from its digest, not stratified: with many examples each
side gets its share of every label anyway.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

from models.classifier import Classifier
from models.errors import DataError, TrainingError
from models.examples import LABELS, Example, canonical_line, conflict_notes, dedup_key
from models.heads import HEADS
from models.metrics import DEFAULT_REVIEW, NO_AUTOMATIC_REJECT
from models.training import (
    OUT_OF_CORE_CHUNK,
    OUT_OF_CORE_EPOCHS,
    Progress,
    TrainingResult,
    calibration_notes,
    chunked,
    fit_out_of_core,
    label_matrix,
    make_version,
    pipeline_for,
    report,
    training_parameters,
    validate,
)

# The validation part holds at most this many examples: enough to pick thresholds at a
# precision of 0.999 and fit a sigmoid, few enough to keep in memory.
VALIDATION_CAP = 50_000
SHUFFLE_CHUNKS = 10
_NO_LABEL = -1
_SPLIT_DRAWS = 2**32


def out_of_core_steps(epochs: int = OUT_OF_CORE_EPOCHS) -> int:
    """How many progress messages `train_out_of_core` sends."""
    return 3 + epochs


@dataclass(frozen=True)
class Index:
    """What one pass over the examples decides: which to keep, with which labels, on which side."""

    count: int
    fingerprint: str
    kept: np.ndarray  # bool (count,): the first copy of its text
    labels: np.ndarray  # int8 (count, len(LABELS)): merged labels of kept rows, -1 for none
    held_out: np.ndarray  # bool (count,): kept and in the validation part
    conflicts: dict[str, int]  # per head, the texts whose copies label it both 0 and 1

    @property
    def unique(self) -> int:
        """How many distinct texts there are."""
        return int(self.kept.sum())

    def class_counts(self, head: str, *, held_out: bool) -> tuple[int, int]:
        """(negatives, positives) of ``head`` among the kept rows on one side of the split."""
        side = self.kept & (self.held_out == held_out)
        column = self.labels[side, LABELS.index(head)]
        return int((column == 0).sum()), int((column == 1).sum())


def _digest(example: Example) -> bytes:
    return hashlib.blake2b(dedup_key(example.text).encode("utf-8"), digest_size=8).digest()


def _label_code(value: int | None) -> int:
    return _NO_LABEL if value is None else value


def build_index(examples: Iterable[Example], validation_size: float, seed: int) -> Index:
    """One pass over ``examples``: deduplicate as `deduplicate` does and draw the split.

    The validation part takes ``validation_size`` of the distinct texts, at most
    `VALIDATION_CAP` of them; which ones depends only on each text and ``seed``.
    """
    if not 0.0 < validation_size < 1.0:
        raise ValueError(f"validation_size must be between 0 and 1, got {validation_size}")
    digests, labels, draws = bytearray(), bytearray(), bytearray()
    fingerprint = hashlib.sha256()
    salt = hashlib.sha256(str(seed).encode()).digest()[:16]  # any int, as `train` takes
    for example in examples:
        digest = _digest(example)
        digests += digest
        labels += bytes(_label_code(example.label(head)) & 0xFF for head in LABELS)
        draws += hashlib.blake2b(digest, digest_size=4, key=salt).digest()
        fingerprint.update(canonical_line(example))  # as `models.examples.fingerprint` digests them
    count = len(digests) // 8
    keys = np.frombuffer(bytes(digests), dtype=">u8")
    given = np.frombuffer(bytes(labels), dtype=np.int8).reshape(count, len(LABELS))
    order = np.argsort(keys, kind="stable")  # stable: each text's copies stay in reading order
    starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0]) if count else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], count].astype(np.int64)
    first = order[starts]
    merged = np.full((count, len(LABELS)), _NO_LABEL, dtype=np.int8)
    conflicts: dict[str, int] = {}
    for column, head in enumerate(LABELS):
        ranked = given[order, column]
        # Within each text's run, the first copy that has a label gives it.
        labelled_at = np.where(ranked != _NO_LABEL, np.arange(count), count)
        earliest = np.minimum.reduceat(labelled_at, starts) if count else labelled_at
        found = earliest < ends
        merged[first[found], column] = ranked[earliest[found]]
        if count:
            says = [np.maximum.reduceat((ranked == label).astype(np.int8), starts) for label in (0, 1)]
            conflicts[head] = int((says[0] & says[1]).sum())
        else:
            conflicts[head] = 0
    kept = np.zeros(count, dtype=bool)
    kept[first] = True
    drawn = np.frombuffer(bytes(draws), dtype=">u4")
    held_out = kept & (drawn < validation_size * _SPLIT_DRAWS)
    if held_out.sum() > VALIDATION_CAP:
        # The texts with the lowest draws stay, so the part is still chosen by text and seed.
        candidates = np.flatnonzero(held_out)
        held_out[candidates[np.argsort(drawn[candidates], kind="stable")[VALIDATION_CAP:]]] = False
    return Index(count, fingerprint.hexdigest(), kept, merged, held_out, conflicts)


def _side(read: Callable[[], Iterable[Example]], index: Index, *, held_out: bool) -> Iterator[Example]:
    """The kept examples of one side of the split, with their merged labels, in reading order.

    Raises ``DataError`` at the end of a pass that read other examples than the index did.
    """
    seen = 0
    digest = hashlib.sha256()
    for position, example in enumerate(read()):
        seen = position + 1
        if position >= index.count:
            break
        digest.update(canonical_line(example))
        if index.kept[position] and index.held_out[position] == held_out:
            spam, abuse = (None if code == _NO_LABEL else int(code) for code in index.labels[position])
            yield replace(example, spam=spam, abuse=abuse)
    if seen != index.count or digest.hexdigest() != index.fingerprint:
        now = "other examples" if seen == index.count else f"{seen if seen <= index.count else 'more'} now"
        raise DataError(
            f"the labelled data changed while training (it is read again for each pass): "
            f"{index.count} examples at first, {now}"
        )


def _shuffled_chunks(examples: Iterable[Example], size: int, rng: random.Random) -> Iterator[list[Example]]:
    """``examples`` in chunks of ``size``, shuffled within runs of `SHUFFLE_CHUNKS` chunks."""
    buffer: list[Example] = []

    def drain() -> Iterator[list[Example]]:
        rng.shuffle(buffer)
        for start in range(0, len(buffer), size):
            yield buffer[start : start + size]
        buffer.clear()

    for example in examples:
        buffer.append(example)
        if len(buffer) == size * SHUFFLE_CHUNKS:
            yield from drain()
    yield from drain()


def train_out_of_core(
    read: Callable[[], Iterable[Example]],
    *,
    seed: int = 0,
    review_recall: float = 0.95,
    reject_precision: float = 0.99,
    validation_size: float = 0.2,
    epochs: int = OUT_OF_CORE_EPOCHS,
    progress: Progress | None = None,
) -> TrainingResult:
    """Train with hashed features and incremental heads, reading the examples once per pass.

    Raises:
        TrainingError: when no head has both classes among the training part's labels.
        DataError: when ``read()`` yields other examples from one pass to the next.
    """
    created_at = datetime.now(UTC).replace(microsecond=0)
    index = build_index(read(), validation_size, seed)
    report(progress, f"indexed {index.count} examples, {index.unique} distinct")
    # Only the training part is fitted on (nothing is refitted on all examples), so a head
    # needs both classes there.
    train_counts = {head: index.class_counts(head, held_out=False) for head in HEADS}
    if not any(min(train_counts[head]) for head in HEADS):
        raise TrainingError(
            "no head can be trained: outside the validation part, every label column is empty "
            "or holds one class only"
        )
    targets = {"review_recall": review_recall, "reject_precision": reject_precision}
    parameters = {
        **training_parameters(index.unique, True, seed, {**targets, "validation_size": validation_size}),
        "C_grid": None,
        "epochs": epochs,
        "validation_cap": VALIDATION_CAP,
    }
    valid_part = list(_side(read, index, held_out=True))
    report(progress, f"fitting on {index.unique - len(valid_part)} examples, validating on {len(valid_part)}")
    pipeline = pipeline_for(parameters)
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    fit_out_of_core(
        pipeline,
        lambda: _shuffled_chunks(_side(read, index, held_out=False), OUT_OF_CORE_CHUNK, rng),
        epochs=epochs,
        progress=progress,
    )
    if valid_part:
        prepare, features, fitted = (pipeline.named_steps[s] for s in ("prepare", "features", "heads"))
        # Chunk by chunk: the whole part's feature matrix would take gigabytes.
        logits = [
            fitted.decision_function(features.transform(prepare.transform(chunk)))
            for chunk in chunked(valid_part, OUT_OF_CORE_CHUNK)
        ]
        fitted.calibrate(np.vstack(logits), label_matrix(valid_part, fitted.heads))
    thresholds, metrics = validate(pipeline, train_counts, valid_part, (review_recall, reject_precision), {})
    report(progress, "calibrated on the validation part")
    trained = tuple(pipeline.named_steps["heads"].heads_)
    for head in trained:
        thresholds.setdefault(head, {"review": DEFAULT_REVIEW, "reject": NO_AUTOMATIC_REJECT})
        metrics.setdefault(head, {"thresholds_from": "default: no validation labels for this head"})
    version = make_version(created_at, index.fingerprint)
    return TrainingResult(
        classifier=Classifier(pipeline, version=version, thresholds={h: thresholds[h] for h in trained}),
        metrics={h: metrics[h] for h in trained},
        parameters=parameters,
        data_fingerprint=index.fingerprint,
        created_at=created_at,
        examples=index.unique,
        notes=[
            *(
                f"head {h!r} absent: outside the validation part its labels are missing or hold "
                "one class only"
                for h in HEADS
                if h not in trained
            ),
            *calibration_notes(pipeline),
            *conflict_notes(index.conflicts),
        ],
    )
