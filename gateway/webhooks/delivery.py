"""Delivering a webhook event: sign it, check the target, POST it, schedule the next attempt.

A delivery is a job of kind ``webhook`` run by the job workers, never by a request. Each attempt
signs the same body under the same ``webhook-id`` (Standard Webhooks, with the
``standardwebhooks`` library) with its own ``webhook-timestamp``; a non-2xx answer, a timeout or a
transport error is retried at the delays of ``WEBHOOK_RETRY_SECONDS`` (±10 % jitter) until they
run out. Redirects are not followed: a 3xx is a failed attempt, so no redirect can lead the
request to an address the guard did not check.
"""

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as Signer

from gateway.jobs import queue
from gateway.models import Job
from gateway.models.base import utc_now
from gateway.models.webhook import DELIVERED, GAVE_UP, PENDING
from gateway.webhooks import repository, targets
from servicekit import __version__
from servicekit.errors import ServiceError

if TYPE_CHECKING:
    from gateway.deps import Resources

logger = logging.getLogger(__name__)

USER_AGENT = f"riffle-webhooks/{__version__}"
_JITTER = 0.1
_MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt met: an HTTP status, or the error that stopped it."""

    at: datetime
    status: int | None
    error: str | None
    duration_seconds: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def log_entry(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "status": self.status,
            "error": self.error,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def signed_headers(*, secret: str, webhook_id: str, payload: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (``webhook-signature: v1,<base64>``)."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(webhook_id, at, payload),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


async def attempt(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    webhook_id: str,
    payload: str,
    timeout_seconds: float,
    allow_private: bool,
) -> Attempt:
    """One attempt, within ``timeout_seconds`` from name resolution to the answer's status."""
    at, started = utc_now(), time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        with anyio.fail_after(timeout_seconds):
            target = await targets.resolve(url, allow_private=allow_private)
            headers = signed_headers(secret=secret, webhook_id=webhook_id, payload=payload, at=at)
            status = await _post_pinned(client, target, headers, payload.encode())
    except ServiceError as refused:  # WebhookTargetRefused, or a URL no longer valid
        error = f"Refused: {refused.detail}"
    except TimeoutError:
        error = f"No answer within {timeout_seconds:g} s."
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}".strip().rstrip(":")
    return Attempt(at, status, error and error[:_MAX_ERROR], time.monotonic() - started)


async def _post_pinned(
    client: httpx.AsyncClient, target: targets.Target, headers: dict[str, str], body: bytes
) -> int:
    """POST to the checked addresses themselves (the next that answers if one refuses), with the
    name in ``Host`` and in TLS (SNI and certificate check): a second lookup could differ."""
    default_port = {"http": 80, "https": 443}[target.scheme]
    shown_host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = shown_host if target.port == default_port else f"{shown_host}:{target.port}"
    extensions: dict[str, Any] = {}
    if target.scheme == "https" and target.host not in target.addresses:
        extensions["sni_hostname"] = target.host
    url = httpx.URL(target.url)
    for index, address in enumerate(target.addresses):
        pinned = url.copy_with(host=address.partition("%")[0])
        try:
            async with client.stream(
                "POST",
                pinned,
                content=body,
                headers={**headers, "host": host_header},
                extensions=extensions,
            ) as response:
                return response.status_code  # the body does not matter: not read
        except httpx.ConnectError:
            if index == len(target.addresses) - 1:
                raise
    raise httpx.ConnectError("no address to connect to")


def open_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The one client for deliveries: no redirects, no proxies from the environment (a proxy
    would resolve the name itself), no kept-alive connections (a TLS connection made for one
    name must not carry another's request to the same address)."""
    return httpx.AsyncClient(
        # A backstop: the attempt's own deadline (``attempt``) ends it first.
        timeout=httpx.Timeout(timeout_seconds + 1),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def deliver(resources: "Resources", job: Job, claim: queue.Claim) -> None:
    """Run one attempt of the delivery ``job`` names, then finish or reschedule its job."""
    database, settings = resources.database, resources.settings
    found = await database.run(
        lambda session: repository.delivery_with_webhook(session, delivery_id=job.id)
    )
    if found is None or found[0].status != PENDING:
        await database.run(lambda session: queue.succeed(session, claim=claim))
        return
    delivery, webhook = found
    delays = settings.webhook_retry_seconds
    if webhook is None:
        outcome = Attempt(utc_now(), None, "The webhook was removed; not delivered.", 0.0)
    else:
        outcome = await attempt(
            resources.webhook_client,
            url=webhook.url,
            secret=webhook.secret,
            webhook_id=delivery.webhook_id,
            payload=delivery.payload,
            timeout_seconds=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
        )
    last = webhook is None or job.attempts > len(delays)
    after: datetime | None = None
    if not outcome.ok and not last:
        delay = delays[job.attempts - 1] * random.uniform(1 - _JITTER, 1 + _JITTER)  # noqa: S311
        after = outcome.at + timedelta(seconds=delay)
    entry = outcome.log_entry()
    problem = {"detail": outcome.error or f"HTTP {outcome.status}"}

    def finish(session: Session) -> None:
        if outcome.ok:
            queue.succeed(session, claim=claim)
            status = DELIVERED
        elif after is None:
            if not queue.fail(session, claim=claim, error=problem):
                return  # another worker holds the job now: its attempt is the one that counts
            status = GAVE_UP
        else:
            if not queue.retry_later(session, claim=claim, after=after, error=problem):
                return
            status = PENDING
        repository.record_attempt(
            session, delivery_id=delivery.id, attempt=entry, status=status, next_attempt_at=after
        )

    await database.run(finish)
    logger.info(
        "Webhook %s (%s) attempt %d: %s%s",
        delivery.webhook_id,
        delivery.event,
        job.attempts,
        "delivered" if outcome.ok else outcome.error or f"HTTP {outcome.status}",
        f"; next in {(after - outcome.at).total_seconds():.1f} s" if after else "",
    )
