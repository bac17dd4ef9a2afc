"""The worker's models: the active one, and the one in shadow mode, reloaded when they change.

Workers notice a newly activated version (or a new shadow) without a restart: at most
every ``check_seconds`` they read the registry's pointer files, which is one small
file read, and load a version only when the name there changed. A pool's workers are
pinned instead: their parent loads the new version once and replaces them, so they go
on sharing one copy (worker/pool.py).

What a holder loads is frozen out of the garbage collector's reach: a full collection
would walk the model's objects, some 60-70 ms in the middle of a batch, and in a pool's
children it would write to, and so copy, the pages of the model they share.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from models import Classifier, ModelError, active_version, load_active
from models.registry import load_version, shadow_version

logger = logging.getLogger(__name__)


class ModelHolder:
    """Hands out the current active and shadow classifiers of one model folder."""

    def __init__(
        self, model_dir: Path, check_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._dir = model_dir
        self._check_seconds = check_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._active = _warmed(load_active(model_dir))
        self._shadow: Classifier | None = None
        self._checked = float("-inf")
        self._pinned = False
        _refreeze()

    def active(self) -> Classifier:
        """The active classifier, reloaded first if another version was activated."""
        self._refresh()
        return self._active

    def shadow(self) -> Classifier | None:
        """The classifier in shadow mode, if one is set."""
        self._refresh()
        return self._shadow

    def versions(self) -> tuple[str, str | None]:
        """The versions held now, active and shadow, without looking at the registry."""
        return self._active.version, self._shadow.version if self._shadow else None

    def reload(self) -> bool:
        """Load what the registry names now; return whether the active or shadow model changed."""
        with self._lock:
            self._checked = self._clock()
            return self._reload_or_keep()

    def pin(self) -> None:
        """Stop looking at the registry: keep the models held now for good."""
        with self._lock:
            self._pinned = True

    def _refresh(self) -> None:
        with self._lock:
            now = self._clock()
            if self._pinned or now - self._checked < self._check_seconds:
                return
            self._checked = now
            self._reload_or_keep()

    def _reload_or_keep(self) -> bool:
        """Load what the registry names now, keeping the models held if that fails (but not a
        shadow model the registry no longer names); return whether the active or shadow model changed.

        The active and the shadow model are loaded apart: an active version that cannot be
        loaded does not keep a new shadow version (or a cleared one) from being followed.
        """
        held = self.versions()
        for load in (self._reload_active, self._reload_shadow):
            try:
                load()
            except ModelError as exc:
                # Keep scoring with what is loaded; a broken new version must not stop the queue.
                logger.error("keeping model %s: %s", self._active.version, exc)
            except Exception:  # files it cannot read, a model that cannot score: the same
                logger.exception("keeping model %s: the registry's models could not be loaded", held[0])
        changed = self.versions() != held
        if changed:
            _refreeze()
        return changed

    def _reload_active(self) -> None:
        wanted = active_version(self._dir)
        if wanted and wanted != self._active.version:
            self._active = _warmed(load_active(self._dir))
            logger.info("now scoring with model %s", wanted)

    def _reload_shadow(self) -> None:
        shadow = shadow_version(self._dir)
        # The version this holder scores with may not be the registry's active one (when
        # that cannot be loaded here); in shadow mode too it would only score itself twice.
        if shadow is None or shadow == self._active.version:
            self._shadow = None
        elif self._shadow is None or self._shadow.version != shadow:
            # Let go of the version no longer in shadow mode first: if the one named now
            # cannot be loaded, the old one must not go on scoring live comments, its
            # verdicts reported as those of the candidate being watched.
            self._shadow = None
            self._shadow = _warmed(load_version(self._dir, shadow))
            logger.info("shadow scoring with model %s", shadow)


def _refreeze() -> None:
    """Freeze every object alive now, after a collection that also sees what was frozen
    before: a model just replaced is let go, not kept for good."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _warmed(classifier: Classifier) -> Classifier:
    # Scored once on loading: a pool's parent then holds what scoring makes on first use,
    # shared by the workers it forks, and a worker's first comment does not wait for it.
    classifier.warm()
    return classifier
