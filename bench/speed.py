"""Training cost on all corpora, scoring throughput and latency, and the obfuscation check.

Training runs in a child process so that its peak memory (the child's maximum resident
set size) is measured on its own, not mixed with the benchmark's. The child saves the
model; the throughput, latency and obfuscation figures use that saved model.
"""

from __future__ import annotations

import gc
import itertools
import random
import resource
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import child_figures
from models.classifier import Classifier
from models.examples import Example
from models.records import CommentText

BATCH_SIZES = (1, 10, 1000)
SCORED_COMMENTS = 5000
LATENCY_SAMPLES = 300
# Scored (with reasons) before any pass is timed, as a worker has met comments before.
WARM_UP_COMMENTS = 5000
# Plain form, then disguised forms a spammer or abuser uses; each disguise should score
# within 0.1 of the plain form on the head it belongs to.
OBFUSCATIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("spam", "buy viagra now", ("buy v1agra now", "buy v.i.a.g.r.a now", "buy v\u0456agra now")),
    ("spam", "free money, click here", ("f r e e  m o n e y, click here", "fr33 m0ney, click here")),
    (
        "spam",
        "check out my channel",
        ("ch3ck out my channel", "\u0441heck \u043eut my \u0441hannel", "check out my chaaaannel"),
    ),
    (
        "abuse",
        "you are an idiot",
        (
            "you are an id1ot",
            "you are an \u0456d\u0456ot",
            "you are an i d i o t",
            "you are an i_d_i_o_t",
            "you are an id\ufe0fiot",
        ),
    ),
    (
        "abuse",
        "shut up you stupid loser",
        ("shut up you stup1d l0ser", "shut up you \uff53\uff54\uff55\uff50\uff49\uff44 loser"),
    ),
    (
        "abuse",
        "what a moron",
        ("what a m.o.r.o.n", "what a mor\u200bon", "what a moooron", "\uab83\uab8b\uab7a\uab72 a moron"),
    ),
)

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from models.importers import load_all
from models.registry import save_version
from models.training import train

start = time.perf_counter()
examples = load_all(Path(sys.argv[1]))
loaded = time.perf_counter()
result = train(examples)
trained = time.perf_counter()
version = save_version(Path(sys.argv[2]), result)
print(json.dumps({
    "examples": len(examples), "unique_examples": result.examples, "version": version,
    "load_seconds": loaded - start, "train_seconds": trained - loaded,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "chosen_C": result.parameters["C"],
}))
"""


def train_all(datasets: Path, model_dir: Path) -> dict[str, Any]:
    """Train on every corpus in a child process; return its time, peak memory and version."""
    figures = child_figures(["-c", _CHILD, str(datasets), str(model_dir)])
    figures["peak_rss_mb_children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return figures


def sample_comments(examples: Sequence[Example], count: int, seed: int = 0) -> list[CommentText]:
    """`count` comments drawn from the corpora, as the service would send them."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    chosen = rng.sample(list(examples), min(count, len(examples)))
    return [CommentText(e.text, author=e.author, url=e.url) for e in chosen]


def _pass_size(batch_size: int) -> int:
    return max(batch_size * 20, 1000) if batch_size < 1000 else SCORED_COMMENTS


class TooFewCommentsError(ValueError):
    """The corpora hold fewer comments than the scoring's disjoint passes need."""


def check_scoring_sample(examples: Sequence[Example]) -> None:
    """Refuse (``TooFewCommentsError``) corpora too small for `scoring_figures`' disjoint passes,
    before minutes of training are spent on them."""
    passes = 2 * sum(_pass_size(size) for size in BATCH_SIZES)
    needed = WARM_UP_COMMENTS + passes + LATENCY_SAMPLES
    if len(examples) < needed:
        raise TooFewCommentsError(
            f"timing the scoring needs {needed:,} corpus comments ({WARM_UP_COMMENTS:,} to warm the "
            f"caches, {passes:,} for the passes, {LATENCY_SAMPLES} for the latency), each scored once; "
            f"the corpora found hold {len(examples):,}"
        )


def scoring_figures(
    classifier: Classifier, examples: Sequence[Example]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Throughput (`throughput`) and single-comment latency (`latency`), each pass on
    comments that no pass before it scored, after the caches were warmed on others.

    A long-running worker's caches hold the words of the comments it has met, not the
    comments it is about to score: scoring the same comments again would find every
    word cached and flatter the figures.
    """
    check_scoring_sample(examples)
    passes = 2 * sum(_pass_size(size) for size in BATCH_SIZES)
    comments = sample_comments(examples, WARM_UP_COMMENTS + passes + LATENCY_SAMPLES)
    warm_up, rest = comments[:WARM_UP_COMMENTS], comments[WARM_UP_COMMENTS:]
    # As a worker freezes what it holds once its model is loaded (worker/model_holder.py):
    # the garbage collector then walks what scoring makes, not the corpora read here.
    gc.collect()
    gc.freeze()
    try:
        for offset in range(0, len(warm_up), 1000):
            classifier.score(warm_up[offset : offset + 1000], reasons=True)
        return throughput(classifier, rest[:passes]), latency(classifier, rest[passes:])
    finally:
        gc.unfreeze()


def throughput(classifier: Classifier, comments: Sequence[CommentText]) -> dict[str, Any]:
    """Comments per second in batches of each size, with and without reasons, each pass on
    the next comments of ``comments`` (which must hold enough for all of them)."""
    results: dict[str, Any] = {}
    fresh = iter(comments)
    for reasons in (False, True):
        for size in BATCH_SIZES:
            total = list(itertools.islice(fresh, _pass_size(size)))
            start = time.perf_counter()
            for offset in range(0, len(total), size):
                classifier.score(total[offset : offset + size], reasons=reasons)
            elapsed = time.perf_counter() - start
            key = f"batch_{size}_{'with' if reasons else 'without'}_reasons"
            results[key] = {"comments": len(total), "per_second": len(total) / elapsed}
    return results


def latency(classifier: Classifier, comments: Sequence[CommentText]) -> dict[str, float]:
    """Milliseconds for `score_one` (with reasons), one comment at a time."""
    timings = []
    for comment in comments[:LATENCY_SAMPLES]:
        start = time.perf_counter()
        classifier.score_one(comment)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {
        "median_ms": statistics.median(timings),
        "p95_ms": timings[int(len(timings) * 0.95) - 1],
        "max_ms": timings[-1],
    }


def obfuscation(classifier: Classifier) -> dict[str, Any]:
    """Score each plain phrase and its disguises; report the largest difference."""
    rows: list[dict[str, Any]] = []
    for head, plain, variants in OBFUSCATIONS:
        base = classifier.probabilities([plain])[head][0]
        scores = classifier.probabilities(list(variants))[head]
        for variant, score in zip(variants, scores, strict=True):
            rows.append(
                {
                    "head": head,
                    "plain": plain,
                    "variant": variant,
                    "plain_score": float(base),
                    "variant_score": float(score),
                    "difference": abs(float(score - base)),
                }
            )
    worst = max(row["difference"] for row in rows)
    return {"pairs": rows, "max_difference": worst, "within_0_1": worst <= 0.1}
