"""A health check for load balancers and container orchestrators."""

from __future__ import annotations

import redis
from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.app import get_session, services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def health() -> tuple[dict[str, str], int]:
    """200 while the database answers (intake works even with the queue down), else 503."""
    checks = {"database": "ok", "queue": "ok"}
    try:
        get_session().execute(text("SELECT 1"))
    except SQLAlchemyError:
        checks["database"] = "unreachable"
    try:
        services().queue.queue.connection.ping()
    except redis.RedisError:
        checks["queue"] = "unreachable"
    return checks, 200 if checks["database"] == "ok" else 503
