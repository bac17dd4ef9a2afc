"""Where the master secret comes from (configuration, or a key file for the embedded
default), and the start-up check that it is the key the stored emails were encrypted with."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError

from models.artifacts import sync_to_disk
from service.config import Settings
from service.errors import ConfigError, NotMigratedError
from service.privacy import ERASED_EMAIL, MIN_SECRET_BYTES, KeyRing, readable_email
from service.tables import Comment, KeyFingerprint, utcnow

KEY_FILE_NAME = "secret.key"
KEY_VARIABLE = "MODERATION_SECRET_KEY"
logger = logging.getLogger(__name__)


def generate_secret() -> str:
    """A new random master secret, base64-encoded for the environment or the key file."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode()


def key_origin(settings: Settings) -> str:
    """Where the master secret is read from, for messages: the variable or the key file."""
    return KEY_VARIABLE if settings.secret_key else str(settings.data_dir / KEY_FILE_NAME)


def _key_ring(encoded: str, origin: str) -> KeyRing:
    """The key ring of a base64 secret; ``ConfigError`` naming ``origin`` when it is not one."""
    try:
        secret = base64.urlsafe_b64decode(encoded.strip().encode())
    except (binascii.Error, ValueError):
        raise ConfigError(f"{origin} is not valid base64") from None
    try:
        return KeyRing.from_secret(secret)
    except ConfigError as exc:  # too short: say where it came from
        raise ConfigError(f"{origin} holds {len(secret)} bytes; {exc}") from None


def _create(path: Path) -> None:
    """Write a new key file (owner-only).

    The new key is written to a private temporary file and linked into place, so two
    processes starting together agree on one key and never read a half-written file.
    Both the file and its folder reach the disk before the key is used: emails committed
    with a key that a power cut then left empty could never be read again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own (mkstemp: owner-only, never an existing file): two containers
    # sharing the folder may both run as PID 1, and one must not rewrite the other's.
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    temporary = Path(name)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(generate_secret())
    sync_to_disk(temporary)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return  # another process created it first, and its key is the one
    finally:
        temporary.unlink()
        sync_to_disk(path.parent)
    logger.warning("no key file at %s: generated a new secret key; back it up with the database", path)


def _warn_if_exposed(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "key file %s has mode %04o: other users can reach the secret key; chmod it to 600", path, mode
        )


def _read_or_create(path: Path) -> str:
    """Read the key file, creating it on first use; ``ConfigError`` when it is not text."""
    if path.exists():
        _warn_if_exposed(path)
    else:
        _create(path)
    try:
        return path.read_bytes().decode()
    except UnicodeDecodeError:
        # Raw random bytes (`head -c 32 /dev/urandom > secret.key`) are a likely mistake:
        # say so as for any other malformed key, not with a traceback.
        raise ConfigError(
            f"{path} is not valid base64: it must hold the key as base64 text, as `moderation init` writes it"
        ) from None


def load_keys(settings: Settings) -> KeyRing:
    """The key ring from ``MODERATION_SECRET_KEY``, or from the data folder's key file."""
    if settings.secret_key:
        return _key_ring(settings.secret_key, KEY_VARIABLE)
    path = settings.data_dir / KEY_FILE_NAME
    return _key_ring(_read_or_create(path), str(path))


def load_checked_keys(settings: Settings, engine: Engine) -> KeyRing:
    """The key ring, refusing (``ConfigError``) a key other than the one the stored emails
    in ``engine``'s database were encrypted with.

    The first start records the key's fingerprint in the database, and later starts
    compare with it. A different key is refused; ``moderation init --replace-key``
    records it instead while no email is stored. Rotating the key is not supported. A
    database not migrated yet raises ``NotMigratedError``: the key is then unchecked.
    """
    keys = load_keys(settings)
    check_keys(keys, settings, engine)
    return keys


def check_keys(keys: KeyRing, settings: Settings, engine: Engine, *, replace: bool = False) -> None:
    """Refuse (``ConfigError``) ``keys`` when they are not the ones recorded in ``engine``'s
    database, or cannot read its stored emails; record their fingerprint on first use.

    With ``replace``, keys other than the recorded ones are recorded in their place,
    as long as no email is stored. ``NotMigratedError`` when the database has no schema yet.
    """
    try:
        with engine.begin() as connection:
            _check_fingerprint(connection, keys, settings, replace)
    except IntegrityError:
        # Another process recorded its fingerprint at the same moment: compare with that one.
        with engine.begin() as connection:
            _check_fingerprint(connection, keys, settings, replace)


def _restore_hint(settings: Settings) -> str:
    return (
        f"Restore that key: set {KEY_VARIABLE} to it, or put its key file back at "
        f"{settings.data_dir / KEY_FILE_NAME} with {KEY_VARIABLE} unset (the variable overrides the file)."
    )


def _check_fingerprint(connection: Connection, keys: KeyRing, settings: Settings, replace: bool) -> None:
    if not inspect(connection).has_table(KeyFingerprint.__tablename__):
        # Not a pass: a process started before the migration would otherwise never check
        # its key, and another key recorded by the first start after it would go unnoticed.
        raise NotMigratedError(
            f"the database ({connection.engine.url.render_as_string(hide_password=True)}) is not "
            "migrated yet, so the secret key cannot be checked against it: run `moderation migrate`"
        )
    recorded = _recorded_fingerprint(connection)
    if recorded == keys.fingerprint:
        return
    newest = connection.scalar(
        select(Comment.email_ciphertext)
        .where(Comment.email_ciphertext != ERASED_EMAIL)
        .order_by(Comment.id.desc())
        .limit(1)
    )
    # Without a fingerprint (a database from before it was kept) the newest email shows
    # whether this is the key in use.
    if newest is not None and (recorded is not None or readable_email(keys, newest) is None):
        raise ConfigError(
            f"the secret key ({key_origin(settings)}) differs from the one the stored emails were "
            f"encrypted with, and cannot decrypt them. {_restore_hint(settings)} "
            "Changing the key is not supported."
        )
    # Even with no email stored yet, a process started with another key (a shell missing
    # the variable generates a key file) must not take over: the running ones still
    # encrypt with the recorded key, and would be refused at their next start.
    if recorded is not None and not replace:
        raise ConfigError(
            f"the secret key ({key_origin(settings)}) differs from the one recorded at the first "
            f"start. {_restore_hint(settings)} No email is stored yet, so this key can still "
            "replace that one: stop every process that runs with the other key, then run "
            "`moderation init --replace-key` with this one."
        )
    if recorded is None:
        # The one row's key: a process that recorded its own meanwhile makes this insert
        # fail, and the check runs again against what it recorded.
        connection.execute(insert(KeyFingerprint).values(fingerprint=keys.fingerprint))
        return
    replaced = connection.execute(
        update(KeyFingerprint)
        .where(KeyFingerprint.fingerprint == recorded)
        .values(fingerprint=keys.fingerprint, recorded_at=utcnow())
    )
    if replaced.rowcount != 1:
        raise ConfigError("the recorded key changed while it was being replaced; run the command again")
    logger.warning("the secret key (%s) replaces the recorded one; no email is stored", key_origin(settings))


def _recorded_fingerprint(connection: Connection) -> str | None:
    return connection.scalar(select(KeyFingerprint.fingerprint))
