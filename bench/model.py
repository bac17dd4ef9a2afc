"""The classifier's cost: training time and peak memory, scoring throughput and latency.

    python bench/model.py [--datasets DIR] [--factor 10] [--out model]

- training on every corpus in DIR (in memory, as `moderation train` does), in a child
  process whose peak resident memory is its own;
- the out-of-core mode on a synthetic set ``--factor`` times that size, streamed: each
  corpus example comes back ``factor`` times with two words from the corpora's vocabulary
  appended (so deduplication keeps every copy), generated afresh for each pass, never
  held. ``train_out_of_core`` runs on it with one epoch, in a child process: the index
  pass, the validation part, the epoch and the calibration, each timed; a full
  ``train --out-of-core`` makes ``OUT_OF_CORE_EPOCHS`` epochs;
- scoring in batches of 1, 10 and 1,000, with and without reasons, and one comment at
  a time, with the model trained on every corpus.

DIR defaults to $MODERATION_DATASETS, else ../shared/datasets beside the project; the
corpora are read from there and never copied. Writes ``bench/results/<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install

import speed

from bench.common import child_figures, machine_info, stop_on_sigterm, write_results
from models.examples import Example
from models.importers import DATASETS_ENV, datasets_dir, find_corpora, load_all
from models.out_of_core import train_out_of_core
from models.registry import load_version
from models.training import OUT_OF_CORE_CHUNK, OUT_OF_CORE_EPOCHS

VOCABULARY_SIZE = 20_000


def synthetic_examples(examples: Sequence[Example], factor: int, seed: int = 0) -> Iterator[Example]:
    """``factor`` distinct copies of every example, one at a time.

    A copy is the text with two vocabulary words appended; its labels are the original's.
    The same seed gives the same stream, so every pass sees the same data.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not a secret
    vocabulary = sorted({word for e in examples for word in e.text.lower().split() if word.isalpha()})
    vocabulary = rng.sample(vocabulary, min(VOCABULARY_SIZE, len(vocabulary)))
    for copy in range(factor):
        for example in examples:
            suffix = "" if copy == 0 else f" {rng.choice(vocabulary)} {rng.choice(vocabulary)}"
            yield replace(example, text=example.text + suffix)


def train_synthetic(datasets: Path, factor: int) -> dict[str, Any]:
    """Out-of-core training with one epoch over the synthetic set, each pass timed; run in a
    child (``--child``) for its memory."""
    examples = load_all(datasets)
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    result = train_out_of_core(
        lambda: synthetic_examples(examples, factor),
        epochs=1,
        progress=lambda message: marks.append((message, time.perf_counter())),
    )
    seconds = time.perf_counter() - start
    # Progress comes after the index, the validation part, the epoch and the calibration.
    (_, indexed), (_, collected), (_, epoch_done), (_, calibrated) = marks
    passed = factor * len(examples)
    epoch_seconds = epoch_done - collected
    return {
        "factor": factor,
        "corpus_examples": len(examples),
        "examples_per_epoch": passed,
        "distinct_examples": result.examples,
        "chunk_size": OUT_OF_CORE_CHUNK,
        "index_seconds": indexed - start,
        "validation_seconds": collected - indexed,
        "epoch_seconds": epoch_seconds,
        "calibration_seconds": calibrated - epoch_done,
        "seconds": seconds,
        "examples_per_second": passed / epoch_seconds,
        "epochs": OUT_OF_CORE_EPOCHS,
        "full_training_estimate_seconds": seconds + epoch_seconds * (OUT_OF_CORE_EPOCHS - 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def synthetic_in_child(datasets: Path, factor: int) -> dict[str, Any]:
    """Run ``train_synthetic`` in a fresh interpreter and return its figures."""
    return child_figures([__file__, "--child", "--datasets", str(datasets), "--factor", str(factor)])


def measure(datasets: Path, factor: int) -> dict[str, Any]:
    """Every figure: in-memory training, out-of-core training on the synthetic set, scoring."""
    corpora = load_all(datasets)
    speed.check_scoring_sample(corpora)
    print("training on every corpus (in memory) ...", flush=True)
    with tempfile.TemporaryDirectory() as model_dir:
        training = speed.train_all(datasets, Path(model_dir))
        classifier = load_version(model_dir, training["version"])
    print(
        f"  {training['unique_examples']} unique examples: {training['train_seconds']:.1f} s,"
        f" peak {training['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    print(f"out-of-core training, one epoch, over {factor}x the corpora (streamed) ...", flush=True)
    synthetic = synthetic_in_child(datasets, factor)
    print(
        f"  {synthetic['examples_per_epoch']} examples: {synthetic['seconds']:.1f} s in all, of which"
        f" the index {synthetic['index_seconds']:.1f} s, the epoch {synthetic['epoch_seconds']:.1f} s"
        f" ({synthetic['examples_per_second']:.0f}/s); peak {synthetic['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    scoring, single = speed.scoring_figures(classifier, corpora)
    for key, value in scoring.items():
        print(f"  {key}: {value['per_second']:.0f} comments/s", flush=True)
    print(f"  one comment with reasons: median {single['median_ms']:.2f} ms, p95 {single['p95_ms']:.2f} ms")
    return {"training": training, "out_of_core": synthetic, "throughput": scoring, "latency": single}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, write the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--datasets", type=Path, default=None, help=f"corpora folder (default ${DATASETS_ENV})"
    )
    parser.add_argument("--factor", type=int, default=10, help="size of the synthetic set (default 10x)")
    parser.add_argument("--out", default="model", help="results name (default model)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    datasets = args.datasets or datasets_dir()
    if not datasets.is_dir():
        print(f"corpora folder {datasets} not found; pass --datasets or set {DATASETS_ENV}", file=sys.stderr)
        return 2
    if args.child:
        print(json.dumps(train_synthetic(datasets, args.factor)))
        return 0
    stop_on_sigterm()
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {"factor": args.factor},
        # Training reads whichever corpus folders are there: what "every corpus" was.
        "corpora": sorted(find_corpora(datasets)),
    }
    try:
        results.update(measure(datasets, args.factor))
    except speed.TooFewCommentsError as exc:
        print(exc, file=sys.stderr)
        return 2
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    print(f"wrote {write_results(args.out, results)} in {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
