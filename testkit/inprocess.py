"""Both services in this process, with their lifespans, for behaviour tests.

    with transcoder_client(TranscoderSettings()) as client:       # a sync httpx.Client
        client.post("/transcode", content=wav)
    with gateway_transports(settings) as transport:               # the gateway, on the real
        httpx.Client(transport=transport(), base_url=...)          # transcoder app (real ffmpeg)

Each stack runs in an event loop of its own (a blocking portal: one thread), where the apps'
lifespans ran, so the sync clients of the tests (threads included) and the apps' async clients
share one loop. The gateway reaches the transcoder app through ``httpx.ASGITransport``; app
exceptions surface in the test with their traceback.
"""

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from gateway.config import Settings as GatewaySettings
from gateway.deps import Resources
from gateway.main import create_app as create_gateway
from transcoder.config import Settings as TranscoderSettings
from transcoder.main import create_app as create_transcoder

TRANSCODER_URL = "http://transcoder.test"

TransportFactory = Callable[[], httpx.BaseTransport]


class PortalTransport(httpx.BaseTransport):
    """A sync transport that sends each request to ``app`` on the portal's event loop."""

    def __init__(self, portal: BlockingPortal, app: ASGIApp) -> None:
        self._portal = portal
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        # The body goes in the pieces the test sent it in (a generator stays a chunked body).
        forwarded = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=_AsyncChunks(request.stream),
            extensions=request.extensions,
        )
        response = await self._asgi.handle_async_request(forwarded)
        content = await response.aread()
        return httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(content)
        )


class _AsyncChunks(httpx.AsyncByteStream):
    """A request body as an async stream, whatever it was given as."""

    def __init__(self, chunks: Iterable[bytes] | AsyncIterable[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if isinstance(self._chunks, AsyncIterable):
            async for chunk in self._chunks:
                yield chunk
        else:
            for chunk in self._chunks:
                yield chunk


class WholeBodyTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` that sends the whole request body even when the app answers
    before reading it, as httpx over TCP does (HTTP/1.1: the body goes out, then the answer is
    read). Without it, the gateway's file-reading body generator is left unfinished when the
    transcoder refuses a WAV from its header alone, and its open file is only closed by GC."""

    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        chunks = aiter(_AsyncChunks(request.stream))
        forwarded = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=_AsyncChunks(chunks),
            extensions=request.extensions,
        )
        response = await self._asgi.handle_async_request(forwarded)
        async for _ in chunks:  # what the app left unread
            pass
        return response


@asynccontextmanager
async def transcoder_app(settings: TranscoderSettings) -> AsyncIterator[ASGIApp]:
    """The transcoder app after its start-up; requests see its lifespan state."""
    async with LifespanManager(create_transcoder(settings)) as manager:
        yield manager.app


@asynccontextmanager
async def gateway_app(
    settings: GatewaySettings, *, transcoder: TranscoderSettings | None = None
) -> AsyncIterator[ASGIApp]:
    """The gateway app after its start-up, its transcoder the real transcoder app."""
    async with transcoder_app(transcoder or TranscoderSettings()) as encoder:
        transport = WholeBodyTransport(encoder)
        async with (
            Resources.open(settings, transcoder_transport=transport) as resources,
            LifespanManager(create_gateway(resources=resources)) as manager,
        ):
            yield manager.app


@contextmanager
def transports(stack: AbstractAsyncContextManager[ASGIApp]) -> Iterator[TransportFactory]:
    """Run ``stack`` on an event loop of its own until the block ends; yields a maker of sync
    transports to its app (one per client: a client closes its transport)."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(stack) as app:
        yield lambda: PortalTransport(portal, app)


def gateway_transports(
    settings: GatewaySettings, *, transcoder: TranscoderSettings | None = None
) -> AbstractContextManager[TransportFactory]:
    """``transports`` of a gateway app (on the real transcoder app) with these settings."""
    return transports(gateway_app(settings, transcoder=transcoder))


@contextmanager
def transcoder_client(settings: TranscoderSettings) -> Iterator[httpx.Client]:
    """A sync client of a transcoder app running in this process."""
    with (
        transports(transcoder_app(settings)) as transport,
        httpx.Client(transport=transport(), base_url=TRANSCODER_URL, timeout=60) as client,
    ):
        yield client
