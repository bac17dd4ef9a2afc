"""Flood control: how many comments one client address, and one commenter, may post.

The counts live in Redis (fixed windows of the `limits` library), so every web process
on every host shares them. Redis never holds an address or an email in the clear: each
is known there only by a keyed digest. The intake itself needs only the database, so
when Redis does not answer, comments are accepted unchecked for a few seconds (and a
warning is logged) rather than refused or kept waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Sequence

import redis
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from service.errors import ServiceError
from service.privacy import KeyRing, canonical_email

logger = logging.getLogger(__name__)

# After Redis failed to answer, how long comments go unchecked before it is asked again:
# with a Redis that hangs, asking on every comment would add its timeout to each.
UNCHECKED_AFTER_FAILURE_SECONDS = 5.0

ADDRESS = "address"
COMMENTER = "commenter"
_WHO = {ADDRESS: "this address", COMMENTER: "this commenter (email address)"}


def parse_limits(spec: str) -> list[RateLimitItem]:
    """``"5 per minute; 50 per hour"`` as limit items; empty means none. Raises ``ValueError``."""
    if not spec.strip():
        return []
    return list(parse_many(spec))


class TooManyCommentsError(ServiceError):
    """One address or commenter posted more comments than the configured limit allows."""

    status = 429
    code = "too_many_comments"

    def __init__(self, who: str, limit: RateLimitItem, retry_after: int) -> None:
        super().__init__(f"too many comments from {_WHO[who]}: at most {limit}; try again in {retry_after} s")
        self.retry_after = retry_after


class FloodControl:
    """Counts each comment against the limits for its client address and for its commenter."""

    def __init__(
        self,
        limiter: FixedWindowRateLimiter,
        keys: KeyRing,
        per_address: Sequence[RateLimitItem],
        per_commenter: Sequence[RateLimitItem],
    ) -> None:
        self._limiter = limiter
        self._key = keys.flood
        self._limits = {ADDRESS: tuple(per_address), COMMENTER: tuple(per_commenter)}
        self._unchecked_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        connection: redis.Redis,
        url: str,
        namespace: str,
        keys: KeyRing,
        per_address: str,
        per_commenter: str,
    ) -> FloodControl:
        """Flood control counting in the Redis server of ``connection`` (reached at ``url``),
        its keys under ``namespace``, with the limits as ``parse_limits`` reads them."""
        storage = RedisStorage(
            url, connection_pool=connection.connection_pool, key_prefix=f"moderation:flood:{namespace}"
        )
        limiter = FixedWindowRateLimiter(storage)
        return cls(limiter, keys, parse_limits(per_address), parse_limits(per_commenter))

    def check_address(self, address: str | None) -> None:
        """Count a comment from client ``address``; ``TooManyCommentsError`` when it is over a limit."""
        # Without an address (a Unix socket in front) all share one count, as behind a proxy.
        self._check(ADDRESS, (address or "").encode())

    def check_commenter(self, email: str) -> None:
        """Count a comment from the commenter with ``email``; ``TooManyCommentsError`` when over a limit."""
        self._check(COMMENTER, canonical_email(email).encode())

    def _check(self, who: str, identity: bytes) -> None:
        limits = self._limits[who]
        if not limits or time.monotonic() < self._unchecked_until:
            return
        name = hmac.new(self._key, who.encode() + b"\0" + identity, hashlib.sha256).hexdigest()[:32]
        try:
            for limit in limits:
                if not self._limiter.hit(limit, who, name):
                    reset = self._limiter.get_window_stats(limit, who, name).reset_time
                    raise TooManyCommentsError(who, limit, max(1, math.ceil(reset - time.time())))
        except redis.RedisError as exc:
            with self._lock:
                if time.monotonic() >= self._unchecked_until:
                    logger.warning(
                        "flood control is off for %g s, Redis did not answer: %s",
                        UNCHECKED_AFTER_FAILURE_SECONDS,
                        exc,
                    )
                    self._unchecked_until = time.monotonic() + UNCHECKED_AFTER_FAILURE_SECONDS
