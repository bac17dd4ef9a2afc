"""Reproduce every figure in docs/model.md: held-out quality per corpus, cost, speed, robustness.

    python bench/model_quality.py [--datasets DIR] [--out bench/results/model_quality.json]
                                  [--only youtube,youtube_nested,kaggle,olid,all]

DIR defaults to $MODERATION_DATASETS, else ../shared/datasets beside the project. The
corpora are read from there and never copied. Prints a table and writes the figures as
JSON. Takes about ten minutes on a 2-core machine (four more for the nested YouTube check).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install

import corpus_eval
import speed

from bench.common import python_speed
from models.importers import DATASETS_ENV, datasets_dir, find_corpora, load_all, load_corpus
from models.registry import load_version

SECTIONS = ("youtube", "youtube_nested", "kaggle", "olid", "all")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "model_quality.json"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else ""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": platform.platform(),
        "python_loop_mops": python_speed(),
    }


def run_all(datasets: Path) -> dict[str, Any]:
    """Train on every corpus, then measure speed and the obfuscation check on that model."""
    corpora = load_all(datasets)
    speed.check_scoring_sample(corpora)
    with tempfile.TemporaryDirectory() as model_dir:
        training = speed.train_all(datasets, Path(model_dir))
        classifier = load_version(model_dir, training["version"])
    scoring, single = speed.scoring_figures(classifier, corpora)
    return {
        "training": training,
        "throughput": scoring,
        "latency": single,
        "obfuscation": speed.obfuscation(classifier),
    }


def run(sections: list[str], datasets: Path) -> dict[str, Any]:
    """Run the chosen sections and return their figures."""
    present = find_corpora(datasets)
    results: dict[str, Any] = {}
    tasks = {
        "youtube": lambda: corpus_eval.youtube(load_corpus("youtube", datasets)),
        "youtube_nested": lambda: corpus_eval.youtube_nested(load_corpus("youtube", datasets)),
        "kaggle": lambda: corpus_eval.cross_validated_auc(load_corpus("kaggle", datasets), "abuse"),
        "olid": lambda: corpus_eval.cross_validated_macro_f1(load_corpus("olid", datasets), "abuse"),
        "all": lambda: run_all(datasets),
    }
    for section in sections:
        if section != "all" and section.split("_")[0] not in present:
            print(f"skipping {section}: its corpus is not under {datasets}", file=sys.stderr)
            continue
        start = time.perf_counter()
        print(f"running {section} ...", file=sys.stderr, flush=True)
        results[section] = tasks[section]()
        results[section]["seconds"] = time.perf_counter() - start
    return results


def table(results: dict[str, Any]) -> str:
    """A plain-text summary of the figures against the targets."""
    lines = [f"{'figure':<58} {'model':>9} {'tfidf+lr':>9} {'dummy':>7}  target"]

    def row(name: str, model: float, plain: float | None, dummy: float | None, target: str) -> None:
        cells = [f"{v:>9.4f}" if v is not None else f"{'':>9}" for v in (model, plain)]
        lines.append(
            f"{name:<58} {cells[0]} {cells[1]} {'' if dummy is None else f'{dummy:7.4f}':>7}  {target}"
        )

    if "youtube" in results:
        for video, figures in results["youtube"]["per_video"].items():
            row(
                f"spam ROC-AUC, {video} held out", figures["model"], figures["tfidf_lr"], figures["dummy"], ""
            )
        mean = results["youtube"]["mean"]
        row(
            "spam ROC-AUC, YouTube leave-one-video-out mean",
            mean["model"],
            mean["tfidf_lr"],
            mean["dummy"],
            ">= 0.98",
        )
    if "youtube_nested" in results:
        for video, figures in results["youtube_nested"]["per_video"].items():
            row(f"  nested: {video} held out (chose {figures['chosen']})", figures["model"], None, None, "")
        nested = results["youtube_nested"]["mean"]["model"]
        row("spam ROC-AUC, YouTube, weights chosen on training videos", nested, None, None, ">= 0.98")
    if "kaggle" in results:
        mean = results["kaggle"]["mean"]
        row("abuse ROC-AUC, Kaggle insults 5-fold", mean["model"], mean["tfidf_lr"], mean["dummy"], ">= 0.92")
    if "olid" in results:
        mean = results["olid"]["mean"]
        row(
            "abuse macro-F1, OLID 5-fold",
            mean["model_macro_f1"],
            mean["tfidf_lr_macro_f1"],
            mean["dummy_macro_f1"],
            ">= 0.78",
        )
        row("  the same at each test fold's best threshold (oracle)", mean["oracle_macro_f1"], None, None, "")
        row("abuse ROC-AUC, OLID 5-fold", mean["model_roc_auc"], mean["tfidf_lr_roc_auc"], 0.5, "")
    if "all" in results:
        figures = results["all"]
        training = figures["training"]
        lines.append(
            f"train on all corpora ({training['unique_examples']} unique): "
            f"{training['train_seconds']:.1f} s, peak {training['peak_rss_mb']:.0f} MB "
            "(target < 120 s, < 2048 MB)"
        )
        for key, value in figures["throughput"].items():
            lines.append(f"scoring {key}: {value['per_second']:.0f} comments/s  (target >= 5000 in batches)")
        latency = figures["latency"]
        lines.append(
            f"score_one latency: median {latency['median_ms']:.2f} ms, "
            f"p95 {latency['p95_ms']:.2f} ms (target < 5 ms)"
        )
        lines.append(
            f"obfuscation: largest difference {figures['obfuscation']['max_difference']:.3f} (target <= 0.1)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--datasets", type=Path, default=None, help=f"corpora folder (default ${DATASETS_ENV})"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    args = parser.parse_args(argv)
    datasets = args.datasets or datasets_dir()
    if not datasets.is_dir():
        print(f"corpora folder {datasets} not found; pass --datasets or set {DATASETS_ENV}", file=sys.stderr)
        return 2
    sections = [s for s in args.only.split(",") if s]
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    results = run(sections, datasets)
    report = {
        "date": started.isoformat(),
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        **results,
    }
    # The figures are saved before the table is printed: a long run is never lost to the printout.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
