"""The ``moderation`` command: set-up, tokens, workers, and running the whole service locally."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import redis
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from models import ModelError
from models.cli import commands as model_cli_commands
from models.cli import file_error, register_commands
from service.config import Settings, load_settings
from service.db import engine_for, make_session_factory, upgrade
from service.errors import ConfigError, ServiceError

if TYPE_CHECKING:
    from service.privacy import KeyRing

# Who the audit trail names for what is done from this command.
CLI_ACTOR = "cli"
# ctx.meta key: why the classifier's commands got no model folder default (unreadable settings).
_NO_MODEL_DEFAULT = "service.no_model_default"


class _Commands(click.Group):
    """Reports configuration, model, database, Redis and file problems as one clear
    line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.MissingParameter as exc:
            reason = ctx.meta.get(_NO_MODEL_DEFAULT)
            if reason and exc.param is not None and exc.param.name == "model_dir":
                # Else a bad setting elsewhere (LOG_LEVEL=verbose) would read as a folder
                # option that was never needed before.
                exc.message = f"It has no default because the service's settings cannot be read: {reason}"
            raise
        except (ServiceError, ModelError) as exc:
            raise click.ClickException(str(exc)) from None
        except DBAPIError as exc:
            raise click.ClickException(
                f"the database failed: {exc.orig}. Is it running, and migrated (`moderation migrate`)?"
            ) from None
        except redis.RedisError as exc:
            raise click.ClickException(f"Redis failed: {exc}. Is it running (REDIS_URL)?") from None
        except OSError as exc:
            raise file_error(exc) from None


def _existing_database(settings: Settings) -> Settings:
    """``settings``, once their SQLite file is known to exist; a ``ClickException`` naming
    where it was looked for otherwise.

    The commands that act on an install (tokens, personal data, labels, runs) must not make
    a new one: opening a missing SQLite file creates it, and the default data folder is
    `instance` in the working folder. Run from another folder, `erase-personal-data` was
    told to migrate, and after `moderation migrate` it erased nothing from a new, empty
    database, saying "none found" while the service kept the commenter's data.
    """
    url = make_url(settings.database)
    if url.get_backend_name() != "sqlite" or not url.database:
        return settings
    path = Path(url.database)
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to the working folder {Path.cwd()})"
        raise click.ClickException(
            f"no database at {path.absolute()}{where}: run this where the service runs, with its "
            "MODERATION_DATA_DIR or DATABASE_URL (`moderation init` makes a new install)"
        )
    return settings


def _sessions(settings: Settings | None = None) -> sessionmaker[Session]:
    """Sessions on the configured database, which must exist, for one command."""
    return make_session_factory(engine_for(_existing_database(settings or load_settings())))


