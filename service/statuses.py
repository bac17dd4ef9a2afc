"""The named states and reasons a comment moves through."""

from __future__ import annotations

from enum import StrEnum


class CommentStatus(StrEnum):
    """Where a comment stands in moderation."""

    RECEIVED = "received"
    """Stored; classification is queued or waiting for the sweeper."""
    APPROVED = "approved"
    """Published: listed in its public thread."""
    FLAGGED = "flagged"
    """Waiting in the review queue for a moderator."""
    REJECTED = "rejected"
    """Never published."""


class DecisionReason(StrEnum):
    """Why a moderator (or the policy) decided as it did."""

    SPAM = "spam"
    ABUSE = "abuse"
    OTHER = "other"


class Action(StrEnum):
    """What a moderator can do to a comment."""

    APPROVE = "approve"
    REJECT = "reject"

    @property
    def status(self) -> CommentStatus:
        """The status a comment takes after this action."""
        return CommentStatus.APPROVED if self is Action.APPROVE else CommentStatus.REJECTED


class RunStatus(StrEnum):
    """Where a retraining run stands."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Trigger(StrEnum):
    """What asked for a retraining run."""

    API = "api"
    CLI = "cli"
    LABELS = "labels"
    """Enough new moderator labels arrived (``RETRAIN_AFTER_LABELS``)."""
