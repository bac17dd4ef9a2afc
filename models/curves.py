"""ROC and precision-recall curves as PNG files (matplotlib, Agg, no pyplot state).

Each figure has one line per head, with the model's review and reject thresholds
marked on it, so a reader sees where on the curve the routing policy operates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from models.atomic_files import replacing_bytes
from models.evaluation import HeadScores

ROC_FILE = "roc.png"
PR_FILE = "precision_recall.png"
_MARKERS = {"review": "o", "reject": "s"}


def _figure() -> Any:
    # Deferred: matplotlib is only needed when curves are drawn. `Figure` draws with
    # the Agg canvas by itself, so no global backend is chosen for the whole process.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5), dpi=100)
    return figure, figure.add_subplot()


def _save(figure: Any, path: Path) -> None:
    # Whole or not at all: an evaluation stopped while drawing leaves the last curves in place.
    with replacing_bytes(path) as out:
        figure.savefig(out, format="png")


def _point(result: HeadScores, threshold: float) -> tuple[float, float, float, float]:
    """(false positive rate, true positive rate, recall, precision) at `threshold`."""
    predicted = result.scores >= threshold
    positives = max(int(result.labels.sum()), 1)
    negatives = max(len(result.labels) - int(result.labels.sum()), 1)
    true_positives = int((predicted & (result.labels == 1)).sum())
    false_positives = int((predicted & (result.labels == 0)).sum())
    precision = true_positives / max(true_positives + false_positives, 1)
    return false_positives / negatives, true_positives / positives, true_positives / positives, precision


def _usable(results: Sequence[HeadScores]) -> list[HeadScores]:
    """Heads whose labels hold both classes: a curve needs positives and negatives."""
    return [r for r in results if 0 < int(r.labels.sum()) < len(r.labels)]


def write_roc(
    path: Path, results: Sequence[HeadScores], thresholds: Mapping[str, Mapping[str, float]]
) -> None:
    """Draw every head's ROC curve into one PNG at `path`."""
    figure, axes = _figure()
    for result in _usable(results):
        fpr, tpr, _ = roc_curve(result.labels, result.scores)
        line = axes.plot(fpr, tpr, label=result.head)[0]
        for name, marker in _MARKERS.items():
            x, y, _, _ = _point(result, thresholds[result.head][name])
            axes.plot([x], [y], marker, color=line.get_color(), label=f"{result.head} {name}")
    axes.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    axes.legend(loc="lower right")
    _save(figure, path)


def write_precision_recall(
    path: Path, results: Sequence[HeadScores], thresholds: Mapping[str, Mapping[str, float]]
) -> None:
    """Draw every head's precision-recall curve into one PNG at `path`."""
    figure, axes = _figure()
    for result in _usable(results):
        precision, recall, _ = precision_recall_curve(result.labels, result.scores)
        line = axes.step(recall, precision, where="post", label=result.head)[0]
        for name, marker in _MARKERS.items():
            _, _, x, y = _point(result, thresholds[result.head][name])
            axes.plot([x], [y], marker, color=line.get_color(), label=f"{result.head} {name}")
        axes.axhline(float(np.mean(result.labels)), linestyle=":", color=line.get_color())
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0.0, 1.02))
    if axes.get_legend_handles_labels()[0]:  # nothing drawn when no head has both classes
        axes.legend(loc="lower left")
    _save(figure, path)


def write_curves(
    directory: Path, results: Sequence[HeadScores], thresholds: Mapping[str, Mapping[str, float]]
) -> list[Path]:
    """Write `roc.png` and `precision_recall.png` into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / ROC_FILE, directory / PR_FILE]
    write_roc(paths[0], results, thresholds)
    write_precision_recall(paths[1], results, thresholds)
    return paths
