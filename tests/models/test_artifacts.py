"""Stored versions round-trip, and damaged or foreign ones are refused with clear errors."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from models import artifacts
from models.artifacts import (
    DIGEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    TRUSTED_TYPES,
    _deflates_well,
    file_digest,
    library_versions,
    load_artifact,
    verify_artifact,
    write_artifact,
)
from models.classifier import Classifier
from models.errors import ModelIntegrityError, ModelNotFoundError, ModelVersionError
from models.examples import Example
from models.records import CommentText
from models.registry import active_version, load_active, load_version, save_version
from models.training import TrainingResult
from tests.models.artifact_files import replace_model_file, rewrite_metadata

COMMENTS = [
    CommentText("Buy cheap viagra at http://x.ru"),
    CommentText("You idiot"),
    CommentText("Nice article"),
]


def _active_folder(model_dir: Path) -> Path:
    return model_dir / str(active_version(model_dir))


def test_round_trip(tmp_path: Path, make_result: Callable[..., TrainingResult]) -> None:
    result = make_result()
    expected = result.classifier.score(COMMENTS)
    version = save_version(tmp_path, result)
    loaded = load_version(tmp_path, version)
    assert loaded.version == version == result.classifier.version
    assert loaded.heads == result.classifier.heads
    assert loaded.thresholds == result.thresholds
    assert loaded.score(COMMENTS) == expected


def test_metadata_records_what_was_trained(
    tmp_path: Path, make_result: Callable[..., TrainingResult]
) -> None:
    result = make_result()
    version = save_version(tmp_path, result)
    metadata = json.loads((tmp_path / version / METADATA_FILE).read_text())
    assert metadata["version"] == version
    assert metadata["data_fingerprint"] == result.data_fingerprint
    assert metadata["libraries"] == library_versions()
    assert set(metadata["libraries"]) >= {"python", "scikit-learn", "skops", "numpy", "scipy"}
    assert metadata["parameters"]["seed"] == 0
    assert metadata["thresholds"] == result.thresholds
    assert metadata["metrics"]["spam"]["roc_auc"] == result.metrics["spam"]["roc_auc"]
    digest_lines = (tmp_path / version / DIGEST_FILE).read_text().splitlines()
    metadata_digest = file_digest(tmp_path / version / METADATA_FILE)
    assert digest_lines == [
        f"{metadata['model_sha256']}  {MODEL_FILE}",
        f"{metadata_digest}  {METADATA_FILE}",
    ]
    assert metadata["created_at"].endswith("+00:00")


def test_out_of_core_round_trip(tmp_path: Path, make_result: Callable[..., TrainingResult]) -> None:
    result = make_result(out_of_core=True)
    version = save_version(tmp_path, result)
    assert load_version(tmp_path, version).score(COMMENTS) == result.classifier.score(COMMENTS)


def test_tampered_model_is_refused(model_dir: Path) -> None:
    path = _active_folder(model_dir) / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match its recorded SHA-256"):
        load_active(model_dir)


def test_a_model_file_replaced_after_its_check_is_not_what_loads(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _active_folder(model_dir)
    expected = [(score.spam, score.abuse) for score in load_active(model_dir).score(COMMENTS)]
    check = verify_artifact

    def checked_then_replaced(directory: Path, *args: Any) -> dict[str, Any]:
        metadata = check(directory, *args)
        (directory / MODEL_FILE).write_bytes(b"not the file whose digest was checked")
        return metadata

    monkeypatch.setattr("models.artifacts.verify_artifact", checked_then_replaced)
    pipeline, metadata = load_artifact(folder)
    loaded = Classifier(pipeline, version=metadata["version"], thresholds=metadata["thresholds"])
    assert [(score.spam, score.abuse) for score in loaded.score(COMMENTS)] == expected


def test_tampered_digest_file_is_refused(model_dir: Path) -> None:
    path = _active_folder(model_dir) / DIGEST_FILE
    path.write_text("0" * 64 + f"  {MODEL_FILE}\n")
    with pytest.raises(ModelIntegrityError, match="does not match its recorded SHA-256"):
        load_active(model_dir)


def test_metadata_naming_another_model_digest_is_refused(model_dir: Path) -> None:
    # Both files match the digest file; the metadata itself records another model.
    folder = _active_folder(model_dir)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    rewrite_metadata(folder, {**metadata, "model_sha256": "0" * 64})
    with pytest.raises(ModelIntegrityError, match="records another SHA-256 digest"):
        load_active(model_dir)


def test_missing_model_file_is_refused(model_dir: Path) -> None:
    (_active_folder(model_dir) / MODEL_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="incomplete"):
        load_active(model_dir)


def test_edited_metadata_is_refused(model_dir: Path) -> None:
    # A reject threshold of 0 would reject every comment: metadata.json is digested too.
    path = _active_folder(model_dir) / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["thresholds"]["spam"]["reject"] = 0.0
    path.write_text(json.dumps(metadata))
    with pytest.raises(ModelIntegrityError, match=f"{METADATA_FILE} does not match its recorded SHA-256"):
        verify_artifact(_active_folder(model_dir))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"libraries": "x"}, "'libraries' is not an object"),
        ({"libraries": {"numpy": 2}}, "'libraries' does not map library names to version strings"),
        ({"thresholds": None}, "lacks 'thresholds'"),
        ({"version": 7}, "'version' is not a string"),
        ({"thresholds": {"spam": 0.5}}, "'thresholds' of 'spam' is not an object"),
        ({"thresholds": {"spam": {"review": 0.5}}}, "'thresholds' of 'spam' lacks 'reject'"),
        (
            {"thresholds": {"spam": {"review": 0.5, "reject": 2}}},
            "'reject' of 'spam' is not a number from 0 to 1",
        ),
        (
            {"thresholds": {"spam": {"review": True, "reject": 1}}},
            "'review' of 'spam' is not a number from 0 to 1",
        ),
    ],
)
def test_malformed_metadata_is_refused(model_dir: Path, change: dict[str, Any], problem: str) -> None:
    # Digested correctly, so only the shape check can refuse it; a None value removes the key.
    folder = _active_folder(model_dir)
    metadata = {**json.loads((folder / METADATA_FILE).read_text()), **change}
    rewrite_metadata(folder, {key: value for key, value in metadata.items() if value is not None})
    with pytest.raises(ModelIntegrityError) as error:
        load_active(model_dir)
    assert str(folder / METADATA_FILE) in str(error.value) and problem in str(error.value)


def test_metadata_that_is_not_text_is_refused(model_dir: Path) -> None:
    (_active_folder(model_dir) / METADATA_FILE).write_bytes(b'{"version": "\xff"}')
    with pytest.raises(ModelIntegrityError, match=METADATA_FILE):
        load_active(model_dir)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (it nests arrays or objects too deeply)"),
        (b'{"examples": ' + b"1" * 5000 + b"}", "holds a number longer than"),
    ],
    ids=["deep", "long-number"],
)
def test_metadata_python_cannot_hold_is_refused_as_unreadable(
    model_dir: Path, content: bytes, problem: str
) -> None:
    (_active_folder(model_dir) / METADATA_FILE).write_bytes(content)
    with pytest.raises(ModelIntegrityError) as error:
        load_active(model_dir)
    assert str(_active_folder(model_dir) / METADATA_FILE) in str(error.value) and problem in str(error.value)


@pytest.mark.parametrize("content", [b"\xff\xfe" + b"0" * 64, b"just one field\n"])
def test_malformed_digest_file_is_refused(model_dir: Path, content: bytes) -> None:
    (_active_folder(model_dir) / DIGEST_FILE).write_bytes(content)
    with pytest.raises(ModelIntegrityError, match=DIGEST_FILE):
        load_active(model_dir)


def test_a_model_file_deflates_only_what_shrinks_and_one_all_deflated_still_loads(model_dir: Path) -> None:
    folder = _active_folder(model_dir)
    before = load_active(model_dir).score(COMMENTS)
    path = folder / MODEL_FILE
    with zipfile.ZipFile(path) as written:
        entries = written.infolist()
        kinds = {entry.filename: entry.compress_type for entry in entries}
        contents = [(entry.filename, written.read(entry)) for entry in entries]
    # The token vectors, the largest entry, are floats that barely shrink; the schema is text.
    assert kinds[max(entries, key=lambda entry: entry.file_size).filename] == zipfile.ZIP_STORED
    assert kinds["schema.json"] == zipfile.ZIP_DEFLATED
    # Earlier versions deflated every entry; a site's retrained models must still load.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as deflated:
        for name, data in contents:
            deflated.writestr(name, data)
    rewrite_metadata(
        folder, {**json.loads((folder / METADATA_FILE).read_text()), "model_sha256": file_digest(path)}
    )
    assert load_active(model_dir).score(COMMENTS) == before


def test_an_entry_is_judged_on_slices_across_all_of_it() -> None:
    noise = np.random.default_rng(0).bytes(14 << 20)
    assert not _deflates_well(bytes(2 << 20) + noise)  # its first two mebibytes are zeros
    assert _deflates_well((b"word" + bytes(12)) * (1 << 20))  # fixed-width strings, 16 MiB
    assert _deflates_well(b"vocabulary " * 100)
    assert not _deflates_well(noise[:1000])
    assert not _deflates_well(b"")


def _as_format_3(folder: Path, **changes: Any) -> None:
    # Format 3 recorded only the model's digest.
    metadata = {**json.loads((folder / METADATA_FILE).read_text()), "format": 3, **changes}
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    (folder / DIGEST_FILE).write_text(f"{metadata['model_sha256']}  {MODEL_FILE}\n")


def test_version_written_before_metadata_was_digested_still_loads(model_dir: Path) -> None:
    _as_format_3(_active_folder(model_dir))
    assert load_active(model_dir).score_one(CommentText("Thanks for the article")).spam is not None


def test_metadata_edited_to_an_older_format_is_still_checked_by_its_digest(model_dir: Path) -> None:
    # The format is read from the file the digests cover: it cannot turn their check off.
    path = _active_folder(model_dir) / METADATA_FILE
    metadata = {**json.loads(path.read_text()), "format": 3}
    metadata["thresholds"]["spam"]["reject"] = 0.0
    path.write_text(json.dumps(metadata))
    with pytest.raises(ModelIntegrityError, match=f"{METADATA_FILE} does not match its recorded SHA-256"):
        load_active(model_dir)


def test_a_digest_file_naming_other_files_is_refused(model_dir: Path) -> None:
    folder = _active_folder(model_dir)
    with (folder / DIGEST_FILE).open("a") as digests:
        digests.write(f"{'0' * 64}  ../../etc/passwd\n")
    with pytest.raises(ModelIntegrityError, match=r"files no model version holds: \['../../etc/passwd'\]"):
        load_active(model_dir)


@pytest.mark.parametrize("stored", [[4], "4", True, None])
def test_a_format_that_is_no_number_is_refused_as_such(model_dir: Path, stored: Any) -> None:
    folder = _active_folder(model_dir)
    rewrite_metadata(folder, {**json.loads((folder / METADATA_FILE).read_text()), "format": stored})
    with pytest.raises(ModelVersionError, match="stored in format"):
        load_active(model_dir)


def test_format_3_metadata_is_still_checked_for_shape(model_dir: Path) -> None:
    _as_format_3(_active_folder(model_dir), thresholds={"spam": {"review": 0.5, "reject": "never"}})
    with pytest.raises(ModelIntegrityError, match="threshold 'reject' of 'spam' is not a number"):
        load_active(model_dir)


def test_other_library_version_is_refused(model_dir: Path) -> None:
    folder = _active_folder(model_dir)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    installed = metadata["libraries"]["scikit-learn"]
    metadata["libraries"]["scikit-learn"] = "0.24.2"
    rewrite_metadata(folder, metadata)
    with pytest.raises(ModelVersionError) as error:
        load_active(model_dir)
    assert "scikit-learn 0.24.2" in str(error.value) and f"scikit-learn {installed}" in str(error.value)


def test_other_installed_version_is_refused(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import models.artifacts

    versions = {**library_versions(), "numpy": "1.0.0"}
    monkeypatch.setattr(models.artifacts, "library_versions", lambda: versions)
    with pytest.raises(ModelVersionError, match=r"numpy 1\.0\.0 is installed"):
        load_active(model_dir)


def test_other_storage_format_is_refused(model_dir: Path) -> None:
    path = _active_folder(model_dir) / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["format"] = 1
    path.write_text(json.dumps(metadata))
    with pytest.raises(ModelVersionError, match=r"stored in format 1, but this code reads format \d"):
        load_active(model_dir)


def test_missing_version_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        load_version(tmp_path, "20000101T000000Z-deadbeef")


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    # A correctly digested file that names a type outside the trusted list.
    pipeline = Pipeline([("step", FunctionTransformer(os.getcwd))])
    metadata = {
        "version": "v",
        "created_at": "2026-01-01T00:00:00+00:00",
        "libraries": library_versions(),
        "data_fingerprint": "0" * 64,
        "parameters": {},
        "thresholds": {},
        "metrics": {},
    }
    write_artifact(tmp_path / "v", pipeline, metadata)
    with pytest.raises(ModelIntegrityError, match="outside the trusted list"):
        load_artifact(tmp_path / "v")


def _archive(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip archive", _archive({"other.txt": b"x"}), _archive({"schema.json": b"[]"})],
    ids=["empty", "not-a-zip", "no-schema", "schema-not-an-object"],
)
def test_a_digested_model_file_skops_cannot_read_is_refused(model_dir: Path, content: bytes) -> None:
    # Its digests recorded anew (by hand, to "repair" a mismatch), damage is no longer caught by them.
    folder = _active_folder(model_dir)
    replace_model_file(folder, content)
    with pytest.raises(ModelIntegrityError, match=f"{folder / MODEL_FILE} cannot be read as a model"):
        load_active(model_dir)


def test_trusted_list_is_explicit() -> None:
    assert all(name.startswith("models.") for name in TRUSTED_TYPES)


def test_write_refuses_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    with pytest.raises(FileExistsError):
        write_artifact(tmp_path / "v", Pipeline([("s", FunctionTransformer())]), {})
    assert [p.name for p in tmp_path.iterdir()] == ["v"]  # no staging folder left behind


def test_a_version_appears_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline([("s", FunctionTransformer())])
    renamed: list[set[str]] = []
    replace = os.replace

    def watched_replace(source: Path, target: Path) -> None:
        assert not Path(target).exists()
        renamed.append({path.name for path in Path(source).iterdir()})
        replace(source, target)

    monkeypatch.setattr(artifacts.os, "replace", watched_replace)
    write_artifact(tmp_path / "whole", pipeline, {})
    assert renamed == [{MODEL_FILE, METADATA_FILE, DIGEST_FILE}]  # complete before it has its name

    def cut_short(*_args: Any) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(artifacts, "sync_to_disk", cut_short)
    with pytest.raises(OSError, match="no space"):
        write_artifact(tmp_path / "cut", pipeline, {})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["whole"]  # no folder, no staging left


def test_scores_survive_reload_exactly(tmp_path: Path, make_result: Callable[..., TrainingResult]) -> None:
    result = make_result()
    loaded = load_version(tmp_path, save_version(tmp_path, result))
    before = result.classifier.probabilities(COMMENTS)
    after = loaded.probabilities(COMMENTS)
    for head in before:
        np.testing.assert_array_equal(before[head], after[head])


def test_a_model_trained_on_text_with_control_characters_scores_after_reload(
    tmp_path: Path, make_result: Callable[..., TrainingResult], tiny_examples: list[Example]
) -> None:
    # NumPy's strings, which store the vocabulary, drop a trailing NUL: an n-gram ending
    # in one came back as another term, and the loaded model had fewer columns.
    marked = [replace(example, text=example.text + "\x00\x07") for example in tiny_examples]
    result = make_result(marked)
    loaded = load_version(tmp_path, save_version(tmp_path, result))
    comments = [CommentText("free money\x00"), *COMMENTS]
    before = result.classifier.probabilities(comments)
    for head, scores in loaded.probabilities(comments).items():
        np.testing.assert_array_equal(scores, before[head])
