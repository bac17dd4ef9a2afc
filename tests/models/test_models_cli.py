"""The classifier's commands, run through click's test runner."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from models.cli import cli, commands, register_commands
from models.examples import Example, write_examples
from models.registry import ACTIVE_FILE, HISTORY_FILE, active_version, list_versions, save_version
from models.training import OUT_OF_CORE_EPOCHS, TrainingResult
from tests.models.artifact_files import rewrite_metadata


@pytest.fixture
def data_file(tmp_path: Path, tiny_examples: list[Example]) -> Path:
    path = tmp_path / "labels.jsonl"
    write_examples(path, tiny_examples)
    return path


def run(
    *args: str, input: str | bytes | None = None, env: dict[str, str | None] | None = None
) -> tuple[int, str, str]:
    """Run the command line; an exception other than click's exit (a traceback) fails the test."""
    result = CliRunner().invoke(cli, list(args), input=input, env={"MODEL_DIR": None, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
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


def test_train_out_of_core_reads_the_files_again_for_each_pass(
    tmp_path: Path, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.importers

    opened: list[str] = []
    stream = models.importers.stream

    def counted(spec: str) -> Any:
        opened.append(spec)
        return stream(spec)

    monkeypatch.setattr(models.importers, "stream", counted)
    code, stdout, _ = run("train", "--data", str(data_file), "--out", str(tmp_path / "m"), "--out-of-core")
    assert code == 0 and json.loads(stdout)["heads"] == ["spam", "abuse"]
    assert opened == [str(data_file)] * (2 + OUT_OF_CORE_EPOCHS)  # index, validation part, epochs


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
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    code, stdout, _ = run("score", "--model", str(model_dir), input=stdin)
    assert code == 0
    scores = [json.loads(line) for line in stdout.splitlines()]
    assert len(scores) == 3
    assert all(set(s) == {"spam", "abuse", "reasons", "model_version"} for s in scores)
    assert scores[0]["spam"] > scores[2]["spam"] and scores[1]["abuse"] > scores[2]["abuse"]
    assert scores[0]["model_version"] == active_version(model_dir)


def test_score_into_a_reader_that_stops_early_ends_quietly(model_dir: Path, tmp_path: Path) -> None:
    """As `moderation score FILE | head -1`: the reader closes the pipe with output still to come."""
    comments = tmp_path / "many.jsonl"
    line = json.dumps({"text": "Thanks for the article, see http://example.com"}) + "\n"
    comments.write_text(line * 3000)  # far more output than a pipe holds
    command = [sys.executable, "-m", "models", "score", "--model", str(model_dir), str(comments)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert json.loads(process.stdout.readline())["model_version"]
        process.stdout.close()
        stderr = process.stderr.read().decode()
    # As a shell reports a Unix tool killed by SIGPIPE, and nothing said: the reader wanted no more.
    assert process.returncode == 128 + signal.SIGPIPE
    assert stderr == ""


@pytest.mark.parametrize(
    ("redirection", "message"),
    [
        ("<&-", "Error: standard input is closed: give the FILE to score"),
        (">&-", "Error: standard output is closed: the scores would go nowhere"),
    ],
    ids=["stdin", "stdout"],
)
def test_score_with_standard_input_or_output_closed_says_so(
    model_dir: Path, redirection: str, message: str
) -> None:
    command = [sys.executable, "-m", "models", "score", "--model", str(model_dir)]
    shell = ["bash", "-c", f'exec "$@" {redirection}', "bash", *command]
    result = subprocess.run(shell, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == message


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


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ('{"text": "ok"}\n{"body": "x"}\n', "standard input:2: expected an object with a string 'text'"),
        ('{"text": "ok"}\n\n{"text": "ok"}\n', "standard input:2: blank line"),
        ('{"text": "ok"}\n\n', "standard input:2: blank line"),
        ('{"text": "ok"}\n{"text": "ok"\n', "standard input:2: not valid JSON"),
        (b'{"text": "ok"}\n{"text": "caf\xe9"}\n', "standard input:2: not valid UTF-8 (byte 0xe9)"),
        ('{"text": "ok"}\n{"text": "ok", "author": {"id": 3}}\n', "standard input:2: 'author' must be"),
    ],
    ids=["no-text", "blank-line", "blank-last-line", "not-json", "not-utf8", "object-author"],
)
def test_score_rejects_bad_lines(model_dir: Path, stdin: str | bytes, message: str) -> None:
    code, stdout, stderr = run("score", "--model", str(model_dir), input=stdin)
    assert code == 1 and f"Error: {message}" in stderr
    # The good line before the bad one is answered.
    assert len(stdout.splitlines()) == 1 and "spam" in json.loads(stdout)


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_an_empty_version_is_refused_not_read_as_the_active_one(
    model_dir: Path, data_file: Path, tmp_path: Path, command: str
) -> None:
    # As `--version "$CANDIDATE"` with CANDIDATE unset: the active model answered in its place.
    args = ["--data", str(data_file), "--out", str(tmp_path / "curves")] if command == "evaluate" else []
    args = [command, "--model", str(model_dir), "--version", "", *args]
    code, stdout, stderr = run(*args, input='{"text": "x"}\n')
    assert code == 1 and f"Error: no model version '' in {model_dir}" in stderr
    assert stdout == ""


def test_score_errors_name_the_file(model_dir: Path, tmp_path: Path) -> None:
    comments = tmp_path / "in.jsonl"
    comments.write_bytes(b'{"text": "caf\xe9"}\n')
    code, _, stderr = run("score", "--model", str(model_dir), str(comments))
    assert code == 1 and f"Error: {comments}:1: not valid UTF-8 (byte 0xe9)" in stderr


@pytest.mark.parametrize(
    ("spec", "content", "message"),
    [
        ("bad.jsonl", b'{"text": "caf\xff"}\n', "bad.jsonl:1: not valid UTF-8 (byte 0xff)"),
        ("bad.csv", b"text,spam\nok,0\nshort\n", "bad.csv:3: 1 field(s) where the header has 2"),
        (
            "kaggle:train.csv",
            b"Insult,Date,Comment\r\n1,2012\r\n",
            "train.csv:2: 2 field(s) where the header has 3",
        ),
        (
            "youtube:Youtube01-A.csv",
            b"COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\nid1\n",
            "A.csv:2: 1 field(s) where",
        ),
    ],
    ids=["jsonl-not-utf8", "csv-short-row", "kaggle-short-row", "youtube-short-row"],
)
def test_train_reports_unreadable_files(tmp_path: Path, spec: str, content: bytes, message: str) -> None:
    importer, _, filename = spec.rpartition(":")
    (tmp_path / filename).write_bytes(content)
    data = f"{importer}:{tmp_path / filename}" if importer else str(tmp_path / filename)
    code, _, stderr = run("train", "--data", data, "--out", str(tmp_path / "m"))
    assert code == 1 and message in stderr


def test_train_refuses_an_out_folder_it_cannot_write_before_reading_any_data(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file/m"
    code, _, stderr = run("train", "--data", str(tmp_path / "missing.jsonl"), "--out", str(out))
    assert code == 1 and f"Error: {out}: {tmp_path / 'file'} is not a folder" in stderr


@pytest.mark.parametrize("below", ["", "m"], ids=["the-link", "below-the-link"])
def test_train_refuses_an_out_folder_behind_a_broken_link_before_reading_any_data(
    tmp_path: Path, below: str
) -> None:
    # As a link to a volume not mounted: the folder could not be made, which was found only
    # once training was done, as "File exists".
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    out = tmp_path / "link" / below
    code, _, stderr = run("train", "--data", str(tmp_path / "missing.jsonl"), "--out", str(out))
    assert code == 1
    assert f"Error: {out}: {tmp_path / 'link'} is a link to {tmp_path / 'gone'}, which is not there" in stderr


def test_train_refuses_an_empty_out_folder_instead_of_writing_where_it_runs(
    tmp_path: Path, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `--out "$DIR"` with DIR unset: read as `.`, it made a registry in the working folder.
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _, stderr = run("train", "--data", str(data_file), "--out", "")
    assert code == 2 and "Invalid value for '--out' (env var: 'MODEL_DIR'): an empty path" in stderr
    assert list(here.iterdir()) == []


@pytest.mark.parametrize("out_of_core", [False, True], ids=["in-memory", "out-of-core"])
def test_train_on_files_without_examples_says_so_and_makes_no_out_folder(
    tmp_path: Path, out_of_core: bool
) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "header.csv").write_text("text,spam\n")
    out = tmp_path / "new" / "models"
    args = ["train", "--data", str(tmp_path / "empty.jsonl"), "--data", str(tmp_path / "header.csv")]
    code, _, stderr = run(*args, "--out", str(out), *(["--out-of-core"] if out_of_core else []))
    assert code == 1
    assert f"Error: no examples in {tmp_path / 'empty.jsonl'}, {tmp_path / 'header.csv'}: nothing" in stderr
    assert not (tmp_path / "new").exists()


def test_a_version_s_folder_given_for_the_registry_is_refused_before_training(
    model_dir: Path, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A registry made inside a version's folder is one `models list` then refuses to show.
    import models.training

    version = str(active_version(model_dir))
    folder = model_dir / version
    before = sorted(path.name for path in folder.iterdir())
    monkeypatch.setattr(models.training, "train", None)  # reached only past the check
    code, _, stderr = run("train", "--data", str(data_file), "--out", str(folder))
    assert code == 1 and f"Error: {folder} is the folder of one model version" in stderr
    for command in (("models", "activate", version), ("models", "rollback")):
        code, _, stderr = run(*command, "--model", str(folder))
        assert code == 1 and f"Error: {folder} is the folder of one model version" in stderr
    assert sorted(path.name for path in folder.iterdir()) == before


def test_a_folder_given_as_a_canonical_file_is_named_so(tmp_path: Path) -> None:
    code, _, stderr = run("train", "--data", str(tmp_path), "--out", str(tmp_path / "m"))
    assert code == 1 and "a folder; give a canonical file, or IMPORTER:PATH" in stderr


def test_score_refuses_a_line_with_half_a_utf16_pair(model_dir: Path) -> None:
    line = '{"text": "buy http://x\\ud800y.example"}\n'
    code, _, stderr = run("score", "--model", str(model_dir), input=line)
    assert code == 1 and "standard input:1: 'text' holds half of a UTF-16 pair" in stderr


def test_models_list_shows_a_version_with_malformed_heads(tmp_path: Path, data_file: Path) -> None:
    out = tmp_path / "m"
    version = json.loads(run("train", "--data", str(data_file), "--out", str(out))[1])["version"]
    metadata = json.loads((out / version / "metadata.json").read_text())
    (out / version / "metadata.json").write_text(json.dumps({**metadata, "heads": None}))
    code, stdout, _ = run("models", "list", "--model", str(out))
    assert code == 0 and f"* {version}  heads=?" in stdout


def test_models_list_shows_a_version_whose_metadata_nests_too_deeply(model_dir: Path) -> None:
    version = active_version(model_dir)
    (model_dir / str(version) / "metadata.json").write_text("[" * 100_000 + "]" * 100_000)
    code, stdout, _ = run("models", "list", "--model", str(model_dir))
    assert code == 0 and f"* {version}  (unreadable: " in stdout  # still the active one
    assert "not valid JSON (it nests arrays or objects too deeply)" in stdout


def test_models_list_says_which_versions_cannot_be_loaded_and_why(
    model_dir: Path, trained: TrainingResult
) -> None:
    active = str(active_version(model_dir))
    other = save_version(model_dir, trained)
    metadata = json.loads((model_dir / other / "metadata.json").read_text())
    libraries = {**metadata["libraries"], "scikit-learn": "0.1"}
    rewrite_metadata(model_dir / other, {**metadata, "libraries": libraries})
    (model_dir / active / "model.skops").write_bytes(b"changed")
    code, stdout, _ = run("models", "list", "--model", str(model_dir))
    lines = {line[2:].split()[0]: line for line in stdout.splitlines()}
    assert code == 0 and lines.keys() == {active, other}
    assert lines[active].startswith(f"* {active}  heads=") and "digest" in lines[active]
    assert lines[other].startswith(f"  {other}  heads=")
    assert "(cannot be loaded: model " in lines[other] and "was made with scikit-learn 0.1" in lines[other]


def test_models_list_activate_rollback(tmp_path: Path, data_file: Path) -> None:
    out = tmp_path / "m"
    code, _, stderr = run("models", "list", "--model", str(out))
    assert code == 1 and f"no model folder at {out}" in stderr
    out.mkdir()
    code, stdout, stderr = run("models", "list", "--model", str(out))
    assert (code, stdout) == (0, "") and f"no model versions in {out} yet" in stderr
    first = json.loads(run("train", "--data", str(data_file), "--out", str(out))[1])["version"]
    code, _, stderr = run("models", "list", "--model", str(out / first))
    assert code == 1 and f"{out / first} is the folder of one model version" in stderr
    second = json.loads(run("train", "--data", str(data_file), "--out", str(out))[1])["version"]
    code, stdout, _ = run("models", "list", "--model", str(out))
    assert code == 0 and f"* {first}" in stdout and f"  {second}" in stdout
    assert run("models", "activate", second, "--model", str(out))[:2] == (0, f"active: {second}\n")
    assert run("models", "rollback", "--model", str(out))[:2] == (0, f"active: {first}\n")
    code, _, stderr = run("models", "rollback", "--model", str(out))
    assert code == 1 and "roll back" in stderr
    code, _, stderr = run("models", "activate", "nope", "--model", str(out))
    assert code == 1 and "no model version" in stderr


@pytest.mark.parametrize(
    ("pointer", "command"),
    [
        (ACTIVE_FILE, ("models", "list")),
        (ACTIVE_FILE, ("score",)),
        (ACTIVE_FILE, ("models", "activate", "OTHER")),
        (ACTIVE_FILE, ("models", "rollback")),
        (HISTORY_FILE, ("models", "activate", "OTHER")),
        (HISTORY_FILE, ("models", "rollback")),
    ],
    ids=[
        "active-list",
        "active-score",
        "active-activate",
        "active-rollback",
        "history-activate",
        "history-rb",
    ],
)
def test_a_damaged_registry_file_is_one_clear_error(
    model_dir: Path, make_result: Callable[..., TrainingResult], pointer: str, command: tuple[str, ...]
) -> None:
    # The registry writes these files whole, in ASCII: other bytes mean damage or a hand edit.
    other = save_version(model_dir, make_result())
    (model_dir / pointer).write_bytes(b"\xff" + other.encode() + b"\n")
    args = [other if arg == "OTHER" else arg for arg in command]
    code, _, stderr = run(*args, "--model", str(model_dir), input='{"text": "x"}\n')
    assert code == 1 and f"Error: {model_dir / pointer} is not UTF-8 text" in stderr


def test_register_commands_adds_them_to_another_group() -> None:
    group = click.Group("moderation")
    register_commands(group)
    assert (
        set(group.commands)
        == {command.name for command in commands}
        == {"train", "evaluate", "score", "models"}
    )


@pytest.mark.parametrize("seed", ["-1", "5000000000"])
def test_train_refuses_a_seed_out_of_range_as_a_usage_error(
    tmp_path: Path, data_file: Path, seed: str
) -> None:
    code, _, stderr = run("train", "--data", str(data_file), "--out", str(tmp_path / "m"), "--seed", seed)
    assert code == 2 and "Invalid value for '--seed'" in stderr and "0<=x<=4294967295" in stderr


@pytest.mark.parametrize("option", ["--review-recall", "--reject-precision"])
@pytest.mark.parametrize("value", ["nan", "NaN", "-nan"])
def test_train_refuses_a_threshold_target_that_is_no_number(
    tmp_path: Path, data_file: Path, option: str, value: str
) -> None:
    # NaN passes every range check: a review threshold near 1 (nothing flagged) went live, and
    # its metadata held a bare NaN, which no strict JSON reader takes.
    out = tmp_path / "m"
    code, _, stderr = run("train", "--data", str(data_file), "--out", str(out), option, value)
    assert code == 2 and f"Invalid value for '{option}'" in stderr and "not a number" in stderr
    assert not out.exists()


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


def test_model_commands_default_to_model_dir(tmp_path: Path, data_file: Path) -> None:
    env: dict[str, str | None] = {"MODEL_DIR": str(tmp_path / "m")}
    first = json.loads(run("train", "--data", str(data_file), env=env)[1])["version"]
    second = json.loads(run("train", "--data", str(data_file), env=env)[1])["version"]
    assert f"* {first}" in run("models", "list", env=env)[1]
    assert run("models", "activate", second, env=env)[:2] == (0, f"active: {second}\n")
    assert run("models", "rollback", env=env)[:2] == (0, f"active: {first}\n")
    code, stdout, _ = run("score", input='{"text": "hello"}\n', env=env)
    assert code == 0 and json.loads(stdout)["model_version"] == first
    # --model still wins over the environment.
    code, _, stderr = run("models", "rollback", "--model", str(tmp_path / "none"), env=env)
    assert code == 1 and f"no model folder at {tmp_path / 'none'}" in stderr


@pytest.mark.parametrize(
    "args",
    [("models", "rollback"), ("models", "activate", "v1"), ("models", "list"), ("score",), ("evaluate",)],
)
def test_model_commands_without_a_model_dir_say_how_to_give_one(args: tuple[str, ...]) -> None:
    code, _, stderr = run(*args)
    assert code == 2 and "Missing option '--model'" in stderr and "MODEL_DIR" in stderr


def test_models_prune_says_what_it_removes_and_dry_run_removes_nothing(
    model_dir: Path, trained: TrainingResult
) -> None:
    active = str(active_version(model_dir))
    for _ in range(2):
        save_version(model_dir, trained)
    versions = list_versions(model_dir)
    # All but the newest and the active one, whichever of the three that is.
    older = [version for version in versions[:-1] if version != active]
    prune = ("models", "prune", "--keep", "1", "--model", str(model_dir))
    assert run(*prune, "--dry-run")[:2] == (0, "".join(f"would remove: {each}\n" for each in older))
    assert list_versions(model_dir) == versions
    assert run(*prune)[:2] == (0, "".join(f"removed: {each}\n" for each in older))
    assert list_versions(model_dir) == [version for version in versions if version not in older]
    code, stdout, stderr = run(*prune)
    assert (code, stdout) == (0, "") and "nothing to remove" in stderr
    code, _, stderr = run("models", "prune", "--keep", "0", "--model", str(model_dir))
    assert code == 2 and "0 is not in the range x>=1" in stderr
