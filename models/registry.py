"""The model registry: version folders under one directory, one of them active.

    <model_dir>/
        20261128T031500Z-1a2b3c4d/   a version (see `models.artifacts`)
        ACTIVE                       the active version's name
        HISTORY                      previously active versions, oldest first
        SHADOW                       the version scoring beside the active one, if any

`ACTIVE`, `HISTORY` and `SHADOW` are replaced atomically (temporary file + `os.replace`),
so a worker reading `ACTIVE` sees either the old or the new name, never half of one.
Changes, and saving a version, take an exclusive lock on `<model_dir>/.lock`, so two
processes activating at once cannot interleave their history updates, two versions
saved at once get names of their own, and an unfinished version's folder found while
the lock is held is one a killed save left behind.

Folders and files get the modes the umask allows, as with a plain mkdir or open, so
training or activating as one user does not lock out a service running as another.

The shadow version scores live comments beside the active one without acting: workers
record what it would have decided, so a candidate can be watched on real traffic first.
`set_shadow` refuses the active version, and activating a version (by hand, by a
retrain, or by a rollback) ends the shadow mode of that version and of any older one: a
candidate the version now live has overtaken would be compared with a model it was not
made to replace.

A version name is the name of a folder in `<model_dir>` that does not start with a dot
and holds no whitespace (`HISTORY` is whitespace-separated); every function taking a
version accepts only such a name, never a path.
"""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.artifacts import (
    METADATA_FILE,
    STAGING_PREFIX,
    library_versions,
    load_artifact,
    read_metadata,
    verify_artifact,
    write_artifact,
)
from models.atomic_files import replacing
from models.classifier import Classifier
from models.errors import ModelError, ModelIntegrityError, ModelNotFoundError
from models.training import TrainingResult, make_version

ACTIVE_FILE = "ACTIVE"
HISTORY_FILE = "HISTORY"
SHADOW_FILE = "SHADOW"
LOCK_FILE = ".lock"
_TRAIN_HINT = "train one with `moderation train --data FILE --out DIR` (or run `moderation init`)"
# What to do about each pointer file found damaged.
_REPAIRS = {
    ACTIVE_FILE: "Remove it and activate a version (`moderation models list`, then "
    "`moderation models activate VERSION`).",
    HISTORY_FILE: "Remove it: rollback then forgets the versions that were active before the current one.",
    SHADOW_FILE: "Clear shadow mode (`moderation shadow clear`), then set a version again if one is wanted.",
}


def _refuse_folder(path: Path) -> None:
    """Raise ``ModelIntegrityError`` when the pointer at ``path`` is there but is no file."""
    if path.exists() and not path.is_file():
        # Made by hand; the repairs above would trip over it too.
        raise ModelIntegrityError(f"{path} is not a file: remove it, then try again")


def _write_atomically(path: Path, text: str) -> None:
    # Refused before anything is written: os.replace would fail naming the temporary.
    _refuse_folder(path)
    with replacing(path, sync=True) as out:
        out.write(text)


