"""The classify job. It takes an id, opens its own session, and is harmless when run twice.

When the queue is deep, the job for one comment also classifies other comments still
waiting in ``received``, scored in one batch and stored in one transaction: the
model's per-call cost and the commit are paid once for many comments, and the jobs
of comments already done finish at once. The status guard in ``record_verdict`` keeps
a comment from being decided twice when two workers reach it together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CommentText
from service.statuses import CommentStatus
from service.tables import Comment, ShadowVerdict
from service.transitions import VerdictRecord, flag_unclassified, record_verdict
from worker.context import WorkerContext, current_context
from worker.policy import route

logger = logging.getLogger(__name__)

SKIPPED = "skipped"


def _claim(session: Session, comment_id: int, limit: int) -> list[Comment]:
    """The job's own comment, if still waiting, and up to ``limit - 1`` others, oldest first.

    On PostgreSQL every claimed row is locked and rows another worker holds are
    skipped, not waited for: if that worker holds this job's own comment, it will
    decide it, and this job is done.
    """
    own = session.scalar(
        select(Comment)
        .where(Comment.id == comment_id, Comment.status == CommentStatus.RECEIVED)
        .with_for_update(skip_locked=True)
    )
    if own is None:
        return []
    others = session.scalars(
        select(Comment)
        .where(Comment.status == CommentStatus.RECEIVED, Comment.id != comment_id)
        .order_by(Comment.id)
        .limit(limit - 1)
        .with_for_update(skip_locked=True)
    ).all()
    return [own, *others]


def _shadow_rows(
    context: WorkerContext, decided: Sequence[tuple[Comment, CommentText, CommentStatus]]
) -> list[ShadowVerdict]:
    """What the shadow model, if any, would have decided for each newly decided comment."""
    shadow = context.models.shadow()
    if shadow is None or not decided:
        return []
    scores = shadow.score([text for _comment, text, _live in decided], reasons=False)
    return [
        ShadowVerdict(
            comment_id=comment.id,
            model_version=shadow.version,
            spam=score.spam,
            abuse=score.abuse,
            outcome=route(
                context.policy, {"spam": score.spam, "abuse": score.abuse}, shadow.thresholds
            ).outcome,
            live_outcome=live,
        )
        for (comment, _text, live), score in zip(decided, scores, strict=True)
    ]


def _classify(context: WorkerContext, comment_id: int) -> str:
    with context.sessions() as session:
        comments = _claim(session, comment_id, context.settings.classify_batch)
        if not comments:
            return SKIPPED
        texts = [CommentText(c.body, author=c.name, url=c.url or "") for c in comments]
        model = context.models.active()
        decided: list[tuple[Comment, CommentText, CommentStatus]] = []
        for comment, text, score in zip(comments, texts, model.score(texts), strict=True):
            routing = route(context.policy, {"spam": score.spam, "abuse": score.abuse}, model.thresholds)
            verdict = VerdictRecord(
                score.spam,
                score.abuse,
                list(score.reasons),
                score.model_version,
                routing.outcome,
                routing.why,
            )
            if record_verdict(session, comment.id, verdict):
                decided.append((comment, text, routing.outcome))
        session.add_all(_shadow_rows(context, decided))
        session.commit()
        if len(decided) > 1:
            logger.info("classified %s waiting comments in one batch", len(decided))
        own = [outcome for comment, _text, outcome in decided if comment.id == comment_id]
        return own[0].value if own else SKIPPED


def _last_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def classify_comment(comment_id: int) -> str:
    """Score the comment (and others waiting), route them, store verdicts and audit events.

    Returns the comment's new status, or ``skipped`` when it had already left
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
