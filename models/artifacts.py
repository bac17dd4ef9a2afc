"""One model version on disk: the fitted pipeline (skops), its digest, and its metadata.

    <model_dir>/<version>/
        model.skops     the fitted pipeline, written with skops.io (no pickle)
        metadata.json   version, creation time, library versions, data fingerprint,
                        parameters, thresholds, metrics, and the model's digest again
        model.sha256    SHA-256 of model.skops and of metadata.json, in `sha256sum` format

Loading checks, in order: the storage format is the one this code reads, the files
exist, both digests match (and the metadata's copy of the model's), the metadata has
the fields and types the loader and the service read, the library versions match the
installed ones, and only then deserializes, trusting an explicit list of types. skops
refuses any other type, so a crafted file cannot make the loader run code the list
does not name.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import zipfile
import zlib
from collections.abc import Mapping
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from models.errors import ModelIntegrityError, ModelNotFoundError, ModelVersionError
from models.records import parse_json

MODEL_FILE = "model.skops"
DIGEST_FILE = "model.sha256"
METADATA_FILE = "metadata.json"
# The layout of a stored model: raised whenever a stored class moves or changes its
# state, or the features it computes change (3: the word-list and sentiment metadata
# columns and the branch weights), so that a version written by older code is refused
# with a message instead of failing somewhere inside deserialization or scoring.
# 4 stores the same model, with model.sha256 covering metadata.json too.
FORMAT = 4
DIGESTED_FILES = (MODEL_FILE, METADATA_FILE)
# What the folder of a version being written is called until it is complete.
STAGING_PREFIX = ".saving-"
# The formats this code reads, and the files each one's model.sha256 covers: a format-3
# version is still loaded (an upgrade must not throw away a site's retrained model),
# its metadata checked for shape but not by digest.
READABLE_FORMATS: dict[int, tuple[str, ...]] = {3: (MODEL_FILE,), FORMAT: DIGESTED_FILES}

# The metadata fields the loader and the service read, with the JSON type each must have.
REQUIRED_METADATA: dict[str, tuple[type, str]] = {
    "version": (str, "a string"),
    "created_at": (str, "a string"),
    "libraries": (dict, "an object"),
    "data_fingerprint": (str, "a string"),
    "parameters": (dict, "an object"),
    "thresholds": (dict, "an object"),
    "metrics": (dict, "an object"),
}
THRESHOLD_NAMES = ("review", "reject")
# An entry of the model file is deflated when it, or in a larger one this many slices of
# this size spread over it, deflates to less than this share of its size.
_WORTH_DEFLATING = 0.8
_SAMPLE_SLICES = 16
_SLICE_BYTES = 1 << 16

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
    if directory.exists():
        raise FileExistsError(f"model version folder already exists: {directory}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    # A plain mkdir, not tempfile.mkdtemp (always 0700), so the folder gets the mode the
    # umask allows and a web or worker process running as another user can read it.
    # The leading dot keeps the unfinished folder out of `list_versions`.
    staging = directory.parent / f"{STAGING_PREFIX}{directory.name}.{secrets.token_hex(8)}"
    staging.mkdir()
    try:
        _write_model_file(pipeline, staging / MODEL_FILE)
        digests = {MODEL_FILE: file_digest(staging / MODEL_FILE)}
        full = {**metadata, "format": FORMAT, "model_file": MODEL_FILE, "model_sha256": digests[MODEL_FILE]}
        (staging / METADATA_FILE).write_text(
            json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        digests[METADATA_FILE] = file_digest(staging / METADATA_FILE)
        (staging / DIGEST_FILE).write_text(
            "".join(f"{digests[name]}  {name}\n" for name in DIGESTED_FILES), encoding="utf-8"
        )
        # On disk before the folder appears under its name: after a power cut, a version
        # that `ACTIVE` may already name must not be a folder of empty files.
        for path in (*(staging / name for name in (*DIGESTED_FILES, DIGEST_FILE)), staging):
            sync_to_disk(path)
        os.replace(staging, directory)
        sync_to_disk(directory.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_model_file(pipeline: Any, path: Path) -> None:
    """Save ``pipeline`` with skops at ``path``, each entry of the archive deflated only
    where that makes it smaller.

    The vocabularies, arrays of fixed-width strings, deflate twenty times over, and the
    out-of-core weights, mostly zeros, many times more; the token vectors (45 MB of floats)
    barely shrink, and inflating them was three quarters of loading a model and deflating
    them most of saving it.
    """
    import skops.io as sio  # deferred: skops is only needed when saving or loading

    # skops compresses a whole archive one way, so it is written plain and repacked: through a
    # file beside it rather than in memory, so that saving adds no copy of the model to the
    # process's peak memory.
    plain = path.with_name(f"{path.name}.stored")
    sio.dump(pipeline, plain, compression=zipfile.ZIP_STORED)
    try:
        with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
            for entry in source.infolist():
                data = source.read(entry)
                kind = zipfile.ZIP_DEFLATED if _deflates_well(data) else zipfile.ZIP_STORED
                target.writestr(entry, data, compress_type=kind, compresslevel=1)
    finally:
        plain.unlink()


def _deflates_well(data: bytes) -> bool:
    """Whether deflating ``data`` would make it clearly smaller: judged on all of it, or
    on slices spread across a large entry, whose first rows can be unlike the rest (the
    token vectors begin with the vocabulary's unused tokens, which shrink a third)."""
    sample = data
    if len(data) > _SAMPLE_SLICES * _SLICE_BYTES:
        step = len(data) // _SAMPLE_SLICES
        sample = b"".join(data[k * step : k * step + _SLICE_BYTES] for k in range(_SAMPLE_SLICES))
    return len(zlib.compress(sample, 1)) < _WORTH_DEFLATING * len(sample)


def sync_to_disk(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_metadata(directory: Path, held: Mapping[str, bytes] | None = None) -> dict[str, Any]:
    """Return a version's metadata, parsed from ``held[METADATA_FILE]`` when given.

    Raises:
        ModelNotFoundError: the folder or its metadata file is missing.
        ModelIntegrityError: the metadata is not a JSON object in UTF-8 (or is JSON
            Python cannot hold: nested too deeply, a number of thousands of digits).
    """
    path = directory / METADATA_FILE
    raw = (held or {}).get(METADATA_FILE)
    if raw is None and not path.is_file():
        raise ModelNotFoundError(f"no model version at {directory} (missing {METADATA_FILE})")
    try:
        text = raw.decode("utf-8") if raw is not None else path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelIntegrityError(f"{path} is not valid UTF-8: {exc}") from None
    try:
        metadata = parse_json(text)
    except ValueError as exc:
        raise ModelIntegrityError(f"{path}: {exc}") from None
    if not isinstance(metadata, dict):
        raise ModelIntegrityError(f"{path} does not hold a JSON object")
    return metadata


def _recorded_digests(path: Path) -> dict[str, str]:
    """Return {file name: SHA-256} from a file in `sha256sum` format."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ModelIntegrityError(f"{path} is not UTF-8 text; the file was damaged") from None
    recorded = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) != 2:
            raise ModelIntegrityError(f"{path} line {number} is not '<sha256>  <file name>'")
        recorded[fields[1]] = fields[0]
    return recorded


def verify_digest(directory: Path, metadata: dict[str, Any], held: Mapping[str, bytes] | None = None) -> None:
    """Check model.skops and metadata.json against model.sha256, and the metadata's model digest.

    A file whose bytes ``held`` gives is checked as those bytes, not read again.
    """
    held = held or {}
    digest_path = directory / DIGEST_FILE
    for path in (directory / MODEL_FILE, digest_path):
        if path.name not in held and not path.is_file():
            raise ModelIntegrityError(f"model version {directory.name} is incomplete: missing {path.name}")
    recorded = _recorded_digests(digest_path)
    strangers = sorted(set(recorded) - set(DIGESTED_FILES))
    if strangers:
        raise ModelIntegrityError(f"{digest_path} lists files no model version holds: {strangers}")
    # Every file the digests list, whatever the format says: the format is read from a
    # file they may cover, so it cannot be what decides which files are checked.
    for name in dict.fromkeys([*READABLE_FORMATS[metadata["format"]], *recorded]):
        raw = held.get(name)
        actual = hashlib.sha256(raw).hexdigest() if raw is not None else file_digest(directory / name)
        if recorded.get(name) != actual:
            raise ModelIntegrityError(
                f"{directory / name} does not match its recorded SHA-256 digest; the file was "
                "changed or damaged after it was written. Refusing to load it: train a new "
                "version or restore this one from a backup."
            )
    if metadata.get("model_sha256") != recorded[MODEL_FILE]:
        raise ModelIntegrityError(
            f"{directory / METADATA_FILE} records another SHA-256 digest for {MODEL_FILE} than {DIGEST_FILE}"
        )


def _is_probability(value: Any) -> bool:
    # bool is an int subclass, but `true` is no threshold; NaN fails the range test.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _metadata_problem(metadata: dict[str, Any]) -> str | None:
    """Return what is wrong with the metadata's shape, or None when nothing is."""
    for key, (kind, described) in REQUIRED_METADATA.items():
        if key not in metadata:
            return f"lacks {key!r}"
        if not isinstance(metadata[key], kind):
            return f"{key!r} is not {described}"
    if not all(isinstance(value, str) for value in metadata["libraries"].values()):
        return "'libraries' does not map library names to version strings"
    for head, limits in metadata["thresholds"].items():
        if not isinstance(limits, dict):
            return f"'thresholds' of {head!r} is not an object"
        for name in THRESHOLD_NAMES:
            if name not in limits:
                return f"'thresholds' of {head!r} lacks {name!r}"
            if not _is_probability(limits[name]):
                return f"threshold {name!r} of {head!r} is not a number from 0 to 1: {limits[name]!r}"
    return None


def verify_metadata(directory: Path, metadata: dict[str, Any]) -> None:
    """Refuse metadata lacking a field the loader or the service reads, or holding one of the wrong type."""
    problem = _metadata_problem(metadata)
    if problem is not None:
        raise ModelIntegrityError(
            f"{directory / METADATA_FILE} is malformed: {problem}. Refusing to load it: train a "
            "new version or restore this one from a backup."
        )


def verify_format(metadata: dict[str, Any]) -> None:
    """Refuse a model stored in a layout this code does not read."""
    stored = metadata.get("format")
    if not isinstance(stored, int) or isinstance(stored, bool) or stored not in READABLE_FORMATS:
        raise ModelVersionError(
            f"model {metadata.get('version', '?')} is stored in format {metadata.get('format', 'unknown')}, "
            f"but this code reads format {FORMAT}. Retrain it with `moderation train`."
        )


def verify_libraries(metadata: dict[str, Any]) -> None:
    """Refuse a model made with other versions of the libraries that define it.

    `metadata` must have passed `verify_metadata`.
    """
    recorded = metadata["libraries"]
    current = library_versions()
    for name in CHECKED_LIBRARIES:
        if recorded.get(name) != current[name]:
            raise ModelVersionError(
                f"model {metadata.get('version', '?')} was made with {name} "
                f"{recorded.get(name, 'unknown')}, but {name} {current[name]} is installed. "
                "Retrain it with `moderation train` (or install the recorded version)."
            )


def verify_artifact(directory: Path, held: Mapping[str, bytes] | None = None) -> dict[str, Any]:
    """Run every check `load_artifact` runs, without deserializing; return the metadata.

    The files whose bytes ``held`` gives are checked as those bytes (see `load_artifact`).
    """
    metadata = read_metadata(directory, held)
    # The format first: it says which files the digests cover, and a version written by
    # older code is told to retrain instead of failing somewhere later.
    verify_format(metadata)
    verify_digest(directory, metadata, held)
    verify_metadata(directory, metadata)
    verify_libraries(metadata)
    return metadata


def _read_if_there(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None  # the checks say what is missing


def load_artifact(directory: Path) -> tuple[Any, dict[str, Any]]:
    """Return (fitted pipeline, metadata) of a verified version folder.

    Raises:
        ModelNotFoundError, ModelIntegrityError, ModelVersionError.
    """
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    # What is checked is what is loaded: each file is read once, so one replaced between
    # the digest check and the load cannot slip in.
    files = (METADATA_FILE, MODEL_FILE)
    held = {name: raw for name in files if (raw := _read_if_there(directory / name)) is not None}
    metadata = verify_artifact(directory, held)
    try:
        pipeline = sio.loads(held[MODEL_FILE], trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException as exc:
        raise ModelIntegrityError(
            f"{directory / MODEL_FILE} contains types outside the trusted list and was not "
            f"loaded ({exc}). Retrain it with `moderation train`."
        ) from None
    except Exception as exc:  # noqa: BLE001 - skops fails in as many ways as an archive can be wrong
        # Digests recorded anew over a damaged or foreign file no longer catch it (not a zip,
        # no schema, a schema of another shape).
        raise ModelIntegrityError(
            f"{directory / MODEL_FILE} cannot be read as a model ({type(exc).__name__}: {exc}). "
            "Refusing to load it: train a new version or restore this one from a backup."
        ) from None
    return pipeline, metadata