@contextmanager
def _locked(model_dir: Path, *, create: bool = False) -> Iterator[None]:
    """Hold the registry's lock for the block; only a save (``create``) makes the folder."""
    if create:
        model_dir.mkdir(parents=True, exist_ok=True)
    elif not model_dir.is_dir():
        raise ModelNotFoundError(f"no model folder at {model_dir}")
    # A registry nested in a version's folder would be one `models list` refuses to show.
    refuse_version_folder(model_dir)
    with (model_dir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# A name `save_version` gives: `make_version`'s, then `-2`, `-3`, ... for saves of the same
# data within the same second.
_SAVED_NAME = re.compile(r"(\d{8}T\d{6}Z-[0-9a-f]{8})(?:-(\d+))?")


def version_order(version: str) -> tuple[str, int]:
    """Sort key that puts versions oldest first: by creation time, then by the suffix of a
    save within the same second as a number (`-10` after `-9`, which text puts before)."""
    saved = _SAVED_NAME.fullmatch(version)
    if saved is None:  # a folder named by hand: by its name
        return version, 0
    return saved[1], int(saved[2] or 1)


def list_versions(model_dir: str | Path) -> list[str]:
    """Return the version names in `model_dir`, oldest first."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    return sorted(
        (
            p.name
            for p in root.iterdir()
            if p.is_dir()
            and not p.name.startswith(".")
            and not any(c.isspace() for c in p.name)
            and p.name not in _REPAIRS  # a pointer file's name is never a version's
        ),
        key=version_order,
    )


def version_path(model_dir: str | Path, version: str) -> Path:
    """Return the folder of `version`, which must be one of `list_versions(model_dir)`.

    Accepting only a listed name keeps a name given on the command line or written into
    `ACTIVE` by hand from reaching a folder outside `model_dir` (`../x`, `/abs/x`).

    Raises:
        ModelNotFoundError: `version` is not a version in `model_dir`.
    """
    root = Path(model_dir)
    if version not in list_versions(root):
        raise ModelNotFoundError(f"no model version {version!r} in {root}")
    return root / version


def _read_pointer(path: Path) -> str:
    """The text of ``ACTIVE``, ``HISTORY`` or ``SHADOW`` at ``path`` ("" when there is none).

    Raises:
        ModelIntegrityError: the file is not UTF-8 text.
    """
    _refuse_folder(path)
    if not path.exists():
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        # Written whole, in ASCII, by this module: other bytes mean damage or a hand edit,
        # to be named rather than shown as a traceback.
        raise ModelIntegrityError(
            f"{path} is not UTF-8 text; the file was damaged. {_REPAIRS[path.name]}"
        ) from None


def active_version(model_dir: str | Path) -> str | None:
    """Return the active version's name, or None when none is active.

    Raises:
        ModelIntegrityError: ``ACTIVE`` is damaged.
    """
    return _read_pointer(Path(model_dir) / ACTIVE_FILE).strip() or None


def _history(model_dir: Path) -> list[str]:
    return _read_pointer(model_dir / HISTORY_FILE).split()


def verify_version(model_dir: str | Path, version: str) -> dict[str, Any]:
    """Run every check loading ``version`` runs, without deserializing it; its metadata.

    Raises:
        ModelNotFoundError, ModelIntegrityError, ModelVersionError.
    """
    metadata = verify_artifact(version_path(model_dir, version))
    _check_name(Path(model_dir), version, metadata)
    return metadata


def _check_name(root: Path, version: str, metadata: dict[str, Any]) -> None:
    # Scores, verdicts and the workers' reload checks all go by the version recorded inside.
    if metadata["version"] != version:
        raise ModelIntegrityError(
            f"the folder {root / version} holds model version {metadata['version']!r}: a version's "
            "folder must keep the name it was saved under. Rename it back, or train a new version."
        )


def _activate(root: Path, version: str) -> None:
    """Make ``version`` active; the caller holds the lock."""
    # Under the lock, so a version removed by another process meanwhile cannot become active;
    # loaded, not only checked, as every worker is about to load it: a model file whose
    # digests were recorded over damage, or holding a type outside the trusted list, is
    # refused here rather than by each worker.
    load_version(root, version)
    current, shadow = active_version(root), shadow_version(root)  # each refused if damaged, before any write
    if current != version:
        if current is not None:
            _write_atomically(root / HISTORY_FILE, "\n".join([*_history(root), current]) + "\n")
        _write_atomically(root / ACTIVE_FILE, version + "\n")
    _leave_shadow_mode(root, version, shadow)


def _leave_shadow_mode(root: Path, version: str, shadow: str | None) -> None:
    """End shadow mode if it holds (``shadow``) ``version``, which is now active, or a version
    older than it; a newer candidate stays, as it is still one for replacing ``version``."""
    # The active model in shadow mode too would be scored twice and report nothing; an
    # older candidate was made to replace a model no longer live.
    if shadow is not None and version_order(shadow) <= version_order(version):
        (root / SHADOW_FILE).unlink()


def activate(model_dir: str | Path, version: str) -> None:
    """Make `version` the active one, after loading it here; shadow mode
    ends if it holds `version` or an older version.

    Raises:
        ModelNotFoundError, ModelIntegrityError, ModelVersionError.
    """
    root = Path(model_dir)
    with _locked(root):
        _activate(root, version)


def activate_in_place_of(model_dir: str | Path, version: str, replaced: str | None) -> bool:
    """Make `version` the active one if `replaced` is still the active one (None: if no
    version is active); True when it did.

    One check under the lock: a version judged against the active model does not go live
    over one activated meanwhile (by a rollback, or another training), which it was never
    compared with; of two first trainings at once, one is active, and the other is neither
    active nor in the history.
    """
    root = Path(model_dir)
    with _locked(root):
        if active_version(root) != replaced:
            return False
        _activate(root, version)
        return True


def activate_if_none(model_dir: str | Path, version: str) -> bool:
    """Make `version` the active one unless a version is active already; True when it did.

    An ``ACTIVE`` naming a version whose folder was deleted counts as none: nothing could
    be served from it, and the new version would otherwise wait for an `activate` by hand.
    """
    root = Path(model_dir)
    with _locked(root):
        if active_version(root) in list_versions(root):
            return False
        _activate(root, version)
        return True


def rollback(model_dir: str | Path) -> str:
    """Re-activate the previously active version and return its name.

    Versions deleted since they were active are skipped. Shadow mode ends as `activate`
    ends it: if it holds that version or an older one.

    Raises:
        ModelNotFoundError: there is no earlier version to go back to.
        ModelIntegrityError, ModelVersionError: the earlier version cannot be loaded here.
    """
    root = Path(model_dir)
    with _locked(root):
        history, current, versions = _history(root), active_version(root), list_versions(root)
        shadow = shadow_version(root)  # refused if damaged, before any write
        while history:
            candidate = history.pop()
            if candidate != current and candidate in versions:
                load_version(root, candidate)  # as `_activate` does
                # ACTIVE first: a run stopped between the two writes (a full disk) must not
                # have dropped the candidate from HISTORY while leaving it inactive; left in
                # HISTORY as the active one, it is skipped by the next rollback.
                _write_atomically(root / ACTIVE_FILE, candidate + "\n")
                _write_atomically(root / HISTORY_FILE, "".join(f"{v}\n" for v in history))
                _leave_shadow_mode(root, candidate, shadow)
                return candidate
    raise ModelNotFoundError(f"no earlier active version to roll back to in {root}")


def _metadata(result: TrainingResult, version: str) -> dict[str, Any]:
    return {
        "version": version,
        "created_at": result.created_at.isoformat(),
        "saved_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "libraries": library_versions(),
        "data_fingerprint": result.data_fingerprint,
        "examples": result.examples,
        "parameters": result.parameters,
        "heads": list(result.classifier.heads),
        "thresholds": result.thresholds,
        "metrics": result.metrics,
        "notes": result.notes,
    }


def save_version(model_dir: str | Path, result: TrainingResult) -> str:
    """Write a trained result as a new version folder and return the version name.

    The version is the one `train` assigned (creation time and data fingerprint); if a
    folder of that name already exists (the same data trained twice within a second),
    a suffix `-2`, `-3`, ... is added. The new version is not activated: see `activate`.
    """
    root = Path(model_dir)
    base = make_version(result.created_at, result.data_fingerprint)
    with _locked(root, create=True):
        _remove_unfinished(root)
        version, suffix = base, 1
        while (root / version).exists():
            suffix += 1
            version = f"{base}-{suffix}"
        metadata = _metadata(result, version)
        write_artifact(root / version, result.classifier.pipeline, metadata)
    result.classifier.version = version
    result.classifier.metadata = metadata
    return version


def prune(model_dir: str | Path, keep: int, *, dry_run: bool = False) -> list[str]:
    """Remove every version but the ``keep`` newest, the active one and the shadow one;
    return those removed (with ``dry_run``, those that would be), oldest first.

    A rollback skips the versions removed (as any deleted version). Each goes in one
    rename, so a run stopped meanwhile leaves every version whole or gone: what a rename
    hid and the stop left behind goes with the next save's leftovers.

    Raises:
        ValueError: ``keep`` is less than 1 (no version would be kept but the active one).
        ModelIntegrityError: ``ACTIVE`` or ``SHADOW`` is damaged; nothing is removed.
    """
    if keep < 1:
        raise ValueError(f"keep at least one version, not {keep}")
    root = Path(model_dir)
    with _locked(root):
        versions = list_versions(root)
        spared = {*versions[-keep:], active_version(root), shadow_version(root)}
        removed = [version for version in versions if version not in spared]
        if not dry_run:
            for version in removed:
                hidden = root / f"{STAGING_PREFIX}{version}"
                (root / version).rename(hidden)
                shutil.rmtree(hidden)
    return removed


def _remove_unfinished(root: Path) -> None:
    """Remove the folders of saves that were killed before they finished; the caller
    holds the lock, so no save is under way."""
    for path in root.glob(f"{STAGING_PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def shadow_version(model_dir: str | Path) -> str | None:
    """The version in shadow mode, or None.

    Raises:
        ModelIntegrityError: ``SHADOW`` is damaged.
    """
    return _read_pointer(Path(model_dir) / SHADOW_FILE).strip() or None


def set_shadow(model_dir: str | Path, version: str) -> None:
    """Put ``version`` in shadow mode, after checking it can be loaded here.

    Raises:
        ModelNotFoundError: ``version`` is not a version in ``model_dir``.
        ModelIntegrityError, ModelVersionError: ``version`` cannot be loaded here.
        ModelError: ``version`` is the active version, which shadow mode scores beside.
    """
    root = Path(model_dir)
    with _locked(root):
        if version == active_version(root):
            raise ModelError(f"{version} is the active version: shadow mode scores another version beside it")
        # Loaded as `activate` loads it: a version the workers cannot load would score
        # nothing, while each of them tried it again at every check.
        load_version(root, version)
        _write_atomically(root / SHADOW_FILE, version + "\n")


def shadow_candidate(model_dir: str | Path, version: str) -> bool:
    """Put a retrained candidate ``version`` in shadow mode unless the active version is
    itself or newer (activated by hand, or by another run, while it was trained: a
    candidate it has overtaken would be compared with a model it was not made to
    replace); return whether it was."""
    root = Path(model_dir)
    with _locked(root):
        version_path(root, version)  # raises for an unknown version
        active = active_version(root)
        if active is not None and version_order(version) <= version_order(active):
            return False
        _write_atomically(root / SHADOW_FILE, version + "\n")
        return True


def clear_shadow(model_dir: str | Path) -> None:
    """Stop shadow scoring (nothing to do without a model folder)."""
    root = Path(model_dir)
    if root.is_dir():
        with _locked(root):
            _refuse_folder(root / SHADOW_FILE)
            (root / SHADOW_FILE).unlink(missing_ok=True)


def version_metadata(model_dir: str | Path, version: str) -> dict[str, Any]:
    """Return the metadata of one version without loading its model."""
    return read_metadata(version_path(model_dir, version))


def load_version(model_dir: str | Path, version: str) -> Classifier:
    """Load one version as a `Classifier` (verified; see `models.artifacts`)."""
    pipeline, metadata = load_artifact(version_path(model_dir, version))
    _check_name(Path(model_dir), version, metadata)
    return Classifier(
        pipeline, version=metadata["version"], thresholds=metadata["thresholds"], metadata=metadata
    )


def check_registry_folder(model_dir: str | Path) -> None:
    """Raise ``ModelNotFoundError`` unless ``model_dir`` is a folder that can hold versions:
    a mistyped path, or the folder of one version given for the folder that holds them,
    must not read as a registry with no versions yet."""
    root = Path(model_dir)
    refuse_version_folder(root, f", with --version {root.name} to pick this one")
    if not root.is_dir():
        raise ModelNotFoundError(f"no model folder at {root}: {_TRAIN_HINT}")


def refuse_version_folder(model_dir: str | Path, hint: str = "") -> None:
    """Raise ``ModelNotFoundError`` when ``model_dir`` is the folder of one version, not
    the folder that holds them; ``hint`` ends the message."""
    root = Path(model_dir)
    if (root / METADATA_FILE).is_file():
        raise ModelNotFoundError(
            f"{root} is the folder of one model version; give the folder that holds the "
            f"versions ({root.parent}){hint}"
        )


def load_active(model_dir: str | Path) -> Classifier:
    """Load the active version.

    Raises:
        ModelNotFoundError: no version is active in `model_dir`, with a hint to train one.
        ModelIntegrityError, ModelVersionError: the active version cannot be trusted here.
    """
    root = Path(model_dir)
    version = active_version(root)
    if version is None:
        check_registry_folder(root)
        versions = list_versions(root)
        if versions:
            # As after `train --no-activate`, or a damaged ACTIVE removed: training again adds nothing.
            raise ModelNotFoundError(
                f"no active model in {root}: activate one of its {len(versions)} versions "
                "(`moderation models list`, then `moderation models activate VERSION`)"
            )
        raise ModelNotFoundError(f"no active model in {root}: {_TRAIN_HINT}")
    if version not in list_versions(root):
        raise ModelNotFoundError(
            f"{root / ACTIVE_FILE} names version {version!r}, which is not in {root}: activate "
            "another (`moderation models list`, then `moderation models activate VERSION`)"
        )
    return load_version(root, version)
