"""One headless Chromium per session; one gateway (SQLite + folder, as ``make run``) behind a
TCP relay, so a test can cut the page's network for real."""

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from testkit.gateways import Gateway, GatewayFactory
from testkit.tcp_proxy import TcpProxy
from tests.web.browser import DESKTOP, chromium_executable


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


# Limits low enough for the tests to meet them with small files.
MAX_UPLOAD_BYTES = 8_000_000
MAX_DURATION_SECONDS = 40


@pytest.fixture(scope="module")
def web_gateway(start_gateway: GatewayFactory) -> Iterator[Gateway]:
    with start_gateway(
        "sqlite+folder",
        MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES),
        MAX_DURATION_SECONDS=str(MAX_DURATION_SECONDS),
    ) as running:
        yield running


@pytest.fixture
def relay(web_gateway: Gateway) -> Iterator[TcpProxy]:
    """The gateway through a relay: ``relay.url`` for the page, ``relay.stop()`` cuts it."""
    port = int(web_gateway.url.rsplit(":", 1)[1])
    with TcpProxy(("127.0.0.1", port)) as proxy:
        yield proxy


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    # CSP is bypassed only so the test can inject axe-core; the page itself needs no exception.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True, **options)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    created = new_context(browser)
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())
    return opened
