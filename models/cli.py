"""Command line for the classifier: train, score, and manage model versions.

The service's `moderation` group adds these with `register_commands(group)`; `python -m
models` runs them on their own. `--data` takes canonical files now; importer names for
the public corpora can be accepted by the same option later (`name:path`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from models.errors import ModelError

SCORE_BATCH = 1000
MODEL_DIR = click.Path(file_okay=False, path_type=Path)
F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(command: F) -> F:
    """Show `ModelError`s as one-line CLI errors instead of tracebacks."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


@click.command("train")
@click.option(
    "--data",
    "data_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Canonical labeled file (.jsonl or .csv); repeat for several.",
)
@click.option(
    "--out", "model_dir", required=True, type=MODEL_DIR, help="Model directory to write the version to."
)
@click.option(
    "--out-of-core", is_flag=True, help="Hashed features and incremental fitting, for large label sets."
)
@click.option(
    "--activate/--no-activate",
    default=None,
    help="Activate the new version. Default: only when no version is active yet.",
)
@click.option("--seed", default=0, show_default=True, help="Random seed for the split and the models.")
@_user_errors
def train_command(
    data_files: tuple[Path, ...], model_dir: Path, out_of_core: bool, activate: bool | None, seed: int
) -> None:
    """Train a model version on labeled data and print its metrics as JSON."""
    from models.examples import read_examples
    from models.registry import activate as activate_version
    from models.registry import active_version, save_version
    from models.training import train

    examples = [example for path in data_files for example in read_examples(path)]
    result = train(examples, out_of_core=out_of_core, seed=seed, progress=lambda m: click.echo(m, err=True))
    version = save_version(model_dir, result)
    should_activate = activate if activate is not None else active_version(model_dir) is None
    if should_activate:
        activate_version(model_dir, version)
    _echo_json(
        {
            "version": version,
            "active": should_activate,
            "examples": result.examples,
            "heads": list(result.classifier.heads),
            "thresholds": result.thresholds,
            "metrics": result.metrics,
            "notes": result.notes,
        }
    )


def _read_comments(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise click.ClickException(f"line {number}: expected an object with a string 'text'")
        yield number, row


@click.command("score")
@click.option("--model", "model_dir", required=True, type=MODEL_DIR, help="Model directory.")
@click.option("--version", default=None, help="Score with this version instead of the active one.")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@_user_errors
def score_command(model_dir: Path, version: str | None, file: IO[str]) -> None:
    """Score canonical JSON Lines from FILE (or standard input), one JSON object per line."""
    from models.records import as_comment
    from models.registry import load_active, load_version

    classifier = load_version(model_dir, version) if version else load_active(model_dir)
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        for score in classifier.score([as_comment(row) for row in batch]):
            sys.stdout.write(json.dumps(score.as_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        batch.clear()

    for _, row in _read_comments(file):
        batch.append(row)
        if len(batch) >= SCORE_BATCH:
            flush()
    flush()


@click.group("models")
def models_group() -> None:
    """List, activate and roll back model versions."""


@models_group.command("list")
@click.option("--model", "model_dir", required=True, type=MODEL_DIR, help="Model directory.")
@_user_errors
def list_command(model_dir: Path) -> None:
    """List versions, oldest first; the active one is marked with '*'."""
    from models.registry import active_version, list_versions, version_metadata

    active = active_version(model_dir)
    for version in list_versions(model_dir):
        try:
            metadata = version_metadata(model_dir, version)
        except ModelError as exc:
            click.echo(f"  {version}  (unreadable: {exc})")
            continue
        heads = ",".join(metadata.get("heads", [])) or "-"
        marker = "*" if version == active else " "
        click.echo(f"{marker} {version}  heads={heads}  examples={metadata.get('examples', '?')}")


@models_group.command("activate")
@click.argument("version")
@click.option("--model", "model_dir", required=True, type=MODEL_DIR, help="Model directory.")
@_user_errors
def activate_command(version: str, model_dir: Path) -> None:
    """Make VERSION the active model."""
    from models.registry import activate

    activate(model_dir, version)
    click.echo(f"active: {version}")


@models_group.command("rollback")
@click.option("--model", "model_dir", required=True, type=MODEL_DIR, help="Model directory.")
@_user_errors
def rollback_command(model_dir: Path) -> None:
    """Re-activate the previously active version."""
    from models.registry import rollback

    click.echo(f"active: {rollback(model_dir)}")


commands: list[click.Command] = [train_command, score_command, models_group]


def register_commands(group: click.Group) -> None:
    """Add the classifier's commands to another click group (the service's `moderation`)."""
    for command in commands:
        group.add_command(command)


@click.group()
def cli() -> None:
    """Train, score and manage the spam and abuse classifier."""


register_commands(cli)
