"""Fast downloads (servicekit/zerocopy.py), on live servers: the gateway's folder store sends
MP3s with sendfile(2) under ``ZeroCopyH11Protocol``, byte for byte what the streamed path sends,
and its S3 store relays them from one worker thread; the protocol itself keeps HTTP's framing
whatever the app asks of it, and lets go of a client that stops reading a relay."""

import base64
import contextlib
import datetime
import hashlib
import random
import socket
import ssl
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from servicekit.supervisor import GATEWAY_UVICORN_OPTIONS
from testkit.api import new_user
from testkit.gateways import backend
from testkit.live import GATEWAY_APP, LiveServer, running
from testkit.procfs import bytes_written, is_running
from testkit.s3 import S3Endpoint
from testkit.wavcorpus import pcm

# Two minutes of mono at 320 kbit/s: a 4.8 MB MP3, more than loopback's socket buffers hold.
WAV = pcm(120.0, 44100, 1)
SPAN_APP = "tests.fixtures.zerocopy_app:create_app"


@contextlib.contextmanager
def folder_gateway(
    postgres_url: str,
    s3_endpoint: S3Endpoint,
    transcoder_url: str,
    *,
    zero_copy: bool,
    output: Path | None = None,
) -> Iterator[tuple[LiveServer, Path]]:
    """A live gateway on SQLite and a folder, with riffle's protocol or uvicorn's own; yields it
    and the objects folder. ``output``: where its stdout and stderr go."""
    with backend("sqlite+folder", postgres_url=postgres_url, s3_endpoint=s3_endpoint) as chosen:
        env = {"TRANSCODER_URL": transcoder_url, **chosen.settings}
        objects = Path(chosen.settings["STORAGE_URL"].removeprefix("file://"))
        with running(GATEWAY_APP, env, output=output, plain=not zero_copy) as server:
            yield server, objects


def stored_mp3(client: httpx.Client) -> tuple[str, bytes]:
    """A new record's download URL and its MP3."""
    user = new_user(client)
    fields = {"user": user["id"], "token": user["token"], "bitrate": "320"}
    created = client.post("/record", data=fields, files={"file": ("take.wav", WAV, "audio/wav")})
    assert created.status_code == 201, created.text
    url: str = created.json()["url"]
    return url, client.get(url).content


@pytest.mark.parametrize("zero_copy", [True, False], ids=["zerocopy", "streamed"])
def test_folder_downloads_leave_by_sendfile_only_under_the_protocol_and_are_the_same_bytes(
    postgres_url: str, s3_endpoint: S3Endpoint, transcoder_url: str, zero_copy: bool
) -> None:
    gateway = folder_gateway(postgres_url, s3_endpoint, transcoder_url, zero_copy=zero_copy)
    with gateway as (server, objects), httpx.Client(base_url=server.url, timeout=60) as client:
        url, first = stored_mp3(client)
        (on_disk,) = objects.rglob("*.mp3")
        assert first == on_disk.read_bytes()
        size = len(first)
        assert size > 4_000_000
        before = bytes_written(server.pid)
        whole = client.get(url)
        written = bytes_written(server.pid) - before
        # sendfile(2) counts as written; a socket's send(2), uvicorn's way, does not.
        if zero_copy:
            assert written >= size
        else:
            assert written < size / 10
        assert whole.status_code == 200
        assert whole.content == first
        assert whole.headers["Content-Length"] == str(size)
        for asked, start, end in [
            ("bytes=0-0", 0, 0),
            ("bytes=1000-2000999", 1000, 2000999),
            ("bytes=-417", size - 417, size - 1),
            (f"bytes={size - 1}-", size - 1, size - 1),
        ]:
            part = client.get(url, headers={"Range": asked})
            assert part.status_code == 206
            assert part.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
            assert part.content == first[start : end + 1]
        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(size)
        assert head.content == b""
        etag = whole.headers["ETag"]
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
        # The connection is still in step: a keep-alive request after all of them.
        assert client.get(url, headers={"Range": "bytes=0-3"}).content == first[:4]


