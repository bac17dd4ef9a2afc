"""The service's own exceptions; the API turns each into one JSON error shape."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status = 500
    code = "internal_server_error"


class ConfigError(ServiceError):
    """The configuration is missing something or holds a bad value."""


class ValidationError(ServiceError):
    """Submitted data broke one or more rules; ``problems`` maps each field to its message."""

    status = 422
    code = "invalid_input"

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems.items()))
        self.problems = problems


class NotFoundError(ServiceError):
    """The named record does not exist (or is not visible to the caller)."""

    status = 404
    code = "not_found"


class ConflictError(ServiceError):
    """The request was made against a state of the record that has changed since."""

    status = 409
    code = "conflict"


class AuthError(ServiceError):
    """The request carries no valid moderator token."""

    status = 401
    code = "unauthorized"


class ForbiddenError(ServiceError):
    """The moderator token is valid but may not do this."""

    status = 403
    code = "forbidden"


class NotMigratedError(ServiceError):
    """The database has none of the service's tables yet: ``moderation migrate`` has not run."""

    status = 503
    code = "database_not_migrated"


class QueueUnavailableError(ServiceError):
    """The job queue (Redis) could not be reached to queue work that was recorded."""

    status = 503
    code = "queue_unavailable"