@click.group(cls=_Commands)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Comment moderation service."""
    name = ctx.invoked_subcommand
    command = next((command for command in model_cli_commands if command.name == name), None)
    if name is not None and command is not None:
        # The classifier's commands know nothing of the service's settings; here their
        # model folder defaults to the one the service uses (MODEL_DIR, else the data
        # folder's models/), as `init` and the workers do.
        try:
            folder = str(load_settings().models)
        except ConfigError as exc:
            ctx.meta[_NO_MODEL_DEFAULT] = str(exc)
            return  # then they ask for --model, as they do on their own, and say why
        ctx.default_map = {name: _model_dir_default(command, folder)}


def _model_dir_default(command: click.Command, folder: str) -> dict[str, Any]:
    """``command``'s default map giving every ``--model``/``--out`` folder (its subcommands' too)."""
    if isinstance(command, click.Group):
        return {name: _model_dir_default(sub, folder) for name, sub in command.commands.items()}
    return {"model_dir": folder}


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    upgrade(engine_for(load_settings()))
    click.echo("database schema is up to date")


@main.command()
@click.option(
    "--replace-key",
    is_flag=True,
    help="Record this secret key in place of the one recorded at the first start (only while no "
    "email is stored; stop every process using the other key first).",
)
def init(replace_key: bool) -> None:
    """Prepare a fresh install: schema, secret key, and a seed model if none is active."""
    from service.bootstrap import prepare

    for line in prepare(load_settings(), replace_key=replace_key):
        click.echo(line)


@main.command("create-token")
@click.argument("name")
@click.option(
    "--admin", is_flag=True, help="The token may also export and erase a commenter's personal data."
)
def create_token_command(name: str, admin: bool) -> None:
    """Create an API token for moderator NAME and print it (it is shown only once)."""
    from service.auth import create_token

    if sys.stdout is None:  # `>&-`: click.echo would print nothing, and say nothing of it
        raise click.ClickException("standard output is closed: the token, shown only once, would be lost")
    sessions = _sessions()
    with sessions() as session:
        try:
            token = create_token(session, name, admin=admin)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="NAME") from None
        session.flush()  # a database that cannot take it fails here, before the token is shown
        # Shown before it is committed: one that could not be shown (a full disk, a closed
        # pipe) would be a working token that nobody has.
        click.echo(token)
        session.commit()


@main.command("webhook-secret")
def webhook_secret_command() -> None:
    """Print a new random secret for WEBHOOK_SECRET; give the site's endpoint the same one."""
    from service.webhook_signing import new_secret

    click.echo(new_secret())


@main.command("webhook-retry")
def webhook_retry_command() -> None:
    """Send again every webhook event given up on after its last attempt."""
    from service.webhooks import retry_failed

    with _sessions()() as session:
        count = retry_failed(session)
        session.commit()
    click.echo(f"{count} webhook event(s) will be sent again")


@main.command("revoke-tokens")
@click.argument("name")
def revoke_tokens_command(name: str) -> None:
    """Revoke every token of moderator NAME."""
    from service.auth import moderator_name, revoke_tokens

    if not moderator_name(name):
        raise click.BadParameter("a moderator name is required", param_hint="NAME")
    sessions = _sessions()
    with sessions() as session:
        count = revoke_tokens(session, name)
        session.commit()
    click.echo(f"revoked {count} token(s) of {moderator_name(name)}")


@main.command()
@click.option("--burst", is_flag=True, help="Drain the queue once, then exit.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes sharing one loaded model (default: WORKER_PROCESSES).",
)
def worker(burst: bool, processes: int | None) -> None:
    """Run classification workers (the active model is loaded once)."""
    from service.app import configure_logging
    from worker.pool import run_pool
    from worker.runner import run_worker
    from worker.training import check_corpora

    settings = load_settings()
    check_corpora(settings.retrain_corpora)
    configure_logging(settings.log_level)
    count = processes or settings.worker_processes
    if burst or count == 1:
        run_worker(settings, burst=burst)
    else:
        run_pool(settings, count, lambda models: run_worker(settings, models=models))


@main.command()
def sweep() -> None:
    """Queue again, once, every comment stuck in `received`."""
    from service.queueing import ClassifyQueue, connect_redis, scoped_redis_url
    from worker.sweeper import sweep as sweep_stuck

    settings = load_settings()
    with scoped_redis_url(settings) as url, _sessions(settings)() as session:
        queue = ClassifyQueue.from_settings(connect_redis(url, settings.redis_timeout), settings)
        click.echo(f"queued {sweep_stuck(session, queue, settings.sweep_grace)} comment(s) again")


