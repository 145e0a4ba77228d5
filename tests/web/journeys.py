"""What a person does on the page, as steps the browser tests share."""

from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from testkit import wavcorpus

CONVERTED_SECONDS = 30.0


def write_wav(folder: Path, name: str, seconds: float, **shape: int) -> Path:
    path = folder / name
    path.write_bytes(wavcorpus.pcm(seconds, **shape))
    return path


def create_account(page: Page, name: str, *, remember: bool = True) -> tuple[str, str]:
    """Create an account on the welcome view; returns (user id, token) from the token view."""
    page.get_by_label("Your name").fill(name)
    if remember:
        page.locator("#create-form").get_by_label("Remember me on this device").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()
    user_id = page.locator("#new-user-id").inner_text()
    token = page.locator("#new-token").inner_text()
    return user_id, token


def continue_past_token(page: Page) -> None:
    page.get_by_label("I have saved my token").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Convert WAV files")).to_be_visible()


def sign_in(page: Page, user_id: str, token: str, *, remember: bool = False) -> None:
    page.get_by_label("User id", exact=True).fill(user_id)
    page.get_by_label("Token", exact=True).fill(token)
    if remember:
        page.locator("#signin-form").get_by_label("Remember me on this device").check()
    page.get_by_role("button", name="Sign in").click()


def pick(page: Page, *files: Path) -> None:
    """Pick files with the page's file chooser (as "Choose WAV files" opens it)."""
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Choose WAV files").click()
    chooser.value.set_files([str(path) for path in files])


def upload_row(page: Page, name: str) -> Locator:
    return page.locator("#uploads li.row").filter(has=page.locator(".row-name", has_text=name))


def record_row(page: Page, name: str) -> Locator:
    return page.locator("#records li.row").filter(has=page.locator(".row-name", has_text=name))


def wait_converted(row: Locator) -> None:
    expect(row).to_have_attribute("data-state", "done", timeout=CONVERTED_SECONDS * 1000)


def upload_percent(row: Locator) -> int:
    return int(row.locator("progress").first.get_attribute("value") or 0)


def wait_upload_percent(page: Page, row: Locator, at_least: int) -> None:
    """Poll (with a deadline) until the row's upload bar shows ``at_least`` per cent."""
    page.wait_for_function(
        "([row, percent]) => "
        "Number(row.querySelector('progress').getAttribute('value')) >= percent",
        arg=[row.element_handle(), at_least],
        timeout=20_000,
    )


def throttle_uploads(page: Page, bytes_per_second: int) -> Any:
    """Chromium's network emulation: request bodies leave at this rate (a slow uplink)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )
    return cdp


def audio_duration(row: Locator) -> float:
    duration: float = row.locator("audio").evaluate(
        """audio => new Promise((resolve, reject) => {
            if (audio.readyState >= 1) return resolve(audio.duration);
            audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
            audio.addEventListener("error", () => reject(new Error("error " + audio.error?.code)));
            audio.load();
        })"""
    )
    return duration
