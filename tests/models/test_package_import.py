"""`import models` is cheap, side-effect free, and exposes the public interface."""

from __future__ import annotations

import subprocess
import sys

import pytest

import models


def test_import_does_not_load_scientific_libraries() -> None:
    heavy = "('sklearn', 'numpy', 'scipy', 'skops')"
    code = f"import sys, models; print(sorted(m for m in {heavy} if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize("name", models.__all__)
def test_public_names_resolve(name: str) -> None:
    assert getattr(models, name) is not None


def test_unknown_name() -> None:
    with pytest.raises(AttributeError):
        models.no_such_name  # noqa: B018
