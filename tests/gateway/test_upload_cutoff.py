"""POST /record over a real socket: a file or a declared length over MAX_UPLOAD_BYTES is a 413
before the body is read (in process, nothing would show that the rest went unread)."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from testkit.api import new_user, upload
from testkit.gateways import Gateway, GatewayFactory
from testkit.problems import assert_problem
from testkit.wavcorpus import pcm

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def limited(start_gateway: GatewayFactory) -> Iterator[Gateway]:
    """A live gateway taking uploads of at most ``LIMIT`` bytes."""
    with start_gateway(MAX_UPLOAD_BYTES=str(LIMIT)) as gateway:
        yield gateway


def test_a_file_over_the_limit_is_413_without_reading_the_rest(limited: Gateway) -> None:
    with limited.client() as client:
        user = new_user(client)
        too_big = pcm(2.0)  # ~350 kB
        assert len(too_big) > LIMIT
        assert_problem(upload(client, user, too_big, token=user["token"]), 413)
        # A streamed body far larger than the limit: the gateway answers without reading it all.
        sent = 0

        def endless() -> Any:
            nonlocal sent
            boundary = b"--b\r\n"
            head = (
                boundary
                + b'Content-Disposition: form-data; name="user"\r\n\r\n'
                + user["id"].encode()
                + b"\r\n"
                + boundary
                + b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
            )
            yield head
            while sent < 200 * 1024 * 1024:
                sent += 64 * 1024
                yield b"\0" * (64 * 1024)

        try:
            response = client.post(
                "/record",
                content=endless(),
                headers={"Content-Type": "multipart/form-data; boundary=b"},
            )
            assert_problem(response, 413)
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            pass  # the server may close the connection while we are still sending: also a cut-off
        assert sent < 50 * 1024 * 1024
        assert limited.record_count(user["id"]) == 0
        assert limited.object_keys(user["id"]) == []


def test_declared_length_over_the_limit_is_413_before_any_byte_is_read(limited: Gateway) -> None:
    with limited.client() as client:
        response = client.post(
            "/record",
            content=b"x" * (LIMIT + 100_000),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert_problem(response, 413)