def test_a_client_gone_mid_file_and_a_file_shorter_than_its_row_end_only_their_connections(
    postgres_url: str, s3_endpoint: S3Endpoint, transcoder_url: str, tmp_path: Path
) -> None:
    logs = tmp_path / "gateway.log"
    gateway = folder_gateway(postgres_url, s3_endpoint, transcoder_url, zero_copy=True, output=logs)
    with gateway as (server, objects), httpx.Client(base_url=server.url, timeout=60) as client:
        url, mp3 = stored_mp3(client)
        # A client that reads 64 KiB of 4.8 MB and hangs up: the gateway's sendfile is mid-file.
        host, port = server.url.removeprefix("http://").split(":")
        target = url.removeprefix(server.url)
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            received = b""
            while len(received) < 65536 and (chunk := raw.recv(65536)):
                received += chunk
            assert received.startswith(b"HTTP/1.1 200 "), received[:200]
            assert len(received) >= 65536
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        time.sleep(0.5)
        assert is_running(server.pid)
        assert client.get(url).content == mp3
        # The object cut short behind the gateway's back: the answer ends early, never hangs,
        # and never carries bytes that are not the file's.
        (on_disk,) = objects.rglob("*.mp3")
        on_disk.write_bytes(mp3[:100_000])
        with (
            httpx.Client(base_url=server.url, timeout=10) as other,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            other.get(url)
        on_disk.write_bytes(mp3)
        assert client.get(url).content == mp3
    # Neither is an error of the gateway's: nothing was raised into the app or logged.
    assert "Traceback" not in logs.read_text()


def test_s3_downloads_through_the_relay_are_the_stored_mp3_whole_and_in_ranges(
    postgres_url: str, s3_endpoint: S3Endpoint, transcoder_url: str
) -> None:
    with backend("postgres+s3", postgres_url=postgres_url, s3_endpoint=s3_endpoint) as chosen:
        env = {"TRANSCODER_URL": transcoder_url, **chosen.settings}
        with (
            running(GATEWAY_APP, env) as server,
            httpx.Client(base_url=server.url, timeout=60) as client,
        ):
            url, first = stored_mp3(client)
            size = len(first)
            digest = base64.b64encode(hashlib.sha256(first).digest()).decode()
            whole = client.get(url)
            assert whole.headers["Repr-Digest"] == f"sha-256=:{digest}:"  # the stored bytes
            assert whole.content == first
            assert whole.headers["Content-Length"] == str(size)
            for asked, start, end in [("bytes=0-0", 0, 0), ("bytes=1000-2000999", 1000, 2000999)]:
                part = client.get(url, headers={"Range": asked})
                assert part.status_code == 206
                assert part.content == first[start : end + 1]
            assert client.head(url).content == b""
            # Still in step: another request on the same connection after the relays.
            assert client.get(url, headers={"Range": "bytes=0-3"}).content == first[:4]


@pytest.fixture(scope="module")
def span_server() -> Iterator[str]:
    """The protocol serving tests/fixtures/zerocopy_app.py."""
    with running(SPAN_APP, {}, uvicorn_args=GATEWAY_UVICORN_OPTIONS) as server:
        yield server.url


@pytest.fixture(scope="module")
def random_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    content = random.Random(7).randbytes(3_000_000)
    path = tmp_path_factory.mktemp("spans") / "random.bin"
    path.write_bytes(content)
    return path, content


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ({"offset": 1000, "count": 2_000_000, "length": 2_000_000}, slice(1000, 2_001_000)),
        ({"offset": 5, "count": 2_999_995}, slice(5, None)),  # no Content-Length: chunked
        ({"seek": 1000, "length": 2_999_000}, slice(1000, None)),  # the file's position, to EOF
        ({"offset": 10, "count": 100, "then": 50, "length": 150}, slice(10, 160)),  # two parts
        ({"offset": 10, "count": 0, "length": 0}, slice(0, 0)),
    ],
    ids=["span", "chunked", "defaults", "two-parts", "empty"],
)
def test_the_protocol_sends_the_span_asked_for_framed_as_http_wants(
    span_server: str,
    random_file: tuple[Path, bytes],
    query: dict[str, int],
    wanted: slice,
) -> None:
    path, content = random_file
    with httpx.Client(base_url=span_server, timeout=30) as client:
        response = client.get("/file", params={"path": str(path), **query})
        assert response.status_code == 200
        assert response.content == content[wanted]
        if "length" not in query:
            assert response.headers["Transfer-Encoding"] == "chunked"
        head = client.head("/file", params={"path": str(path), **query})
        assert head.status_code == 200
        assert head.content == b""
        # Still in step with HTTP: the connection serves another request.
        again = client.get(
            "/file", params={"path": str(path), "offset": 0, "count": 3, "length": 3}
        )
        assert again.content == content[:3]


