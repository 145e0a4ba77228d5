"""Segments of a long recording encoded by other transcoders (``SEGMENT_PEERS``).

A transcoder that receives a long 16-bit PCM recording and has peers splits it into one segment
for itself and one for each peer (``transcoder.parallel``). It streams each peer its range, as
a canonical WAV, to ``POST /segment``; the peer encodes it as a segment of a split encode is
encoded here (LAME, the reservoir on, no analysis, no tags) and answers the frames behind an
Info frame. ``transcoder.join`` joins them with this transcoder's own segment, which also
measures the loudness and the waveform peaks of the whole input.

Peers are base URLs; a host name counts every address of the first family it resolves to, so
``http://transcoder:8001`` names every replica of ``docker compose up --scale transcoder=K``.
The address the request came in on (this replica) is left out. A peer that cannot be reached,
answers anything but an MP3, or passes its segment's deadline (``SEGMENT_TIMEOUT_SECONDS`` plus a
tenth of the segment's duration) makes the whole encode fall back to one pass here: the answer is
never worse than one transcoder's. docs/scaling.md has the figures and the limits.

httpx is imported by this module only, which the app imports only when it has peers: a
transcoder without them does not hold it (~9 MB).
"""

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx

from servicekit.logs import request_id_var
from servicekit.middleware import REQUEST_ID_HEADER

logger = logging.getLogger(__name__)

# What this transcoder does besides its own segment (the analysis of the whole input, sending
# the peers their PCM) costs this much of one core's encode of the whole input, as measured by
# `python -m bench.replicas` (docs/scaling.md). On one CPU its own segment is shorter by that
# much, so that it ends with the peers'.
ANALYSIS_COST = 0.33
MIN_OWN_SHARE = 0.02  # of one segment: segment 1 also carries the joined stream's Info frame
MAX_PEERS = 15  # one file holds at most 16 segments at once
RESOLVE_SECONDS = 2.0
CONNECT_SECONDS = 5.0
_WRITE_BYTES = 1024 * 1024


class PeerError(Exception):
    """A peer did not encode its segment (unreachable, an error answer, or too slow)."""


def shares(segments: int, cpus: int) -> list[float]:
    """Each segment's share of the input when segment 1 is this transcoder's and the others are
    one peer's each. With one CPU here, segment 1 also carries the analysis of the whole input,
    so it takes ``ANALYSIS_COST`` less of the encode; with more, the analysis runs beside it."""
    cost = ANALYSIS_COST if cpus < 2 else 0.0
    share = (1 + cost) / segments
    return [max(share - cost, MIN_OWN_SHARE * share), *([share] * (segments - 1))]


class Peers:
    """The peers named by ``urls``, and the client that sends them segments."""

    def __init__(self, urls: Sequence[str], *, timeout_seconds: float) -> None:
        self.urls = [httpx.URL(url.rstrip("/")) for url in urls]
        self.timeout_seconds = timeout_seconds
        # The segment's budget bounds the whole exchange. A read or write bound of its own would
        # count a peer as failed while it is silent for a while inside the budget: busy with
        # other encodes, or frozen for a moment.
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=CONNECT_SECONDS))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def resolve(self, arrived_on: tuple[str, int] | None) -> list[str]:
        """The peers' base URLs, one per address; ``arrived_on`` (this server's address of the
        request) is left out. A name that does not resolve in time counts for none."""
        loop = asyncio.get_running_loop()
        found: list[str] = []
        for url in self.urls:
            if len(found) >= MAX_PEERS:
                break
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                async with asyncio.timeout(RESOLVE_SECONDS):
                    infos = await loop.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
            except (OSError, TimeoutError) as error:
                logger.warning("segment peer %s does not resolve (%s)", url, error)
                continue
            family = infos[0][0] if infos else None
            for info_family, _, _, _, sockaddr in infos:
                address = (str(sockaddr[0]), int(sockaddr[1]))
                if info_family != family or address == arrived_on:
                    continue
                base = str(url.copy_with(host=address[0], port=port))
                if base not in found:
                    found.append(base)
        return found[:MAX_PEERS]

    def budget(self, seconds: float) -> float:
        """A segment's deadline: ``timeout_seconds`` and a tenth of its audio (LAME encodes 75 times
        real time on one core here, so this leaves a slow or busy peer 7 times that)."""
        return self.timeout_seconds + seconds / 10

    async def encode(
        self,
        peer: str,
        wav_header: bytes,
        audio: AsyncIterator[bytes],
        output: Path,
        *,
        kbps: int,
        seconds: float,
        deadline: float,
    ) -> None:
        """Have ``peer`` encode the WAV (``wav_header`` then ``audio``) at ``kbps`` into
        ``output``; ``deadline``: ``time.monotonic()`` the whole encode must end by. Raises
        ``PeerError``."""
        budget = min(self.budget(seconds), deadline - time.monotonic())

        async def body() -> AsyncIterator[bytes]:
            yield wav_header
            async for chunk in audio:
                yield chunk

        headers = {"Content-Type": "audio/wav"}
        if (request_id := request_id_var.get()) != "-":
            headers[REQUEST_ID_HEADER] = request_id
        params = {"bitrate": str(kbps), "deadline_seconds": f"{max(budget, 0.001):.3f}"}
        try:
            async with asyncio.timeout(budget):
                async with self._client.stream(
                    "POST", f"{peer}/segment", params=params, content=body(), headers=headers
                ) as response:
                    if response.status_code != 200:
                        text = (await response.aread())[:300].decode("utf-8", "replace")
                        raise PeerError(f"{peer} answered {response.status_code}: {text}")
                    await _save(response, output)
        except TimeoutError:
            raise PeerError(f"{peer} took longer than {budget:.1f} s") from None
        except httpx.HTTPError as error:
            raise PeerError(f"{peer}: {error!r}") from error


async def _save(response: httpx.Response, output: Path) -> None:
    with await asyncio.to_thread(output.open, "wb") as out:
        pending = bytearray()
        async for chunk in response.aiter_bytes():
            pending += chunk
            if len(pending) >= _WRITE_BYTES:
                await asyncio.to_thread(out.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(out.write, bytes(pending))
