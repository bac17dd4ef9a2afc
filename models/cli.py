"""Command line for the classifier: train, evaluate, score, and manage model versions.

The service's `moderation` group adds these with `register_commands(group)`; `python -m
models` runs them on their own. `--data` takes canonical files and `importer:PATH` for
the public corpora (see `models.importers`).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from models.errors import DataError, ModelError

SCORE_BATCH = 1000


class _FolderPath(click.Path):
    """A folder; an empty value (`--out "$DIR"` with DIR unset) is refused, not read as `.`,
    where `train` would have made a registry in whatever folder it was run from."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path; give a folder", param, ctx)
        return super().convert(value, param, ctx)


class _Share(click.FloatRange):
    """A share above 0 and up to 1; NaN, which passes every range check, is refused."""

    def __init__(self) -> None:
        super().__init__(0.0, 1.0, min_open=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        share = super().convert(value, param, ctx)
        if math.isnan(share):
            self.fail(f"{value!r} is not a number", param, ctx)
        return share


MODEL_DIR = _FolderPath(file_okay=False, path_type=Path)
# The service and its Docker image name the model folder here (see service/config.py).
MODEL_DIR_ENV = "MODEL_DIR"
STDIN_NAME = "standard input"
F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(command: F) -> F:
    """Show `ModelError`s, and files that cannot be read or written, as one-line CLI
    errors instead of tracebacks."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            # The reader stopped reading (`moderation score FILE | head`): end as a Unix tool
            # killed by SIGPIPE does, without a word. Standard output goes to /dev/null first,
            # or the interpreter's last flush would report the pipe once more.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + signal.SIGPIPE)
        except OSError as exc:  # a full disk, a folder where a file should be, no permission
            raise file_error(exc) from None

    return wrapper  # type: ignore[return-value]


def file_error(exc: OSError) -> click.ClickException:
    """The one-line error a command shows for a file it could not read or write."""
    where = f"{exc.filename}: " if exc.filename else ""
    return click.ClickException(f"{where}{exc.strerror or exc}")


def _model_dir_option(*names: str, help: str) -> Callable[[F], F]:
    """A required model directory option that `$MODEL_DIR` can give instead."""
    # show_envvar also makes the "Missing option" error name the variable.
    return click.option(
        *names, "model_dir", envvar=MODEL_DIR_ENV, show_envvar=True, required=True, type=MODEL_DIR, help=help
    )


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


DATA_HELP = (
    "Labeled data: a canonical file (.jsonl or .csv) or IMPORTER:PATH for a public corpus "
    "(youtube, sms, kaggle, olid, davidson; PATH is its file or folder). Repeat for several."
)


def _load_data(specs: tuple[str, ...], datasets: Path | None) -> list[Any]:
    """Read every `--data` argument, plus every known corpus under `--datasets`."""
    return list(_data_reader(specs, datasets)())


def _data_reader(specs: tuple[str, ...], datasets: Path | None) -> Callable[[], Iterator[Any]]:
    """What reads every `--data` argument, plus every known corpus under `--datasets`,
    afresh at each call (training out of core reads them once per pass); it raises a
    `DataError` naming them all when together they hold no example."""
    from models.importers import load_all, stream

    if not specs and datasets is None:
        raise click.UsageError("give at least one --data (or --datasets)")
    inputs = [*specs, *([str(datasets)] if datasets is not None else [])]

    def every_example() -> Iterator[Any]:
        for spec in specs:
            yield from stream(spec)
        if datasets is not None:
            yield from load_all(datasets)

    def read() -> Iterator[Any]:
        examples = every_example()
        first = next(examples, None)
        if first is None:
            # Said here, where the files are known: training would only find no head to train.
            raise DataError(f"no examples in {', '.join(inputs)}: nothing there but blank lines or a header")
        yield first
        yield from examples

    return read


def _data_options(command: F) -> F:
    """The `--data` and `--datasets` options shared by `train` and `evaluate`."""
    command = click.option(
        "--datasets",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="Folder of public corpora (e.g. ../shared/datasets): import every known one found there.",
    )(command)
    return click.option("--data", "data_specs", multiple=True, metavar="FILE|IMPORTER:PATH", help=DATA_HELP)(
        command
    )


class _ProgressBar:
    """Shows `train`'s progress messages as a bar on standard error."""

    def __init__(self, steps: int) -> None:
        self._bar = click.progressbar(
            length=steps, label="training", file=click.get_text_stream("stderr"), show_eta=False
        )
        self._bar.__enter__()

    def __call__(self, message: str) -> None:
        self._bar.label = f"training: {message}"
        self._bar.update(1)

    def close(self) -> None:
        self._bar.__exit__(None, None, None)


def _check_writable(model_dir: Path) -> None:
    """Refuse a model folder that saving a version could not write or make, without making it.

    Checked before minutes of training, not after them; the folder itself is made only
    when a version is saved, so a run that fails on its data leaves no empty folder behind.
    A version's own folder, which saving refuses, is refused here too.
    """
    from models.registry import refuse_version_folder

    refuse_version_folder(model_dir)
    existing = model_dir
    while not existing.exists() and not existing.is_symlink() and existing.parent != existing:
        existing = existing.parent
    if existing.is_symlink() and not existing.exists():
        # A link to a volume not mounted, say: making the folder would fail once training is done.
        target = existing.readlink()
        raise click.ClickException(f"{model_dir}: {existing} is a link to {target}, which is not there")
    if not existing.is_dir():
        raise click.ClickException(f"{model_dir}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == model_dir:
            raise click.ClickException(f"{model_dir}: the model folder is not writable")
        raise click.ClickException(f"{model_dir}: cannot be made, {existing} is not writable")


@click.command("train")
@_data_options
@_model_dir_option("--out", help="Model directory to write the version to.")
@click.option(
    "--out-of-core",
    is_flag=True,
    help="For label sets too large for memory: hashed features, incremental fitting, the data "
    "read again for each pass (JSON Lines files line by line) instead of held.",
)
@click.option(
    "--activate/--no-activate",
    default=None,
    help="Activate the new version. Default: only when no version is active yet.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    # The range scikit-learn and NumPy take a seed in; outside it they fail only once training starts.
    type=click.IntRange(0, 2**32 - 1),
    help="Random seed for the split and the models.",
)
@click.option(
    "--review-recall",
    default=0.95,
    show_default=True,
    type=_Share(),
    help="Review threshold: the highest score that still flags this share of the validation positives.",
)
@click.option(
    "--reject-precision",
    default=0.99,
    show_default=True,
    type=_Share(),
    help="Reject threshold: the lowest score above which this share of validation rejections is right, "
    "on enough of them for one mistake to show (100 for 0.99); else no automatic rejection.",
)
@_user_errors
def train_command(
    data_specs: tuple[str, ...],
    datasets: Path | None,
    model_dir: Path,
    out_of_core: bool,
    activate: bool | None,
    seed: int,
    review_recall: float,
    reject_precision: float,
) -> None:
    """Train a model version on labeled data and print its metrics as JSON."""
    from models.out_of_core import out_of_core_steps, train_out_of_core
    from models.registry import activate as activate_version
    from models.registry import activate_if_none, save_version
    from models.training import planned_steps, train

    _check_writable(model_dir)
    read = _data_reader(data_specs, datasets)
    examples = None if out_of_core else list(read())
    bar = _ProgressBar(out_of_core_steps() if out_of_core else planned_steps())
    try:
        if examples is None:
            result = train_out_of_core(
                read, seed=seed, review_recall=review_recall, reject_precision=reject_precision, progress=bar
            )
        else:
            result = train(
                examples,
                seed=seed,
                review_recall=review_recall,
                reject_precision=reject_precision,
                progress=bar,
            )
    finally:
        bar.close()
    version = save_version(model_dir, result)
    if activate is None:  # the first version of a registry becomes active
        active = activate_if_none(model_dir, version)
    else:
        if activate:
            activate_version(model_dir, version)
        active = activate
    _echo_json(
        {
            "version": version,
            "active": active,
            "examples": result.examples,
            "heads": list(result.classifier.heads),
            "thresholds": result.thresholds,
            "metrics": result.metrics,
            "notes": result.notes,
        }
    )


@click.command("evaluate")
@_model_dir_option("--model", help="Model directory.")
@click.option("--version", default=None, help="Evaluate this version instead of the active one.")
@_data_options
@click.option(
    "--out",
    "out_dir",
    default=Path("."),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the curves (roc.png, precision_recall.png).",
)
@_user_errors
def evaluate_command(
    model_dir: Path, version: str | None, data_specs: tuple[str, ...], datasets: Path | None, out_dir: Path
) -> None:
    """Print per-head metrics on labeled data as JSON and write ROC and precision-recall curves."""
    from models.curves import write_curves
    from models.evaluation import evaluate, thresholds_of
    from models.registry import load_active, load_version

    # `--version ""` (a variable left unset) names no version: refused, not read as the active one.
    classifier = load_version(model_dir, version) if version is not None else load_active(model_dir)
    report, scored = evaluate(classifier, _load_data(data_specs, datasets))
    thresholds = {result.head: thresholds_of(classifier, result.head) for result in scored}
    report["curves"] = [str(path) for path in write_curves(out_dir, scored, thresholds)]
    _echo_json(report)


@click.command("score")
@_model_dir_option("--model", help="Model directory.")
@click.option("--version", default=None, help="Score with this version instead of the active one.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default="-")
@_user_errors
def score_command(model_dir: Path, version: str | None, file: str) -> None:
    """Score canonical JSON Lines from FILE (or standard input): one output line per input line."""
    from models.examples import json_lines, optional_text
    from models.records import as_comment
    from models.registry import load_active, load_version

    # Python has no stream for a descriptor closed at its start (`<&-`, `>&-`): say so, rather
    # than show a traceback or score into nothing.
    if sys.stdout is None:
        raise click.ClickException("standard output is closed: the scores would go nowhere")
    if file == "-" and sys.stdin is None:
        raise click.ClickException("standard input is closed: give the FILE to score")
    # `--version ""` (a variable left unset) names no version: refused, not read as the active one.
    classifier = load_version(model_dir, version) if version is not None else load_active(model_dir)
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        for score in classifier.score([as_comment(row) for row in batch]):
            sys.stdout.write(json.dumps(score.as_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        batch.clear()

    # Bytes, decoded line by line, so that a bad byte is reported with its line.
    with click.open_file(file, "rb") as lines:
        try:
            for where, row in json_lines(lines, STDIN_NAME if file == "-" else file):
                if not isinstance(row.get("text"), str):
                    raise DataError(f"{where}: expected an object with a string 'text'")
                fields = {key: optional_text(row, key, where) for key in ("author", "url")}
                batch.append({"text": row["text"], **fields})
                if len(batch) >= SCORE_BATCH:
                    flush()
        finally:
            # The lines before a bad one are answered, one for each, before it stops the run.
            flush()


@click.group("models")
def models_group() -> None:
    """List, activate and roll back model versions."""


@models_group.command("list")
@_model_dir_option("--model", help="Model directory.")
@_user_errors
def list_command(model_dir: Path) -> None:
    """List versions, oldest first; the active one is marked with '*', and one this
    installation cannot load says why."""
    from models.registry import (
        active_version,
        check_registry_folder,
        list_versions,
        verify_version,
        version_metadata,
    )

    check_registry_folder(model_dir)
    active = active_version(model_dir)
    versions = list_versions(model_dir)
    if not versions:
        click.echo(f"no model versions in {model_dir} yet: train one with `moderation train`", err=True)
    for version in versions:
        marker = "*" if version == active else " "
        try:
            metadata = version_metadata(model_dir, version)
        except ModelError as exc:
            click.echo(f"{marker} {version}  (unreadable: {exc})")
            continue
        listed = metadata.get("heads")
        heads = ",".join(map(str, listed)) if isinstance(listed, list) else "?"
        line = f"{marker} {version}  heads={heads}  examples={metadata.get('examples', '?')}"
        try:
            # Digests, format and library versions: what refuses a version without loading it.
            verify_version(model_dir, version)
        except ModelError as exc:
            line += f"  (cannot be loaded: {exc})"
        click.echo(line)


@models_group.command("activate")
@click.argument("version")
@_model_dir_option("--model", help="Model directory.")
@_user_errors
def activate_command(version: str, model_dir: Path) -> None:
    """Make VERSION the active model."""
    from models.registry import activate

    activate(model_dir, version)
    click.echo(f"active: {version}")


@models_group.command("rollback")
@_model_dir_option("--model", help="Model directory.")
@_user_errors
def rollback_command(model_dir: Path) -> None:
    """Re-activate the previously active version."""
    from models.registry import rollback

    click.echo(f"active: {rollback(model_dir)}")


@models_group.command("prune")
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    required=True,
    help="How many of the newest versions to keep; the active and shadow ones are kept besides.",
)
@click.option("--dry-run", is_flag=True, help="Say which versions would go; remove none.")
@_model_dir_option("--model", help="Model directory.")
@_user_errors
def prune_command(keep: int, dry_run: bool, model_dir: Path) -> None:
    """Remove old versions (a version is a folder of tens of megabytes)."""
    from models.registry import check_registry_folder, prune

    check_registry_folder(model_dir)
    removed = prune(model_dir, keep, dry_run=dry_run)
    for version in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'}: {version}")
    if not removed:
        click.echo(f"nothing to remove: {model_dir} holds no version beyond those kept", err=True)


commands: list[click.Command] = [train_command, evaluate_command, score_command, models_group]


def register_commands(group: click.Group) -> None:
    """Add the classifier's commands to another click group (the service's `moderation`)."""
    for command in commands:
        group.add_command(command)


@click.group()
def cli() -> None:
    """Train, score and manage the spam and abuse classifier."""


register_commands(cli)
