"""transcoder.parallel: segment encodes joined into one MP3, checked against a single pass.

A low threshold (``parallel_min_seconds=10``) puts 40 s inputs on the split path. The single
pass to compare with is the transcoder's own one-encode path (the reservoir on, as in the
segments); the joined stream differs from it after each cut (the later segment's reservoir
state is its own), so it is held to the input's length, to the single pass's SNR within 0.1 dB,
and to a click-free decode at every cut.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from servicekit import wav
from servicekit.errors import TranscodeTimeout
from testkit import wavcorpus
from testkit.procfs import child_pids
from tests.transcoder.joincheck import (
    SECONDS,
    THRESHOLD,
    chunks_of,
    decode,
    join_defects,
    join_sample,
    pcm_of,
    signal_wav,
    snr_db,
)
from transcoder import crc16, encoder, join, mp3, parallel

Joins = list[tuple[parallel.Plan, list[join.Cut]]]


def transcode(
    data: bytes, output: Path, threshold: float | None, *, in_process: bool = False
) -> mp3.Mp3Info:
    coder = encoder.Encoder(wavcorpus.ffmpeg_exe(), "128k", 60, threshold, in_process=in_process)
    output.touch()
    work = coder.encode(chunks_of(data), output=output, max_duration_seconds=600)
    return asyncio.run(work).info


def audio_frames(data: bytes) -> tuple[bytes, bytes]:
    """(Info frame, the audio frames after it)."""
    start = mp3.id3v2_size(data)
    length = mp3.parse_frame_header(data[start : start + 4]).length
    return data[start : start + length], data[start + length :]


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_joined_mp3_has_an_exact_info_header(
    tmp_path: Path, joins: Joins, rate: int, channels: int
) -> None:
    data = signal_wav("chirp", rate, channels)
    output = tmp_path / "out.mp3"
    info = transcode(data, output, THRESHOLD)
    assert len(joins) == 1
    samples = SECONDS * rate
    assert (info.sample_count, info.encoder_delay, info.channels) == (samples, 576, channels)
    assert info.sample_rate == rate
    mp3_bytes = output.read_bytes()
    parsed = mp3.parse(mp3_bytes[: mp3.HEAD_BYTES * 2])  # the LAME tag CRC is checked here
    assert parsed == info
    info_frame, audio = audio_frames(mp3_bytes)
    assert info.frames * parsed.samples_per_frame > samples
    assert info.frames == len(mp3.cbr_frame_offsets(audio)) - 1
    lame = info_frame.index(b"LAME")
    assert int.from_bytes(info_frame[lame + 28 : lame + 32], "big") == len(info_frame) + len(audio)
    assert int.from_bytes(info_frame[lame + 32 : lame + 34], "big") == crc16.crc16(audio)
    # ffmpeg decoding the file (gapless, from the tag) yields every input sample, no more.
    assert decode(output, channels).shape == (samples, channels)


@pytest.mark.parametrize("in_process", [False, True], ids=["ffmpeg", "in-process"])
@pytest.mark.parametrize("segments", [2, 4])
@pytest.mark.parametrize("signal", ["pink", "music"])
@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (48000, 1)])
def test_the_join_is_gapless_click_free_and_as_good_as_a_single_pass(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    joins: Joins,
    signal: str,
    rate: int,
    channels: int,
    segments: int,
    in_process: bool,
) -> None:
    monkeypatch.setattr(parallel, "SEGMENTS", segments)
    data = signal_wav(signal, rate, channels)
    output, single = tmp_path / "out.mp3", tmp_path / "single.mp3"
    transcode(data, output, THRESHOLD, in_process=in_process)
    transcode(data, single, None, in_process=in_process)
    ((split, cuts),) = joins
    assert len(split.ranges) == len(cuts) + 1 == segments
    original = pcm_of(data, channels)
    ours, theirs = decode(output, channels), decode(single, channels)
    assert ours.shape == theirs.shape == original.shape == (SECONDS * rate, channels)
    figures = {"single_snr_db": snr_db(original, theirs), "joined_snr_db": snr_db(original, ours)}
    print(f"\n{signal} {rate} Hz x{channels}, {segments} segments: {figures}, cuts {cuts}")
    assert figures["joined_snr_db"] >= figures["single_snr_db"] - 0.1
    for cut in cuts:
        assert join_defects(ours, theirs, original, join_sample(cut)) == [], cut


Breaking = Callable[[list[join.Piece]], list[join.Piece]]
BROKEN_JOINS: dict[str, Breaking] = {
    # The later segment's frames taken from one before the cut: a frame played twice.
    "off-by-one-frame": lambda pieces: [
        pieces[0],
        dataclasses.replace(pieces[1], first=pieces[1].first - 1),
    ],
    # The carried reservoir bytes one byte early: the cut frame decodes the wrong main data.
    "off-by-one-byte": lambda pieces: [
        dataclasses.replace(
            pieces[0],
            patches=tuple(
                join.Patch(patch.offset, patch.replacement[1:] + b"\0")
                for patch in pieces[0].patches
            ),
        ),
        pieces[1],
    ],
}


@pytest.mark.parametrize("channels", [1, 2])
def test_the_join_check_catches_a_wrong_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, joins: Joins, channels: int
) -> None:
    """The checks above would fail on a join that is off by a frame or by a byte."""
    data = signal_wav("music", 44100, channels)
    single = tmp_path / "single.mp3"
    transcode(data, single, None)
    original, theirs = pcm_of(data, channels), decode(single, channels)
    real_plan = join.plan
    caught = {}
    for name, breaking in BROKEN_JOINS.items():

        def broken(
            streams: Sequence[join.Stream], breaking: Breaking = breaking
        ) -> tuple[list[join.Piece], list[join.Cut]]:
            pieces, cuts = real_plan(streams)
            return breaking(pieces), cuts

        monkeypatch.setattr(join, "plan", broken)
        output = tmp_path / f"{name}.mp3"
        transcode(data, output, THRESHOLD)
        ((_, (cut,)),) = joins
        joins.clear()
        ours = decode(output, channels)
        assert ours.shape == original.shape  # the same length: only the checks can tell
        caught[name] = join_defects(ours, theirs, original, join_sample(cut))
    print(f"\nbroken joins, x{channels}: {caught}")
    assert all(caught.values()), caught
    if channels == 2:  # the steps alone show these (in mono here only the error does)
        assert all("click" in defects[0] for defects in caught.values()), caught


def test_segments_that_cannot_be_joined_fall_back_to_one_encode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cut in the overlap (none seen on real material: the fault is made here)."""

    def no_cut(streams: Sequence[join.Stream]) -> tuple[list[join.Piece], list[join.Cut]]:
        raise join.JoinError("No frame qualifies for a cut.")

    monkeypatch.setattr(join, "plan", no_cut)
    data = signal_wav("pink", 44100, 2)
    output, expected = tmp_path / "out.mp3", tmp_path / "expected.mp3"
    transcode(data, output, THRESHOLD)
    transcode(data, expected, None)
    assert output.read_bytes() == expected.read_bytes()


