"""The page at ``/`` in a real browser (headless Chromium): what a person does, end to end,
through the public API only. Screenshots of every view land in ``var/screenshots/``."""

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, Route, expect

from testkit.gateways import Gateway
from testkit.tcp_proxy import TcpProxy
from tests.web.browser import PHONE, SIZES, axe_violations, screenshot
from tests.web.journeys import (
    audio_duration,
    continue_past_token,
    create_account,
    pick,
    record_row,
    sign_in,
    throttle_uploads,
    upload_percent,
    upload_row,
    wait_converted,
    wait_upload_percent,
    write_wav,
)

# A 30 s stereo WAV is 5.3 MB: at 1.5 MB/s its upload lasts long enough to be cut in the middle.
LARGE_SECONDS = 30
SLOW_UPLINK = 1_500_000


def views_look_right(page: Page, view: str) -> None:
    """No axe-core A/AA violation, and a screenshot, at desktop and at phone size."""
    for size_name, size in SIZES.items():
        page.set_viewport_size(size)
        assert axe_violations(page) == [], f"{view} at {size_name}"
        screenshot(page, f"{view}-{size_name}")
    page.set_viewport_size(SIZES["desktop"])


def test_create_upload_two_play_copy_delete_sign_out_and_in(
    page: Page, web_gateway: Gateway, tmp_path: Path
) -> None:
    page.goto(web_gateway.url)
    expect(page.get_by_role("heading", name="Convert your WAV recordings to MP3")).to_be_visible()
    views_look_right(page, "welcome")

    user_id, token = create_account(page, "Ada")
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    expect(page.get_by_role("button", name="Continue")).to_be_disabled()
    views_look_right(page, "token")
    continue_past_token(page)
    expect(page.get_by_text(f"Ada ({user_id})")).to_be_visible()

    first = write_wav(tmp_path, "first take.wav", 3.0)
    second = write_wav(tmp_path, "second.wav", 2.0, channels=1)
    pick(page, first, second)
    for name in ("first take.wav", "second.wav"):
        row = upload_row(page, name)
        wait_converted(row)
        expect(row.get_by_role("progressbar", name=f"Upload of {name}")).to_have_attribute(
            "value", "100"
        )
        expect(row.get_by_role("progressbar", name=f"Conversion of {name}")).to_have_attribute(
            "value", "100"
        )
        expect(row.locator(".percent").first).to_have_text("100 %")
    # Both also head the list of recordings, newest first.
    expect(page.locator("#records li.row")).to_have_count(2)

    row = upload_row(page, "first take.wav")
    expect(row.locator(".duration")).to_have_text("0:03")
    assert abs(audio_duration(row) - 3.0) < 0.1
    playing = row.locator("audio").evaluate(
        "audio => audio.play().then(() => new Promise(resolve => "
        "audio.addEventListener('timeupdate', () => resolve(audio.currentTime), {once: true})))"
    )
    assert playing >= 0

    row.get_by_role("button", name="Copy link of first take.mp3").click()
    expect(row.get_by_text("Link copied")).to_be_visible()
    link = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(rf"{web_gateway.url}/record\?id=[0-9a-f-]{{36}}&user={user_id}", link)
    download = httpx.get(link)
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/mpeg"
    assert 'filename="first take.mp3"' in download.headers["content-disposition"]
    expect(row.get_by_role("link", name="Download first take.mp3")).to_have_attribute("href", link)
    views_look_right(page, "converted")

    page.reload()  # remembered: still signed in, the recordings listed from the server
    listed = record_row(page, "second.wav")
    expect(listed).to_be_visible()
    listed.get_by_role("button", name="Delete second.mp3").click()  # the dialog is accepted
    expect(listed).to_have_count(0)
    expect(page.locator("#records li.row")).to_have_count(1)
    assert (
        len(
            httpx.get(
                f"{web_gateway.url}/users/{user_id}/records",
                headers={"Authorization": f"Bearer {token}"},
            ).json()["items"]
        )
        == 1
    )
    views_look_right(page, "recordings")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('riffle'))") == []
    sign_in(page, user_id, "00000000-0000-4000-8000-000000000000")
    expect(page.locator("#signin-error")).to_contain_text("were not accepted")
    views_look_right(page, "sign-in-error")
    sign_in(page, user_id, token)
    expect(record_row(page, "first take.wav")).to_be_visible()


def test_an_upload_cut_off_the_network_resumes_where_it_stopped(
    page: Page, relay: TcpProxy, tmp_path: Path
) -> None:
    page.goto(relay.url)
    create_account(page, "Cut")
    continue_past_token(page)
    large = write_wav(tmp_path, "long session.wav", LARGE_SECONDS)
    throttle_uploads(page, SLOW_UPLINK)
    pick(page, large)
    row = upload_row(page, "long session.wav")
    wait_upload_percent(page, row, 25)

    relay.stop()  # the network is gone: the open PATCH is cut, new connections refused
    expect(row).to_have_attribute("data-state", "retrying")
    expect(row.get_by_role("alert")).to_contain_text("connection to riffle was lost")
    stopped_at = upload_percent(row)
    assert 25 <= stopped_at < 100
    relay.start()

    wait_converted(row)
    resumed_from = int(row.get_attribute("data-resumed-from") or 0)
    assert resumed_from > 0, "the upload started over instead of resuming"
    expect(row.locator(".duration")).to_have_text("0:30")


