"""Expiration: an upload with no new bytes for UPLOAD_EXPIRES_SECONDS answers 410, and the
workers' periodic sweep (every UPLOAD_SWEEP_SECONDS) removes its rows and chunk objects."""

import httpx
import pytest

from testkit.gateways import BACKENDS, GatewayFactory
from testkit.live import wait_until
from tests.uploads.tus import (
    METHODS,
    TUS,
    WAV,
    assert_refused,
    bearer,
    create,
    head,
    new_user,
    patch,
    request,
    upload_id,
    upload_keys,
    upload_rows,
)


def expired(client: httpx.Client, location: str, user: dict[str, str]) -> bool:
    return head(client, location, user).status_code == 410


def test_an_expired_upload_is_410_to_every_method(start_gateway: GatewayFactory) -> None:
    # The sweep runs at start-up, then not for a minute: the expired upload stays to be seen.
    # (One back-end: expiry is decided in Python; the sweep's SQL is tested on both below.)
    with (
        start_gateway("sqlite+folder", UPLOAD_EXPIRES_SECONDS="1") as gateway,
        gateway.client() as client,
    ):
        user = new_user(client)
        location = create(client, user, length=len(WAV), body=WAV[:100]).headers["Location"]
        fresh = head(client, location, user)
        assert fresh.status_code == 200
        wait_until(lambda: expired(client, location, user), seconds=5, what="the upload expires")
        for method in METHODS:
            headers = {**TUS, **bearer(user)}
            assert_refused(request(client, method, location, headers, offset=100, body=WAV), 410)
        assert upload_rows(gateway, upload_id(location))["uploads"] == 1  # not swept yet


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_sweep_removes_expired_uploads_rows_and_objects(
    start_gateway: GatewayFactory, backend: str
) -> None:
    with (
        start_gateway(backend, UPLOAD_EXPIRES_SECONDS="1", UPLOAD_SWEEP_SECONDS="0.2") as gateway,
        gateway.client() as client,
    ):
        user = new_user(client)
        location = create(client, user, length=len(WAV), body=WAV[:100]).headers["Location"]
        assert patch(client, location, user, offset=100, body=WAV[100:200]).status_code == 204
        upload = upload_id(location)
        assert len(upload_keys(gateway, upload)) == 2
        assert upload_rows(gateway, upload) == {"uploads": 1, "upload_chunks": 2}

        def swept() -> bool:
            return upload_rows(gateway, upload)["uploads"] == 0

        wait_until(swept, seconds=10, what="the sweep removes the upload")
        assert upload_rows(gateway, upload) == {"uploads": 0, "upload_chunks": 0}
        assert upload_keys(gateway, upload) == []
        assert_refused(head(client, location, user), 404)
