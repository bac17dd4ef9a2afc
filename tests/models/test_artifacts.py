"""Stored versions round-trip, and damaged or foreign ones are refused with clear errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from models.artifacts import (
    DIGEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    TRUSTED_TYPES,
    library_versions,
    load_artifact,
    write_artifact,
)
from models.errors import ModelIntegrityError, ModelNotFoundError, ModelVersionError
from models.records import CommentText
from models.registry import active_version, load_active, load_version, save_version
from models.training import TrainingResult

COMMENTS = [
    CommentText("Buy cheap viagra at http://x.ru"),
    CommentText("You idiot"),
    CommentText("Nice article"),
]


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
    digest_line = (tmp_path / version / DIGEST_FILE).read_text()
    assert digest_line == f"{metadata['model_sha256']}  {MODEL_FILE}\n"
    assert metadata["created_at"].endswith("+00:00")


def test_out_of_core_round_trip(tmp_path: Path, make_result: Callable[..., TrainingResult]) -> None:
    result = make_result(out_of_core=True)
    version = save_version(tmp_path, result)
    assert load_version(tmp_path, version).score(COMMENTS) == result.classifier.score(COMMENTS)


def test_tampered_model_is_refused(model_dir: Path) -> None:
    path = model_dir / str(active_version(model_dir)) / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match its recorded SHA-256"):
        load_active(model_dir)


def test_tampered_digest_file_is_refused(model_dir: Path) -> None:
    path = model_dir / str(active_version(model_dir)) / DIGEST_FILE
    path.write_text("0" * 64 + f"  {MODEL_FILE}\n")
    with pytest.raises(ModelIntegrityError):
        load_active(model_dir)


def test_missing_model_file_is_refused(model_dir: Path) -> None:
    (model_dir / str(active_version(model_dir)) / MODEL_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="incomplete"):
        load_active(model_dir)


def test_other_library_version_is_refused(model_dir: Path) -> None:
    path = model_dir / str(active_version(model_dir)) / METADATA_FILE
    metadata = json.loads(path.read_text())
    installed = metadata["libraries"]["scikit-learn"]
    metadata["libraries"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(metadata))
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
    path = model_dir / str(active_version(model_dir)) / METADATA_FILE
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
    write_artifact(tmp_path / "v", pipeline, {"version": "v", "libraries": library_versions()})
    with pytest.raises(ModelIntegrityError, match="outside the trusted list"):
        load_artifact(tmp_path / "v")


def test_trusted_list_is_explicit() -> None:
    assert all(name.startswith("models.") for name in TRUSTED_TYPES)


def test_write_refuses_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    with pytest.raises(FileExistsError):
        write_artifact(tmp_path / "v", Pipeline([("s", FunctionTransformer())]), {})
    assert [p.name for p in tmp_path.iterdir()] == ["v"]  # no staging folder left behind


def test_scores_survive_reload_exactly(tmp_path: Path, make_result: Callable[..., TrainingResult]) -> None:
    result = make_result()
    loaded = load_version(tmp_path, save_version(tmp_path, result))
    before = result.classifier.probabilities(COMMENTS)
    after = loaded.probabilities(COMMENTS)
    for head in before:
        np.testing.assert_array_equal(before[head], after[head])
