"""Flood control: how many comments one client address, and one commenter, may post.

The counts are fixed windows in Redis, so every web process on every host shares them.
The `limits` library reads the configured limits (`30 per minute; 300 per day`) and
names their windows. It would count them too, but with one round trip per window, and
on the intake, the hottest path, one round trip costs 16 to 25 % of its throughput
(`bench/intake.py` runs the service with and without flood control). So every window of
a post, its address's and its commenter's, is counted by one script, run atomically by
Redis: for each window the same three steps as the library's fixed window (create the
counter with the window's expiry, increment it, read its time left). Redis never holds
an address or an email in the clear: each is known there only by a keyed digest.

The intake itself needs only the database, so when Redis does not answer, comments are
accepted uncounted for a few seconds (and a warning is logged) rather than refused or
kept waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time

import redis
from limits import RateLimitItem, parse_many

from service.errors import ServiceError
from service.privacy import KeyRing, canonical_email

logger = logging.getLogger(__name__)

# After Redis failed to answer, how long comments go uncounted before it is asked again:
# with a Redis that hangs, asking on every comment would add its timeout to each.
UNCHECKED_AFTER_FAILURE_SECONDS = 5.0

ADDRESS = "address"
COMMENTER = "commenter"
_WHO = {ADDRESS: "this address", COMMENTER: "this commenter (email address)"}
# KEYS: one counter a window; ARGV: each window's length in seconds. Returns each
# window's count, then its milliseconds left (PTTL: TTL's whole seconds would round a
# wait down). A counter that somehow lost its expiry gets it back rather than refusing
# forever.
_COUNT_WINDOWS = """
local replies = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'EX', ARGV[i], 'NX')
  replies[2 * i - 1] = redis.call('INCRBY', key, 1)
  local left = redis.call('PTTL', key)
  if left < 0 then
    redis.call('EXPIRE', key, ARGV[i])
    left = ARGV[i] * 1000
  end
  replies[2 * i] = left
end
return replies
"""
# One IPv6 client commonly holds a whole /64 of addresses, so that is what is counted.
_IPV6_CLIENT_PREFIX = 64


def parse_limits(spec: str) -> list[RateLimitItem]:
    """``"5 per minute; 50 per hour"`` as limit items; empty means none. Raises ``ValueError``."""
    if not spec.strip():
        return []
    limits = list(parse_many(spec))
    if any(limit.amount < 1 for limit in limits):
        raise ValueError("a limit of 0 would refuse every comment; leave the setting empty to turn it off")
    return limits


def client_identity(address: str | None) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 address's /64 network.

    Without an address (a Unix socket in front) all share one count, as behind a proxy.
    """
    if not address:
        return ""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{_IPV6_CLIENT_PREFIX}", strict=False))
    return str(parsed)


class TooManyCommentsError(ServiceError):
    """One address or commenter posted more comments than the configured limit allows."""

    status = 429
    code = "too_many_comments"

    def __init__(self, who: str, limit: RateLimitItem, retry_after: int) -> None:
        super().__init__(f"too many comments from {_WHO[who]}: at most {limit}; try again in {retry_after} s")
        self.retry_after = retry_after


class FloodControl:
    """Counts each post against the limits for its client address and for its commenter."""

    def __init__(
        self,
        connection: redis.Redis,
        namespace: str,
        keys: KeyRing,
        per_address: str,
        per_commenter: str,
    ) -> None:
        """Count in the Redis server of ``connection``, under keys starting with ``namespace``,
        with the limits as ``parse_limits`` reads them."""
        self._count = connection.register_script(_COUNT_WINDOWS)
        self._prefix = f"moderation:flood:{namespace}:"
        self._key = keys.flood
        self._limits = {ADDRESS: parse_limits(per_address), COMMENTER: parse_limits(per_commenter)}
        self._unchecked_until = 0.0
        self._lock = threading.Lock()

    def check(self, address: str | None, email: str | None) -> None:
        """Count a post from client ``address`` and, when given, from the commenter with
        ``email``; ``TooManyCommentsError`` when either is over a limit."""
        if time.monotonic() < self._unchecked_until:
            return
        windows: list[tuple[str, RateLimitItem, str]] = []
        if self._limits[ADDRESS]:
            windows += self._windows(ADDRESS, client_identity(address))
        if email is not None and self._limits[COMMENTER]:
            windows += self._windows(COMMENTER, canonical_email(email))
        if not windows:
            return
        try:
            replies = self._count(
                keys=[key for _who, _limit, key in windows],
                args=[limit.get_expiry() for _who, limit, _key in windows],
            )
        except redis.RedisError as exc:
            self._pause(exc)
            return
        # Of the windows over their limit, the one that ends last says when to try again.
        over = [
            (replies[2 * index + 1], who, limit)
            for index, (who, limit, _key) in enumerate(windows)
            if replies[2 * index] > limit.amount
        ]
        if over:
            milliseconds, who, limit = max(over, key=lambda window: window[0])
            raise TooManyCommentsError(who, limit, max(1, math.ceil(milliseconds / 1000)))

    def _windows(self, who: str, identity: str) -> list[tuple[str, RateLimitItem, str]]:
        """Each limit of ``who`` with its counter's key for ``identity``, known there only by a
        keyed digest computed once for all its windows."""
        name = hmac.new(self._key, f"{who}\0{identity}".encode(), hashlib.sha256).hexdigest()[:32]
        return [(who, limit, self._prefix + limit.key_for(who, name)) for limit in self._limits[who]]

    def _pause(self, error: redis.RedisError) -> None:
        with self._lock:
            if time.monotonic() >= self._unchecked_until:
                logger.warning(
                    "flood control is off for %g s, Redis did not answer: %s",
                    UNCHECKED_AFTER_FAILURE_SECONDS,
                    error,
                )
                self._unchecked_until = time.monotonic() + UNCHECKED_AFTER_FAILURE_SECONDS
