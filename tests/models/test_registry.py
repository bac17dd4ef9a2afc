"""The registry: versions, the active one, activation and rollback."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from models import atomic_files, registry
from models.artifacts import MODEL_FILE, STAGING_PREFIX
from models.classifier import Classifier
from models.errors import ModelError, ModelIntegrityError, ModelNotFoundError
from models.examples import Example
from models.records import CommentText
from models.registry import (
    ACTIVE_FILE,
    HISTORY_FILE,
    LOCK_FILE,
    SHADOW_FILE,
    activate,
    activate_if_none,
    activate_in_place_of,
    active_version,
    clear_shadow,
    list_versions,
    load_active,
    load_version,
    prune,
    rollback,
    save_version,
    set_shadow,
    shadow_candidate,
    shadow_version,
)
from models.training import TrainingResult, train
from tests.flock import flock_is_free
from tests.models.artifact_files import replace_model_file


@pytest.fixture(scope="module")
def tiny_result(tiny_examples: list[Example]) -> TrainingResult:
    return train(tiny_examples)


@pytest.fixture(scope="module")
def saved_three(
    tmp_path_factory: pytest.TempPathFactory, tiny_result: TrainingResult
) -> tuple[Path, list[str]]:
    """Three versions, none active (read-only: ``three_versions`` gives each test a copy)."""
    root = tmp_path_factory.mktemp("three-versions")
    # The same result saved three times: the version name gets a suffix each time.
    return root, [save_version(root, tiny_result) for _ in range(3)]


@pytest.fixture
def three_versions(tmp_path: Path, saved_three: tuple[Path, list[str]]) -> tuple[Path, list[str]]:
    template, versions = saved_three
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path, versions


def test_save_version_makes_unique_names(three_versions: tuple[Path, list[str]]) -> None:
    root, versions = three_versions
    base = versions[0]
    assert versions == [base, f"{base}-2", f"{base}-3"]
    assert list_versions(root) == sorted(versions)


def test_versions_saved_within_one_second_sort_by_their_number(tmp_path: Path) -> None:
    base = "20261128T031500Z-1a2b3c4d"
    saves = [base, *(f"{base}-{n}" for n in range(2, 12))]
    # A copy of a save renamed by hand is a folder named by hand: it sorts by its whole name.
    names = [*saves, f"{base}-2.old", "20261128T031501Z-00000000", "hand-made"]
    for name in names:
        (tmp_path / name).mkdir()
    # As text, `-10` and `-11` would come before `-2`; and a later second after all of them.
    assert list_versions(tmp_path) == names
    assert registry.version_order(f"{base}-10") > registry.version_order(f"{base}-9")


def test_the_tenth_save_going_live_ends_the_shadow_mode_of_the_ninth(
    three_versions: tuple[Path, list[str]], tiny_result: TrainingResult
) -> None:
    root, _ = three_versions
    *_, ninth, tenth = [save_version(root, tiny_result) for _ in range(7)]
    assert (ninth[-2:], tenth[-3:]) == ("-9", "-10")
    set_shadow(root, ninth)
    activate(root, tenth)
    assert shadow_version(root) is None  # the ninth is older, not a candidate for the tenth
    assert not shadow_candidate(root, ninth)  # nor is it once retrained
    activate(root, ninth)
    assert shadow_candidate(root, tenth) and shadow_version(root) == tenth


def test_the_registry_s_own_files_are_not_listed_as_versions(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, second, third) = three_versions
    activate(root, first)
    activate(root, second)  # a history
    set_shadow(root, third)
    assert {ACTIVE_FILE, HISTORY_FILE, SHADOW_FILE, LOCK_FILE} <= {path.name for path in root.iterdir()}
    assert list_versions(root) == [first, second, third]


def test_nothing_active_until_activated(three_versions: tuple[Path, list[str]]) -> None:
    root, versions = three_versions
    assert active_version(root) is None
    # Versions are there (as after `train --no-activate`): one is to be activated, not trained.
    with pytest.raises(ModelNotFoundError) as caught:
        load_active(root)
    assert str(caught.value) == (
        f"no active model in {root}: activate one of its 3 versions "
        "(`moderation models list`, then `moderation models activate VERSION`)"
    )
    activate(root, versions[0])
    assert active_version(root) == versions[0]
    assert load_active(root).version == versions[0]


def test_activate_and_rollback(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, second, third) = three_versions
    for version in (first, second, third):
        activate(root, version)
    assert active_version(root) == third
    assert rollback(root) == second
    assert active_version(root) == second
    assert rollback(root) == first
    with pytest.raises(ModelNotFoundError, match="roll back"):
        rollback(root)
    assert active_version(root) == first


def test_activating_the_active_version_changes_nothing(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, second, _) = three_versions
    activate(root, first)
    activate(root, second)
    activate(root, second)
    assert (root / HISTORY_FILE).read_text() == first + "\n"  # not the active version a second time
    assert rollback(root) == first


def test_rollback_skips_deleted_versions(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, second, third) = three_versions
    for version in (first, second, third):
        activate(root, version)
    shutil.rmtree(root / second)
    assert rollback(root) == first


def test_activating_the_shadow_version_takes_it_out_of_shadow_mode(
    three_versions: tuple[Path, list[str]],
) -> None:
    root, (first, second, third) = three_versions
    set_shadow(root, second)
    activate(root, first)
    assert shadow_version(root) == second
    activate(root, second)
    assert shadow_version(root) is None and not (root / SHADOW_FILE).exists()
    set_shadow(root, third)
    assert (root / SHADOW_FILE).read_text() == third + "\n"
    set_shadow(root, first)
    assert rollback(root) == first and shadow_version(root) is None  # so does a rollback to it
    clear_shadow(root / "missing")  # nothing to clear, and nothing made
    assert not (root / "missing").exists()


def test_a_version_going_live_ends_the_shadow_mode_of_an_older_one(
    three_versions: tuple[Path, list[str]],
) -> None:
    root, (first, second, third) = three_versions
    activate(root, first)
    set_shadow(root, second)  # a candidate kept back
    assert activate_in_place_of(root, third, first)  # a later retrain's candidate goes live
    assert shadow_version(root) is None
    set_shadow(root, second)
    activate(root, first)  # an older version live again: the newer candidate stays one
    assert shadow_version(root) == second
    assert rollback(root) == third and shadow_version(root) is None  # so does a rollback past it


def test_the_active_version_is_refused_for_shadow_mode(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, second, _) = three_versions
    activate(root, first)
    set_shadow(root, second)
    with pytest.raises(ModelError, match=f"{first} is the active version"):
        set_shadow(root, first)
    assert shadow_version(root) == second


def test_a_version_that_cannot_be_loaded_is_refused_for_shadow_mode(
    three_versions: tuple[Path, list[str]],
) -> None:
    # Workers would fail to load it at every check and score nothing with it, while the
    # command said it was in shadow mode.
    root, (first, second, third) = three_versions
    activate(root, first)
    set_shadow(root, second)
    (root / third / MODEL_FILE).write_bytes(b"damaged")
    with pytest.raises(ModelIntegrityError, match="does not match its recorded SHA-256 digest"):
        set_shadow(root, third)
    shutil.copytree(root / second, root / "restored")
    with pytest.raises(ModelIntegrityError, match=f"holds model version '{second}'"):
        set_shadow(root, "restored")
    assert shadow_version(root) == second


def test_a_retrained_candidate_goes_into_shadow_mode_only_while_newer_than_the_active_one(
    three_versions: tuple[Path, list[str]],
) -> None:
    root, (first, second, third) = three_versions
    # Nothing active (its pointer removed by hand): any version is a candidate.
    assert shadow_candidate(root, first) and shadow_version(root) == first
    activate(root, first)
    assert shadow_candidate(root, second) and shadow_version(root) == second
    # A name that is no version here is refused, however new it reads.
    with pytest.raises(ModelNotFoundError, match="no model version"):
        shadow_candidate(root, "29991231T235959Z-00000000")
    assert shadow_version(root) == second
    # While it trained, a newer version went live (by hand, or another run's): it has
    # been overtaken, and shadow mode keeps what it held.
    activate(root, third)
    set_shadow(root, second)
    assert not shadow_candidate(root, first) and shadow_version(root) == second
    assert not shadow_candidate(root, third) and shadow_version(root) == second


def test_activate_if_none_activates_the_first_version_only(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, second, _) = three_versions
    assert activate_if_none(root, first)
    assert not activate_if_none(root, second)
    assert active_version(root) == first and not (root / HISTORY_FILE).exists()


def test_activate_if_none_takes_the_place_of_a_deleted_active_version(
    three_versions: tuple[Path, list[str]],
) -> None:
    # Nothing can be served from a deleted version: a new training goes live, as the first did.
    root, (first, second, _) = three_versions
    activate(root, first)
    shutil.rmtree(root / first)
    assert activate_if_none(root, second)
    assert active_version(root) == second


def test_a_save_killed_midway_leaves_nothing_for_long(
    tmp_path: Path, make_result: Callable[..., TrainingResult]
) -> None:
    unfinished = tmp_path / f"{STAGING_PREFIX}20261129T000000Z-00000000.0123456789abcdef"
    unfinished.mkdir()
    (unfinished / "model.skops").write_bytes(b"half of a model")
    (tmp_path / ".git").mkdir()  # `--out .` in a project: only unfinished versions go
    assert list_versions(tmp_path) == []  # neither is a version
    version = save_version(tmp_path, make_result())
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([".git", LOCK_FILE, version])


def test_a_version_folder_renamed_is_refused_by_name(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, *_) = three_versions
    shutil.copytree(root / first, root / "restored")
    for use in (activate, load_version):
        with pytest.raises(ModelIntegrityError, match=f"holds model version '{first}'"):
            use(root, "restored")


def test_changing_a_folder_that_is_not_there_is_refused_without_making_it(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    for change in (rollback, lambda root: activate(root, "v"), lambda root: set_shadow(root, "v")):
        with pytest.raises(ModelNotFoundError, match=f"no model folder at {missing}"):
            change(missing)
    assert not missing.exists()


def test_loading_the_active_model_says_what_is_wrong_with_the_folder(
    three_versions: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, (first, *_) = three_versions
    with pytest.raises(ModelNotFoundError, match=f"{root / first} is the folder of one model version"):
        load_active(root / first)
    with pytest.raises(ModelNotFoundError, match="no model folder at"):
        load_active(tmp_path / "typo")
    (root / ACTIVE_FILE).write_text("20000101T000000Z-gone\n")
    with pytest.raises(ModelNotFoundError, match="ACTIVE names version '20000101T000000Z-gone'"):
        load_active(root)


@pytest.mark.parametrize("pointer", [ACTIVE_FILE, HISTORY_FILE, SHADOW_FILE])
def test_a_pointer_that_is_a_folder_is_named_as_such(
    three_versions: tuple[Path, list[str]], pointer: str
) -> None:
    root, (first, second, third) = three_versions
    activate(root, first)
    (root / pointer).unlink(missing_ok=True)
    (root / pointer).mkdir()
    assert list_versions(root) == [first, second, third]
    readers = {
        ACTIVE_FILE: [lambda: load_active(root), lambda: activate(root, second), lambda: rollback(root)],
        HISTORY_FILE: [lambda: activate(root, second), lambda: rollback(root)],
        SHADOW_FILE: [lambda: shadow_version(root), lambda: activate(root, second), lambda: rollback(root)],
    }
    for read in readers[pointer]:
        with pytest.raises(ModelIntegrityError, match=f"{root / pointer} is not a file: remove it"):
            read()
    # Refused before any write: no temporary is left beside the pointers.
    assert {path.name for path in root.iterdir()} == {first, second, third, pointer, ACTIVE_FILE, LOCK_FILE}


@pytest.mark.parametrize("write", ["set_shadow", "shadow_candidate", "clear_shadow"])
def test_a_shadow_pointer_that_is_a_folder_is_named_by_the_commands_that_write_it(
    three_versions: tuple[Path, list[str]], write: str
) -> None:
    # The writers too: `shadow set`, a retrain's candidate and `shadow clear` (the repair
    # given for SHADOW) failed on os.replace or unlink, naming a temporary file or nothing.
    root, (first, _second, third) = three_versions
    activate(root, first)
    (root / SHADOW_FILE).mkdir()
    call = {
        "set_shadow": lambda: set_shadow(root, third),
        "shadow_candidate": lambda: shadow_candidate(root, third),
        "clear_shadow": lambda: clear_shadow(root),
    }[write]
    with pytest.raises(ModelIntegrityError, match=f"{root / SHADOW_FILE} is not a file"):
        call()


def test_a_damaged_shadow_pointer_is_named_as_such(three_versions: tuple[Path, list[str]]) -> None:
    root, (first, second, third) = three_versions
    activate(root, third)
    activate(root, first)  # so there is a version to roll back to
    (root / SHADOW_FILE).write_bytes(b"\xff" + second.encode())
    with pytest.raises(ModelIntegrityError, match=f"{root / SHADOW_FILE} is not UTF-8 text"):
        shadow_version(root)
    # Refused before anything changes: no switch is made that the command then reports as failed.
    for switch in (lambda: activate(root, second), lambda: rollback(root)):
        with pytest.raises(ModelIntegrityError, match="SHADOW is not UTF-8 text"):
            switch()
        assert active_version(root) == first
    clear_shadow(root)  # what mends it
    assert shadow_version(root) is None


def test_activate_unknown_version(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        activate(tmp_path, "20000101T000000Z-00000000")
    assert active_version(tmp_path) is None


def test_only_listed_version_names_are_accepted(
    tmp_path: Path, make_result: Callable[..., TrainingResult]
) -> None:
    # Every name below reaches a valid version folder; only a listed name may be used.
    root, outside = tmp_path / "models", tmp_path / "outside"
    version = save_version(outside, make_result())
    shutil.copytree(outside / version, root / "with space")
    for name in (f"../outside/{version}", str(outside / version), "with space"):
        with pytest.raises(ModelNotFoundError, match="no model version"):
            activate(root, name)
        with pytest.raises(ModelNotFoundError, match="no model version"):
            load_version(root, name)
    assert list_versions(root) == [] and active_version(root) is None


def test_activate_checks_the_version_under_the_lock(
    three_versions: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside the lock, a version removed between the check and the switch would become active.
    import models.artifacts

    root, versions = three_versions
    held: list[bool] = []
    verify = models.artifacts.verify_artifact

    def checking(directory: Path, files: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        held.append(not flock_is_free(root / LOCK_FILE))
        return verify(directory, files)

    monkeypatch.setattr(models.artifacts, "verify_artifact", checking)
    activate(root, versions[0])
    assert held == [True]


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("umask_027")
def test_files_get_the_modes_the_umask_allows(
    tmp_path: Path, make_result: Callable[..., TrainingResult]
) -> None:
    # A web or worker process running as another user (in the group here) must read them.
    first, second = save_version(tmp_path, make_result()), save_version(tmp_path, make_result())
    activate(tmp_path, first)
    activate(tmp_path, second)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*")}
    assert modes.pop(LOCK_FILE) == 0o640
    assert modes == {
        **{version: 0o750 for version in (first, second)},
        **{
            f"{version}/{file.name}": 0o640
            for version in (first, second)
            for file in (tmp_path / version).iterdir()
        },
        ACTIVE_FILE: 0o640,
        HISTORY_FILE: 0o640,
    }


def test_active_file_is_written_whole(
    three_versions: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, versions = three_versions
    activate(root, versions[1])
    assert (root / ACTIVE_FILE).read_text() == versions[1] + "\n"
    assert not [p for p in root.iterdir() if p.name.startswith(f".{ACTIVE_FILE}")]

    # A write of ACTIVE cut short before it takes the file's name leaves the old pointer whole.
    replace = os.replace

    def cut_short(source: Any, target: Any) -> None:
        if Path(target).name == ACTIVE_FILE:
            raise OSError("no space left on device")
        replace(source, target)

    monkeypatch.setattr(atomic_files.os, "replace", cut_short)
    with pytest.raises(OSError, match="no space"):
        activate(root, versions[2])
    assert (root / ACTIVE_FILE).read_text() == versions[1] + "\n"
    assert not [p for p in root.iterdir() if p.name.startswith((f".{ACTIVE_FILE}", f".{HISTORY_FILE}"))]


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    assert list_versions(tmp_path / "nothing") == []
    assert active_version(tmp_path / "nothing") is None


def _indexes_made(classifier: Classifier) -> tuple[bool, bool]:
    branches = dict(classifier.pipeline.named_steps["features"].transformer_list)
    words, chars = (branches[name].steps[-1][1] for name in ("words", "chars"))
    return "_ngram_index_of" in words.__dict__, "_char_index_of" in chars.__dict__


def test_warming_a_loaded_model_makes_what_first_use_makes(model_dir: Path) -> None:
    cold, warm = load_active(model_dir), load_active(model_dir)
    assert _indexes_made(warm) == (False, False)
    warm.warm()
    assert _indexes_made(warm) == (True, True)
    # The second is long enough for the character index, which warming made.
    comments = [CommentText("You are a stupid idiot"), CommentText("Free money at cheap-pills.ru " * 30)]
    assert warm.score(comments) == cold.score(comments)


def test_a_rollback_cut_short_can_be_run_again(
    three_versions: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, (first, second, third) = three_versions
    for version in (first, second, third):
        activate(root, version)
    replace = os.replace

    def cut_short_at(name: str) -> Callable[[Any, Any], None]:
        def cut_short(source: Any, target: Any) -> None:
            if Path(target).name == name:
                raise OSError("no space left on device")
            replace(source, target)

        return cut_short

    # A full disk stops the rollback before ACTIVE changes: the version to go back to is
    # still there to go back to once space is freed.
    monkeypatch.setattr(atomic_files.os, "replace", cut_short_at(ACTIVE_FILE))
    with pytest.raises(OSError, match="no space"):
        rollback(root)
    assert active_version(root) == third
    # Stopped after ACTIVE changes, it has rolled back, and the next one goes on from there.
    monkeypatch.setattr(atomic_files.os, "replace", cut_short_at(HISTORY_FILE))
    with pytest.raises(OSError, match="no space"):
        rollback(root)
    assert active_version(root) == second
    monkeypatch.setattr(atomic_files.os, "replace", replace)
    assert rollback(root) == first


def test_a_version_that_does_not_load_is_not_made_active_nor_shadow_nor_rolled_back_to(
    three_versions: tuple[Path, list[str]],
) -> None:
    # Its digests match and its metadata reads, so only loading it finds that it is no model:
    # every worker would have failed on it instead.
    root, (first, second, third) = three_versions
    activate(root, first)
    activate(root, second)
    replace_model_file(root / first, b"not a zip archive")
    replace_model_file(root / third, b"not a zip archive")
    for change in (lambda: activate(root, third), lambda: set_shadow(root, third), lambda: rollback(root)):
        with pytest.raises(ModelIntegrityError, match="cannot be read as a model"):
            change()
        assert (active_version(root), shadow_version(root)) == (second, None)
    assert (root / HISTORY_FILE).read_text().split() == [first]


def test_prune_keeps_the_newest_versions_and_the_active_and_shadow_ones(
    three_versions: tuple[Path, list[str]], tiny_result: TrainingResult
) -> None:
    root, (first, second, third) = three_versions
    fourth, fifth = save_version(root, tiny_result), save_version(root, tiny_result)
    activate(root, first)
    activate(root, second)
    set_shadow(root, third)
    assert prune(root, 1, dry_run=True) == [first, fourth]
    assert list_versions(root) == [first, second, third, fourth, fifth]
    assert prune(root, 1) == [first, fourth]
    assert list_versions(root) == [second, third, fifth]
    assert not [path for path in root.iterdir() if path.name.startswith(STAGING_PREFIX)]
    assert (active_version(root), shadow_version(root)) == (second, third)
    with pytest.raises(ModelNotFoundError, match="roll back"):  # the earlier active one went
        rollback(root)
    assert prune(root, 3) == []
    with pytest.raises(ValueError, match="keep at least one version, not 0"):
        prune(root, 0)


def test_prune_removes_nothing_while_a_pointer_is_damaged(three_versions: tuple[Path, list[str]]) -> None:
    root, versions = three_versions
    (root / ACTIVE_FILE).write_bytes(b"\xff" + versions[0].encode())
    with pytest.raises(ModelIntegrityError, match="ACTIVE is not UTF-8 text"):
        prune(root, 1)
    assert list_versions(root) == versions
