"""Email privacy primitives: encryption, digests, avatar keys, masking."""

from __future__ import annotations

import base64

import pytest

from service.errors import ConfigError
from service.privacy import (
    KeyRing,
    avatar_key,
    decrypt_email,
    email_digest,
    encrypt_email,
    mask_email,
)

KEYS = KeyRing.from_secret(b"k" * 32)
OTHER_KEYS = KeyRing.from_secret(b"o" * 32)


def test_encryption_round_trips_and_hides_the_address() -> None:
    blob = encrypt_email(KEYS, "ann@example.com")
    assert b"ann" not in blob and b"example" not in blob
    assert decrypt_email(KEYS, blob) == "ann@example.com"


def test_same_address_encrypts_differently_each_time() -> None:
    assert encrypt_email(KEYS, "ann@example.com") != encrypt_email(KEYS, "ann@example.com")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),
        lambda blob: b"\x02" + blob[1:],
    ],
)
def test_altered_ciphertext_is_refused(tamper: object) -> None:
    blob = encrypt_email(KEYS, "ann@example.com")
    with pytest.raises(ValueError):
        decrypt_email(KEYS, tamper(blob))  # type: ignore[operator]


def test_another_key_cannot_decrypt() -> None:
    with pytest.raises(ValueError, match="authentication"):
        decrypt_email(OTHER_KEYS, encrypt_email(KEYS, "ann@example.com"))


def test_digest_is_keyed_and_case_insensitive() -> None:
    assert email_digest(KEYS, "Ann@Example.com ") == email_digest(KEYS, "ann@example.com")
    assert email_digest(KEYS, "ann@example.com") != email_digest(OTHER_KEYS, "ann@example.com")


def test_avatar_key_is_stable_per_person_and_unrelated_to_plain_hashes() -> None:
    digest = email_digest(KEYS, "ann@example.com")
    key = avatar_key(KEYS, digest)
    assert key == avatar_key(KEYS, email_digest(KEYS, "ANN@example.com"))
    assert key not in {digest.hex(), base64.b16encode(digest).decode()}
    assert key != avatar_key(KEYS, email_digest(KEYS, "bob@example.com"))


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("jane@example.com", "j***@example.com"),
        ("x@y.org", "***@y.org"),
        ("bob@example.com", "***@example.com"),
        ("j@janedoe.name", "***@janedoe.name"),
    ],
)
def test_mask(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        KeyRing.from_secret(b"short")


def test_key_ring_never_shows_its_keys() -> None:
    assert "k" * 8 not in repr(KEYS) and repr(KEYS) == "KeyRing(<hidden>)"
