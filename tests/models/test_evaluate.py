"""`moderation evaluate`: per-head metrics as JSON, and the curves as PNG files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from models.classifier import Classifier
from models.cli import cli
from models.evaluation import evaluate
from models.examples import Example, write_examples
from models.training import TrainingResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AT_THRESHOLD = {"threshold", "precision", "recall", "f1", "confusion_matrix"}


def test_evaluate_prints_metrics_and_writes_curves(
    tmp_path: Path, model_dir: Path, tiny_examples: list[Example]
) -> None:
    data = tmp_path / "labels.jsonl"
    write_examples(data, tiny_examples)
    out = tmp_path / "curves"
    args = ["evaluate", "--model", str(model_dir), "--data", str(data), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["heads"]) == {"spam", "abuse"}
    for metrics in report["heads"].values():
        assert {"roc_auc", "average_precision", "review", "reject", "examples", "positives"} <= set(metrics)
        for name in ("review", "reject"):
            assert set(metrics[name]) == AT_THRESHOLD
            assert sum(map(sum, metrics[name]["confusion_matrix"])) == len(tiny_examples)
    assert sorted(Path(p).name for p in report["curves"]) == ["precision_recall.png", "roc.png"]
    for name in ("roc.png", "precision_recall.png"):
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE)


def test_evaluate_accepts_importer_specs(tmp_path: Path, model_dir: Path) -> None:
    sms = tmp_path / "SMSSpamCollection"
    sms.write_text(
        "spam\tFREE money, click http://win-cash.xyz now\nham\tsee you at the library\n"
        "spam\tcheap pills at http://meds-cheap.ru\nham\tthanks for the article",
        encoding="utf-8",
    )
    args = ["evaluate", "--model", str(model_dir), "--data", f"sms:{sms}", "--out", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["heads"]) == {"spam"}
    assert report["notes"] == ["head 'abuse' not evaluated: no example carries its label"]
    assert report["heads"]["spam"]["examples"] == 4


def test_evaluate_needs_data(model_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--model", str(model_dir)])
    assert result.exit_code == 2 and "give at least one --data" in result.output


def test_evaluate_counts_duplicates_once(trained: TrainingResult, tiny_examples: list[Example]) -> None:
    report, scored = evaluate(trained.classifier, tiny_examples + tiny_examples[:5])
    assert report["examples"] == len(tiny_examples) + 5
    assert report["unique_examples"] == len(tiny_examples)
    assert [s.head for s in scored] == ["spam", "abuse"]


def test_evaluate_on_one_class_only_draws_no_curve_and_warns_of_nothing(
    tmp_path: Path, model_dir: Path, tiny_examples: list[Example]
) -> None:
    # Only spam: how much of it the model catches, with no curve to draw (warnings are errors here).
    data = tmp_path / "spam.jsonl"
    write_examples(data, [Example(e.text, spam=1) for e in tiny_examples if e.spam == 1])
    args = ["evaluate", "--model", str(model_dir), "--data", str(data), "--out", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert report["heads"]["spam"]["positives"] == report["heads"]["spam"]["examples"] == 20
    for name in ("roc.png", "precision_recall.png"):
        assert (tmp_path / "c" / name).read_bytes().startswith(PNG_SIGNATURE)


def test_evaluate_builds_features_in_batches_with_the_same_scores(
    trained: TrainingResult, tiny_examples: list[Example], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One feature matrix for a whole labelled file took some 25 KB a comment: gigabytes for an export.
    classifier = trained.classifier
    whole = evaluate(classifier, tiny_examples)[0]
    rows: list[int] = []
    features = Classifier.feature_matrix

    def counted(self: Classifier, prepared: Any) -> Any:
        rows.append(len(prepared))
        return features(self, prepared)

    monkeypatch.setattr(Classifier, "feature_matrix", counted)
    monkeypatch.setattr("models.classifier.BATCH_SIZE", 7)
    assert evaluate(classifier, tiny_examples)[0] == whole
    assert max(rows) == 7 and sum(rows) == len(tiny_examples)
    assert [len(column) for column in classifier.probabilities([]).values()] == [0, 0]


def test_curves_cut_short_leave_the_earlier_ones_whole(
    tmp_path: Path, model_dir: Path, tiny_examples: list[Example], monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    data = tmp_path / "labels.jsonl"
    write_examples(data, tiny_examples)
    out = tmp_path / "curves"
    args = ["evaluate", "--model", str(model_dir), "--data", str(data), "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    earlier = {path.name: path.read_bytes() for path in out.iterdir()}
    draw = Figure.savefig

    def cut_short(figure: Figure, target: Any, **options: Any) -> None:
        # A disk that filled up after the first 100 bytes, whatever the drawing was written to.
        drawn = io.BytesIO()
        draw(figure, drawn, **options)
        if hasattr(target, "write"):
            target.write(drawn.getvalue()[:100])
        else:
            Path(target).write_bytes(drawn.getvalue()[:100])
        raise OSError("No space left on device")

    monkeypatch.setattr(Figure, "savefig", cut_short)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert {path.name: path.read_bytes() for path in out.iterdir()} == earlier
