"""``python -m bench.replicas [--long] [--repeats N] [--output FILE]``: one long recording spread
over K = 2 transcoder processes through the service's own code path (``SEGMENT_PEERS``).

Where ``bench.moonshot`` runs pinned stand-in workers, this starts real transcoders with uvicorn,
each pinned to one core with ``taskset``: for K = 1 one transcoder (on one CPU it encodes in one
pass, the analysis beside the encode on the same core); for K = 2 a coordinator on core 0 whose
``SEGMENT_PEERS`` names a second transcoder on core 1. curl streams the WAV (pink noise, stereo
44.1 kHz 16-bit) to ``POST /transcode`` and saves the MP3. K = 1 and K = 2 alternate, medians are
reported, with each transcoder's CPU seconds, and both MP3s are decoded gaplessly and compared
with the input and with each other (``bench.moonshot.compare``). See docs/scaling.md.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import moonshot, stack
from bench.measure import cpu_seconds
from bench.stack import Service
from testkit.scrape import scrape, value
from transcoder.config import Settings as TranscoderSettings

CURL = shutil.which("curl") or "curl"
X = moonshot.X


def transcoder(core: int, env: dict[str, str]) -> contextlib.AbstractContextManager[Service]:
    """A transcoder as the Dockerfile runs it, pinned to ``core``."""
    extra = ("--no-access-log",)
    prefix = (moonshot.TASKSET, "-c", str(core))
    return stack.uvicorn("transcoder.main:create_app", env, extra=extra, prefix=prefix)


def upload(url: str, source: Path, out: Path, servers: list[Service]) -> dict[str, Any]:
    """One ``POST /transcode`` by curl; its wall time and each server's CPU seconds."""
    before = [cpu_seconds(server.pid) for server in servers]
    started = time.monotonic()
    subprocess.run(  # noqa: S603
        [
            *(CURL, "-sS", "-f", "-X", "POST", "-T", str(source), "-o", str(out)),
            *("-H", "Content-Type: audio/wav", f"{url}/transcode"),
        ],
        check=True,
        timeout=900,
    )
    wall = time.monotonic() - started
    cpu = [cpu_seconds(server.pid) - b for server, b in zip(servers, before, strict=True)]
    return {"wall": wall, "cpu": cpu}


def segments_encoded(server: Service) -> float:
    with httpx.Client(base_url=server.url) as client:
        return value(scrape(client), "riffle_transcoder_segments_total")


def measure(workdir: Path, seconds: float, repeats: int) -> dict[str, Any]:
    ffmpeg = TranscoderSettings().ffmpeg_executable()
    source = workdir / "long.wav"
    moonshot.write_pink(ffmpeg, seconds, source)
    outputs = {1: workdir / "one.mp3", 2: workdir / "two.mp3"}
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    timeout = {"TRANSCODE_TIMEOUT_SECONDS": "900"}
    load_before = os.getloadavg()
    with contextlib.ExitStack() as servers:
        alone = servers.enter_context(transcoder(0, timeout))
        peer = servers.enter_context(transcoder(1, timeout))
        coordinator = servers.enter_context(transcoder(0, {**timeout, "SEGMENT_PEERS": peer.url}))
        for repeat in range(repeats):
            for k in (1, 2) if repeat % 2 == 0 else (2, 1):
                if k == 1:
                    runs[1].append(upload(alone.url, source, outputs[1], [alone]))
                else:
                    runs[2].append(upload(coordinator.url, source, outputs[2], [coordinator, peer]))
        segments = segments_encoded(peer)
    return {
        "seconds": seconds,
        "repeats": repeats,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "runs": runs,
        "segments_by_peer": segments,
        "mp3_bytes": {k: path.stat().st_size for k, path in outputs.items()},
        "quality": moonshot.compare(ffmpeg, source, outputs[1], outputs[2]),
    }


def render(results: dict[str, Any]) -> str:
    med = statistics.median
    runs = results["runs"]
    wall = {k: med(r["wall"] for r in v) for k, v in runs.items()}
    best = {k: min(r["wall"] for r in v) for k, v in runs.items()}
    lines = [
        f"### {results['seconds']:g} s stereo 44.1 kHz 16-bit pink noise, two pinned transcoders",
        "",
        f"{results['repeats']} interleaved repeats, medians; load average "
        f"{results['load_before'][0]:.2f} before, {results['load_after'][0]:.2f} after.",
        "",
        "| K | wall, each run | wall (median) | speed-up (median, best) | ideal "
        "| CPU s per transcoder (median) |",
        "|---|---|---|---|---|---|",
    ]
    for k, each in runs.items():
        cpus = [med(r["cpu"][i] for r in each) for i in range(len(each[0]["cpu"]))]
        walls = ", ".join(f"{r['wall']:.2f}" for r in each)
        lines.append(
            f"| {k} | {walls} | {wall[k]:.2f} s "
            f"| {wall[1] / wall[k]:.2f}{X}, {best[1] / best[k]:.2f}{X} | {k:.2f}{X} "
            f"| {', '.join(f'{c:.2f}' for c in cpus)} |"
        )
    q = results["quality"]
    snr = q["snr_db"]
    lines += [
        "",
        "| decoded (ffmpeg, gapless) | samples | SNR vs input | SNR vs K = 1 |",
        "|---|---|---|---|",
        f"| input | {q['frames']['input']} | | |",
        f"| K = 1 | {q['frames']['single']} | {snr['single']:.2f} dB | |",
        f"| K = 2, joined | {q['frames']['split']} | {snr['split']:.2f} dB "
        f"| {snr['split vs single']:.2f} dB |",
        "",
        f"- Sample counts equal: {'yes' if q['samples_equal'] else '**no**'}; segments the peer "
        f"encoded: {results['segments_by_peer']:g} (one per K = 2 run); MP3 bytes: K = 1 "
        f"{results['mp3_bytes'][1]}, K = 2 {results['mp3_bytes'][2]}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--long", action="store_true", help="3600 s of audio (default 600 s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="append the markdown to this file too")
    args = parser.parse_args(argv)
    seconds = moonshot.LONG_SECONDS if args.long else moonshot.DEFAULT_SECONDS
    with tempfile.TemporaryDirectory(prefix="riffle-replicas-") as directory:
        markdown = render(measure(Path(directory), seconds, args.repeats))
    print(markdown)
    if args.output:
        with args.output.open("a") as out:
            out.write(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
