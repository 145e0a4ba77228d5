"""Where a webhook may be delivered: the SSRF guard.

A target is an http(s) URL whose host resolves only to public addresses: none loopback,
private, link-local, unspecified, multicast, reserved or otherwise not global (IPv4 and IPv6,
and the IPv4 address inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 one).
``WEBHOOK_ALLOW_PRIVATE=true`` lifts the address rule, never the scheme rule. The check runs when
the webhook is set and again before every attempt, and the attempt connects to the addresses
that were checked (``Target.addresses``), so a name that resolves elsewhere a moment later (DNS
rebinding) cannot redirect it.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

from gateway.errors import WebhookTargetRefused
from servicekit.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: its host and port, and the addresses the attempt may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL without credentials; else 422."""
    if len(url) > MAX_URL_LENGTH:
        raise _bad_url(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _bad_url(str(error)) from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise _bad_url("must be an http:// or https:// URL")
    if not parts.hostname:
        raise _bad_url("has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs; sign-and-verify is what authenticates a delivery.
        raise _bad_url("must not hold credentials (user:password@)")
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def refusal(address: IPAddress) -> str | None:
    """Why a webhook must not reach ``address`` (e.g. ``"loopback"``); None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a connection to it goes to the IPv4 address
            return refusal(address.ipv4_mapped)
        embedded = address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]  # the client's address
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and (reason := refusal(embedded)) is not None:
            return reason
    for reason, hit in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-global", not address.is_global),
    ):
        if hit:
            return reason
    return None


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The checked target of ``url``: every address its host resolves to must pass ``refusal``
    (one bad address refuses all: an attacker controls which one a client would pick)."""
    scheme, host, port = check_url(url)
    try:
        infos = await anyio.to_thread.run_sync(
            lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM),
            abandon_on_cancel=True,  # a hung resolver is answered by the caller's deadline
        )
    except (socket.gaierror, UnicodeError) as error:
        raise WebhookTargetRefused(f"The host {host} does not resolve ({error}).") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for text in addresses:
            reason = refusal(ipaddress.ip_address(text.partition("%")[0]))
            if reason is not None:
                shown = host if host == text else f"{host} ({text})"
                raise WebhookTargetRefused(
                    f"The target {shown} is a {reason} address; webhooks go to public "
                    "addresses only."
                )
    return Target(url, scheme, host, port, addresses)


def _bad_url(message: str) -> InvalidInput:
    return InvalidInput(f"url: {message}", errors=[{"loc": ["body", "url"], "msg": message}])
