"""The RQ jobs. Each takes ids, opens its own session, and is harmless when run twice."""

from __future__ import annotations

import logging

from rq import get_current_job

from models import CommentText
from service.statuses import CommentStatus
from service.tables import Comment, ShadowVerdict
from service.transitions import VerdictRecord, flag_unclassified, record_verdict
from worker.context import WorkerContext, current_context
from worker.policy import route

logger = logging.getLogger(__name__)

SKIPPED = "skipped"


def _shadow(
    context: WorkerContext, comment_id: int, text: CommentText, live: CommentStatus
) -> ShadowVerdict | None:
    shadow = context.models.shadow()
    if shadow is None:
        return None
    score = shadow.score_one(text)
    routing = route(context.policy, {"spam": score.spam, "abuse": score.abuse}, shadow.thresholds)
    return ShadowVerdict(
        comment_id=comment_id,
        model_version=shadow.version,
        spam=score.spam,
        abuse=score.abuse,
        outcome=routing.outcome,
        live_outcome=live,
    )


def _classify(context: WorkerContext, comment_id: int) -> str:
    with context.sessions() as session:
        comment = session.get(Comment, comment_id)
        if comment is None or comment.status is not CommentStatus.RECEIVED:
            return SKIPPED
        text = CommentText(text=comment.body, author=comment.name, url=comment.url or "")
        classifier = context.models.active()
        score = classifier.score_one(text)
        routing = route(context.policy, {"spam": score.spam, "abuse": score.abuse}, classifier.thresholds)
        verdict = VerdictRecord(
            spam=score.spam,
            abuse=score.abuse,
            reasons=list(score.reasons),
            model_version=score.model_version,
            outcome=routing.outcome,
            why=routing.why,
        )
        if not record_verdict(session, comment_id, verdict):
            return SKIPPED
        shadow = _shadow(context, comment_id, text, routing.outcome)
        if shadow is not None:
            session.add(shadow)
        session.commit()
        return routing.outcome.value


def _last_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def classify_comment(comment_id: int) -> str:
    """Score one comment, route it, and store verdict and audit event together.

    Returns the new status, or ``skipped`` when the comment had already left
    ``received``. When the last retry fails too, the comment is flagged for a human
    and the error is re-raised, so RQ records the failure.
    """
    context = current_context()
    try:
        return _classify(context, comment_id)
    except Exception as exc:
        if _last_attempt():
            with context.sessions() as session:
                if flag_unclassified(session, comment_id, f"{type(exc).__name__}: {exc}"):
                    session.commit()
                    logger.error("comment %s flagged for a human after its last failed attempt", comment_id)
        raise
