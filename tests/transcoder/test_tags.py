"""ID3v2.4 tags from the request, LIST/INFO, bext and iXML, on a live transcoder; read back
with mutagen and with libavformat (ffprobe, or ffmpeg's ffmetadata writer where it is absent)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mutagen.id3 import ID3

from testkit import audiotags, wavcorpus
from testkit.audiotags import bext_chunk, info_chunk, ixml_chunk, tagged_wav
from transcoder import mp3

INFO = info_chunk(
    {
        b"INAM": b"Morning Take\0",
        b"IART": b"Alice\0\0\0",  # NUL-padded
        b"IPRD": b"Field Notes\0",
        b"ICMT": b"Birds, then rain\0",
        b"ICRD": b"2026-11-27\0",
        b"IGNR": b"Ambient\0",
        b"ITRK": b"3\0",
    }
)
BEXT = bext_chunk(
    description=b"Wind in the pines",
    originator=b"Zoom F8",
    date=b"2026-10-01",
    time=b"07:15:30",
)
IXML = ixml_chunk(project="Forest", scene="12A", take="3", note="boom mic")
EVERYTHING = {
    "title": "Morning Take",
    "artist": "Alice",
    "album": "Field Notes",
    "comment": "Birds, then rain",
    "date": "2026-11-27",
    "genre": "Ambient",
    "track": "3",
}


@pytest.fixture(scope="module")
def client(transcoder_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=transcoder_url, timeout=60) as http:
        yield http


def transcode(
    client: httpx.Client, wav: bytes, tmp_path: Path, **params: str | int
) -> tuple[Path, httpx.Response]:
    response = client.post("/transcode", content=wav, params=params)
    assert response.status_code == 200, response.text
    path = tmp_path / "out.mp3"
    path.write_bytes(response.content)
    return path, response


def assert_tags(path: Path, expected: dict[str, str]) -> None:
    """The same text through mutagen (frame by frame) and through libavformat."""
    frames = {
        "title": "TIT2",
        "artist": "TPE1",
        "album": "TALB",
        "comment": "COMM::und",
        "date": "TDRC",
        "genre": "TCON",
        "track": "TRCK",
    }
    found = audiotags.mutagen_tags(path)
    assert found == {frames[name]: [value] for name, value in expected.items()}
    if expected:
        assert ID3(path).version == (2, 4, 0)  # type: ignore[no-untyped-call]
    probed = audiotags.probe_tags(path)
    for name, value in expected.items():
        assert probed[name] == value, (name, probed)
    assert not {"encoder", "encoded_by", "tsse"} & set(probed)


def assert_no_version_strings(path: Path) -> None:
    data = path.read_bytes()
    for needle in (b"Lavf", b"Lavc", b"TSSE", b"LAME3", b"libmp3lame"):
        assert needle not in data, needle
    info = mp3.parse(data)  # the LAME tag is still valid (CRC checked), delay and padding kept
    assert info.encoder == "LAME\0\0\0\0\0"


def test_list_info_becomes_every_tag(client: httpx.Client, tmp_path: Path) -> None:
    path, _ = transcode(client, tagged_wav(0.3, INFO), tmp_path)
    assert_tags(path, EVERYTHING)
    assert_no_version_strings(path)


def test_bext_gives_comment_artist_and_date_and_nothing_raw(
    client: httpx.Client, tmp_path: Path
) -> None:
    path, _ = transcode(client, tagged_wav(0.3, BEXT), tmp_path)
    assert_tags(
        path,
        {"artist": "Zoom F8", "comment": "Wind in the pines", "date": "2026-10-01T07:15:30"},
    )
    data = path.read_bytes()
    assert b"coding_history" not in data
    assert b"A=PCM" not in data
    assert b"REF0001" not in data


def test_bext_key_value_description_is_read_as_scene_and_take(
    client: httpx.Client, tmp_path: Path
) -> None:
    chunk = bext_chunk(description=b"sSCENE=7\r\nsTAKE=2\r\nsNOTE=wild track\r\n")
    path, _ = transcode(client, tagged_wav(0.3, chunk), tmp_path)
    assert_tags(path, {"title": "7-2", "comment": "wild track"})


def test_ixml_gives_title_album_and_comment(client: httpx.Client, tmp_path: Path) -> None:
    path, _ = transcode(client, tagged_wav(0.3, IXML), tmp_path)
    assert_tags(path, {"title": "12A-3", "album": "Forest", "comment": "boom mic"})


def test_info_wins_over_bext_and_ixml_field_by_field(client: httpx.Client, tmp_path: Path) -> None:
    only_title = info_chunk({b"INAM": b"From INFO\0"})
    path, _ = transcode(client, tagged_wav(0.3, only_title, BEXT, IXML), tmp_path)
    assert_tags(
        path,
        {
            "title": "From INFO",
            "artist": "Zoom F8",
            "album": "Forest",
            "comment": "Wind in the pines",
            "date": "2026-10-01T07:15:30",
        },
    )


@pytest.mark.parametrize("after_data", [False, True], ids=["before-data", "after-data"])
def test_all_three_are_read_before_or_after_the_audio(
    client: httpx.Client, tmp_path: Path, after_data: bool
) -> None:
    wav = tagged_wav(0.3, INFO, BEXT, IXML, after_data=after_data)
    path, _ = transcode(client, wav, tmp_path)
    assert_tags(path, EVERYTHING)


def test_no_metadata_means_no_tag_and_no_encoder_string(
    client: httpx.Client, tmp_path: Path
) -> None:
    path, _ = transcode(client, tagged_wav(0.3), tmp_path)
    assert not path.read_bytes().startswith(b"ID3")
    assert audiotags.probe_tags(path) == {}
    assert_no_version_strings(path)


def test_non_utf8_info_text_is_read_as_windows_1252(client: httpx.Client, tmp_path: Path) -> None:
    latin = info_chunk({b"INAM": "Café “live”".encode("cp1252") + b"\0", b"IART": "Zoë".encode()})
    path, _ = transcode(client, tagged_wav(0.3, latin), tmp_path)
    assert_tags(path, {"title": "Café “live”", "artist": "Zoë"})


def test_request_fields_override_the_wavs(client: httpx.Client, tmp_path: Path) -> None:
    path, response = transcode(
        client,
        tagged_wav(0.3, INFO, BEXT),
        tmp_path,
        title="Über Title",
        artist="Bob",
        comment="mine",
        quality=5,
    )
    assert_tags(path, {**EVERYTHING, "title": "Über Title", "artist": "Bob", "comment": "mine"})
    assert response.headers["x-audio-mode"] == "vbr"


def test_an_xml_bomb_in_ixml_is_ignored(client: httpx.Client, tmp_path: Path) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><BWFXML><NOTE>&b;</NOTE></BWFXML>'
    )
    path, _ = transcode(client, tagged_wav(0.3, wavcorpus.chunk(b"iXML", bomb)), tmp_path)
    assert audiotags.probe_tags(path) == {}
