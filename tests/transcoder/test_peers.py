"""transcoder.peers: segments of a long recording encoded by another transcoder process.

The peer is a live transcoder (uvicorn, its own process) reached over HTTP; the coordinator is
an ``Encoder`` in this process (so the ``joins`` spy sees its split), or a second live
transcoder. The joined MP3 is held to what ``test_parallel`` holds a local split to: every input
sample, the single pass's SNR within 0.1 dB, no click at the cut. Faults are caused: the peer is
frozen with SIGSTOP, killed, or refuses the segment; the upload then falls back to one pass.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servicekit.errors import PROBLEM_BASE
from testkit import wavcorpus
from testkit.live import TRANSCODER_APP, LiveServer, free_port, running
from testkit.scrape import scrape, value
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
from transcoder import encoder, join, mp3, parallel, peers

Joined = tuple[parallel.Plan, list[join.Cut]]

RATE, CHANNELS = 44100, 2
PEER_TIMEOUT = 1.0  # the segment deadline's fixed part, short so that faults end soon


@pytest.fixture(scope="module")
def peer() -> Iterator[LiveServer]:
    with running(TRANSCODER_APP, {"PARALLEL_ENCODE_MIN_SECONDS": "0"}) as server:
        yield server


def segments_encoded(server: LiveServer) -> float:
    with httpx.Client(base_url=server.url) as client:
        samples = scrape(client)
    name = "riffle_transcoder_segments_total"
    assert (name, frozenset()) in samples, sorted(samples)
    return value(samples, name)


def coordinator(*urls: str, timeout_seconds: float = PEER_TIMEOUT) -> encoder.Encoder:
    return encoder.Encoder(
        wavcorpus.ffmpeg_exe(),
        "128k",
        60,
        THRESHOLD,
        peers=peers.Peers(urls, timeout_seconds=timeout_seconds),
    )


def transcode(coder: encoder.Encoder, data: bytes, output: Path) -> encoder.Encoded:
    output.touch()

    async def work() -> encoder.Encoded:
        try:
            return await coder.encode(chunks_of(data), output=output, max_duration_seconds=600)
        finally:
            if coder.peers is not None:
                await coder.peers.aclose()

    return asyncio.run(work())


@pytest.mark.parametrize("signal_name", ["pink", "music"])
def test_a_peer_encodes_a_segment_joined_as_well_as_one_pass(
    tmp_path: Path, joins: list[Joined], peer: LiveServer, signal_name: str
) -> None:
    data = signal_wav(signal_name, RATE, CHANNELS)
    before = segments_encoded(peer)
    output, single = tmp_path / "out.mp3", tmp_path / "single.mp3"
    ours = transcode(coordinator(peer.url), data, output)
    ((split, cuts),) = joins
    assert len(split.ranges) == 2
    assert len(cuts) == 1
    assert segments_encoded(peer) == before + 1
    alone = transcode(encoder.Encoder(wavcorpus.ffmpeg_exe(), "128k", 60, None), data, single)
    original = pcm_of(data, CHANNELS)
    joined, theirs = decode(output, CHANNELS), decode(single, CHANNELS)
    assert joined.shape == theirs.shape == original.shape == (SECONDS * RATE, CHANNELS)
    assert snr_db(original, joined) >= snr_db(original, theirs) - 0.1
    assert join_defects(joined, theirs, original, join_sample(cuts[0])) == []
    # The analysis stayed here, over the whole input: the same figures as one pass.
    assert ours.loudness == alone.loudness
    assert ours.peaks.to_dat() == alone.peaks.to_dat()
    assert ours.info.sample_count == alone.info.sample_count


def test_on_one_cpu_the_own_segment_is_shorter_by_the_analysis(
    tmp_path: Path, joins: list[Joined], peer: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "local_cpus", lambda: 1)
    transcode(coordinator(peer.url), signal_wav("music", RATE, CHANNELS), tmp_path / "out.mp3")
    ((split, _),) = joins
    first, second = split.ranges
    own, other = peers.shares(2, 1)
    assert own < other
    # The shares of the input, to a padding period (49 of its 1,531 frames) and the overlap.
    assert first.end / split.samples == pytest.approx(own, abs=0.04)
    assert (split.samples - second.start) / split.samples == pytest.approx(other, abs=0.04)


def test_shares_balance_the_analysis_and_keep_a_segment_here() -> None:
    assert peers.shares(2, 2) == [0.5, 0.5]
    own, other = peers.shares(2, 1)
    assert own + peers.ANALYSIS_COST == pytest.approx(other)
    assert own + other == pytest.approx(1)
    many = peers.shares(16, 1)
    assert many[0] == pytest.approx(peers.MIN_OWN_SHARE * many[1])
    assert min(many) > 0


def test_weighted_ranges_split_where_the_weights_say() -> None:
    samples = 1000 * join.FRAME_SAMPLES
    ranges = join.segment_ranges(samples, 2, weights=[1, 3])
    assert ranges[1].first_frame == pytest.approx(250 - join.OVERLAP_FRAMES // 2, abs=49)
    assert ranges[1].first_frame % join.PADDING_PERIOD_FRAMES == 0
    assert join.segment_ranges(samples, 3, weights=[1, 1, 1]) == join.segment_ranges(samples, 3)
    with pytest.raises(ValueError, match="positive weights"):
        join.segment_ranges(samples, 2, weights=[1, 0])


def test_two_live_transcoders_share_one_upload_and_the_coordinator_skips_itself(
    tmp_path: Path, peer: LiveServer
) -> None:
    port = free_port()
    # Its own address among the peers, as a compose name that resolves to every replica is.
    env = {
        "PARALLEL_ENCODE_MIN_SECONDS": str(THRESHOLD),
        "SEGMENT_PEERS": f"http://127.0.0.1:{port}, {peer.url}",
    }
    before = segments_encoded(peer)
    data = signal_wav("music", RATE, CHANNELS)
    with running(TRANSCODER_APP, env, port=port) as coordinating:
        answer = httpx.post(f"{coordinating.url}/transcode", content=data, timeout=60)
        assert answer.status_code == 200, answer.text
        assert segments_encoded(coordinating) == 0
    assert segments_encoded(peer) == before + 1
    output = tmp_path / "out.mp3"
    output.write_bytes(answer.content)
    assert decode(output, CHANNELS).shape == (SECONDS * RATE, CHANNELS)


@pytest.fixture
def own_peer() -> Iterator[LiveServer]:
    """A peer of this test's own, to freeze or kill."""
    with running(TRANSCODER_APP, {}) as server:
        yield server


