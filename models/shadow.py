"""The shadow version: a model that scores live comments beside the active one without acting.

`<model_dir>/SHADOW` names it. Workers score each comment with it too and record
what it would have decided, so a candidate can be watched on real traffic first.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.registry import version_path

SHADOW_FILE = "SHADOW"


def shadow_version(model_dir: str | Path) -> str | None:
    """The version in shadow mode, or None."""
    path = Path(model_dir) / SHADOW_FILE
    return (path.read_text(encoding="utf-8").strip() or None) if path.is_file() else None


def set_shadow(model_dir: str | Path, version: str) -> None:
    """Put ``version`` in shadow mode; raises ``ModelNotFoundError`` for an unknown version."""
    root = Path(model_dir)
    version_path(root, version)  # raises for an unknown version
    temporary = root / f".{SHADOW_FILE}.{os.getpid()}"
    temporary.write_text(version, encoding="utf-8")
    os.replace(temporary, root / SHADOW_FILE)


def clear_shadow(model_dir: str | Path) -> None:
    """Stop shadow scoring."""
    (Path(model_dir) / SHADOW_FILE).unlink(missing_ok=True)
