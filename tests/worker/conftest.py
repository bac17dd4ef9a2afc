"""Fixtures for running jobs in-process against the real database and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.config import load_settings
from worker.context import WorkerContext, build_context, install_context


@pytest.fixture
def context(settings_overrides: dict[str, Any]) -> Iterator[WorkerContext]:
    """A worker context on the test's database and queue, installed for the jobs it runs."""
    built = build_context(load_settings({}, settings_overrides))
    install_context(built)
    yield built
    built.sessions.kw["bind"].dispose()
