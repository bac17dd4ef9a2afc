"""Where a form post may send the reader back to: only pages on the site's own hosts."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

NOTICE_PARAMETER = "comment_status"
NOTICE_VALUE = "awaiting-moderation"


def safe_target(candidates: Iterable[str | None], allowed_hosts: Iterable[str]) -> str | None:
    """The first candidate URL on an allowed host over http(s), or None (no open redirects)."""
    allowed = {host.lower() for host in allowed_hosts}
    for candidate in candidates:
        if not candidate:
            continue
        parts = urlsplit(candidate.strip())
        if parts.scheme in {"http", "https"} and (parts.hostname or "") in allowed:
            return candidate.strip()
    return None


def with_notice(url: str, comment_id: int) -> str:
    """``url`` with query parameters telling the page that this comment awaits moderation."""
    parts = urlsplit(url)
    query = [
        (key, value) for key, value in parse_qsl(parts.query) if key not in {NOTICE_PARAMETER, "comment_id"}
    ]
    query += [(NOTICE_PARAMETER, NOTICE_VALUE), ("comment_id", str(comment_id))]
    return urlunsplit(parts._replace(query=urlencode(query), fragment="comments"))
