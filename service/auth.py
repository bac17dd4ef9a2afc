"""Moderator API tokens: created once, shown once, stored only as a digest.

Tokens are 256 random bits, so a fast SHA-256 digest is enough to store them: unlike
passwords they cannot be guessed, and a digest lookup keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import AuthError
from service.tables import ModeratorToken, utcnow
from service.validation import ONE_LINE_CONTROL

TOKEN_PREFIX = "mod_"  # noqa: S105 - a public marker that makes leaked tokens easy to spot


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def moderator_name(name: str) -> str:
    """The stored form of a moderator's name, so creating and revoking agree on it."""
    return name.strip()


def create_token(session: Session, name: str, admin: bool = False) -> str:
    """Store a new token for moderator ``name`` (an ``admin`` one may also handle personal
    data) and return it; it cannot be shown again."""
    name = moderator_name(name)
    if not name or len(name) > 100:
        raise ValueError("a moderator name of 1 to 100 characters is required")
    if ONE_LINE_CONTROL.search(name):
        # The name is written into logs and audit trails: a line break could forge a log
        # line, and a direction override could make one actor's name read as another's.
        # (Joiners stay: Persian names and emoji sequences need them.)
        raise ValueError(
            "a moderator name may not hold control characters, line breaks or direction overrides"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ModeratorToken(name=name, token_digest=_digest(token), admin=admin))
    return token


def revoke_tokens(session: Session, name: str) -> int:
    """Revoke every live token of moderator ``name``; returns how many."""
    tokens = session.scalars(
        select(ModeratorToken).where(
            ModeratorToken.name == moderator_name(name), ModeratorToken.revoked_at.is_(None)
        )
    ).all()
    for token in tokens:
        token.revoked_at = utcnow()
    return len(tokens)


def authenticate(session: Session, authorization: str | None) -> ModeratorToken:
    """The moderator behind an ``Authorization: Bearer`` header; raises ``AuthError``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("a moderator token is required: Authorization: Bearer <token>")
    moderator = session.scalar(
        select(ModeratorToken).where(
            ModeratorToken.token_digest == _digest(token.strip()), ModeratorToken.revoked_at.is_(None)
        )
    )
    if moderator is None:
        raise AuthError("the moderator token is not valid")
    return moderator
