"""What the app factory does to its process beyond building the app."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# Run in a fresh interpreter: this test process has built apps (and frozen) already.
_BUILD_TWICE = """
import gc, json, sys
from service.app import create_app

overrides = json.loads(sys.argv[1])
before = gc.get_freeze_count()
create_app(overrides)
first = gc.get_freeze_count()
create_app(overrides)
print(json.dumps([before, first, gc.get_freeze_count()]))
"""


def test_start_up_objects_are_frozen_once_per_process(settings_overrides: dict[str, Any]) -> None:
    overrides = {
        key: list(value) if isinstance(value, tuple) else str(value)
        for key, value in settings_overrides.items()
    }
    argv = [sys.executable, "-c", _BUILD_TWICE, json.dumps(overrides)]
    completed = subprocess.run(argv, check=True, capture_output=True, text=True)
    before, first, second = json.loads(completed.stdout.strip().splitlines()[-1])
    assert before == 0
    # The modules and the app: a full collection no longer walks them under load.
    assert first > 50_000
    # A second app in the same process freezes nothing more (nor its garbage for good);
    # frozen objects freed since leave the count.
    assert second <= first
