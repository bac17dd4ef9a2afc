"""Files that take their place whole or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, TextIO


@contextmanager
def _beside(path: Path) -> Iterator[int]:
    """A new file under a hidden name beside ``path`` (its descriptor), moved into place
    with ``os.replace`` when the block ends without an error, removed when it does not."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    # os.open, not tempfile.mkstemp (always 0600), so the umask sets the mode and a web
    # or worker process running as another user can still read the file.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        yield handle
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _finish(out: IO[str] | IO[bytes], sync: bool) -> None:
    if sync:
        out.flush()
        os.fsync(out.fileno())


@contextmanager
def replacing(path: Path, *, sync: bool = False, newline: str | None = None) -> Iterator[TextIO]:
    """A UTF-8 text file that replaces ``path`` when the block ends without an error.

    It is written beside ``path`` under a hidden name and moved into place with
    ``os.replace``, so a reader sees the old file or the new one, never half of one, and
    a failure (a full disk, an exception in the block) leaves the old file as it was and
    no temporary behind. With ``sync`` the data reaches the disk before the move.
    """
    with _beside(path) as handle, os.fdopen(handle, "w", encoding="utf-8", newline=newline) as out:
        yield out
        _finish(out, sync)


@contextmanager
def replacing_bytes(path: Path, *, sync: bool = False) -> Iterator[BinaryIO]:
    """`replacing` for a binary file."""
    with _beside(path) as handle, os.fdopen(handle, "wb") as out:
        yield out
        _finish(out, sync)