def test_without_the_protocol_the_extension_is_not_offered() -> None:
    with running(SPAN_APP, {}) as plain:
        assert httpx.get(f"{plain.url}/file", params={"path": "/dev/null"}).status_code == 501


@pytest.fixture(scope="module")
def plain_span_server() -> Iterator[str]:
    """uvicorn's own protocol serving the same app: no extension offered."""
    with running(SPAN_APP, {}) as server:
        yield server.url


@pytest.mark.parametrize("relayed", [True, False], ids=["relayed", "streamed"])
@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ({"count": 3_000_000}, slice(None)),
        ({"count": 1_000_000, "give": 3_000_000}, slice(1_000_000)),
        ({"count": 0}, slice(0)),
    ],
    ids=["whole", "more-given-than-counted", "empty"],
)
def test_a_relay_sends_the_count_asked_for_framed_as_http_wants(
    span_server: str,
    plain_span_server: str,
    random_file: tuple[Path, bytes],
    relayed: bool,
    query: dict[str, int],
    wanted: slice,
) -> None:
    path, content = random_file
    url = span_server if relayed else plain_span_server
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.get("/relay", params={"path": str(path), **query})
        assert response.status_code == 200
        assert response.content == content[wanted]
        assert response.headers["Content-Length"] == str(query["count"])
        head = client.head("/relay", params={"path": str(path), **query})
        assert (head.status_code, head.content) == (200, b"")
        again = client.get("/relay", params={"path": str(path), "count": 3})
        assert again.content == content[:3]


def test_a_relay_whose_chunks_end_short_ends_only_its_connection(
    span_server: str, random_file: tuple[Path, bytes]
) -> None:
    path, content = random_file
    short: dict[str, str | int] = {"path": str(path), "count": 3_000_000, "give": 100_000}
    with httpx.Client(base_url=span_server, timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/relay", params=short)
        assert client.get("/relay", params={"path": str(path), "count": 5}).content == content[:5]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 MB (a sparse file): far more than the socket buffers on both sides hold."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    with path.open("wb") as file:
        file.truncate(200_000_000)
    return path


@pytest.mark.parametrize("route", ["relay", "file"])
def test_a_client_that_stops_reading_is_let_go_after_the_stall_bound(
    span_server: str, big_file: Path, route: str
) -> None:
    count = big_file.stat().st_size
    host, port = span_server.removeprefix("http://").split(":")
    target = f"/{route}?path={big_file}&count={count}&length={count}&stall=1"
    with socket.create_connection((host, int(port)), timeout=15) as raw:
        raw.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        received = len(head := raw.recv(65536))
        assert head.startswith(b"HTTP/1.1 200 "), head[:200]
        time.sleep(3)  # reads nothing: the buffers fill, the server waits 1 s and gives up
        while chunk := raw.recv(1 << 20):  # what the buffers held, then the end: no hang
            received += len(chunk)
    assert received < count / 4
    # A client that reads on gets every byte of the same answer: the stall was what ended it.
    asked: dict[str, str | int] = {"path": str(big_file), "count": count, "length": count}
    with (
        httpx.Client(base_url=span_server, timeout=10) as client,
        client.stream("GET", f"/{route}", params={**asked, "stall": 1}) as whole,
    ):
        assert sum(len(chunk) for chunk in whole.iter_raw(1 << 20)) == count


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A key and a certificate for 127.0.0.1, made here."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_under_tls_a_relay_is_streamed_through_the_tls_transport(
    tmp_path: Path, random_file: tuple[Path, bytes]
) -> None:
    # Written to the bare socket, the relay would send plaintext inside a TLS connection.
    path, content = random_file
    key, cert = self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    with (
        running(SPAN_APP, {}, uvicorn_args=GATEWAY_UVICORN_OPTIONS, tls=(key, cert)) as server,
        httpx.Client(base_url=server.url, verify=trusted, timeout=10) as client,
    ):
        assert server.url.startswith("https://")
        relayed = client.get("/relay", params={"path": str(path), "count": len(content)})
        assert relayed.content == content
        sent = client.get("/file", params={"path": str(path), "length": len(content)})
        assert sent.content == content  # sendfile under TLS: asyncio copies through TLS itself
