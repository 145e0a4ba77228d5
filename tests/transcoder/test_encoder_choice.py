"""CBR at every MPEG-1 rate, VBR at -V0…-V9 (exact Xing/LAME header), and the options' 422s."""

import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servicekit.audio_options import CBR_KBPS, AudioOptions
from servicekit.errors import InvalidInput
from testkit import problems, wavcorpus
from transcoder import mp3

SECONDS = 0.5


@pytest.fixture(scope="module")
def client(transcoder_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=transcoder_url, timeout=60) as http:
        yield http


def decoded_frames(data: bytes) -> int:
    """Samples per channel that ffmpeg's decoder yields (gapless, from the LAME tag: from a
    file, as players read it; from a pipe ffmpeg skips the Info frame's delay and padding)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.mp3"
        path.write_bytes(data)
        raw = subprocess.run(
            [
                wavcorpus.ffmpeg_exe(),
                "-v",
                "error",
                "-i",
                str(path),
                "-f",
                "s16le",
                "-ac",
                "1",
                "-",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    return len(raw) // 2


def toc(data: bytes) -> bytes:
    """The Xing header's 100-byte seek table (asserting that the header has one)."""
    start = mp3.id3v2_size(data[:10])
    frame = mp3.parse_frame_header(data[start : start + 4])
    xing = start + 4 + frame.side_info_bytes
    assert data[xing : xing + 4] == b"Xing"
    (flags,) = struct.unpack_from(">I", data, xing + 4)
    assert flags & 7 == 7  # frames, bytes, TOC
    return data[xing + 16 : xing + 116]


@pytest.mark.parametrize("kbps", CBR_KBPS)
def test_every_cbr_rate_is_what_the_frames_say(client: httpx.Client, kbps: int) -> None:
    response = client.post("/transcode", params={"bitrate": kbps}, content=wavcorpus.pcm(SECONDS))
    assert response.status_code == 200, response.text
    info = mp3.parse(response.content)
    assert info.bitrate == kbps * 1000
    assert response.headers["x-audio-mode"] == "cbr"
    assert response.headers["x-audio-bitrate-kbps"] == str(kbps)
    assert info.sample_count == decoded_frames(response.content) == round(SECONDS * 44100)


@pytest.mark.parametrize("quality", range(10))
def test_every_vbr_quality_keeps_an_exact_xing_header(client: httpx.Client, quality: int) -> None:
    rate = 44100
    wav = wavcorpus.pcm(2.0, rate)
    response = client.post("/transcode", params={"quality": quality}, content=wav)
    assert response.status_code == 200, response.text
    data = response.content
    info = mp3.parse(data)  # the LAME tag's CRC is checked here
    assert response.headers["x-audio-mode"] == "vbr"
    assert int(response.headers["x-audio-bitrate-kbps"]) == round(info.bitrate / 1000)
    # Frame count, delay and padding exact: the decoder yields every input sample, no more.
    assert info.sample_count == round(2.0 * rate)
    assert abs(decoded_frames(data) - 2.0 * rate) <= 0.1 * rate
    assert decoded_frames(data) == info.sample_count
    table = toc(data)
    assert list(table) == sorted(table)
    assert table[0] == 0


def test_vbr_quality_orders_the_average_rate(client: httpx.Client) -> None:
    wav = wavcorpus.pcm(2.0)
    rates = [
        int(
            client.post("/transcode", params={"quality": q}, content=wav).headers[
                "x-audio-bitrate-kbps"
            ]
        )
        for q in (0, 9)
    ]
    assert rates[0] > rates[1]


def test_below_32_khz_cbr_is_capped_at_160(client: httpx.Client) -> None:
    response = client.post(
        "/transcode", params={"bitrate": 320}, content=wavcorpus.pcm(SECONDS, 22050)
    )
    assert response.status_code == 200, response.text
    assert mp3.parse(response.content).bitrate == 160_000
    assert response.headers["x-audio-bitrate-kbps"] == "160"


@pytest.mark.parametrize(
    ("params", "locs"),
    [
        ({"bitrate": 128, "quality": 2}, [["query", "quality"]]),
        ({"bitrate": 100}, [["query", "bitrate"]]),
        ({"quality": 10}, [["query", "quality"]]),
        ({"quality": "-1"}, [["query", "quality"]]),
        ({"title": "x" * 256, "artist": "a\x07"}, [["query", "title"], ["query", "artist"]]),
    ],
)
def test_bad_options_are_422_with_their_locs(
    client: httpx.Client, params: dict[str, str | int], locs: list[list[str]]
) -> None:
    response = client.post("/transcode", params=params, content=wavcorpus.pcm(0.1))
    body = problems.assert_problem(response, 422, request_id=False)
    assert [error["loc"] for error in body["errors"]] == locs


def test_options_parse_from_any_mapping() -> None:
    options = AudioOptions.from_fields({"quality": " 3 ", "title": "  T  ", "user": "x"}, loc=())
    assert (options.mode, options.quality, options.tags()) == ("vbr", 3, {"title": "T"})
    assert AudioOptions.from_fields({"bitrate": "192k"}, loc=()).bitrate_kbps == 192
    assert AudioOptions.from_fields({}, loc=()).mode is None
    assert AudioOptions.from_fields(options.as_fields(), loc=()) == options
    with pytest.raises(InvalidInput) as raised:
        AudioOptions.from_fields({"bitrate": "128", "quality": "2"}, loc=("metadata",))
    assert raised.value.errors == [
        {
            "loc": ["metadata", "quality"],
            "msg": "give either bitrate (CBR) or quality (VBR), not both",
        }
    ]
