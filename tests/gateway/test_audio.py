"""Section 9 through a live gateway and transcoder, on both back-ends: encoder options, tags,
loudness, waveform peaks and Repr-Digest."""

import base64
import hashlib
import uuid
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest

from testkit import audiotags, wavcorpus
from testkit.api import new_user
from testkit.gateways import Gateway, assert_nothing_stored
from testkit.problems import assert_problem

# The fields peaks.js and wavesurfer.js read (audiowaveform's JSON, version 2).
PEAKS_SCHEMA = {
    "type": "object",
    "required": [
        "version",
        "channels",
        "sample_rate",
        "samples_per_pixel",
        "bits",
        "length",
        "data",
    ],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 2},
        "channels": {"enum": [1, 2]},
        "sample_rate": {"type": "integer", "minimum": 1},
        "samples_per_pixel": {"type": "integer", "minimum": 1},
        "bits": {"const": 8},
        "length": {"type": "integer", "minimum": 1},
        "data": {"type": "array", "items": {"type": "integer", "minimum": -128, "maximum": 127}},
    },
}
INFO = audiotags.info_chunk({b"INAM": b"From the WAV\0", b"IGNR": b"Field\0", b"ICRD": b"2026\0"})


def upload(client: httpx.Client, user: dict[str, str], wav: bytes, **fields: str) -> httpx.Response:
    return client.post(
        "/record",
        data={"user": user["id"], "token": user["token"], **fields},
        files={"file": ("take.wav", wav, "audio/wav")},
    )


def test_a_tagged_vbr_upload_reports_and_carries_its_tags_and_loudness(
    client: httpx.Client, tmp_path: Path
) -> None:
    user = new_user(client)
    wav = audiotags.tagged_wav(2.0, INFO)
    response = upload(client, user, wav, quality="2", artist="Alice", comment="take 3")
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["mode"] == "vbr"
    assert 32 <= record["bitrate_kbps"] <= 320
    assert record["tags"] == {
        "title": "From the WAV",
        "artist": "Alice",
        "comment": "take 3",
        "date": "2026",
        "genre": "Field",
    }
    reference_lufs, reference_peak = audiotags.ebur128_reference(wav)
    assert record["loudness"]["integrated_lufs"] == pytest.approx(reference_lufs, abs=0.5)
    assert record["loudness"]["true_peak_dbtp"] == pytest.approx(reference_peak, abs=0.5)
    path = tmp_path / "take.mp3"
    path.write_bytes(client.get(record["url"]).content)
    assert audiotags.mutagen_tags(path)["TIT2"] == ["From the WAV"]
    assert audiotags.probe_tags(path)["artist"] == "Alice"
    [listed] = client.get(
        f"/users/{user['id']}/records", headers={"Authorization": f"Bearer {user['token']}"}
    ).json()["items"]
    assert {key: listed[key] for key in ("mode", "bitrate_kbps", "tags", "loudness")} == {
        key: record[key] for key in ("mode", "bitrate_kbps", "tags", "loudness")
    }


def test_a_cbr_rate_is_kept(client: httpx.Client) -> None:
    user = new_user(client)
    record = upload(client, user, wavcorpus.pcm(0.5), bitrate="192").json()
    assert (record["mode"], record["bitrate_kbps"], record["tags"]) == ("cbr", 192, {})


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"bitrate": "128", "quality": "2"}, ["body", "quality"]),
        ({"bitrate": "100"}, ["body", "bitrate"]),
        ({"quality": "V2"}, ["body", "quality"]),
        ({"title": "t" * 256}, ["body", "title"]),
    ],
)
def test_bad_options_are_422_before_any_encode_and_store_nothing(
    gateway: Gateway, client: httpx.Client, fields: dict[str, str], loc: list[str]
) -> None:
    user = new_user(client)
    body = assert_problem(upload(client, user, wavcorpus.pcm(0.2), **fields), 422)
    assert [error["loc"] for error in body["errors"]] == [loc]
    assert_nothing_stored(gateway, user["id"])


def test_peaks_load_as_audiowaveform_json_and_match_the_input(client: httpx.Client) -> None:
    user = new_user(client)
    rate, seconds = 44100, 3.0
    wav = wavcorpus.pcm(seconds, rate, 2)
    record = upload(client, user, wav).json()
    query = {"id": record["id"], "user": user["id"]}
    peaks = client.get("/record/peaks", params=query)
    assert peaks.status_code == 200, peaks.text
    assert peaks.headers["Content-Type"] == "application/json"
    document = peaks.json()
    jsonschema.validate(document, PEAKS_SCHEMA)
    assert (document["channels"], document["sample_rate"]) == (2, rate)
    assert abs(document["length"] - 1000) <= 10
    assert len(document["data"]) == document["length"] * 2 * 2
    # At the stored resolution the values are exactly the input's extremes, / 256 rounded down.
    fine = client.get("/record/peaks", params={**query, "pixels": 65536}).json()
    spp = fine["samples_per_pixel"]
    pcm = np.frombuffer(wav[44:], dtype="<i2").reshape(-1, 2)
    length = -(-len(pcm) // spp)
    padded = np.concatenate([pcm, np.repeat(pcm[-1:], length * spp - len(pcm), axis=0)])
    blocks = padded.reshape(length, spp, 2)
    expected = np.stack([blocks.min(axis=1) >> 8, blocks.max(axis=1) >> 8], axis=-1)
    assert fine["length"] == length
    assert fine["data"] == expected.reshape(-1).tolist()


def test_peaks_follow_the_download_rule(client: httpx.Client) -> None:
    user, other = new_user(client), new_user(client)
    record = upload(client, user, wavcorpus.pcm(0.3, 8000, 1)).json()
    assert (
        client.get("/record/peaks", params={"id": record["id"], "user": user["id"]}).json()[
            "channels"
        ]
        == 1
    )
    for params in (
        {"id": record["id"], "user": other["id"]},
        {"id": str(uuid.uuid4()), "user": user["id"]},
    ):
        assert_problem(client.get("/record/peaks", params=params), 404)
    for pixels in ("0", "65537", "many"):
        params = {"id": record["id"], "user": user["id"], "pixels": pixels}
        assert_problem(client.get("/record/peaks", params=params), 422)
    client.delete(
        "/record", params={"id": record["id"], "user": user["id"], "token": user["token"]}
    )
    assert_problem(
        client.get("/record/peaks", params={"id": record["id"], "user": user["id"]}), 404
    )


def test_downloads_carry_repr_digest_on_200_206_and_head(client: httpx.Client) -> None:
    user = new_user(client)
    record = upload(client, user, wavcorpus.pcm(0.5)).json()
    whole = client.get(record["url"])
    digest = base64.b64encode(hashlib.sha256(whole.content).digest()).decode()
    expected = f"sha-256=:{digest}:"
    assert whole.headers["Repr-Digest"] == expected
    partial = client.get(record["url"], headers={"Range": "bytes=0-99"})
    assert partial.status_code == 206
    assert partial.headers["Repr-Digest"] == expected  # of the whole MP3, not of the range
    assert client.head(record["url"]).headers["Repr-Digest"] == expected
