"""Webhook secrets and signatures, checked with the Standard Webhooks library a site would use."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.webhook_signing import new_secret, parse_secret, signed_headers


def test_a_new_secret_is_read_back_with_or_without_its_prefix() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    assert len(parse_secret(secret)) == 32
    assert parse_secret(secret) == parse_secret(secret.removeprefix("whsec_"))


def test_a_secret_written_without_its_base64_padding_is_read_as_the_library_reads_it() -> None:
    unpadded = "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("=")
    assert parse_secret(unpadded) == b"k" * 32
    body = '{"type": "comment.approved"}'
    headers = signed_headers(parse_secret(unpadded), "msg_1", datetime.now(UTC), body)
    assert Webhook(unpadded).verify(body, headers) == {"type": "comment.approved"}


@pytest.mark.parametrize("size", [24, 64])
def test_a_secret_of_24_or_64_bytes_is_accepted(size: int) -> None:
    assert parse_secret("whsec_" + base64.b64encode(b"k" * size).decode()) == b"k" * size


def test_a_secret_read_with_surrounding_whitespace_is_trimmed() -> None:
    secret = new_secret()
    assert parse_secret(f"  {secret}\n") == parse_secret(secret)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "23 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "65 bytes"),
        ("whsec_%%%", "not base64"),
        ("", "0 bytes"),
    ],
)
def test_a_weak_or_garbled_secret_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_secret(raw)


def test_a_signed_post_verifies_and_an_altered_one_does_not() -> None:
    secret = new_secret()
    body = '{"type": "comment.approved", "data": {"id": 7}}'
    headers = signed_headers(parse_secret(secret), "msg_7", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers) == {"type": "comment.approved", "data": {"id": 7}}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("7", "8"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