@main.command()
@click.option("--now", is_flag=True, help="Train in this process instead of queueing a job.")
def retrain(now: bool) -> None:
    """Retrain from moderator labels; the new version goes live only if it is at least as good."""
    import json

    from rq import Queue

    from service.queueing import connect_redis, scoped_redis_url
    from service.retraining import request_retrain, retrain_job_id, run_view
    from service.statuses import Trigger

    settings = load_settings()
    if now:
        from worker.training import check_corpora

        check_corpora(settings.retrain_corpora)
    sessions = _sessions(settings)
    with scoped_redis_url(settings) as url:
        if now:
            from worker.context import build_context, install_context

            # Loaded before the run is queued: a process that cannot load the model, or is
            # stopped while loading it, queues nothing; and the job waits milliseconds rather
            # than the seconds of loading for this process to take it back, so a running
            # worker seldom takes it first. Inside the block: build_context starts the
            # embedded Redis when none is configured, which the block then would not stop.
            install_context(build_context(settings))
        queue = Queue(settings.retrain_queue, connection=connect_redis(url, settings.redis_timeout))
        with sessions() as session:
            run = request_retrain(session, queue, Trigger.CLI)
        if now:
            from rq.job import Job

            from worker.training import retrain_model

            job_id = retrain_job_id(queue, run.id)
            taken = queue.remove(job_id) == 1
            try:
                if retrain_model(run.id) == "skipped":
                    click.echo(
                        f"run {run.id} was started by a worker first: it trains there, with that "
                        "worker's settings",
                        err=True,
                    )
            finally:
                if taken:
                    # Off the queue, the job still reads `queued`, which tells requests the run
                    # is in hand while it trains here. Once this process is done with it, the
                    # job goes: a run it could not start is then queued again by the next
                    # request, instead of waiting for good on a job no worker has.
                    with suppress(redis.RedisError):
                        queue.connection.delete(Job.key_for(job_id))
            with sessions() as session:
                run = session.get_one(type(run), run.id)
    click.echo(json.dumps(run_view(run), indent=2))


@main.command("export-labels")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    required=True,
    help="File to write: JSON Lines (.jsonl) or CSV (.csv), as train reads them.",
)
@click.option(
    "--training-part",
    is_flag=True,
    help="Leave out the held-out fifth that retraining judges models on, so that a model "
    "trained on the file by hand is judged on labels it has not seen.",
)
def export_labels_command(out: str, training_part: bool) -> None:
    """Write every moderator label as canonical examples (text, author, url, spam, abuse, source)."""
    from models import write_examples
    from models.errors import DataError
    from models.retraining import split_holdout
    from service.retraining import export_labels

    sessions = _sessions()
    with sessions() as session:
        labels = export_labels(session)
    held_out = ""
    if training_part:
        labels, holdout = split_holdout(labels)
        held_out = f" ({len(holdout)} held out)"
    try:
        write_examples(out, labels)
    except DataError as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
    click.echo(f"wrote {len(labels)} label(s) to {out}{held_out}")


def _commenter_email(email: str) -> str:
    from service.validation import email_address

    try:
        return email_address(email)
    except ValueError as exc:
        raise click.BadParameter(f"EMAIL {exc}", param_hint="EMAIL") from None


@contextmanager
def _keys_and_sessions() -> Iterator[tuple[Settings, KeyRing, sessionmaker[Session]]]:
    """The settings, the key ring (checked against the configured database as the app checks
    it), and sessions on that database."""
    from service.keyfile import load_checked_keys

    # Checked before the key is loaded, which a data folder without one would generate.
    settings = _existing_database(load_settings())
    engine = engine_for(settings)
    try:
        yield settings, load_checked_keys(settings, engine), make_session_factory(engine)
    finally:
        engine.dispose()


@main.command("export-personal-data")
@click.argument("email")
def export_personal_data_command(email: str) -> None:
    """Print, as JSON, every comment of the commenter with address EMAIL (email included)."""
    import json

    from service.personal_data import export_personal_data

    address = _commenter_email(email)
    with _keys_and_sessions() as (_settings, keys, sessions), sessions() as session:
        comments = export_personal_data(session, keys, address, CLI_ACTOR)
        session.commit()
    click.echo(json.dumps({"email": address, "comments": comments}, indent=2, ensure_ascii=False))


