"""Signing webhook posts the Standard Webhooks way (https://www.standardwebhooks.com).

A receiver checks a post with any Standard Webhooks library and the same secret, e.g.
``standardwebhooks.Webhook(secret).verify(body, headers)``: the signature covers the
message id, the time and the body, so a post cannot be altered or replayed later.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form of every secret, not a secret
# Standard Webhooks asks for 24 to 64 random bytes.
SECRET_BYTES = (24, 64)


def parse_secret(raw: str) -> bytes:
    """The key in a ``whsec_<base64>`` secret (the prefix is optional).

    Raises:
        ValueError: not base64, or not 24 to 64 bytes long.
    """
    encoded = raw.strip().removeprefix(SECRET_PREFIX)
    try:
        # Padding restored: other senders of Standard Webhooks write their secrets without it.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("it is not base64 after `whsec_`") from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"it holds {len(key)} bytes; {low} to {high} are needed")
    return key


def new_secret() -> str:
    """A fresh random secret in the ``whsec_<base64>`` form receivers expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(key: bytes, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The ``webhook-id``, ``-timestamp`` and ``-signature`` headers of one post of ``body``."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(key).sign(message_id, at, body),
    }
