"""scripts/bootstrap.sh installs into .venv only what an earlier install did not."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

BOOTSTRAP = Path(__file__).resolve().parent.parent / "scripts" / "bootstrap.sh"
PINNED = ("pyproject.toml", "requirements.lock", "requirements-vectors.txt")
# Stands in for the venv's Python: answers `-m pip --version`, and notes every install.
FAKE_PYTHON = """#!/bin/sh
case "$*" in *"pip --version"*) exit 0 ;; esac
echo "$*" >> "$(dirname "$0")/../../installs.log"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in PINNED:
        (tmp_path / name).write_text(f"{name} pins\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def _files_hash(project: Path) -> str:
    joined = b"".join((project / name).read_bytes() for name in PINNED)
    return hashlib.sha256(joined).hexdigest()[:16]


def _ensure(project: Path, extras: str) -> list[str]:
    """The pip commands ``ensure_venv EXTRAS`` ran in ``project``."""
    subprocess.run(
        ["bash", "-c", f'source "{BOOTSTRAP}" && ensure_venv "{extras}"'],
        cwd=project,
        check=True,
        capture_output=True,
    )
    log = project / "installs.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(
    ("installed", "asked", "installs"),
    [
        (".installed-dev,local", "local", False),  # scripts/run after scripts/test
        (".installed-dev,local", "", False),
        (".installed-local", "", False),
        (".installed-local", "dev,local", True),  # scripts/test after scripts/run
        (".installed", "local", True),
    ],
)
def test_an_install_with_every_extra_asked_for_is_enough(
    project: Path, installed: str, asked: str, installs: bool
) -> None:
    (project / ".venv" / installed).write_text(_files_hash(project) + "\n")
    ran = _ensure(project, asked)
    assert bool(ran) is installs
    if installs:
        stamp = ".installed" + (f"-{asked}" if asked else "")
        assert (project / ".venv" / stamp).read_text().strip() == _files_hash(project)


def test_changed_pins_install_again(project: Path) -> None:
    (project / ".venv" / ".installed-dev,local").write_text(_files_hash(project) + "\n")
    (project / "requirements.lock").write_text("other pins\n")
    assert any("-e .[local]" in command for command in _ensure(project, "local"))
