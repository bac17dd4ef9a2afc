"""The worker's models follow the registry, unless pinned for a pool's parent to replace them."""

from __future__ import annotations

import errno
import gc
import shutil
import weakref
from pathlib import Path

import pytest

from models.classifier import Classifier
from models.registry import ACTIVE_FILE, SHADOW_FILE, activate, clear_shadow, save_version, set_shadow
from models.seeding import seed_examples
from models.training import train
from worker.model_holder import ModelHolder


@pytest.fixture(scope="module")
def with_second_version(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The seed registry with a second version, not yet active (read-only: ``registry`` copies it)."""
    root = tmp_path_factory.mktemp("registry") / "models"
    shutil.copytree(model_dir, root)
    return root, save_version(root, train(seed_examples(), seed=1))


@pytest.fixture
def registry(with_second_version: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A copy of the seed registry, and a second version in it, not yet active."""
    template, newer = with_second_version
    shutil.copytree(template, tmp_path / "models")
    return tmp_path / "models", newer


def test_a_holder_follows_a_newly_activated_version(registry: tuple[Path, str]) -> None:
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    seed = holder.active().version
    activate(directory, newer)
    assert holder.active().version == newer
    assert holder.versions() == (newer, None) and seed != newer


def test_a_pinned_holder_keeps_its_model_until_told_to_reload(registry: tuple[Path, str]) -> None:
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    seed = holder.active().version
    holder.pin()
    activate(directory, newer)
    assert holder.active().version == seed
    assert holder.reload() is True
    assert holder.active().version == newer
    assert holder.reload() is False


def _ngram_index_made(classifier: Classifier) -> bool:
    words = dict(classifier.pipeline.named_steps["features"].transformer_list)["words"].steps[-1][1]
    return "_ngram_index_of" in words.__dict__


def test_a_holder_warms_each_model_it_loads(registry: tuple[Path, str]) -> None:
    # Before a pool forks its workers, so that they share what first use makes.
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    assert _ngram_index_made(holder.active())
    set_shadow(directory, newer)  # the shadow model too: it scores every comment the active one does
    shadow = holder.shadow()
    assert shadow is not None and _ngram_index_made(shadow)
    activate(directory, newer)
    assert holder.active().version == newer and _ngram_index_made(holder.active())


def test_a_holder_freezes_its_models_and_lets_a_replaced_one_go(registry: tuple[Path, str]) -> None:
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    seed = holder.active()
    # Out of the collector's reach: a full collection under load does not walk the model.
    assert not any(tracked is seed for tracked in gc.get_objects())
    # A reference cycle through the model, which only a collection can free.
    seed.pipeline.held_by = seed
    gone = weakref.ref(seed)
    del seed
    activate(directory, newer)
    assert holder.active().version == newer
    gc.collect()
    assert gone() is None


def test_a_holder_keeps_its_model_when_the_registry_cannot_be_read_at_all(
    registry: tuple[Path, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    seed = holder.active().version
    (directory / ACTIVE_FILE).write_bytes(b"\xff" + newer.encode())  # damaged
    assert holder.active().version == seed
    assert f"keeping model {seed}: {directory / ACTIVE_FILE} is not UTF-8 text" in caplog.text

    def unreadable(model_dir: Path) -> str | None:
        raise OSError(errno.EIO, "Input/output error")  # not a ModelError

    with monkeypatch.context() as patched:
        patched.setattr("worker.model_holder.active_version", unreadable)
        assert holder.active().version == seed
    assert "the registry's models could not be loaded" in caplog.text and "Input/output error" in caplog.text
    (directory / ACTIVE_FILE).write_text(newer + "\n")  # mended: the next check loads it
    assert holder.active().version == newer


def test_a_holder_lets_go_of_a_shadow_model_replaced_by_one_it_cannot_load(
    registry: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    # The version no longer in shadow mode must not go on scoring live comments, its
    # verdicts counted in its report as if it were still the candidate being watched.
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    set_shadow(directory, newer)
    seed = holder.active().version
    assert holder.versions() == (seed, newer)
    (directory / SHADOW_FILE).write_text("20000101T000000Z-gone\n")  # its folder removed since
    assert holder.shadow() is None
    assert holder.versions() == (seed, None)
    assert f"keeping model {seed}" in caplog.text and "20000101T000000Z-gone" in caplog.text
    set_shadow(directory, newer)  # mended: the next check loads it again
    assert holder.shadow() is not None and holder.versions() == (seed, newer)


def test_a_holder_follows_the_shadow_while_the_active_version_cannot_be_loaded(
    registry: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    seed = holder.active().version
    (directory / ACTIVE_FILE).write_text("20000101T000000Z-gone\n")  # its folder removed since
    (directory / SHADOW_FILE).write_text(newer + "\n")  # a candidate put in shadow mode meanwhile
    assert holder.shadow() is not None and holder.versions() == (seed, newer)
    assert f"keeping model {seed}" in caplog.text and "20000101T000000Z-gone" in caplog.text
    (directory / SHADOW_FILE).unlink()  # cleared: followed too
    assert holder.shadow() is None and holder.versions() == (seed, None)
    (directory / SHADOW_FILE).write_text(seed + "\n")  # the version it holds: not scored twice
    assert holder.shadow() is None and holder.versions() == (seed, None)


def test_a_holder_looks_at_the_registry_at_most_once_per_check_interval(registry: tuple[Path, str]) -> None:
    directory, newer = registry
    now = [0.0]
    holder = ModelHolder(directory, check_seconds=30.0, clock=lambda: now[0])
    seed = holder.active().version  # the first look: the next is due 30 s later
    activate(directory, newer)
    now[0] = 29.0
    assert holder.active().version == seed
    now[0] = 30.0
    assert holder.active().version == newer


def test_a_holder_stops_shadow_scoring_once_the_shadow_is_cleared(registry: tuple[Path, str]) -> None:
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    set_shadow(directory, newer)
    seed = holder.active().version
    assert holder.shadow() is not None and holder.versions() == (seed, newer)
    clear_shadow(directory)
    assert holder.shadow() is None and holder.versions() == (seed, None)


def test_a_holder_follows_a_shadow_and_an_active_version_that_change_in_one_look(
    registry: tuple[Path, str],
) -> None:
    # The candidate in shadow mode went live, and the version it replaced was put in shadow
    # mode beside it, both between two looks: the shadow held is replaced (not kept for
    # being some shadow), and the new one is judged against the new active version.
    directory, newer = registry
    holder = ModelHolder(directory, check_seconds=0.0)
    seed = holder.active().version
    set_shadow(directory, newer)
    assert holder.shadow() is not None and holder.versions() == (seed, newer)
    activate(directory, newer)  # which ends its shadow mode
    set_shadow(directory, seed)
    shadow = holder.shadow()
    assert holder.versions() == (newer, seed) and shadow is not None and shadow.version == seed
