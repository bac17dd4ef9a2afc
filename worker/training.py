"""The retraining job: moderator labels plus configured corpora in, a gated new version out."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import OperationalError

from models import Example
from models.errors import DataError
from models.importers import load as load_corpus
from models.importers import split_spec
from models.registry import prune, shadow_candidate
from models.retraining import retrain
from models.seeding import seed_examples
from service.config import Settings
from service.errors import ConfigError
from service.retraining import export_labels
from service.statuses import RunStatus
from service.tables import TrainingRun, utcnow
from worker.context import WorkerContext, current_context

logger = logging.getLogger(__name__)

SEED_CORPUS = "seed"
# The candidate may be live before its run is recorded: a database away for a moment (a
# restart, a failover) must not lose that record, or the run is later failed without its
# version. About half a minute in all, well inside the job's timeout.
RECORD_ATTEMPTS = 6  # pauses of 1, 2, 4, 8 and 16 s
RECORD_FIRST_DELAY_SECONDS = 1.0


def corpus_examples(specs: tuple[str, ...]) -> list[Example]:
    """The examples each spec names: `seed`, a canonical file, or `importer:PATH`."""
    examples: list[Example] = []
    for spec in specs:
        examples.extend(seed_examples() if spec == SEED_CORPUS else load_corpus(spec))
    return examples


def check_corpora(specs: tuple[str, ...]) -> None:
    """Refuse, naming RETRAIN_CORPORA, a corpus that names nothing there is to read.

    Only a retraining run reads them, perhaps days after the start (once enough labels
    came in): a mistyped importer or a missing file would fail that run, and each after it.
    """
    for spec in specs:
        if spec == SEED_CORPUS:
            continue
        try:
            importer, path = split_spec(spec)
        except DataError as exc:
            raise ConfigError(f"RETRAIN_CORPORA: {exc}") from None
        if importer is None and not path.is_file():
            raise ConfigError(
                f"RETRAIN_CORPORA: {spec}: no such file; name `seed`, a canonical file or IMPORTER:PATH"
            )
        if importer is not None and not path.exists():
            raise ConfigError(f"RETRAIN_CORPORA: {spec}: nothing at {path}")


def _start(context: WorkerContext, run_id: int) -> TrainingRun | None:
    """Move run ``run_id`` from queued to running and return it; None when it is not queued.

    One guarded UPDATE: two workers given the same run (two requests queued its job at
    once) cannot both read it queued and both train it.
    """
    with context.sessions() as session:
        started = session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run_id, TrainingRun.status == RunStatus.QUEUED)
            .values(status=RunStatus.RUNNING, started_at=utcnow())
        )
        session.commit()
        if cast(CursorResult[Any], started).rowcount != 1:
            return None
        return session.get_one(TrainingRun, run_id)


def _finish(context: WorkerContext, run_id: int, **values: object) -> None:
    with context.sessions() as session:
        run = session.get(TrainingRun, run_id)
        assert run is not None
        for name, value in values.items():
            setattr(run, name, value)
        run.finished_at = utcnow()
        session.commit()


def _record_success(
    context: WorkerContext, run_id: int, version: str, activated: bool, **values: object
) -> None:
    """Mark the run succeeded, retrying while the database cannot be reached.

    When it still cannot be, the error is logged with what the run did, since the model
    registry already holds (and may serve) its version, then raised.
    """
    delay = RECORD_FIRST_DELAY_SECONDS
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            _finish(
                context,
                run_id,
                status=RunStatus.SUCCEEDED,
                candidate_version=version,
                activated=activated,
                **values,
            )
            return
        except OperationalError as exc:
            if attempt == RECORD_ATTEMPTS:
                logger.error(
                    "run %s: model %s was %s, but the run could not be recorded as succeeded: %s",
                    run_id,
                    version,
                    "activated" if activated else "kept back",
                    exc,
                )
                raise
            logger.warning("run %s: recording its result failed, again in %.0f s: %s", run_id, delay, exc)
            time.sleep(delay)
            delay *= 2


def retrain_model(run_id: int) -> str:
    """Carry out one queued run; returns the candidate version, or `skipped` if not queued.

    A candidate that passes the gate is activated (workers pick it up by themselves),
    which ends the shadow mode of an earlier candidate; one that does not, or every one
    when auto-activation is off, goes to shadow mode.
    """
    context = current_context()
    run = _start(context, run_id)
    if run is None:
        return "skipped"
    settings = context.settings
    try:
        with context.sessions() as session:
            labels = export_labels(session, until=run.labels_until)
        outcome = retrain(
            settings.models,
            labels,
            corpus_examples(settings.retrain_corpora),
            activate_if_better=settings.retrain_auto_activate,
        )
        if not outcome.activated and settings.retrain_shadow:
            shadow_candidate(settings.models, outcome.version)
    except BaseException as exc:
        # A cold shutdown (SystemExit) or Ctrl-C ends the run as surely as an error does.
        try:
            _finish(context, run_id, status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        except Exception:
            # The original exception must still propagate (a shutdown must go on); a run
            # left `running` is failed by the next retrain request once its job is gone.
            logger.exception("run %s: could not record its failure", run_id)
        raise
    _record_success(
        context,
        run_id,
        outcome.version,
        outcome.activated,
        labels_used=len(labels),
        comparison=outcome.comparison.as_dict(),
    )
    logger.info(
        "run %s: model %s %s", run_id, outcome.version, "activated" if outcome.activated else "kept back"
    )
    _prune(settings, run_id)
    return outcome.version


def _prune(settings: Settings, run_id: int) -> None:
    """Keep the newest ``MODEL_VERSIONS_KEPT`` versions: each run adds one of tens of megabytes."""
    if not settings.model_versions_kept:
        return
    try:
        removed = prune(settings.models, settings.model_versions_kept)
    except Exception:  # the run's own result is recorded; the next run prunes again
        logger.exception("run %s: removing old model versions failed", run_id)
        return
    if removed:
        logger.info("run %s: removed old model versions %s", run_id, ", ".join(removed))
