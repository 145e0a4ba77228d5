"""``python -m bench.moonshot [--long] [--segments K] [--repeats N] [--output FILE]``: issue 15's
moonshot, measured as far as one machine allows.

One long recording (pink noise, stereo 44.1 kHz 16-bit, from ffmpeg's lavfi) is encoded as ``K``
segments by ``K`` processes, each pinned to one core with ``taskset`` (the stand-ins for ``K``
transcoder replicas), and joined gaplessly with the bit reservoir kept (``transcoder.join``);
against it, one pinned process encodes the whole file. Every encode is the in-process path's
(``transcoder.lame``: lameenc, quality 3, CBR 128k, an Info frame from ``mp3.cbr_info_frame``).
The two are run interleaved (``K = 1`` and ``K`` alternate, which one goes first alternating
too) and the medians reported; then both MP3s are decoded gaplessly by ffmpeg and compared with
the input and with each other. One more pinned process times the analysis pass (loudness and
peaks over the whole input), the part that a split leaves serial today. See docs/scaling.md.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench import quality
from servicekit import wav
from transcoder import join, lame, mp3
from transcoder.config import Settings as TranscoderSettings

DEFAULT_SECONDS = 600.0
LONG_SECONDS = 3600.0
KBPS = 128
ENCODER_DELAY = 576
BLOCK_ALIGN = quality.CHANNELS * 2
_BATCH_FRAMES = 64 * 1024  # PCM frames per lameenc call (about 1.5 s)
TASKSET = shutil.which("taskset") or "taskset"
X = "\u00d7"  # the multiplication sign, escaped for ruff's RUF001
_DECODE_BYTES = 8 * 1024 * 1024  # per read of each decoder's float output (a multiple of 8)


@dataclass(frozen=True, slots=True)
class Encoded:
    """What one pinned worker reports (``time.monotonic`` is system-wide, so the coordinator's
    spawn time and the worker's clock compare)."""

    go: float  # told to go (the worker was up and waiting)
    encoded: float  # LAME flushed, frames written
    done: float  # frame CRC (and, for a single pass, the Info frame) written
    cpu: float  # seconds of CPU from go to done (what a busy core does not inflate)
    frames: int
    crc: int  # CRC-16 of the frames (after the Info frame, for a single pass)


@dataclass(frozen=True, slots=True)
class Run:
    segments: int
    wall: float  # go to the finished MP3
    slowest: float  # go to the last worker's end
    startup: float  # the slowest worker's spawn to ready (before ``wall`` starts)
    cpu_slowest: float  # the most CPU seconds one worker spent: the critical path on idle cores
    cpu_total: float  # over all workers
    join: float  # frame walk, cut plan, CRCs, Info frame and the joined write
    encoded_frames: int
    cuts: tuple[tuple[int, int, int], ...]  # (frame, carried, room) per cut


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.moonshot", description=__doc__)
    parser.add_argument("--long", action="store_true", help=f"{LONG_SECONDS:g} s of audio")
    parser.add_argument("--seconds", type=float, help=f"default {DEFAULT_SECONDS:g}")
    parser.add_argument("--segments", type=int, default=2, help="K (default 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="append the markdown to this file too")
    parser.add_argument("--segment", nargs=5, metavar=("WAV", "START", "END", "OUT", "SINGLE"))
    parser.add_argument("--analyse", metavar="WAV", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.segment or args.analyse:  # a worker: up, then told to go (a replica already running)
        print(json.dumps({"ready": time.monotonic()}), flush=True)
        sys.stdin.readline()
        if args.analyse:
            print(json.dumps({"seconds": analyse(Path(args.analyse))}))
        else:
            source, start, end, out, single = args.segment
            encoded = encode_range(Path(source), int(start), int(end), Path(out), single == "1")
            print(json.dumps(_fields(encoded)))
        return 0
    seconds = args.seconds or (LONG_SECONDS if args.long else DEFAULT_SECONDS)
    with tempfile.TemporaryDirectory(prefix="riffle-moonshot-") as directory:
        results = measure(Path(directory), seconds, args.segments, args.repeats)
    markdown = render(results)
    print(markdown)
    if args.output:
        with args.output.open("a") as out:
            out.write(markdown)
    return 0


def _fields(encoded: Encoded) -> dict[str, Any]:
    return {name: getattr(encoded, name) for name in Encoded.__dataclass_fields__}


# --- the worker: one PCM range through lameenc -------------------------------------------------


def _pcm(source: Path, start: int, end: int) -> Iterator[bytes]:
    """Frames ``[start, end)`` of the WAV's audio, about ``_BATCH_FRAMES`` at a time."""
    with source.open("rb") as file:
        header = wav.parse_header(file.read(4096), complete=True)
        assert header is not None
        position = header.data_offset + start * BLOCK_ALIGN
        stop = header.data_offset + end * BLOCK_ALIGN
        while position < stop:
            chunk = os.pread(
                file.fileno(), min(_BATCH_FRAMES * BLOCK_ALIGN, stop - position), position
            )
            if not chunk:
                raise EOFError(f"{source} ends before frame {end}.")
            position += len(chunk)
            yield chunk


def _samples(source: Path) -> int:
    with source.open("rb") as file:
        header = wav.parse_header(file.read(4096), complete=True)
    assert header is not None
    assert header.data_size is not None
    return header.data_size // BLOCK_ALIGN


def encode_range(source: Path, start: int, end: int, out: Path, single: bool) -> Encoded:
    """Encode PCM frames ``[start, end)`` to ``out``: raw frames for a segment; for a single
    pass, behind an Info frame as ``transcoder.lame`` writes it."""
    go, cpu = time.monotonic(), time.process_time()
    encoder = lame.new_encoder(quality.RATE, quality.CHANNELS, KBPS)
    head = 0
    pending = b""
    with out.open("w+b") as file:
        for pcm in _pcm(source, start, end):
            frames = bytes(encoder.encode(pcm))
            if single and not head:
                pending += frames
                if len(pending) < 4:
                    continue
                head = mp3.info_frame_length(pending[:4])
                file.seek(head)
                frames, pending = pending, b""
            file.write(frames)
        file.write(pending + bytes(encoder.flush()))
        file.flush()
        encoded = time.monotonic()
        lengths, crc = lame.scan(file, head, file.seek(0, os.SEEK_END))
        if single:
            file.seek(head)
            info = mp3.cbr_info_frame(
                file.read(4),
                lengths,
                encoder_delay=ENCODER_DELAY,
                padding=len(lengths) * join.FRAME_SAMPLES - ENCODER_DELAY - (end - start),
                music_crc=crc,
            )
            file.seek(0)
            file.write(info)
    return Encoded(go, encoded, time.monotonic(), time.process_time() - cpu, len(lengths), crc)


def analyse(source: Path) -> float:
    """Seconds for the loudness and peaks pass over the whole input, in this process."""
    from servicekit.peaks import PeaksBuilder
    from transcoder.loudness import LoudnessMeter

    started = time.monotonic()
    meter = LoudnessMeter(quality.RATE, quality.CHANNELS)
    builder = PeaksBuilder(quality.CHANNELS, quality.RATE)
    for pcm in _pcm(source, 0, _samples(source)):
        meter.feed(pcm)
        builder.feed(pcm)
    meter.finish()
    builder.finish()
    return time.monotonic() - started


# --- the coordinator -----------------------------------------------------------------------------


def _cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


class Worker:
    """A pinned ``python -m bench.moonshot`` worker: it starts, says it is ready, then waits to
    be told to go (as a replica that is already running would)."""

    def __init__(self, core: int, *arguments: str) -> None:
        self.spawned = time.monotonic()
        self._process = subprocess.Popen(  # noqa: S603
            [TASKSET, "-c", str(core), sys.executable, "-m", "bench.moonshot", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = json.loads(self._line())["ready"]

    def _line(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=60)
            raise RuntimeError(f"worker exited with {self._process.returncode}")
        return line

    def go(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write("go\n")
        self._process.stdin.close()

    def result(self) -> dict[str, Any]:
        """The worker's report (its exit is ``close``'s to wait for, outside the timing)."""
        report: dict[str, Any] = json.loads(self._line())
        return report

    def close(self) -> None:
        if self._process.stdout is not None:
            self._process.stdout.close()
        if self._process.wait(timeout=60):
            raise RuntimeError(f"worker exited with {self._process.returncode}")


def _start(workers: Sequence[Worker]) -> float:
    """Tell every (ready) worker to go; when that was."""
    started = time.monotonic()
    for worker in workers:
        worker.go()
    return started


def run_split(source: Path, ranges: Sequence[join.Range], samples: int, out: Path) -> Run:
    """``len(ranges)`` pinned workers, one segment each, then the join into ``out``."""
    cores = _cores()
    paths = [out.with_suffix(f".part{index}") for index in range(len(ranges))]
    single = len(ranges) == 1
    workers = [
        Worker(
            cores[i % len(cores)],
            "--segment",
            str(source),
            str(r.start),
            str(r.end),
            str(path if not single else out),
            "1" if single else "0",
        )
        for i, (r, path) in enumerate(zip(ranges, paths, strict=True))
    ]
    started = _start(workers)
    reports = [Encoded(**worker.result()) for worker in workers]
    finished = time.monotonic()
    cuts: list[join.Cut] = []
    if not single:
        cuts = join_segments(paths, ranges, [r.crc for r in reports], samples, out)
        for path in paths:
            path.unlink()
    end = time.monotonic()
    for worker in workers:
        worker.close()
    return Run(
        segments=len(ranges),
        wall=end - started,
        slowest=max(r.done for r in reports) - started,
        startup=max(w.ready - w.spawned for w in workers),
        cpu_slowest=max(r.cpu for r in reports),
        cpu_total=sum(r.cpu for r in reports),
        join=end - finished,
        encoded_frames=sum(r.frames for r in reports),
        cuts=tuple((c.frame, c.carried, c.room) for c in cuts),
    )


def join_segments(
    paths: Sequence[Path],
    ranges: Sequence[join.Range],
    crcs: Sequence[int],
    samples: int,
    out: Path,
) -> list[join.Cut]:
    """The segments' raw frames joined behind an Info frame for the whole stream (its music CRC
    chained from each segment's, as ``transcoder.parallel.join`` does)."""
    with contextlib.ExitStack() as stack:
        mapped = [mp3.FileBytes(stack.enter_context(path.open("rb"))) for path in paths]
        streams = [
            join.Stream(data, mp3.cbr_frame_offsets(data), r.first_frame)
            for data, r in zip(mapped, ranges, strict=True)
        ]
        pieces, cuts = join.plan(streams)
        runs = [
            (
                join.piece_crc(streams[p.stream], p, crcs[p.stream]),
                streams[p.stream].offsets[p.end] - streams[p.stream].offsets[p.first],
            )
            for p in pieces
        ]
        lengths = [
            b - a
            for p in pieces
            for a, b in zip(
                streams[p.stream].offsets[p.first : p.end],
                streams[p.stream].offsets[p.first + 1 : p.end + 1],
                strict=True,
            )
        ]
        info = mp3.cbr_info_frame(
            bytes(mapped[0][:4]),
            lengths,
            encoder_delay=ENCODER_DELAY,
            padding=len(lengths) * join.FRAME_SAMPLES - ENCODER_DELAY - samples,
            music_crc=join.chain_crcs(runs),
        )
        with out.open("wb") as file:
            file.write(info)
            join.write(streams, pieces, file)
    return cuts


# --- the experiment ------------------------------------------------------------------------------


def measure(workdir: Path, seconds: float, segments: int, repeats: int) -> dict[str, Any]:
    """Interleaved runs of one pinned process and of ``segments`` pinned segment processes,
    the quality of both MP3s, and the analysis pass; the figures ``render`` prints."""
    ffmpeg = TranscoderSettings().ffmpeg_executable()
    source = workdir / "long.wav"
    generated = time.monotonic()
    write_pink(ffmpeg, seconds, source)
    generated = time.monotonic() - generated
    samples = _samples(source)
    ranges = join.segment_ranges(samples, segments)
    single_out, split_out = workdir / "single.mp3", workdir / "split.mp3"
    load_before = os.getloadavg()
    runs: dict[int, list[Run]] = {1: [], segments: []}
    for repeat in range(repeats):
        order = (1, segments) if repeat % 2 == 0 else (segments, 1)
        for k in order:
            if k == 1:
                runs[1].append(run_split(source, [join.Range(0, samples)], samples, single_out))
            else:
                runs[k].append(run_split(source, ranges, samples, split_out))
    crc_pass = {
        name: _crc_pass(path) for name, path in (("single", single_out), ("split", split_out))
    }
    analyser = Worker(_cores()[0], "--analyse", str(source))
    _start([analyser])
    analysis = analyser.result()["seconds"]
    analyser.close()
    compared = compare(ffmpeg, source, single_out, split_out)
    return {
        "seconds": seconds,
        "samples": samples,
        "segments": segments,
        "repeats": repeats,
        "cores": _cores(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "generate_s": generated,
        "ranges": [(r.start, r.end) for r in ranges],
        "runs": {k: [_run_fields(r) for r in v] for k, v in runs.items()},
        "cuts": runs[segments][-1].cuts,
        "mp3_bytes": {"single": single_out.stat().st_size, "split": split_out.stat().st_size},
        "identical": single_out.read_bytes() == split_out.read_bytes(),
        "crc_pass": crc_pass,
        "analysis_s": analysis,
        "quality": compared,
    }


def write_pink(ffmpeg: str, seconds: float, path: Path) -> None:
    """``quality``'s pink noise (one seed per channel), ``seconds`` long."""
    subprocess.run(  # noqa: S603
        [
            *(ffmpeg, "-nostdin", "-v", "error", "-y"),
            *("-filter_complex", quality.MATERIALS["pink noise"], "-t", f"{seconds:g}"),
            *("-ac", str(quality.CHANNELS), "-ar", str(quality.RATE), "-c:a", "pcm_s16le"),
            *("-map_metadata", "-1", "-fflags", "+bitexact", str(path)),
        ],
        check=True,
        timeout=60 + seconds / 5,
    )


def _run_fields(run: Run) -> dict[str, Any]:
    return {name: getattr(run, name) for name in Run.__dataclass_fields__}


def _crc_pass(path: Path) -> dict[str, Any]:
    """A serial CRC-16 pass over the MP3's frames (what the linear CRC chaining avoids), and
    whether it equals the music CRC the Info frame declares."""
    started = time.monotonic()
    with path.open("rb") as file:
        head = file.read(mp3.HEAD_BYTES)
        start = mp3.info_frame_length(head[:4])
        tag = mp3.lame_tag_offset(head)
        _, crc = lame.scan(file, start, file.seek(0, os.SEEK_END))
    return {
        "seconds": time.monotonic() - started,
        "matches": crc == int.from_bytes(head[tag + 32 : tag + 34], "big"),
    }


def compare(ffmpeg: str, source: Path, single: Path, split: Path) -> dict[str, Any]:
    """Input, single pass and split, decoded gaplessly by ffmpeg at once and compared a few MiB
    at a time (an hour of float stereo is 1.3 GB a decode): sample counts and SNRs."""
    names = ("input", "single", "split")
    decoders = [
        subprocess.Popen(  # noqa: S603
            [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "2", "-"],
            stdout=subprocess.PIPE,
        )
        for path in (source, single, split)
    ]
    frames = dict.fromkeys(names, 0)
    energy = dict.fromkeys(("input", "single"), 0.0)
    noise = dict.fromkeys(("single", "split", "split vs single"), 0.0)
    try:
        while True:
            blocks = [_read_exactly(d.stdout, _DECODE_BYTES) for d in decoders if d.stdout]
            if not any(blocks):
                break
            audio = [
                np.frombuffer(b[: len(b) - len(b) % 4], "<f4").astype(np.float64) for b in blocks
            ]
            for name, samples in zip(names, audio, strict=True):
                frames[name] += len(samples) // quality.CHANNELS
            common = min(len(a) for a in audio)
            x, y, z = (a[:common] for a in audio)
            energy["input"] += float(np.dot(x, x))
            energy["single"] += float(np.dot(y, y))
            noise["single"] += float(np.sum((x - y) ** 2))
            noise["split"] += float(np.sum((x - z) ** 2))
            noise["split vs single"] += float(np.sum((y - z) ** 2))
    finally:
        for decoder in decoders:
            if decoder.stdout is not None:
                decoder.stdout.close()
            decoder.wait(timeout=60)
    if any(decoder.returncode for decoder in decoders):
        raise RuntimeError("ffmpeg could not decode an MP3")
    reference = {"single": "input", "split": "input", "split vs single": "single"}
    return {
        "frames": frames,
        "samples_equal": len(set(frames.values())) == 1,
        "snr_db": {name: _db(energy[reference[name]], noise[name]) for name in noise},
    }


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left and (part := stream.read(left)):
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _db(signal: float, noise: float) -> float:
    return float("inf") if noise == 0 else 10 * float(np.log10(signal / noise))


def render(results: dict[str, Any]) -> str:
    """The figures as markdown: times, then quality, then the serial parts."""
    k, seconds = results["segments"], results["seconds"]
    medians = {n: statistics.median(r["wall"] for r in runs) for n, runs in results["runs"].items()}
    single_frames = results["runs"][1][0]["encoded_frames"]
    lines = [
        f"### {seconds:g} s stereo 44.1 kHz 16-bit pink noise, K = {k}",
        "",
        f"{results['repeats']} interleaved repeats, medians; cores {results['cores']}; load "
        f"average {results['load_before'][0]:.2f} before, {results['load_after'][0]:.2f} after.",
        "",
        "| K | wall, each run | wall (median) | wall (best) | speed-up (median, best) "
        "| ideal | CPU s, busiest worker | CPU s, all | speed-up (CPU) | join + Info "
        "| start-up | frames encoded |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    med = statistics.median
    best = {n: min(r["wall"] for r in runs) for n, runs in results["runs"].items()}
    cpu = {n: med(r["cpu_slowest"] for r in runs) for n, runs in results["runs"].items()}
    for n, runs in results["runs"].items():
        each = ", ".join(f"{r['wall']:.2f}" for r in runs)
        lines.append(
            f"| {n} | {each} | {medians[n]:.2f} s | {best[n]:.2f} s "
            f"| {medians[1] / medians[n]:.2f}{X}, {best[1] / best[n]:.2f}{X} | {n:.2f}{X} "
            f"| {cpu[n]:.2f} | {med(r['cpu_total'] for r in runs):.2f} "
            f"| {cpu[1] / cpu[n]:.2f}{X} | {med(r['join'] for r in runs) * 1000:.0f} ms "
            f"| {med(r['startup'] for r in runs) * 1000:.0f} ms "
            f"| {runs[0]['encoded_frames']} (+{runs[0]['encoded_frames'] - single_frames}) |"
        )
    q = results["quality"]
    snr = q["snr_db"]
    lines += [
        "",
        "| decoded (ffmpeg, gapless) | samples | SNR vs input | SNR vs single pass |",
        "|---|---|---|---|",
        f"| input | {q['frames']['input']} | | |",
        f"| K = 1 | {q['frames']['single']} | {snr['single']:.2f} dB | |",
        f"| K = {k}, joined | {q['frames']['split']} | {snr['split']:.2f} dB "
        f"| {snr['split vs single']:.2f} dB |",
        "",
        f"- Sample counts equal: {'yes' if q['samples_equal'] else '**no**'}; cuts (frame, "
        f"carried bytes, room bytes): {results['cuts']}.",
        f"- MP3 bytes: single {results['mp3_bytes']['single']}, joined "
        f"{results['mp3_bytes']['split']}; byte for byte the same file: "
        f"{'yes' if results['identical'] else 'no'}.",
        f"- Analysis pass (loudness + peaks over the whole input, one pinned process): "
        f"{results['analysis_s']:.2f} s.",
        "- A serial CRC-16 pass over the frames (the split chains the segments' CRCs instead): "
        + ", ".join(
            f"{name} {c['seconds'] * 1000:.0f} ms (matches the Info frame: "
            f"{'yes' if c['matches'] else '**no**'})"
            for name, c in results["crc_pass"].items()
        )
        + ".",
        f"- Generating the WAV: {results['generate_s']:.1f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
