"""servicekit.wav: sniffing and parsing every corpus shape; never an error of another kind."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit import wav
from servicekit.errors import AudioTooLong, NotAWav, ServiceError, UndecodableAudio
from testkit import wavcorpus


def header_of(data: bytes) -> wav.WavHeader:
    header = wav.parse_header(data, complete=True)
    assert header is not None
    return header


@pytest.mark.parametrize("case", wavcorpus.good_cases(), ids=lambda case: case.name)
def test_every_good_corpus_file_parses_and_is_supported(case: wavcorpus.Case) -> None:
    header = header_of(case.wav)
    assert case.wav[header.data_offset - 8 : header.data_offset - 4] == b"data"
    assert header.sample_rate == case.rate
    assert (1 if header.channels == 1 else 2) == case.channels
    wav.check_supported(header, max_duration_seconds=10)


@pytest.mark.parametrize("case", wavcorpus.good_cases(), ids=lambda case: case.name)
def test_every_prefix_before_the_data_chunk_asks_for_more(case: wavcorpus.Case) -> None:
    data_offset = header_of(case.wav).data_offset
    for end in range(data_offset):
        assert wav.parse_header(case.wav[:end]) is None
    assert wav.parse_header(case.wav[:data_offset]) == header_of(case.wav)


def test_pcm_header_fields_and_declared_duration() -> None:
    header = header_of(wavcorpus.pcm(0.5, 22050, 2, 24))
    assert header.container == "RIFF"
    assert header.format_tag == wav.FORMAT_PCM
    assert (header.channels, header.sample_rate, header.bits_per_sample) == (2, 22050, 24)
    assert header.block_align == 6
    assert header.data_offset == 44
    assert header.data_size == 0.5 * 22050 * 6
    assert header.duration_seconds == 0.5


@pytest.mark.parametrize("size", wavcorpus.STREAMED_SIZES)
def test_streamed_sizes_mean_unknown_length(size: int) -> None:
    header = header_of(wavcorpus.streamed(0.1, size=size))
    assert header.data_size is None
    assert header.duration_seconds is None


def test_rf64_takes_the_sizes_from_ds64() -> None:
    header = header_of(wavcorpus.rf64(0.25, 8000, 1, 16))
    assert header.container == "RF64"
    assert header.data_size == 4000
    assert header.sample_frames == 2000
    assert header.duration_seconds == 0.25


def test_extensible_reports_the_sub_format_and_mask() -> None:
    header = header_of(wavcorpus.extensible(0.1, 48000, 6, 32, is_float=True, channel_mask=0x3F))
    assert header.format_tag == wav.FORMAT_IEEE_FLOAT
    assert header.channel_mask == 0x3F


def test_odd_sized_chunks_are_followed_by_a_pad_byte() -> None:
    data = wavcorpus.odd_chunk_before_data(0.1)
    header = header_of(data)
    assert data[header.data_offset - 8 : header.data_offset - 4] == b"data"


def test_list_chunk_before_fmt_is_skipped() -> None:
    assert header_of(wavcorpus.list_before_fmt(0.1)).channels == 2


def test_fact_chunk_gives_the_duration_of_compressed_audio() -> None:
    header = header_of(wavcorpus.ffmpeg_encoded("adpcm_ms", 0.5, 44100, 2))
    assert header.format_tag == 0x0002
    assert header.duration_seconds == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"", None),
        (b"R", None),
        (b"RIFF\x00\x00\x00\x00WA", None),
        (b"RF64", None),
        (b"X", False),
        (b"RIFX", False),
        (b"RIFF\x00\x00\x00\x00AVI ", False),
        (b"#EXTM3U\n", False),
        (b"RIFF\x00\x00\x00\x00WAVE", True),
        (b"RF64\xff\xff\xff\xffWAVE", True),
    ],
)
def test_sniff(prefix: bytes, expected: bool | None) -> None:
    assert wav.sniff(prefix) is expected


@pytest.mark.parametrize(
    "case",
    [case for case in wavcorpus.bad_cases() if case.status == 415],
    ids=lambda case: case.name,
)
def test_no_magic_is_not_a_wav(case: wavcorpus.BadCase) -> None:
    with pytest.raises(NotAWav):
        wav.parse_header(case.wav, complete=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (wavcorpus.riff_header_only(), "ends before its audio data"),
        (wavcorpus.riff_then_hls(), "ends before its audio data"),
        (wavcorpus.no_fmt_chunk(), "no 'fmt ' chunk"),
        (wavcorpus.short_fmt_chunk(), "too short"),
        (wavcorpus.pcm(0.1)[:30], "ends inside its header"),
    ],
)
def test_broken_headers_are_unusable(data: bytes, message: str) -> None:
    with pytest.raises(UndecodableAudio, match=message):
        wav.parse_header(data, complete=True)


def test_short_extensible_fmt_is_unusable() -> None:
    fmt = wavcorpus.fmt_chunk(wav.FORMAT_EXTENSIBLE, 2, 44100, 16, extra=b"\x00\x00")
    with pytest.raises(UndecodableAudio, match="EXTENSIBLE"):
        wav.parse_header(wavcorpus.riff(fmt, wavcorpus.chunk(b"data", bytes(8))))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (wavcorpus.zero_channels(), "0 channels"),
        (wavcorpus.too_many_channels(), "9 channels"),
        (wavcorpus.rate_out_of_range(7999), "7999 Hz"),
        (wavcorpus.rate_out_of_range(192001), "192001 Hz"),
    ],
)
def test_unsupported_layouts_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(UndecodableAudio, match=message):
        wav.check_supported(header_of(data), max_duration_seconds=10)


def test_a_declared_duration_over_the_limit_is_refused_before_encoding() -> None:
    header = header_of(wavcorpus.pcm(2.0, 8000, 1))
    wav.check_supported(header, max_duration_seconds=2.0)
    with pytest.raises(AudioTooLong, match=r"2\.0 s"):
        wav.check_supported(header, max_duration_seconds=1.9)


# --- never anything but our own errors ---------------------------------------------------------


def _parse_everything(data: bytes) -> None:
    for complete in (False, True):
        try:
            header = wav.parse_header(data, complete=complete)
            if header is not None:
                wav.check_supported(header, max_duration_seconds=1.0)
                _ = header.duration_seconds
        except ServiceError:
            pass


@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_transcode_errors(data: bytes) -> None:
    _parse_everything(data)


@given(st.binary(max_size=400))
def test_arbitrary_chunks_after_the_magic_raise_only_transcode_errors(body: bytes) -> None:
    _parse_everything(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)
    _parse_everything(b"RF64\xff\xff\xff\xffWAVE" + body)


_SEEDS = [
    wavcorpus.pcm(0.01, 8000, 1),
    wavcorpus.rf64(0.01, 8000, 2),
    wavcorpus.extensible(0.01, 8000, 3, 24),
    wavcorpus.odd_chunk_before_data(0.01, 8000, 1),
    wavcorpus.ieee_float(0.01, 8000, 1),
]


@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=12),
    cut=st.integers(0, 300),
)
def test_mutated_headers_raise_only_transcode_errors(
    seed: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    mutated = bytearray(seed)
    for position, value in edits:
        if position < len(mutated):
            mutated[position] = value
    _parse_everything(bytes(mutated[: len(mutated) - cut]))
