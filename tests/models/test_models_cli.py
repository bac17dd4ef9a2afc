"""The classifier's commands, run through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from models.cli import cli, commands, register_commands
from models.examples import Example, write_examples
from models.registry import active_version, list_versions


@pytest.fixture
def data_file(tmp_path: Path, tiny_examples: list[Example]) -> Path:
    path = tmp_path / "labels.jsonl"
    write_examples(path, tiny_examples)
    return path


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_train_writes_and_activates_a_version(tmp_path: Path, data_file: Path) -> None:
    out = tmp_path / "models"
    code, stdout, _ = run("train", "--data", str(data_file), "--out", str(out))
    assert code == 0, stdout
    report = json.loads(stdout)
    assert report["active"] is True
    assert report["version"] == active_version(out)
    assert report["heads"] == ["spam", "abuse"]
    assert {"roc_auc", "average_precision", "review", "reject", "baseline"} <= set(report["metrics"]["spam"])
    # A second version is not activated unless asked.
    code, stdout, _ = run("train", "--data", str(data_file), "--out", str(out), "--out-of-core")
    assert code == 0 and json.loads(stdout)["active"] is False
    assert len(list_versions(out)) == 2 and active_version(out) == report["version"]


def test_train_with_several_files_and_csv(tmp_path: Path, tiny_examples: list[Example]) -> None:
    write_examples(tmp_path / "a.jsonl", tiny_examples[:30])
    write_examples(tmp_path / "b.csv", tiny_examples[30:])
    args = ["train", "--data", str(tmp_path / "a.jsonl"), "--data", str(tmp_path / "b.csv")]
    code, stdout, _ = run(*args, "--out", str(tmp_path / "m"), "--no-activate")
    assert code == 0
    assert json.loads(stdout)["examples"] == 60
    assert active_version(tmp_path / "m") is None


def test_train_reports_bad_data(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "spam": 7}\n')
    code, _, stderr = run("train", "--data", str(bad), "--out", str(tmp_path / "m"))
    assert code == 1 and "bad.jsonl:1: spam must be 0, 1 or empty" in stderr


def test_score_reads_stdin_and_keeps_order(model_dir: Path) -> None:
    lines = [
        {"text": "Buy cheap viagra at http://cheap-pills.ru", "author": "bot"},
        {"text": "You stupid idiot"},
        {"text": "Thanks for the article"},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    code, stdout, _ = run("score", "--model", str(model_dir), input=stdin)
    assert code == 0
    scores = [json.loads(line) for line in stdout.splitlines()]
    assert len(scores) == 3
    assert all(set(s) == {"spam", "abuse", "reasons", "model_version"} for s in scores)
    assert scores[0]["spam"] > scores[2]["spam"] and scores[1]["abuse"] > scores[2]["abuse"]
    assert scores[0]["model_version"] == active_version(model_dir)


def test_score_file_with_missing_head_gives_null(tmp_path: Path, tiny_examples: list[Example]) -> None:
    data = tmp_path / "spam_only.jsonl"
    write_examples(data, [Example(e.text, spam=e.spam) for e in tiny_examples])
    out = tmp_path / "m"
    assert run("train", "--data", str(data), "--out", str(out))[0] == 0
    comments = tmp_path / "in.jsonl"
    comments.write_text('{"text": "hello"}\n')
    code, stdout, _ = run("score", "--model", str(out), str(comments))
    assert code == 0 and json.loads(stdout)["abuse"] is None


def test_score_without_a_model(tmp_path: Path) -> None:
    code, _, stderr = run("score", "--model", str(tmp_path), input='{"text": "x"}\n')
    assert code == 1 and "no active model" in stderr


def test_score_rejects_bad_lines(model_dir: Path) -> None:
    code, _, stderr = run("score", "--model", str(model_dir), input='{"text": "ok"}\n{"body": "x"}\n')
    assert code == 1 and "line 2" in stderr


def test_models_list_activate_rollback(tmp_path: Path, data_file: Path) -> None:
    out = tmp_path / "m"
    first = json.loads(run("train", "--data", str(data_file), "--out", str(out))[1])["version"]
    second = json.loads(run("train", "--data", str(data_file), "--out", str(out))[1])["version"]
    code, stdout, _ = run("models", "list", "--model", str(out))
    assert code == 0 and f"* {first}" in stdout and f"  {second}" in stdout
    assert run("models", "activate", second, "--model", str(out))[:2] == (0, f"active: {second}\n")
    assert run("models", "rollback", "--model", str(out))[:2] == (0, f"active: {first}\n")
    code, _, stderr = run("models", "rollback", "--model", str(out))
    assert code == 1 and "roll back" in stderr
    code, _, stderr = run("models", "activate", "nope", "--model", str(out))
    assert code == 1 and "no model version" in stderr


def test_register_commands_adds_them_to_another_group() -> None:
    group = click.Group("moderation")
    register_commands(group)
    assert (
        set(group.commands)
        == {command.name for command in commands}
        == {"train", "evaluate", "score", "models"}
    )


def test_train_takes_importer_specs_and_threshold_targets(tmp_path: Path, data_file: Path) -> None:
    sms = tmp_path / "SMSSpamCollection"
    sms.write_text("spam\tWIN a prize, text CLAIM to 80086\nham\tok see you later", encoding="utf-8")
    out = tmp_path / "models"
    args = ["train", "--data", str(data_file), "--data", f"sms:{sms}", "--out", str(out)]
    code, stdout, stderr = run(*args, "--review-recall", "0.9", "--reject-precision", "0.95")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["examples"] == 62
    metadata = json.loads((out / report["version"] / "metadata.json").read_text())
    assert metadata["parameters"]["review_recall"] == 0.9
    assert metadata["parameters"]["reject_precision"] == 0.95
    assert "training" in stderr  # the progress bar


def test_train_rejects_an_unknown_importer(tmp_path: Path) -> None:
    code, _, stderr = run("train", "--data", "nosuch:/x", "--out", str(tmp_path / "m"))
    assert code == 1 and "unknown importer 'nosuch'" in stderr