@main.command("erase-personal-data")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Erase without asking for confirmation.")
def erase_personal_data_command(email: str, yes: bool) -> None:
    """Anonymise every comment of address EMAIL: name, email and website go, the text stays."""
    from service.flood import FloodControl
    from service.personal_data import comments_by_email, erase_personal_data

    address = _commenter_email(email)
    with _keys_and_sessions() as (settings, keys, sessions), sessions() as session:
        if not yes:
            count = len(comments_by_email(session, keys, address))
            click.confirm(f"erase the personal data of {count} comment(s) of {address}?", abort=True)
        flood = FloodControl.from_settings(keys, settings)
        erased = erase_personal_data(
            session,
            keys,
            address,
            CLI_ACTOR,
            notify=settings.webhooks,
            flood_keys=flood.commenter_keys(address),
        )
        session.commit()
    listed = ", ".join(str(comment_id) for comment_id in erased) or "none found"
    click.echo(f"erased the personal data of {len(erased)} comment(s): {listed}")
    if erased and not settings.webhooks:
        # Only a process that has WEBHOOK_URL records the events, and a shell seldom has
        # the web app's whole environment: a site keeping its own copy must hear of it.
        click.echo(
            "WEBHOOK_URL is not set here, so the site was not told (no comment.erased events): if it "
            "gets webhooks, tell it, or next time run this with the web app's WEBHOOK_URL and WEBHOOK_SECRET",
            err=True,
        )


@main.group()
def shadow() -> None:
    """The model that scores live comments beside the active one without acting."""


@shadow.command("set")
@click.argument("version")
def shadow_set(version: str) -> None:
    """Score live comments with VERSION in shadow mode."""
    from models.registry import set_shadow

    set_shadow(load_settings().models, version)
    click.echo(f"{version} is in shadow mode")


@shadow.command("clear")
def shadow_clear() -> None:
    """Stop shadow scoring."""
    from models.registry import clear_shadow

    clear_shadow(load_settings().models)
    click.echo("shadow mode off")


@shadow.command("report")
@click.argument("version", required=False)
def shadow_report_command(version: str | None) -> None:
    """How VERSION (default: the one in shadow mode) would have changed decisions."""
    import json

    from models.registry import list_versions, shadow_version
    from service.retraining import shadow_report

    settings = load_settings()
    # `shadow report ""` (a variable left unset) names no version, not the one in shadow mode.
    version = version if version is not None else shadow_version(settings.models)
    if version is None:
        raise click.ClickException("no version in shadow mode; name one")
    with _sessions(settings)() as session:
        report = shadow_report(session, version)
    # A version since deleted from the registry may still have verdicts to report.
    if not report["comments"] and version not in list_versions(settings.models):
        raise click.ClickException(
            f"no model version {version!r} in {settings.models}, and it scored no comment in shadow mode"
        )
    click.echo(json.dumps(report, indent=2))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
# show_envvar: an error then names PORT or WEB_CONCURRENCY beside the option, as a value set in
# the environment is not seen on the command line. Port 0 would let gunicorn pick one that
# nobody is told of, and one past 65535 failed only in gunicorn, after the whole set-up.
@click.option(
    "--port",
    envvar="PORT",
    show_envvar=True,
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--web-workers",
    envvar="WEB_CONCURRENCY",
    show_envvar=True,
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Web (gunicorn) processes.",
)
@click.option(
    "--workers",
    "queue_workers",
    type=click.IntRange(min=1),
    help="Classification worker processes (default: WORKER_PROCESSES, else 1).",
)
def run(host: str, port: int, web_workers: int, queue_workers: int | None) -> None:
    """Run web (gunicorn) and worker together on this machine, set up on first use."""
    from service.local_stack import run_local_stack

    settings = load_settings()
    workers = queue_workers or settings.worker_processes
    run_local_stack(settings, host=host, port=port, web_workers=web_workers, queue_workers=workers)


register_commands(main)
