"""Flood control: how many comments one client address, and one commenter, may post.

The `limits` library reads the configured limits (`30 per minute; 300 per day`). Each
limit is a fixed window per client address or commenter, starting at its first post,
counted in the database (the ``flood_counters`` table) by the same statement or
transaction that stores the comment (service/intake.py): counting costs no round trip
of its own, a refused post leaves no comment behind, and the counts hold for every web
process on every host, while Redis is down too. Counting in Redis instead cost a round
trip per post, 17 to 26 % of the intake's throughput (`bench/intake.py` runs the service
with and without flood control). The table never holds an address or an email: each
counter is known by a keyed digest of who it counts and its limit. Windows are timed by
the web host's clock, so several hosts must keep theirs in step (as NTP does).

This module is pure: it names a post's windows, builds the counting statement, and
judges the counts it returns.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, parse_many
from sqlalchemy import BigInteger, LargeBinary, bindparam, case, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from service.errors import ServiceError
from service.privacy import KeyRing, canonical_email
from service.tables import FloodCounter

if TYPE_CHECKING:  # the config module reads its limits with this one's parse_limits
    from service.config import Settings

ADDRESS = "address"
COMMENTER = "commenter"
_WHO = {ADDRESS: "this address", COMMENTER: "this commenter (email address)"}
# One IPv6 client commonly holds a whole /64 of addresses, so that is what is counted.
_IPV6_CLIENT_PREFIX = 64
_KEY_BYTES = 16
# The one count that posts from addresses that cannot be read share.
UNREADABLE_ADDRESS = "unreadable"


def parse_limits(spec: str) -> list[RateLimitItem]:
    """``"5 per minute; 50 per hour"`` as limit items; empty means none. Raises ``ValueError``."""
    if not spec.strip():
        return []
    limits = list(parse_many(spec))
    if any(limit.amount < 1 for limit in limits):
        raise ValueError("a limit of 0 would refuse every comment; leave the setting empty to turn it off")
    return limits


def _without_port(address: str) -> str:
    """``address`` without the brackets and port some proxies write into X-Forwarded-For
    (``198.51.100.7:4000``, ``[2001:db8::1]:443``): a port is the connection's, not the client's."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    host, colon, port = address.rpartition(":")
    # One colon is IPv4 with a port; a bare IPv6 address has several.
    return host if colon and ":" not in host and port.isdigit() else address


def client_identity(address: str | None) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 address's /64 network.

    Without an address (a Unix socket in front) all share one count, as behind a proxy;
    so do addresses that cannot be read, lest each spelling count as a client of its own.
    """
    if not address:
        return ""
    try:
        parsed = ipaddress.ip_address(_without_port(address.strip()))
    except ValueError:
        return UNREADABLE_ADDRESS
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


@dataclass(frozen=True)
class Window:
    """One limit of one client address or commenter: the counter a post counts against."""

    who: str
    limit: RateLimitItem
    key: bytes
    """A keyed digest of who is counted and the limit: the counter's row key."""

    @property
    def milliseconds(self) -> int:
        """The window's length."""
        return int(self.limit.get_expiry()) * 1000


@dataclass(frozen=True)
class Counted:
    """A counter after a post was counted: the posts in its window and when the window ends."""

    count: int
    window_ends_ms: int


def _named(limits: list[RateLimitItem]) -> list[tuple[RateLimitItem, bytes]]:
    """Each limit with what its counters' names end with; a limit written twice is one
    counter, as one statement may touch each row only once."""
    unique = {(limit.amount, int(limit.get_expiry())): limit for limit in limits}
    return [(limit, f"{amount}/{seconds}".encode()) for (amount, seconds), limit in unique.items()]


