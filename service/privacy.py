"""Keeping the commenter's email private: encryption, keyed digests, masking.

One master secret yields independent keys and a fingerprint (HKDF), so the ciphertext,
the lookup digest, the public avatar key, the moderators' session cookies, the flood
control's counters and the fingerprint cannot be related to each other without it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.errors import ConfigError

_FORMAT_V1 = b"\x01"
_NONCE_BYTES = 12
# Binds each ciphertext to its purpose: an email blob cannot be replayed as anything else.
_ASSOCIATED_DATA = b"comment-email"
MIN_SECRET_BYTES = 32
# What an erased comment keeps of its email, as ciphertext and as digest: nothing. No
# ciphertext is empty, and no lookup digest matches it.
ERASED_EMAIL = b""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


@dataclass(frozen=True, repr=False)
class KeyRing:
    """The keys derived from the master secret; repr hides them from logs and tracebacks.

    ``fingerprint`` names the secret without revealing it: HKDF's output is a keyed
    digest (HMAC) of a fixed string, so it tells two secrets apart and gives nothing away.
    """

    encryption: bytes
    digest: bytes
    avatar: bytes
    session: bytes
    """Signs the moderators' page sessions (Flask's secret key)."""
    flood: bytes
    """Names the flood control's counters in the database (service/flood.py)."""
    fingerprint: str

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyRing:
        """Derive the keys; the secret must carry at least 256 bits."""
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(f"the secret key must be at least {MIN_SECRET_BYTES} bytes")
        return cls(
            encryption=_derive(secret, b"moderation email encryption v1"),
            digest=_derive(secret, b"moderation email digest v1"),
            avatar=_derive(secret, b"moderation avatar v1"),
            session=_derive(secret, b"moderation page sessions v1"),
            flood=_derive(secret, b"moderation flood control v1"),
            fingerprint=_derive(secret, b"moderation key fingerprint v1").hex(),
        )

    def __repr__(self) -> str:
        return "KeyRing(<hidden>)"


def canonical_email(email: str) -> str:
    """The form used for digests, so `Ann@Example.com ` and `ann@example.com` match."""
    return email.strip().lower()


def encrypt_email(keys: KeyRing, email: str) -> bytes:
    """AES-256-GCM ciphertext of ``email``, prefixed with a format byte and a random nonce."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(keys.encryption).encrypt(nonce, email.encode(), _ASSOCIATED_DATA)
    return _FORMAT_V1 + nonce + sealed


def decrypt_email(keys: KeyRing, blob: bytes) -> str:
    """Recover the email; raises ``ValueError`` when the blob was altered or the key differs."""
    if blob[:1] != _FORMAT_V1:
        raise ValueError("unknown email ciphertext format")
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return AESGCM(keys.encryption).decrypt(nonce, sealed, _ASSOCIATED_DATA).decode()
    except InvalidTag:
        raise ValueError("email ciphertext failed authentication") from None


def readable_email(keys: KeyRing, blob: bytes) -> str | None:
    """The email, or None when it was erased or ``keys`` cannot decrypt it (another key
    encrypted it, or it was altered)."""
    if blob == ERASED_EMAIL:
        return None
    try:
        return decrypt_email(keys, blob)
    except ValueError:
        return None


def email_digest(keys: KeyRing, email: str) -> bytes:
    """Keyed HMAC-SHA256 of the canonical email, for lookups without decrypting."""
    return hmac.new(keys.digest, canonical_email(email).encode(), hashlib.sha256).digest()


def avatar_key(keys: KeyRing, digest: bytes) -> str:
    """A stable public avatar key for one commenter that reveals nothing about the email."""
    return hmac.new(keys.avatar, digest, hashlib.sha256).hexdigest()[:32]


# A local part shorter than this shows no letter: `j***@janedoe.name` would be the whole address.
MASK_SHOWS_LETTER_FROM = 4


def mask_email(email: str) -> str:
    """`jane@example.com` becomes `j***@example.com`: enough to recognise, not to contact.
    A short local part is hidden whole (`bob@example.com` becomes `***@example.com`)."""
    local, _, domain = email.partition("@")
    shown = local[:1] if len(local) >= MASK_SHOWS_LETTER_FROM else ""
    return f"{shown}***@{domain}"