def test_a_reload_in_the_middle_of_an_upload_resumes_it(
    page: Page, web_gateway: Gateway, tmp_path: Path
) -> None:
    page.goto(web_gateway.url)
    create_account(page, "Reload", remember=False)
    continue_past_token(page)
    large = write_wav(tmp_path, "rehearsal.wav", LARGE_SECONDS)
    throttle_uploads(page, SLOW_UPLINK)
    pick(page, large)
    wait_upload_percent(page, upload_row(page, "rehearsal.wav"), 20)

    page.reload()  # this tab's session survives a reload without "remember me"
    row = upload_row(page, "rehearsal.wav")
    expect(row).to_have_attribute("data-state", "stalled")
    expect(row.get_by_role("status")).to_contain_text("Choose the same file again to resume")
    views_look_right(page, "resume-after-reload")
    with page.expect_file_chooser() as chooser:
        row.get_by_role("button", name="Choose the file again: rehearsal.wav").click()
    chooser.value.set_files(str(large))

    wait_converted(row)
    assert int(row.get_attribute("data-resumed-from") or 0) > 0


def test_pause_and_resume(page: Page, web_gateway: Gateway, tmp_path: Path) -> None:
    page.goto(web_gateway.url)
    create_account(page, "Pause")
    continue_past_token(page)
    throttle_uploads(page, SLOW_UPLINK)
    pick(page, write_wav(tmp_path, "paused.wav", LARGE_SECONDS / 2))
    row = upload_row(page, "paused.wav")
    wait_upload_percent(page, row, 10)
    row.get_by_role("button", name="Pause: paused.wav").click()
    expect(row).to_have_attribute("data-state", "paused")
    row.get_by_role("button", name="Resume: paused.wav").click()
    wait_converted(row)
    assert int(row.get_attribute("data-resumed-from") or 0) > 0


def test_problems_are_told_in_words_next_to_their_file(
    page: Page, web_gateway: Gateway, tmp_path: Path
) -> None:
    # Busy: the first creation answers 503 with Retry-After (a fault the real stack cannot be
    # made to show on cue); the page says so, waits as long as it says, and goes on.
    busy = {"left": 1}

    def once_busy(route: Route) -> None:
        if route.request.method == "POST" and busy["left"]:
            busy["left"] -= 1
            route.fulfill(
                status=503,
                headers={"Retry-After": "2", "Content-Type": "application/problem+json"},
                body='{"type":"https://riffle.dev/problems/dependency-unavailable",'
                '"title":"Service temporarily unavailable","status":503,'
                '"detail":"The database is unavailable."}',
            )
        else:
            route.continue_()

    page.route("**/uploads/", once_busy)
    page.goto(web_gateway.url)
    create_account(page, "Mistakes")
    continue_past_token(page)
    notes = tmp_path / "notes.wav"
    notes.write_text("These are my notes, not a recording.\n" * 4)
    big = write_wav(tmp_path, "big.wav", 50.0)  # 8.8 MB: over MAX_UPLOAD_BYTES
    long = write_wav(tmp_path, "long.wav", 45.0, rate=8000, channels=1)  # over 40 s
    fine = write_wav(tmp_path, "fine.wav", 1.0, rate=8000, channels=1)
    pick(page, fine)
    fine_row = upload_row(page, "fine.wav")
    expect(fine_row.get_by_role("alert")).to_contain_text("busy")
    expect(fine_row.get_by_role("alert")).to_contain_text(re.compile(r"Trying again in \d s"))
    wait_converted(fine_row)

    pick(page, notes, big, long)
    expect(upload_row(page, "notes.wav").get_by_role("alert")).to_contain_text(
        "This is not a WAV file"
    )
    expect(upload_row(page, "big.wav").get_by_role("alert")).to_contain_text(
        "too large: the limit is 8.00 MB"
    )
    expect(upload_row(page, "long.wav").get_by_role("alert")).to_contain_text(
        "This recording is too long"
    )
    for name in ("notes.wav", "big.wav", "long.wav"):
        expect(upload_row(page, name)).to_have_attribute("data-state", "failed")
    views_look_right(page, "problems")


def test_phone_layout_has_no_sideways_scrolling(page: Page, web_gateway: Gateway) -> None:
    page.set_viewport_size(PHONE)
    page.goto(web_gateway.url)
    expect(page.get_by_role("button", name="Create account")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # Keyboard only: Tab reaches the name field and Enter creates the account.
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "create-name"
    page.keyboard.type("Keys")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()


def test_docs_load_swagger_ui_from_the_gateway(page: Page, web_gateway: Gateway) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if request.url.startswith("http") and not request.url.startswith(web_gateway.url)
            else None
        ),
    )
    page.goto(f"{web_gateway.url}/docs")
    expect(page.get_by_text("POST/users")).to_be_visible()
    assert httpx.get(f"{web_gateway.url}/redoc").status_code == 404  # it would need a CDN
    page.goto(web_gateway.url)
    expect(page.get_by_role("button", name="Create account")).to_be_visible()
    assert outside == []
