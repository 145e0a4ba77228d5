"""Properties of WAV header handling over arbitrary chunk layouts, sizes and truncations:
only the module's own errors, a header found once never changes, and reads stay bounded."""

import asyncio
import struct
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from servicekit import wav
from servicekit.errors import ServiceError
from testkit import wavcorpus
from tests.fuzz.wav_target import check
from transcoder import encoder

CHUNK_IDS = [b"fmt ", b"data", b"fact", b"ds64", b"LIST", b"junk", b"bext", b"\0\0\0\0"]
U32_EDGES = [0, 1, 2, 3, 15, 16, 17, 39, 40, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]


@st.composite
def chunks(draw: st.DrawFn) -> bytes:
    """One chunk: a known or random id, any payload, a true or lying size, with or without pad."""
    chunk_id = draw(st.sampled_from(CHUNK_IDS) | st.binary(min_size=4, max_size=4))
    payload = draw(st.binary(max_size=80))
    size = draw(st.none() | st.sampled_from(U32_EDGES) | st.integers(0, 0xFFFFFFFF))
    pad = b"\0" if len(payload) % 2 and draw(st.booleans()) else b""
    declared = len(payload) if size is None else size
    return chunk_id + struct.pack("<I", declared) + payload + pad


@st.composite
def fmt_payloads(draw: st.DrawFn) -> bytes:
    """A ``fmt `` payload with any field values, possibly extensible and possibly short."""
    tag = draw(st.sampled_from([1, 3, 6, 7, 0x11, 0xFFFE]) | st.integers(0, 0xFFFF))
    fields = struct.pack(
        "<HHIIHH",
        tag,
        draw(st.integers(0, 0xFFFF)),
        draw(st.sampled_from([0, 8000, 44100, 192000, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 0xFFFF)),
    )
    return fields + draw(st.binary(max_size=40))


@st.composite
def wav_files(draw: st.DrawFn) -> bytes:
    """RIFF or RF64, any RIFF size, an arbitrary chunk layout with a real ``fmt `` somewhere,
    cut anywhere."""
    magic = draw(st.sampled_from([b"RIFF", b"RF64"]))
    riff_size = draw(st.sampled_from(U32_EDGES) | st.integers(0, 0xFFFFFFFF))
    layout = draw(st.lists(chunks(), max_size=6))
    fmt = draw(fmt_payloads())
    layout.insert(draw(st.integers(0, len(layout))), wavcorpus.chunk(b"fmt ", fmt))
    body = magic + struct.pack("<I", riff_size) + b"WAVE" + b"".join(layout)
    return body[: draw(st.integers(0, len(body)))]


@given(wav_files())
@settings(max_examples=400)
def test_any_chunk_layout_raises_only_transcode_errors_and_parses_consistently(
    data: bytes,
) -> None:
    check(data)


@given(
    layout=st.lists(
        st.tuples(st.sampled_from([b"LIST", b"junk", b"bext", b"fact"]), st.binary(max_size=30)),
        max_size=5,
    ),
    channels=st.integers(1, 8),
    rate=st.integers(8000, 192000),
    bits=st.sampled_from([8, 16, 24, 32]),
)
def test_well_formed_layouts_parse_to_their_fmt_and_data_offset(
    layout: list[tuple[bytes, bytes]], channels: int, rate: int, bits: int
) -> None:
    fmt = wavcorpus.fmt_chunk(wavcorpus.WAVE_FORMAT_PCM, channels, rate, bits)
    before = b"".join(
        wavcorpus.chunk(cid, payload if cid != b"fact" else payload.ljust(4, b"\0"))
        for cid, payload in layout
    )
    data = wavcorpus.chunk(b"data", bytes(channels * bits // 8 * 10))
    wav_bytes = wavcorpus.riff(before, fmt, data)
    header = wav.parse_header(wav_bytes, complete=True)
    assert header is not None
    assert (header.channels, header.sample_rate, header.bits_per_sample) == (channels, rate, bits)
    assert header.data_offset == 12 + len(before) + len(fmt) + 8
    wav.check_supported(header, max_duration_seconds=60)


async def _pieces(data: bytes, sizes: list[int], taken: list[int]) -> AsyncIterator[bytes]:
    position = 0
    for size in sizes:
        piece = data[position : position + size]
        if not piece:
            return
        position += len(piece)
        taken[0] += len(piece)
        yield piece


@given(
    data=wav_files(),
    filler=st.integers(0, 3 * encoder.MAX_HEADER_BYTES),
    sizes=st.lists(st.integers(1, 65536), min_size=1, max_size=200),
)
@settings(max_examples=100, deadline=None)
def test_the_encoder_reads_at_most_its_header_budget_before_deciding(
    data: bytes, filler: int, sizes: list[int]
) -> None:
    # A layout whose chunks never reach ``data`` may be followed by any amount of bytes.
    stream = data + bytes(filler)
    sizes = sizes + [65536] * (len(stream) // 65536 + 1)
    taken = [0]
    try:
        header, buffered = asyncio.run(encoder.read_header(_pieces(stream, sizes, taken)))
    except ServiceError:
        pass
    else:
        assert header.data_offset <= len(buffered)
    assert taken[0] <= encoder.MAX_HEADER_BYTES + 65536
