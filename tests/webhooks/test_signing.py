"""Deliveries are signed so that the README's receiver (``standardwebhooks``) verifies them."""

import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.models.base import utc_now
from gateway.webhooks.delivery import signed_headers
from gateway.webhooks.service import new_secret


def test_a_signed_delivery_verifies_and_a_tampered_one_does_not() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    payload = json.dumps({"type": "record.created", "timestamp": "…", "data": {"id": "x"}})
    headers = signed_headers(secret=secret, webhook_id="msg_1", payload=payload, at=utc_now())
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(payload.encode(), headers) == json.loads(payload)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(payload.replace("x", "y").encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(payload.encode(), headers)