def assert_one_pass(joins: list[Joined], output: Path, data: bytes) -> None:
    assert joins == []  # no split was joined: the fallback encoded it here
    original = pcm_of(data, CHANNELS)
    assert decode(output, CHANNELS).shape == original.shape


def test_a_frozen_peer_costs_its_deadline_then_one_pass(
    tmp_path: Path, joins: list[Joined], own_peer: LiveServer
) -> None:
    data = signal_wav("music", RATE, CHANNELS)
    os.kill(own_peer.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        transcode(coordinator(own_peer.url), data, tmp_path / "out.mp3")
        elapsed = time.monotonic() - started
    finally:
        os.kill(own_peer.pid, signal.SIGCONT)
    assert_one_pass(joins, tmp_path / "out.mp3", data)
    # Its segment's deadline (1 s + a tenth of ~20 s of audio), then one pass: well inside the
    # 60 s the whole encode may take.
    assert elapsed < 30, elapsed


def test_a_peer_silent_for_a_while_inside_its_deadline_still_encodes_its_segment(
    tmp_path: Path, joins: list[Joined], own_peer: LiveServer
) -> None:
    # Frozen longer than the deadline's fixed part (0.5 s), thawed well before the whole deadline
    # (0.5 s + a tenth of ~20 s of audio): as a peer whose encoders are all busy for a while.
    data = signal_wav("music", RATE, CHANNELS)
    coder = coordinator(own_peer.url, timeout_seconds=0.5)
    os.kill(own_peer.pid, signal.SIGSTOP)
    thaw = threading.Timer(1.2, os.kill, (own_peer.pid, signal.SIGCONT))
    thaw.start()
    try:
        transcode(coder, data, tmp_path / "out.mp3")
    finally:
        thaw.cancel()
        os.kill(own_peer.pid, signal.SIGCONT)
    ((split, _),) = joins  # joined with the peer's segment, not encoded again here
    assert len(split.ranges) == 2
    assert segments_encoded(own_peer) == 1
    assert decode(tmp_path / "out.mp3", CHANNELS).shape == pcm_of(data, CHANNELS).shape


def test_a_killed_peer_falls_back_at_once(
    tmp_path: Path, joins: list[Joined], own_peer: LiveServer
) -> None:
    os.kill(own_peer.pid, signal.SIGKILL)
    data = signal_wav("music", RATE, CHANNELS)
    transcode(coordinator(own_peer.url), data, tmp_path / "out.mp3")
    assert_one_pass(joins, tmp_path / "out.mp3", data)


def test_a_peer_that_refuses_the_segment_falls_back(tmp_path: Path, joins: list[Joined]) -> None:
    data = signal_wav("music", RATE, CHANNELS)
    with running(TRANSCODER_APP, {"MAX_DURATION_SECONDS": "5"}) as strict:
        transcode(coordinator(strict.url), data, tmp_path / "out.mp3")
        assert segments_encoded(strict) == 0
    assert_one_pass(joins, tmp_path / "out.mp3", data)


def segment_wav(bits: int = 16, seconds: float = 1.0) -> bytes:
    fmt = wavcorpus.fmt_chunk(wavcorpus.WAVE_FORMAT_PCM, CHANNELS, RATE, bits)
    frames = int(seconds * RATE)
    return wavcorpus.riff(fmt, wavcorpus.chunk(b"data", bytes(frames * CHANNELS * bits // 8)))


@pytest.mark.parametrize(
    ("query", "body", "status", "slug"),
    [
        ("bitrate=128", b"not a wav at all", 415, "not-a-wav"),
        ("bitrate=128", segment_wav(bits=24), 422, "undecodable-audio"),
        ("bitrate=129", segment_wav(), 422, "validation-error"),
        ("", segment_wav(), 422, "validation-error"),
    ],
    ids=["not-a-wav", "24-bit", "bad-bitrate", "no-bitrate"],
)
def test_the_segment_endpoint_refuses_bad_input_with_a_problem(
    peer: LiveServer, query: str, body: bytes, status: int, slug: str
) -> None:
    answer = httpx.post(f"{peer.url}/segment?{query}", content=body, timeout=30)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == PROBLEM_BASE + slug


def test_the_segment_endpoint_answers_frames_behind_an_info_frame(peer: LiveServer) -> None:
    answer = httpx.post(f"{peer.url}/segment?bitrate=192", content=segment_wav(), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/mpeg"
    assert not answer.content.startswith(b"ID3")  # no tags: the caller's stream has its own
    head = answer.content[:4]
    assert mp3.parse_frame_header(head).bitrate == 192000


def test_peer_names_resolve_to_one_address_each_and_leave_this_server_out() -> None:
    async def resolve(urls: list[str], arrived_on: tuple[str, int] | None) -> list[str]:
        group = peers.Peers(urls, timeout_seconds=1)
        try:
            return await group.resolve(arrived_on)
        finally:
            await group.aclose()

    port = free_port()
    # localhost may resolve to 127.0.0.1 and ::1: the same server, counted once.
    assert len(asyncio.run(resolve([f"http://localhost:{port}"], None))) == 1
    assert asyncio.run(resolve([f"http://127.0.0.1:{port}/"], ("127.0.0.1", port))) == []
    assert asyncio.run(resolve([f"http://127.0.0.1:{port}"], ("127.0.0.1", port + 1))) == [
        f"http://127.0.0.1:{port}"
    ]
    assert asyncio.run(resolve(["http://no-such-peer.invalid:8001"], None)) == []
