"""Every WAV flavour API.md lists, uploaded through the gateway and downloaded again: the MP3 a
player gets (decoded here with pydub) has the input's duration and the promised channel count."""

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit import wavcorpus
from testkit.api import new_user, upload
from testkit.gateways import Gateway, GatewayFactory
from testkit.problems import assert_problem

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pydub warns at import when no ffmpeg is on PATH
    from pydub import AudioSegment

AudioSegment.converter = wavcorpus.ffmpeg_exe()


@pytest.fixture(scope="module")
def stack(in_process_gateway: GatewayFactory) -> Iterator[tuple[Gateway, httpx.Client]]:
    with in_process_gateway("postgres+s3") as gateway, gateway.client() as client:
        yield gateway, client


def decoded(mp3: bytes) -> "AudioSegment":
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "download.mp3"
        path.write_bytes(mp3)  # a file, not a pipe: ffmpeg then honours the LAME tag's padding
        return AudioSegment.from_file(str(path), format="mp3", codec="mp3")  # no ffprobe needed


@pytest.mark.parametrize("case", wavcorpus.good_cases(), ids=lambda case: case.name)
def test_every_supported_wav_comes_back_as_an_mp3_of_the_same_length(
    stack: tuple[Gateway, httpx.Client], case: wavcorpus.Case
) -> None:
    _, client = stack
    user = new_user(client)
    created = upload(client, user, case.wav, filename=f"{case.name}.wav", token=user["token"])
    assert created.status_code == 201, created.text
    assert created.json()["duration_seconds"] == pytest.approx(case.seconds, abs=0.1)
    audio = decoded(client.get(created.json()["url"]).content)
    assert audio.channels == case.channels
    assert audio.frame_count() / audio.frame_rate == pytest.approx(case.seconds, abs=0.1)


@pytest.mark.parametrize("case", wavcorpus.bad_cases(), ids=lambda case: case.name)
def test_every_bad_input_is_refused_with_its_4xx_and_stores_nothing(
    stack: tuple[Gateway, httpx.Client], case: wavcorpus.BadCase
) -> None:
    gateway, client = stack
    user = new_user(client)
    assert_problem(upload(client, user, case.wav, token=user["token"]), case.status)
    assert gateway.record_count(user["id"]) == 0
    assert gateway.object_keys(user["id"]) == []
