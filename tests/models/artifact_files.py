"""Changing a saved version's files as someone editing them by hand would, digests included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.artifacts import DIGEST_FILE, METADATA_FILE, MODEL_FILE, file_digest


def rewrite_metadata(directory: Path, metadata: dict[str, Any]) -> None:
    """Replace a version's metadata and re-record its digests, as a writer of that metadata would."""
    (directory / METADATA_FILE).write_text(json.dumps(metadata))
    (directory / DIGEST_FILE).write_text(
        "".join(f"{file_digest(directory / name)}  {name}\n" for name in (MODEL_FILE, METADATA_FILE))
    )


def replace_model_file(directory: Path, content: bytes) -> None:
    """Replace a version's model file and record its digests anew (to "repair" a mismatch, say),
    so that only reading the model can tell what is wrong with it."""
    (directory / MODEL_FILE).write_bytes(content)
    metadata = json.loads((directory / METADATA_FILE).read_text())
    rewrite_metadata(directory, {**metadata, "model_sha256": file_digest(directory / MODEL_FILE)})
