"""The SSRF guard's rules, address by address (no network: IP literals, and localhost)."""

import ipaddress
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio
import pytest

from gateway.errors import WebhookTargetRefused
from gateway.webhooks.targets import check_url, refusal, resolve
from servicekit.errors import InvalidInput

T = TypeVar("T")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved (Python files 240/4 under private too)
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_with_their_reason(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/riffle", ("https", "hooks.example.com", 443)),
        ("http://example.com:8080/x?y=1", ("http", "example.com", 8080)),
        ("http://[2606:4700:4700::1111]/", ("http", "2606:4700:4700::1111", 80)),
    ],
)
def test_http_urls_are_taken_apart(url: str, expected: tuple[str, str, int]) -> None:
    assert check_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https:///nohost",
        "https://user:secret@example.com/",
        "http://example.com:99999/",
        "example.com/hook",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_other_urls_are_invalid(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url)


def in_a_loop_of_its_own(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh event loop in a thread: the session may hold one in this thread
    (Playwright's sync API keeps its loop running while its fixture lives)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, work).result(timeout=30)


def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    with pytest.raises(WebhookTargetRefused, match="loopback"):
        in_a_loop_of_its_own(lambda: resolve("http://localhost:9/", allow_private=False))
    target = in_a_loop_of_its_own(lambda: resolve("http://localhost:9/", allow_private=True))
    assert "127.0.0.1" in target.addresses
    assert (target.host, target.port) == ("localhost", 9)
