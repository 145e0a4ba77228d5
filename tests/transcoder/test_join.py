"""transcoder.join: the cut search and the reservoir carry on real ffmpeg/LAME segment encodes.

The decoded quality of joins (length, clicks, SNR) is measured in test_parallel.py.
"""

import io
import itertools
import subprocess

import pytest

from testkit import wavcorpus
from transcoder import crc16, join, mp3

RATE, CHANNELS = 44100, 2
BLOCK = 2 * CHANNELS


def pink(seconds: float) -> bytes:
    """16-bit stereo pink noise (seeded)."""
    source = f"anoisesrc=color=pink:seed=5:amplitude=0.5:r={RATE}"
    return subprocess.run(
        [
            *(wavcorpus.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", source),
            *("-t", str(seconds), "-ac", str(CHANNELS), "-f", "s16le", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout


def frames_of(pcm: bytes, *options: str) -> bytes:
    """ffmpeg's libmp3lame frames for raw PCM at 128k, without an Info frame or ID3 tag."""
    return subprocess.run(
        [
            *(wavcorpus.ffmpeg_exe(), "-v", "error", "-f", "s16le", "-ar", str(RATE)),
            *("-ac", str(CHANNELS), "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", "128k"),
            *(*options, "-fflags", "+bitexact", "-flags:a", "+bitexact"),
            *("-id3v2_version", "0", "-write_xing", "0", "-f", "mp3", "pipe:1"),
        ],
        input=pcm,
        capture_output=True,
        check=True,
    ).stdout


def streams_of(pcm: bytes, segments: int) -> list[join.Stream]:
    ranges = join.segment_ranges(len(pcm) // BLOCK, segments)
    streams = []
    for part in ranges:
        frames = frames_of(pcm[part.start * BLOCK : part.end * BLOCK])
        streams.append(join.Stream(frames, mp3.cbr_frame_offsets(frames), part.first_frame))
    return streams


@pytest.mark.parametrize("segments", [2, 3, 5])
@pytest.mark.parametrize("samples", [400 * 1152, 1_000_000, 44100 * 3600])
def test_segment_ranges_overlap_by_the_same_frames_and_start_in_padding_phase(
    samples: int, segments: int
) -> None:
    ranges = join.segment_ranges(samples, segments)
    assert len(ranges) == segments
    assert (ranges[0].start, ranges[-1].end) == (0, samples)
    for earlier, later in itertools.pairwise(ranges):
        assert later.start % (join.PADDING_PERIOD_FRAMES * join.FRAME_SAMPLES) == 0
        assert earlier.end == later.start + join.OVERLAP_FRAMES * join.FRAME_SAMPLES
        assert later.start - earlier.start >= 2 * join.OVERLAP_FRAMES * join.FRAME_SAMPLES


def test_segment_ranges_refuse_an_input_too_short_for_the_overlaps() -> None:
    with pytest.raises(join.JoinError):
        join.segment_ranges(100 * 1152, 4)


def test_frames_leave_room_for_the_next_frames_reservoir_bytes() -> None:
    """LAME's main_data_begin is the reservoir fill: the earlier frames' main data ends at or
    before it (ffmpeg's LAME often leaves ancillary bytes between); without the reservoir it
    is always 0."""
    data = frames_of(pink(3))
    stream = join.Stream(data, mp3.cbr_frame_offsets(data), 0)
    window = join._Window.read(stream, 0, stream.frames)
    begins = [info.main_data_begin for info in window.infos]
    assert begins[0] == 0
    assert max(begins) > 300  # the reservoir is in use
    assert all(window.room(m) >= window.info(m).main_data_begin for m in range(stream.frames))
    plain = frames_of(pink(3), "-reservoir", "0")
    offsets = mp3.cbr_frame_offsets(plain)
    assert {join.side_info(plain, offset)[0].main_data_begin for offset in offsets[:-1]} == {0}


@pytest.mark.parametrize("segments", [2, 3])
def test_joined_segments_have_the_single_pass_frames_and_their_pieces_crcs(
    segments: int,
) -> None:
    pcm = pink(12)
    streams = streams_of(pcm, segments)
    pieces, cuts = join.plan(streams)
    assert len(cuts) == segments - 1
    out = io.BytesIO()
    join.write(streams, pieces, out)
    joined = out.getvalue()
    single = frames_of(pcm)
    offsets = mp3.cbr_frame_offsets(joined)
    assert len(offsets) == len(mp3.cbr_frame_offsets(single))
    # Every frame up to the first cut is the single pass's own, bar the room made before it.
    first_cut = offsets[cuts[0].frame]
    assert joined[: first_cut - 1024] == single[: first_cut - 1024]
    for cut in cuts:
        assert 0 <= cut.carried <= cut.room
        window = join._Window.read(join.Stream(joined, offsets, 0), cut.frame - 24, cut.frame + 1)
        assert window.room(cut.frame) >= window.info(cut.frame).main_data_begin
    runs = []
    for piece in pieces:
        stream = streams[piece.stream]
        whole = crc16.crc16(stream.data[stream.offsets[0] : stream.offsets[-1]])
        length = stream.offsets[piece.end] - stream.offsets[piece.first]
        runs.append((join.piece_crc(stream, piece, whole), length))
    assert join.chain_crcs(runs) == crc16.crc16(joined)


def test_segments_without_a_frame_to_cut_at_are_a_join_error() -> None:
    streams = streams_of(pink(12), 2)
    with pytest.raises(join.JoinError):
        join.plan(streams, tail=join.OVERLAP_FRAMES)


def test_truncated_side_information_is_an_mp3_error() -> None:
    with pytest.raises(mp3.Mp3Error):
        join.side_info(b"\xff\xfb\x90\x64" + bytes(8), 0)
