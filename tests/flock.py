"""Whether another holder has an exclusive ``flock`` on a file: shared by the tests of
the locks the model registry and the SQLite writers take."""

from __future__ import annotations

import fcntl
from pathlib import Path


def flock_is_free(path: Path) -> bool:
    """True when no open file holds ``path``'s lock; a second open of the file, even in
    this process, cannot take a lock another open holds."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
