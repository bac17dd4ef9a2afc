"""Where a form post may send the reader back to: only pages on the site's own hosts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from service.validation import web_address

NOTICE_PARAMETER = "comment_status"
NOTICE_VALUE = "awaiting-moderation"
_NOTICE_KEYS = frozenset({NOTICE_PARAMETER, "comment_id"})
# Browsers read a backslash as "/" and urlsplit does not, so it may name another host
# than the one the browser goes to. Control characters and spaces, which browsers drop
# or encode by rules of their own, are refused for the same reason.
_READ_DIFFERENTLY = re.compile(r"[\\\x00-\x20\x7f]")


def safe_target(candidates: Iterable[str | None], allowed_hosts: Iterable[str]) -> str | None:
    """The first candidate URL on an allowed host over http(s), or None (no open redirects);
    a candidate that is not a valid URL is passed over."""
    # urlsplit gives an IPv6 host without its brackets.
    allowed = {host.lower().removeprefix("[").removesuffix("]") for host in allowed_hosts}
    for candidate in candidates:
        target = (candidate or "").strip()
        if not target or _READ_DIFFERENTLY.search(target):
            continue
        # A candidate that is no URL a browser could follow ("http://[", a port of "x") is
        # passed over: the commenter's form must not fail on it after the comment is stored.
        parts = web_address(target)
        if parts is not None and parts.hostname in allowed:
            return target
    return None


def with_notice(url: str, comment_id: int) -> str:
    """``url`` with query parameters telling the page that this comment awaits moderation.

    The page's own parameters stay as they were written, blank and value-less ones
    included, and so does its fragment; without one the reader lands on ``#comments``.
    """
    parts = urlsplit(url)
    # Decoding and encoding the query again would write "flag" as "flag=" and change the
    # page's escapes, so only an earlier notice is taken out of it, piece by piece.
    kept = [
        piece
        for piece in parts.query.split("&")
        if piece and unquote_plus(piece.partition("=")[0]) not in _NOTICE_KEYS
    ]
    notice = urlencode({NOTICE_PARAMETER: NOTICE_VALUE, "comment_id": comment_id})
    query = "&".join([*kept, notice])
    return urlunsplit(parts._replace(query=query, fragment=parts.fragment or "comments"))
