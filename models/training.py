"""Training: split, fit, measure on held-out data, pick thresholds, refit on everything.

The split model exists only to measure: metrics and thresholds come from examples it
never saw. The model that is kept is then refitted on all examples with the same
parameters, because for the small label sets a site starts with (a seed set, a few
hundred moderator decisions) the last fifth of the data matters more than the small
shift between the split model's and the final model's probabilities. Both are
calibrated the same way, so thresholds chosen on one carry over to the other. The
reported metrics are the split model's, the honest estimate for unseen comments.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from sklearn.pipeline import Pipeline

from models.classifier import Classifier
from models.errors import TrainingError
from models.examples import (
    Example,
    conflict_notes,
    deduplicate_counting_conflicts,
    fingerprint,
    split_examples,
)
from models.heads import HEADS
from models.metrics import DEFAULT_REVIEW, NO_AUTOMATIC_REJECT, head_metrics, pick_thresholds, prior_scores
from models.pipeline import BRANCH_WEIGHTS, WORD_PATTERN, PreparedComment, build_pipeline, prepare

# Below this many examples, terms seen once are kept: a small set has few repeats.
MIN_DF_THRESHOLD = 2000
OUT_OF_CORE_CHUNK = 5000
OUT_OF_CORE_EPOCHS = 5
# Each head keeps the C from this grid that its cross-validated scores rank best with;
# DEFAULT_C serves a head with too few labels to cross-validate.
C_GRID = (1.0, 4.0, 16.0, 64.0)
DEFAULT_C = 4.0
_WORD = re.compile(WORD_PATTERN)

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class TrainingResult:
    """A trained classifier with what is recorded beside it."""

    classifier: Classifier
    metrics: dict[str, Any]
    parameters: dict[str, Any]
    data_fingerprint: str
    created_at: datetime
    examples: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def thresholds(self) -> dict[str, dict[str, float]]:
        """Per head `{"review": p, "reject": p}`."""
        return self.classifier.thresholds


def planned_steps() -> int:
    """How many progress messages `train` sends, so a caller can size a progress bar."""
    return 2


def label_matrix(examples: Sequence[Example], heads: Sequence[str] = HEADS) -> np.ndarray:
    """Return labels as an (n, len(heads)) float array with NaN where a label is absent."""
    rows = [[np.nan if (v := e.label(h)) is None else float(v) for h in heads] for e in examples]
    return np.asarray(rows, dtype=np.float64).reshape(len(examples), len(heads))


def make_version(created_at: datetime, data_fingerprint: str) -> str:
    """Return a version name such as `20261128T031500Z-1a2b3c4d`."""
    return f"{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{data_fingerprint[:8]}"


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size``, the last one shorter."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fit_out_of_core(
    pipeline: Pipeline,
    chunks: Callable[[], Iterable[Sequence[Example]]],
    *,
    epochs: int = OUT_OF_CORE_EPOCHS,
    progress: Progress | None = None,
) -> Pipeline:
    """Fit an out-of-core pipeline by passing over `chunks()` `epochs` times.

    `chunks` is called once per epoch, so it can re-read files from disk: only one
    chunk of examples and its feature matrix are in memory at a time. The whole of
    training out of core, from deduplication to calibration, is `models.out_of_core`.
    """
    prepare, features, heads = (pipeline.named_steps[s] for s in ("prepare", "features", "heads"))
    features.fit([])  # every branch is stateless; this only validates parameters
    for epoch in range(epochs):
        for chunk in chunks():
            matrix = features.transform(prepare.transform(chunk))
            heads.partial_fit(matrix, label_matrix(chunk, heads.heads))
        if progress:
            progress(f"epoch {epoch + 1}/{epochs}")
    return pipeline


def fit_pipeline(
    examples: Sequence[Example],
    parameters: dict[str, Any],
    prepared: Mapping[Example, PreparedComment | Example] | None = None,
) -> Pipeline:
    """Build the in-memory pipeline with `parameters` and fit it on `examples`.

    `prepared` may hold the examples already normalized (`models.pipeline.prepare`), so
    that a text fitted on twice is normalized once; the result is the same either way.
    """
    pipeline = pipeline_for(parameters)
    records = [prepared[e] for e in examples] if prepared is not None else list(examples)
    pipeline.fit(records, label_matrix(examples))
    return pipeline


def pipeline_for(parameters: Mapping[str, Any]) -> Pipeline:
    """The unfitted pipeline a run's `parameters` describe."""
    options = {k: parameters[k] for k in ("out_of_core", "seed", "min_df", "C", "calibration_folds")}
    options["branch_weights"] = parameters.get("branch_weights")
    grid = parameters.get("C_grid")
    return build_pipeline(**options, C_grid=tuple(grid) if grid else None)


