"""Named errors raised by the classifier library.

Callers (the CLI, the worker, the service) catch `ModelError` at their edge and show
its message; the messages are written for a person who has to fix the problem.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base class for every error raised by `models`."""


class ModelNotFoundError(ModelError):
    """No model version exists where one was expected."""


class ModelIntegrityError(ModelError):
    """A stored model does not match its recorded digests, or its files are incomplete or malformed."""


class ModelVersionError(ModelError):
    """A stored model was made with library versions other than the installed ones."""


class DataError(ModelError, ValueError):
    """Labeled data is malformed; the message names the file and line."""


class TrainingError(ModelError):
    """Training cannot produce a model from the given data."""