class FloodControl:
    """Names the windows each post counts against, from the configured limits."""

    def __init__(self, keys: KeyRing, per_address: str, per_commenter: str) -> None:
        """Limits as ``parse_limits`` reads them; counters named with the key ring's flood key."""
        self._key = keys.flood
        self._limits = {
            ADDRESS: _named(parse_limits(per_address)),
            COMMENTER: _named(parse_limits(per_commenter)),
        }

    @classmethod
    def from_settings(cls, keys: KeyRing, settings: Settings) -> FloodControl:
        """Flood control with the configured limits per address and per commenter."""
        return cls(keys, settings.comment_limit_per_address, settings.comment_limit_per_commenter)

    def windows(self, address: str | None, email: str | None) -> tuple[Window, ...]:
        """The windows of a post from client ``address`` and, when given, the commenter with
        ``email``; none when flood control is off."""
        windows = self._windows(ADDRESS, client_identity(address))
        if email is not None:
            windows += self._windows(COMMENTER, canonical_email(email))
        return windows

    def commenter_keys(self, email: str) -> tuple[bytes, ...]:
        """The keys of the counters of the commenter with ``email``, under the limits now set."""
        return tuple(window.key for window in self._windows(COMMENTER, canonical_email(email)))

    def _windows(self, who: str, identity: str) -> tuple[Window, ...]:
        named = f"{who}\0{identity}\0".encode()
        return tuple(
            Window(who, limit, hmac.digest(self._key, named + suffix, "sha256")[:_KEY_BYTES])
            for limit, suffix in self._limits[who]
        )


def refusal(
    windows: Sequence[Window], counted: Mapping[bytes, Counted], now_ms: int
) -> TooManyCommentsError | None:
    """The error for a post whose ``counted`` windows (by key) hold more than their limit;
    ``None`` when every window is within it. Of several windows over their limit, the one
    that ends last says when to try again."""
    over = [
        (counted[window.key].window_ends_ms, window)
        for window in windows
        if counted[window.key].count > window.limit.amount
    ]
    if not over:
        return None
    ends_ms, window = max(over, key=lambda item: item[0])
    return TooManyCommentsError(window.who, window.limit, max(1, math.ceil((ends_ms - now_ms) / 1000)))


def milliseconds(moment: datetime) -> int:
    """``moment`` as the counters keep time: whole milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def window_parameters(windows: Sequence[Window], now_ms: int) -> dict[str, object]:
    """The bind values of ``count_statement(dialect, len(windows))`` for a post at ``now_ms``."""
    values: dict[str, object] = {"now_ms": now_ms}
    for index, window in enumerate(windows):
        values[f"flood_key_{index}"] = window.key
        values[f"flood_ends_{index}"] = now_ms + window.milliseconds
        values[f"flood_limit_{index}"] = window.limit.amount
    return values


def count_statement(dialect: str, windows: int) -> Insert:
    """Add one post to ``windows`` counters (a window that ended starts again) and return
    each counter's key, count and window end: one upsert on ``dialect`` (sqlite or postgresql).

    Its bind values come from ``window_parameters``.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    one: ColumnElement[int] = literal_column("1")
    statement = insert(FloodCounter).values(
        [
            {
                "key": bindparam(f"flood_key_{index}", type_=LargeBinary),
                "window_ends_ms": bindparam(f"flood_ends_{index}", type_=BigInteger),
                "count": one,
            }
            for index in range(windows)
        ]
    )
    running = FloodCounter.window_ends_ms > bindparam("now_ms", type_=BigInteger)
    statement = statement.on_conflict_do_update(
        index_elements=[FloodCounter.key],
        set_={
            FloodCounter.count: case((running, FloodCounter.count + one), else_=one),
            FloodCounter.window_ends_ms: case(
                (running, FloodCounter.window_ends_ms), else_=statement.excluded.window_ends_ms
            ),
        },
    )
    return statement.returning(FloodCounter.key, FloodCounter.count, FloodCounter.window_ends_ms)


def read_counts(rows: Sequence[Sequence[Any]]) -> dict[bytes, Counted]:
    """The counting statement's rows (key, count, window end) by key."""
    return {bytes(row[0]): Counted(int(row[1]), int(row[2])) for row in rows}
