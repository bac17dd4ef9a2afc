"""Accepting a comment: store it first, then queue its classification."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from service.privacy import KeyRing
from service.tables import Comment
from service.transitions import receive
from service.validation import Submission


class Enqueuer(Protocol):
    """Anything that can queue a stored comment for classification."""

    def try_enqueue(self, comment_id: int) -> bool:
        """Queue the comment; False when the queue cannot be reached right now."""
        ...


def submit_comment(session: Session, queue: Enqueuer, keys: KeyRing, submission: Submission) -> Comment:
    """Store ``submission`` durably, then enqueue it.

    The job is enqueued only after the commit, so a worker never looks for a comment
    that is not there yet; if the queue is down the comment waits for the sweeper.
    """
    comment = receive(session, keys, submission)
    session.commit()
    queue.try_enqueue(comment.id)
    return comment