@pytest.mark.parametrize("in_process", [False, True], ids=["ffmpeg", "in-process"])
def test_a_transcoder_on_one_cpu_encodes_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, joins: Joins, in_process: bool
) -> None:
    monkeypatch.setattr(parallel, "local_cpus", lambda: 1)  # as `taskset -c 0` leaves it
    data = signal_wav("music", 44100, 2)
    info = transcode(data, tmp_path / "out.mp3", THRESHOLD, in_process=in_process)
    assert joins == []
    assert info.sample_count == SECONDS * 44100


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(signal_wav("sine", 44100, 2, seconds=8), id="short"),
        pytest.param(wavcorpus.ffmpeg_encoded("pcm_mulaw", 12, 8000, 1), id="mulaw"),
        pytest.param(wavcorpus.ffmpeg_encoded("adpcm_ms", 12, 44100, 2), id="adpcm"),
        pytest.param(wavcorpus.pcm(12, 96000, 2), id="resampled"),
        pytest.param(wavcorpus.pcm(12, 44100, 6), id="downmixed"),
        pytest.param(wavcorpus.streamed(12), id="unknown-size"),
    ],
)
def test_other_inputs_keep_one_encode(tmp_path: Path, joins: Joins, data: bytes) -> None:
    header = wav.parse_header(data)
    assert header is not None
    assert parallel.plan(header, THRESHOLD) is None
    info = transcode(data, tmp_path / "out.mp3", THRESHOLD)
    assert info.sample_count > 0
    assert joins == []


def test_data_shorter_than_its_header_falls_back_to_one_encode(
    tmp_path: Path, joins: Joins
) -> None:
    data = signal_wav("sine", 44100, 2)
    cut = data[: len(data) - 10 * 44100 * 4]  # the header still says 40 s; 30 s arrive
    output, expected = tmp_path / "out.mp3", tmp_path / "expected.mp3"
    info = transcode(cut, output, THRESHOLD)
    assert joins == []
    assert info.sample_count == 30 * 44100
    transcode(cut, expected, None)
    assert output.read_bytes() == expected.read_bytes()


def test_no_temporary_file_or_process_is_left(tmp_path: Path) -> None:
    before = set(child_pids(os.getpid()))
    data = signal_wav("sine", 44100, 2)
    output = tmp_path / "out.mp3"
    transcode(data, output, THRESHOLD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp3"]
    coder = encoder.Encoder(wavcorpus.ffmpeg_exe(), "128k", 0.1, THRESHOLD, in_process=False)
    with pytest.raises(TranscodeTimeout):
        asyncio.run(coder.encode(chunks_of(data), output=output, max_duration_seconds=600))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp3"]
    assert set(child_pids(os.getpid())) <= before


@pytest.mark.parametrize("length", [0, 1, 7, 1000, 65537])
def test_crc16_shift_chains_and_unchains_crcs(length: int) -> None:
    head, tail = os.urandom(333), os.urandom(length)
    whole = crc16.crc16(head + tail)
    assert whole == crc16.crc16(head + tail)
    assert whole == crc16.crc16_shift(crc16.crc16(head), length) ^ crc16.crc16(tail)
    assert crc16.crc16(head) == crc16.crc16_shift(whole ^ crc16.crc16(tail), -length)
