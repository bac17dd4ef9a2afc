"""The record a comment is scored from, and the checks every reader of raw input shares.

Kept free of heavy imports so `import models` stays cheap for the service.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Half of a UTF-16 pair: JSON's "\ud800" escape makes one, and no UTF-8 text can hold it.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class CommentText:
    """What the classifier sees of a comment.

    Attributes:
        text: the comment body as submitted.
        author: the name the commenter typed.
        url: the commenter's website field, if the form has one.
    """

    text: str
    author: str = ""
    url: str = ""


def as_comment(record: Any) -> CommentText:
    """Return `record` as a `CommentText`.

    Accepts a `CommentText`, a plain string (the text), a mapping with `text`, `author`
    and `url` keys, or any object with those attributes (such as an `Example`).
    """
    if isinstance(record, CommentText):
        return record
    if isinstance(record, str):
        return CommentText(record)
    if isinstance(record, Mapping):
        text, author, url = (record.get(field) for field in ("text", "author", "url"))
    else:  # any other record with the same attribute names (e.g. an `Example`)
        text, author, url = (getattr(record, field, None) for field in ("text", "author", "url"))
    return CommentText(text=_as_text(text), author=_as_text(author), url=_as_text(url))


def _as_text(value: Any) -> str:
    # None is no text; 0 is the text "0" (an author id), which `value or ""` would drop.
    return "" if value is None else str(value)


def holds_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds half of a UTF-16 pair, which neither a UTF-8 file, a
    database column nor the model's output can hold."""
    return _LONE_SURROGATE.search(text) is not None


def parse_json(document: bytes | str) -> Any:
    """The value ``document`` holds; ``ValueError`` saying why when Python cannot read it,
    in words that follow "is" (``the body is not valid JSON (...)``).

    ``json.loads`` fails in more ways than ``JSONDecodeError``: nesting deeper than the
    interpreter's recursion limit raises ``RecursionError``, and an integer with more
    digits than ``sys.get_int_max_str_digits()`` a plain ``ValueError``; both would
    otherwise reach a user as a traceback.
    """
    try:
        return json.loads(document)
    except RecursionError:
        raise ValueError("not valid JSON (it nests arrays or objects too deeply)") from None
    except json.JSONDecodeError as exc:
        # Where in the document, by character: a line of its own would contradict the file
        # line a labelled file's errors begin with.
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    except UnicodeDecodeError:
        raise ValueError("not valid JSON (it is not UTF-8 text)") from None
    except ValueError:
        limit = sys.get_int_max_str_digits()
        raise ValueError(f"not readable JSON (it holds a number longer than {limit} digits)") from None
