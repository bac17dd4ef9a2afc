"""One model version on disk: the fitted pipeline (skops), its digest, and its metadata.

    <model_dir>/<version>/
        model.skops     the fitted pipeline, written with skops.io (no pickle)
        model.sha256    SHA-256 of model.skops, in `sha256sum` format
        metadata.json   version, creation time, library versions, data fingerprint,
                        parameters, thresholds, metrics, and the digest again

Loading checks, in order: the files exist, the digest matches (both copies), the
library versions match the installed ones, and only then deserializes, trusting an
explicit list of types. skops refuses any other type, so a crafted file cannot make
the loader run code the list does not name.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import zipfile
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from models.errors import ModelIntegrityError, ModelNotFoundError, ModelVersionError

MODEL_FILE = "model.skops"
DIGEST_FILE = "model.sha256"
METADATA_FILE = "metadata.json"
# The layout of a stored model: raised whenever a stored class moves or changes its
# state, or the features it computes change (3: the word-list and sentiment metadata
# columns and the branch weights), so that a version written by older code is refused
# with a message instead of failing somewhere inside deserialization or scoring.
FORMAT = 3

# The libraries whose versions must match exactly for a stored model to be loaded:
# scikit-learn supports no other way ("There are no supported ways to load a model
# trained with a different version"), and skops and NumPy define the file's contents.
CHECKED_LIBRARIES = ("scikit-learn", "skops", "numpy")
RECORDED_LIBRARIES = ("scikit-learn", "skops", "numpy", "scipy")

# Types in a stored pipeline that skops does not trust by default. Each is a class of
# this package holding only parameters and NumPy arrays; none runs code on load.
TRUSTED_TYPES = [
    "models.embeddings.TokenVectors",
    "models.features.MetadataFeatures",
    "models.heads.LinearHeads",
    "models.pipeline.Field",
    "models.pipeline.PrepareComments",
    "models.vectorizers.CompactTfidfVectorizer",
]


def library_versions() -> dict[str, str]:
    """Return the versions recorded with (and checked against) every model."""
    versions = {name: installed_version(name) for name in RECORDED_LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


def file_digest(path: Path) -> str:
    """Return the SHA-256 hex digest of a file."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_artifact(directory: Path, pipeline: Any, metadata: dict[str, Any]) -> None:
    """Write a new version folder atomically: all files appear at once or none do.

    Raises:
        FileExistsError: if `directory` already exists.
    """
    import skops.io as sio  # deferred: skops is only needed when saving or loading

    if directory.exists():
        raise FileExistsError(f"model version folder already exists: {directory}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model_path = staging / MODEL_FILE
        # Deflate: out-of-core weight vectors are mostly zeros and shrink many times over.
        sio.dump(pipeline, model_path, compression=zipfile.ZIP_DEFLATED)
        digest = file_digest(model_path)
        (staging / DIGEST_FILE).write_text(f"{digest}  {MODEL_FILE}\n", encoding="utf-8")
        full = {**metadata, "format": FORMAT, "model_file": MODEL_FILE, "model_sha256": digest}
        (staging / METADATA_FILE).write_text(
            json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_metadata(directory: Path) -> dict[str, Any]:
    """Return a version's metadata.

    Raises:
        ModelNotFoundError: the folder or its metadata file is missing.
        ModelIntegrityError: the metadata is not a JSON object.
    """
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"no model version at {directory} (missing {METADATA_FILE})")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelIntegrityError(f"{path} is not valid JSON: {exc.msg}") from None
    if not isinstance(metadata, dict):
        raise ModelIntegrityError(f"{path} does not hold a JSON object")
    return metadata


def verify_digest(directory: Path, metadata: dict[str, Any]) -> None:
    """Check model.skops against model.sha256 and the digest in the metadata."""
    model_path, digest_path = directory / MODEL_FILE, directory / DIGEST_FILE
    for path in (model_path, digest_path):
        if not path.is_file():
            raise ModelIntegrityError(f"model version {directory.name} is incomplete: missing {path.name}")
    actual = file_digest(model_path)
    recorded = digest_path.read_text(encoding="utf-8").split()[:1]
    if recorded != [actual] or metadata.get("model_sha256") != actual:
        raise ModelIntegrityError(
            f"{model_path} does not match its recorded SHA-256 digest; the file was changed "
            "or damaged after it was written. Refusing to load it: train a new version or "
            "restore this one from a backup."
        )


def verify_format(metadata: dict[str, Any]) -> None:
    """Refuse a model stored in a layout this code does not read."""
    if metadata.get("format") != FORMAT:
        raise ModelVersionError(
            f"model {metadata.get('version', '?')} is stored in format {metadata.get('format', 'unknown')}, "
            f"but this code reads format {FORMAT}. Retrain it with `moderation train`."
        )


def verify_libraries(metadata: dict[str, Any]) -> None:
    """Refuse a model made with other versions of the libraries that define it."""
    recorded = metadata.get("libraries") or {}
    current = library_versions()
    for name in CHECKED_LIBRARIES:
        if recorded.get(name) != current[name]:
            raise ModelVersionError(
                f"model {metadata.get('version', '?')} was made with {name} "
                f"{recorded.get(name, 'unknown')}, but {name} {current[name]} is installed. "
                "Retrain it with `moderation train` (or install the recorded version)."
            )


def verify_artifact(directory: Path) -> dict[str, Any]:
    """Run every check `load_artifact` runs, without deserializing; return the metadata."""
    metadata = read_metadata(directory)
    verify_digest(directory, metadata)
    verify_format(metadata)
    verify_libraries(metadata)
    return metadata


def load_artifact(directory: Path) -> tuple[Any, dict[str, Any]]:
    """Return (fitted pipeline, metadata) of a verified version folder.

    Raises:
        ModelNotFoundError, ModelIntegrityError, ModelVersionError.
    """
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    metadata = verify_artifact(directory)
    try:
        pipeline = sio.load(directory / MODEL_FILE, trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException as exc:
        raise ModelIntegrityError(
            f"{directory / MODEL_FILE} contains types outside the trusted list and was not "
            f"loaded ({exc}). Retrain it with `moderation train`."
        ) from None
    return pipeline, metadata