def chosen_c(pipeline: Pipeline) -> dict[str, float]:
    """The C each head of a fitted pipeline kept (empty out of core)."""
    return dict(getattr(pipeline.named_steps["heads"], "C_", {}))


def class_counts(examples: Iterable[Example], head: str) -> tuple[int, int]:
    """(negatives, positives) of `head` among `examples`."""
    labels = [label for e in examples if (label := e.label(head)) is not None]
    return len(labels) - sum(labels), sum(labels)


def validate(
    pipeline: Pipeline,
    train_counts: Mapping[str, tuple[int, int]],
    valid_part: Sequence[Example],
    targets: tuple[float, float],
    prepared: Mapping[Example, PreparedComment | Example],
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Pick thresholds and compute metrics per head on the validation part; the baseline
    is the class prior of the training part, given as (negatives, positives) per head."""
    heads = tuple(pipeline.named_steps["heads"].heads_)
    records = [prepared.get(e, e) for e in valid_part]
    # Chunk by chunk: out of core, the validation part's whole feature matrix would take gigabytes.
    chunks = [pipeline.predict_proba(chunk) for chunk in chunked(records, OUT_OF_CORE_CHUNK)]
    scores = np.vstack(chunks) if chunks and heads else None
    thresholds: dict[str, dict[str, float]] = {}
    metrics: dict[str, Any] = {}
    for column, head in enumerate(heads):
        rows = [i for i, e in enumerate(valid_part) if e.label(head) is not None]
        if not rows:  # nothing to validate on: `train` gives the head the fallbacks
            continue
        labels = np.asarray([valid_part[i].label(head) for i in rows], dtype=np.int64)
        values = scores[rows, column] if scores is not None else np.zeros(0)
        thresholds[head], how = pick_thresholds(
            labels, values, review_recall=targets[0], reject_precision=targets[1]
        )
        baseline = prior_scores(*train_counts[head], len(labels))
        metrics[head] = {"thresholds_from": how, **head_metrics(labels, values, thresholds[head], baseline)}
    return thresholds, metrics


def _trainable_heads(examples: Sequence[Example]) -> tuple[str, ...]:
    """The heads whose labels hold both classes; the others will be absent."""
    return tuple(h for h in HEADS if {e.label(h) for e in examples} >= {0, 1})


def _vocabulary_problem(records: Iterable[PreparedComment], min_df: int) -> str | None:
    """Why the word branch would have no vocabulary to fit on ``records``, or None.

    A term is kept only when at least ``min_df`` texts hold it, and scikit-learn refuses
    to fit an empty vocabulary. A word (the word branch's own pattern) in ``min_df``
    texts is a term; the character branch has terms whenever the word branch has.
    """
    texts: Counter[str] = Counter()
    for record in records:
        for word in set(_WORD.findall(record.normalized_text)):
            texts[word] += 1
            if texts[word] >= min_df:
                return None
    if min_df == 1:
        return "holds no word (letters or digits), only punctuation, symbols or emoji"
    return f"holds no word that appears in {min_df} texts or more"


def training_parameters(
    unique: int, out_of_core: bool, seed: int, targets: dict[str, float]
) -> dict[str, Any]:
    """Every parameter of a run, recorded in the model's metadata."""
    return {
        "out_of_core": out_of_core,
        "seed": seed,
        "min_df": 2 if unique >= MIN_DF_THRESHOLD else 1,
        "C": DEFAULT_C,
        "C_grid": list(C_GRID),
        "calibration_folds": 3,
        "branch_weights": dict(BRANCH_WEIGHTS),
        "chunk_size": OUT_OF_CORE_CHUNK,
        **targets,
    }


def train(
    examples: Sequence[Example],
    *,
    seed: int = 0,
    review_recall: float = 0.95,
    reject_precision: float = 0.99,
    validation_size: float = 0.2,
    progress: Progress | None = None,
) -> TrainingResult:
    """Train a classifier on canonical examples held in memory; see the module docstring
    for the method (and `models.out_of_core.train_out_of_core` for label sets too large).

    Raises:
        TrainingError: when no head has both classes among the labels, or the texts hold
            no word to learn from.
    """
    created_at = datetime.now(UTC).replace(microsecond=0)
    data_fingerprint = fingerprint(examples)
    unique, conflicts = deduplicate_counting_conflicts(examples)
    heads = _trainable_heads(unique)
    if not heads:
        raise TrainingError("no head can be trained: every label column is empty or holds one class only")
    targets = {"review_recall": review_recall, "reject_precision": reject_precision}
    parameters = training_parameters(
        len(unique), False, seed, {**targets, "validation_size": validation_size}
    )
    train_part, valid_part = split_examples(unique, validation_size, seed)
    # Normalized once for both fits.
    prepared = {example: prepare(example) for example in unique}
    # Checked before fitting, on all examples and then on the part the split model is
    # fitted on: scikit-learn's "empty vocabulary" says nothing a user can act on.
    problem = _vocabulary_problem(prepared.values(), parameters["min_df"])
    if problem is not None:
        raise TrainingError(f"nothing to learn from: the text of the {len(unique)} examples {problem}")
    problem = _vocabulary_problem((prepared[e] for e in train_part), parameters["min_df"])
    if problem is not None:
        raise TrainingError(
            f"nothing to learn from: outside the validation part, the text of the {len(train_part)} "
            f"examples {problem}; add examples whose text has words"
        )
    report(progress, f"fitting on {len(train_part)} examples, validating on {len(valid_part)}")
    split_model = fit_pipeline(train_part, parameters, prepared)
    train_counts = {head: class_counts(train_part, head) for head in HEADS}
    thresholds, metrics = validate(
        split_model, train_counts, valid_part, (review_recall, reject_precision), prepared
    )
    report(progress, f"refitting on all {len(unique)} examples")
    # The final model keeps each head's C from the split model: searching again on all
    # the data would cost as much once more for a choice that rarely changes.
    parameters["C"] = {**dict.fromkeys(HEADS, DEFAULT_C), **chosen_c(split_model)}
    final = fit_pipeline(unique, {**parameters, "C_grid": None}, prepared)
    for head in heads:
        # A head the split model lacked (too few labels before the split), or whose labels
        # all fell in the training part, gets the fallbacks.
        thresholds.setdefault(head, {"review": DEFAULT_REVIEW, "reject": NO_AUTOMATIC_REJECT})
        metrics.setdefault(head, {"thresholds_from": "default: no validation labels for this head"})
    version = make_version(created_at, data_fingerprint)
    return TrainingResult(
        classifier=Classifier(final, version=version, thresholds={h: thresholds[h] for h in heads}),
        metrics={h: metrics[h] for h in heads},
        parameters=parameters,
        data_fingerprint=data_fingerprint,
        created_at=created_at,
        examples=len(unique),
        notes=[
            *(
                f"head {h!r} absent: its labels are missing or hold one class only"
                for h in HEADS
                if h not in heads
            ),
            *calibration_notes(final),
            *conflict_notes(conflicts),
        ],
    )


def calibration_notes(pipeline: Pipeline) -> list[str]:
    """A note for each head of a fitted pipeline whose scores are not calibrated probabilities.

    `LinearHeads` keeps a head's own probabilities when its sigmoid cannot be fitted; said
    nowhere else, those scores would pass for calibrated ones.
    """
    heads = pipeline.named_steps["heads"]
    return [
        f"head {head!r} not calibrated: too few labels of a class to fit its sigmoid on (or scores "
        "that rank them backwards), so its scores are the model's own, not calibrated probabilities"
        for head, calibrated in zip(heads.heads_, heads.calibrated_, strict=True)
        if not calibrated
    ]


def report(progress: Progress | None, message: str) -> None:
    """Send ``message`` to ``progress``, if there is one."""
    if progress:
        progress(message)
