"""Moderator endpoints for the classifier: retraining runs and the shadow model's report."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import select

from service.api import IdConverter, moderator_required
from service.app import get_session, services
from service.errors import NotFoundError, ValidationError
from service.retraining import request_retrain, run_view, shadow_report
from service.statuses import Trigger
from service.tables import MODEL_VERSION_CHARS, ShadowVerdict, TrainingRun

bp = Blueprint("training", __name__, url_prefix="/v1/models")

RECENT_RUNS = 20


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    # Its own registration, so the routes below do not depend on the order blueprints are registered in.
    state.app.url_map.converters["id"] = IdConverter


@bp.post("/retrain")
@moderator_required
def retrain() -> Any:
    """Queue a retraining run (or return the one already queued or running)."""
    run = request_retrain(get_session(), services().retrain_queue, Trigger.API)
    return run_view(run), 202


@bp.get("/runs")
@moderator_required
def list_runs() -> Any:
    """The most recent retraining runs, newest first."""
    runs = get_session().scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(RECENT_RUNS))
    return {"items": [run_view(run) for run in runs]}


@bp.get("/runs/<id:run_id>")
@moderator_required
def show_run(run_id: int) -> Any:
    """One retraining run, with the candidate's comparison against the active model."""
    run = get_session().get(TrainingRun, run_id)
    if run is None:
        raise NotFoundError(f"training run {run_id} does not exist")
    return run_view(run)


@bp.get("/shadow")
@moderator_required
def shadow() -> Any:
    """How the shadow model would have changed decisions (`version`, else the latest one seen)."""
    session = get_session()
    version = _version_asked() or session.scalar(
        select(ShadowVerdict.model_version).order_by(ShadowVerdict.id.desc()).limit(1)
    )
    if version is None:
        raise NotFoundError("no comment has been scored in shadow mode yet")
    report = shadow_report(session, version)
    if not report["comments"]:
        # A mistyped version would otherwise read as a model that changed nothing.
        raise NotFoundError(f"no comment has been scored in shadow mode by model version {version}")
    return report


def _version_asked() -> str | None:
    """The ``version`` query parameter, if given; ``ValidationError`` for one no model is named."""
    version = request.args.get("version")
    if version and (
        len(version) > MODEL_VERSION_CHARS or not version.isprintable() or any(c.isspace() for c in version)
    ):
        # Such a text could only miss, and PostgreSQL refuses some (a NUL) outright.
        problem = f"version must be a model version name: up to {MODEL_VERSION_CHARS} characters, no spaces"
        raise ValidationError({"version": problem})
    return version
