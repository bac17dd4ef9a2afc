"""Fixtures for running jobs in-process against the real database and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models import Classifier, load_active
from service.config import load_settings
from worker import model_holder
from worker.context import WorkerContext, build_context, install_context


@pytest.fixture(scope="session")
def seed_classifier(model_dir: Path) -> Classifier:
    """The shared registry's active model, loaded once for every context built on it."""
    return load_active(model_dir)


@pytest.fixture
def context(
    settings_overrides: dict[str, Any], model_dir: Path, seed_classifier: Classifier
) -> Iterator[WorkerContext]:
    """A worker context on the test's database and queue, installed for the jobs it runs.

    Built on the shared registry, it holds the model loaded once for the session, as
    nothing changes that registry (a test that trains or activates has its own). Its
    holder skips the collection a worker runs once after loading (tests/worker/
    test_model_holder.py covers it): here it would walk the whole test process, a few
    tenths of a second a test.
    """
    settings = load_settings({}, settings_overrides)
    with pytest.MonkeyPatch.context() as patched:
        if Path(settings.models) == model_dir:
            patched.setattr(model_holder, "load_active", lambda _directory: seed_classifier)
        patched.setattr(model_holder, "_refreeze", lambda: None)
        built = build_context(settings)
    install_context(built)
    yield built
    built.sessions.kw["bind"].dispose()
