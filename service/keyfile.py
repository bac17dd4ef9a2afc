"""Where the master secret comes from: configuration, or a key file for the embedded default."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from service.config import Settings
from service.errors import ConfigError
from service.privacy import MIN_SECRET_BYTES, KeyRing

KEY_FILE_NAME = "secret.key"


def generate_secret() -> str:
    """A new random master secret, base64-encoded for the environment or the key file."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode()


def _decode(encoded: str, origin: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(encoded.strip().encode())
    except (binascii.Error, ValueError):
        raise ConfigError(f"{origin} is not valid base64") from None


def _read_or_create(path: Path) -> str:
    """Read the key file, creating it (owner-only) on first use.

    The new key is written to a private temporary file and linked into place, so two
    processes starting together agree on one key and never read a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate_secret())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text()


def load_keys(settings: Settings) -> KeyRing:
    """The key ring from ``MODERATION_SECRET_KEY``, or from the data folder's key file."""
    if settings.secret_key:
        return KeyRing.from_secret(_decode(settings.secret_key, "MODERATION_SECRET_KEY"))
    path = settings.data_dir / KEY_FILE_NAME
    return KeyRing.from_secret(_decode(_read_or_create(path), str(path)))
