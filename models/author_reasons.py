"""How a reason names the commenter's name or website.

Shared by the explainer, which writes such reasons, and by the service's erasure of a
commenter's personal data, which removes them; a module of its own so that the web app
reads it without the scientific libraries.
"""

from __future__ import annotations

NO_AUTHOR = "no author name"
_NAME_PREFIX = "author name "
_NAME_OR_WEBSITE_SUFFIX = " in the author name or website"


def author_label(label: str, *, quoted: bool) -> str:
    """A reason's subject for an author feature: ``"casino"`` becomes ``author name "casino"``,
    a link (``quoted`` false) ``link to ex.com in the author name or website``."""
    return f"{_NAME_PREFIX}{label}" if quoted else f"{label}{_NAME_OR_WEBSITE_SUFFIX}"


def quotes_author(reason: str) -> bool:
    """Whether ``reason`` (``author name "casino" +0.9 toward spam``) repeats the commenter's
    name or website."""
    subject = reason.partition(" +")[0]
    return subject.startswith(_NAME_PREFIX) or subject.endswith(_NAME_OR_WEBSITE_SUFFIX)


def without_author(reasons: list[str]) -> list[str]:
    """``reasons`` less those that repeat the commenter's name or website."""
    return [reason for reason in reasons if not quotes_author(reason)]
