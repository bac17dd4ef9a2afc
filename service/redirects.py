"""Where a form post may send the reader back to: only pages on the site's own hosts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

NOTICE_PARAMETER = "comment_status"
NOTICE_VALUE = "awaiting-moderation"
# Browsers read a backslash as "/" and urlsplit does not, so it may name another host
# than the one the browser goes to. Control characters and spaces, which browsers drop
# or encode by rules of their own, are refused for the same reason.
_READ_DIFFERENTLY = re.compile(r"[\\\x00-\x20\x7f]")


def safe_target(candidates: Iterable[str | None], allowed_hosts: Iterable[str]) -> str | None:
    """The first candidate URL on an allowed host over http(s), or None (no open redirects)."""
    allowed = {host.lower() for host in allowed_hosts}
    for candidate in candidates:
        target = (candidate or "").strip()
        if not target or _READ_DIFFERENTLY.search(target):
            continue
        parts = urlsplit(target)
        if parts.scheme in {"http", "https"} and (parts.hostname or "") in allowed:
            return target
    return None


def with_notice(url: str, comment_id: int) -> str:
    """``url`` with query parameters telling the page that this comment awaits moderation."""
    parts = urlsplit(url)
    query = [
        (key, value) for key, value in parse_qsl(parts.query) if key not in {NOTICE_PARAMETER, "comment_id"}
    ]
    query += [(NOTICE_PARAMETER, NOTICE_VALUE), ("comment_id", str(comment_id))]
    return urlunsplit(parts._replace(query=urlencode(query), fragment="comments"))
