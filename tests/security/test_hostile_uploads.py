"""The classic attacks on an upload endpoint, each through the live gateway: never a 5xx, never a
file or network read on the attacker's behalf, never unbounded buffering, nothing stored."""

import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from testkit import wavcorpus
from testkit.live import leftovers, wait_until
from testkit.problems import assert_problem
from tests.security.targets import MAX_UPLOAD_BYTES, Canary, Hardened

BOUNDARY = "hostileboundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
# How far a hostile stream may go before the gateway must have answered: a few times the limits.
STREAM_BUDGET = 64 * 1024 * 1024


def part(name: str, body: bytes, *, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n"
    return head.encode() + body + b"\r\n"


def form(user: dict[str, str], wav: bytes, *, filename: str = "take.wav") -> bytes:
    return (
        part("user", user["id"].encode())
        + part("token", user["token"].encode())
        + part("file", wav, filename=filename)
        + f"--{BOUNDARY}--\r\n".encode()
    )


def upload(hardened: Hardened, user: dict[str, str], wav: bytes) -> httpx.Response:
    with hardened.client() as client:
        return client.post(
            "/record",
            data={"user": user["id"], "token": user["token"]},
            files={"file": ("take.wav", wav, "audio/wav")},
        )


def assert_nothing_left(hardened: Hardened, user: dict[str, str]) -> None:
    assert hardened.gateway.record_count(user["id"]) == 0
    assert hardened.gateway.object_keys(user["id"]) == []
    wait_until(lambda: leftovers(hardened.tmp) == [], what="temp files removed")


class Endless:
    """A request body that starts with ``head`` and then repeats ``filler`` until cut off."""

    def __init__(self, head: bytes, filler: bytes) -> None:
        self.head, self.filler, self.sent = head, filler, 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        while self.sent < STREAM_BUDGET * 4:
            self.sent += len(self.filler)
            yield self.filler


def post_endless(hardened: Hardened, body: Endless) -> httpx.Response | None:
    """Stream ``body`` (chunked, no length); None when the gateway cut the connection instead."""
    with hardened.client() as client:
        try:
            return client.post("/record", content=iter(body), headers=MULTIPART)
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
            return None


def assert_refused_early(
    hardened: Hardened, user: dict[str, str], body: Endless, status: int
) -> None:
    response = post_endless(hardened, body)
    if response is not None:
        assert_problem(response, status)
    assert body.sent < STREAM_BUDGET, "the gateway kept reading a hostile stream"
    assert_nothing_left(hardened, user)
    with hardened.client() as client:
        assert client.get("/healthz").status_code == 200


# --- disguised playlists: ffmpeg must never follow a reference --------------------------------


def playlists(canary: Canary, secret: Path) -> dict[str, bytes]:
    return {
        "hls": (
            f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{canary.url}/hls.ts\n"
            f"#EXTINF:10,\nfile://{secret}\n#EXT-X-ENDLIST\n"
        ).encode(),
        "ffconcat": (
            f"ffconcat version 1.0\nfile '{secret}'\nfile '{canary.url}/concat.wav'\n"
        ).encode(),
        "concat_protocol": f"concat:{secret}|{canary.url}/proto.wav\n".encode(),
    }


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A readable 5-second WAV: were it followed, the MP3 would last 5 s."""
    path = tmp_path_factory.mktemp("secret") / "secret.wav"
    path.write_bytes(wavcorpus.pcm(5.0, 8000, 1))
    return path


@pytest.mark.parametrize("kind", ["hls", "ffconcat", "concat_protocol"])
def test_a_playlist_sent_as_a_wav_is_415_and_nothing_is_fetched(
    hardened: Hardened, canary: Canary, secret: Path, kind: str
) -> None:
    user = hardened.new_user()
    assert_problem(upload(hardened, user, playlists(canary, secret)[kind]), 415)
    assert canary.hits == []
    assert_nothing_left(hardened, user)


@pytest.mark.parametrize("kind", ["hls", "ffconcat", "concat_protocol"])
def test_a_playlist_inside_a_wav_is_decoded_as_samples_never_followed(
    hardened: Hardened, canary: Canary, secret: Path, kind: str
) -> None:
    user = hardened.new_user()
    text = playlists(canary, secret)[kind]
    fmt = wavcorpus.fmt_chunk(wavcorpus.WAVE_FORMAT_PCM, 1, 8000, 16)
    for wav in (
        wavcorpus.riff(fmt, wavcorpus.chunk(b"data", text)),
        wavcorpus.riff(wavcorpus.chunk(b"LIST", text), fmt, wavcorpus.chunk(b"data", text * 50)),
    ):
        response = upload(hardened, user, wav)
        assert response.status_code in (201, 422), response.text
        if response.status_code == 201:
            assert response.json()["duration_seconds"] < 1.0  # its own bytes, not the secret's
    assert canary.hits == []
    assert_problem(upload(hardened, user, wavcorpus.riff_then_hls()), 422)


# --- sizes that lie -----------------------------------------------------------------------------


def test_a_header_claiming_gigabytes_of_audio_is_refused_before_encoding(
    hardened: Hardened,
) -> None:
    user = hardened.new_user()
    samples = wavcorpus.encode_pcm(wavcorpus.samples(0.5, 44100, 2), 16)
    fmt = wavcorpus.fmt_chunk(wavcorpus.WAVE_FORMAT_PCM, 2, 44100, 16)
    four_gb = wavcorpus.riff(fmt, wavcorpus.chunk(b"data", samples, size=0xFFFFFFF0))
    ds64 = wavcorpus.chunk(b"ds64", struct.pack("<QQQI", 1 << 62, 1 << 62, 1 << 60, 0))
    rf64 = (
        b"RF64\xff\xff\xff\xffWAVE"
        + ds64
        + fmt
        + wavcorpus.chunk(b"data", samples, size=0xFFFFFFFF)
    )
    huge_fmt = wavcorpus.riff(wavcorpus.chunk(b"fmt ", bytes(64), size=0xFFFFFFF0))
    huge_list = wavcorpus.riff(wavcorpus.chunk(b"LIST", bytes(64), size=0x7FFFFFFF))
    for wav in (four_gb, rf64, huge_fmt, huge_list):
        assert_problem(upload(hardened, user, wav), 422)
    assert_nothing_left(hardened, user)


# --- hostile multipart --------------------------------------------------------------------------


def test_thousands_of_form_parts_are_422_and_read_no_further(hardened: Hardened) -> None:
    user = hardened.new_user()
    head = part("user", user["id"].encode()) + part("token", user["token"].encode())
    assert_refused_early(hardened, user, Endless(head, part("x", b"1") * 1000), 422)


def test_a_huge_form_field_is_422_without_being_buffered(hardened: Hardened) -> None:
    user = hardened.new_user()
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="user"\r\n\r\n'.encode()
    assert_refused_early(hardened, user, Endless(head, b"7" * 65536), 422)


def test_a_huge_file_part_is_413_without_being_read(hardened: Hardened) -> None:
    user = hardened.new_user()
    head = (
        part("user", user["id"].encode())
        + (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        ).encode()
    )
    assert_refused_early(hardened, user, Endless(head, bytes(65536)), 413)


def test_an_endless_part_header_is_422_without_being_buffered(hardened: Hardened) -> None:
    user = hardened.new_user()
    head = (
        part("user", user["id"].encode())
        + (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="').encode()
    )
    assert_refused_early(hardened, user, Endless(head, b"a" * 65536), 422)


def test_a_flood_of_part_headers_is_422(hardened: Hardened) -> None:
    user = hardened.new_user()
    head = part("user", user["id"].encode()) + f"--{BOUNDARY}\r\n".encode()
    assert_refused_early(hardened, user, Endless(head, b"X-Flood: 1\r\n" * 5000), 422)


def test_a_very_long_file_name_is_kept_bounded_and_served_as_a_safe_header(
    hardened: Hardened,
) -> None:
    user = hardened.new_user()
    name = "é" * 1500 + ".wav"  # 3000 bytes of UTF-8: long, but within the part-header limit
    with hardened.client() as client:
        response = client.post(
            "/record",
            content=form(user, wavcorpus.pcm(0.2, 8000, 1), filename=name),
            headers=MULTIPART,
        )
        assert response.status_code == 201, response.text
        download = client.get(response.json()["url"])
    assert download.status_code == 200
    disposition = download.headers["Content-Disposition"]
    assert disposition.isascii()
    assert len(disposition) < 16 * 1024


@pytest.mark.parametrize(
    "filename",
    [
        "../../../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/var/lib/riffle/objects/x.wav",
        "recordings/other-user/other-record.mp3",
        "%2e%2e%2f%2e%2e%2fx.wav",
        "a\x00b.wav",
        'quote".wav',
        "semi;colon=x.wav",
    ],
)
def test_path_characters_in_file_names_never_reach_storage_or_headers(
    hardened: Hardened, filename: str
) -> None:
    user = hardened.new_user()
    with hardened.client() as client:
        response = client.post(
            "/record",
            data={"user": user["id"], "token": user["token"]},
            files={"file": (filename, wavcorpus.pcm(0.2, 8000, 1), "audio/wav")},
        )
        assert response.status_code == 201, response.text
        record = response.json()
        download = client.get(record["url"])
    assert hardened.gateway.object_keys(user["id"]) == [
        f"recordings/{user['id']}/{record['id']}.mp3",
        f"recordings/{user['id']}/{record['id']}.peaks",
    ]
    disposition = download.headers["Content-Disposition"]
    ascii_name = re.search(r'filename="([^"]*)"', disposition)
    assert ascii_name is not None
    assert "/" not in ascii_name[1]
    assert "\\" not in ascii_name[1]
    assert not re.search(r"[\x00-\x1f\x7f]", disposition)


# --- the HTTP layer -----------------------------------------------------------------------------


def raw_request(url: str, request: bytes) -> bytes:
    """Send ``request`` as is; return what came back before the server closed (or b"")."""
    parts = urlsplit(url)
    answer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        try:
            connection.sendall(request)
            while chunk := connection.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    return answer


def status_of(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


@pytest.mark.parametrize(
    "headers",
    [
        b"".join(b"X-Flood-%d: %s\r\n" % (i, b"v" * 64) for i in range(10_000)),
        b"X-Huge: " + b"h" * (1024 * 1024) + b"\r\n",
        b"Cookie: " + b"c=1; " * 200_000 + b"\r\n",
    ],
    ids=["ten-thousand-headers", "one-megabyte-header", "huge-cookie"],
)
def test_a_flood_of_request_headers_is_refused_and_the_server_stays_up(
    hardened: Hardened, headers: bytes
) -> None:
    url = hardened.gateway.url
    answer = raw_request(url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    status = status_of(answer)
    assert status is None or 400 <= status < 500, answer[:200]
    with hardened.client() as client:
        assert client.get("/healthz").status_code == 200


def test_uploads_up_to_the_limit_still_work_after_all_of_the_above(hardened: Hardened) -> None:
    user = hardened.new_user()
    wav = wavcorpus.pcm(10.0, 44100, 2)
    assert len(wav) < MAX_UPLOAD_BYTES
    response = upload(hardened, user, wav)
    assert response.status_code == 201, response.text
    wait_until(lambda: leftovers(hardened.tmp) == [], what="temp files removed")
