"""The web page at `/`, driven in headless Chromium (Debian's `chromium` package, which
.ci/run installs) against a real uvicorn server and a real worker.

`WEB_PAGE_SCREENSHOT=docs/web-page.png` saves the README's screenshot of a finished
transcript while the first test runs."""

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from models import Scope, Task
from models.db import session_scope
from tests.utils.api import bearer, new_key
from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.processes import uvicorn_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
TRANSCRIBE_TIMEOUT_MS = 120_000


@pytest.fixture
def browser() -> Iterator[Browser]:
    """No skip when Chromium is missing: CI must run this test."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        yield browser
        browser.close()


def watch_statuses(page: Page) -> None:
    """Record every status a task row shows, in window.seenStatuses."""
    page.evaluate("""() => {
        window.seenStatuses = [];
        new MutationObserver(() => {
            for (const badge of document.querySelectorAll("#tasks .badge")) {
                if (window.seenStatuses.at(-1) !== badge.textContent)
                    window.seenStatuses.push(badge.textContent);
            }
        }).observe(document.getElementById("tasks"),
                   {subtree: true, childList: true, characterData: true});
    }""")


def test_a_recording_is_uploaded_transcribed_downloaded_and_deleted(
    api_server, live_worker, settings, browser, tmp_path
):
    key = new_key(settings, "page", [Scope.SUBMIT, Scope.READ])
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{api_server}/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#connection")).to_have_text("Live updates")
    watch_statuses(page)

    page.set_input_files("#file-input", audio_file("jfk.flac"))
    expect(page.locator("#uploads li")).to_contain_text("queued")
    row = page.locator("#tasks li", has_text="jfk.flac")
    expect(row.locator(".badge")).to_have_text("done", timeout=TRANSCRIBE_TIMEOUT_MS)
    assert page.evaluate("window.seenStatuses")[-2:] == ["processing", "done"]
    expect(row).to_contain_text(re.compile(r"0:11 audio · RTF \d+\.\d\d"))

    row.get_by_role("button").click()
    segments = page.locator("#segments .segment")
    expect(segments.first).to_be_visible()
    assert JFK_LINE in normalize(page.locator("#segments").inner_text())
    player = page.locator("#player")
    page.wait_for_function("() => document.getElementById('player').duration > 10")
    last = segments.last
    last.click()
    start = float(last.get_attribute("data-start") or "nan")
    assert abs(player.evaluate("audio => audio.currentTime") - start) < 0.5
    if target := os.environ.get("WEB_PAGE_SCREENSHOT"):
        page.screenshot(path=tmp_path / "page.png", full_page=True)
        shutil.copyfile(tmp_path / "page.png", target)

    page.set_viewport_size({"width": 375, "height": 740})  # a phone: nothing sticks out
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download SRT").click()
    download = download_info.value
    srt = Path(download.path()).read_text()
    assert download.suggested_filename == "jfk.srt"
    assert srt.startswith("1\n00:00:00,000 --> ") and JFK_LINE in normalize(srt)

    page.get_by_role("button", name="Copy text").click()
    expect(page.locator("#action-status")).to_have_text("Text copied.")
    assert JFK_LINE in normalize(page.evaluate("navigator.clipboard.readText()"))

    page.evaluate("window.seenStatuses = []")
    page.get_by_role("button", name="Transcribe again").click()
    expect(page.locator("#action-status")).to_have_text("Queued again.")
    page.wait_for_function(  # back in the queue, then done again, as the events told
        "() => seenStatuses.includes('queued') && seenStatuses.at(-1) === 'done'",
        timeout=TRANSCRIBE_TIMEOUT_MS,
    )

    task_id = row.get_attribute("data-task-id")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete…").click()
    expect(page.locator("#tasks li")).to_have_count(0)
    expect(page.locator("#task-view")).to_be_hidden()
    gone = httpx.get(f"{api_server}/api/v1/asr/result/{task_id}", headers=bearer(key))
    assert gone.status_code == 404
    with session_scope(settings.DATABASE_URL) as session:
        assert session.scalars(select(Task)).all() == []
    assert all(url.startswith((api_server, "blob:", "data:")) for url in requested), requested


def test_refused_files_are_explained_in_words_at_phone_width(settings, browser, tmp_path):
    not_audio = tmp_path / "notes.mp3"
    not_audio.write_text("these are meeting notes, not a recording\n" * 100)
    too_big = tmp_path / "big.wav"
    too_big.write_bytes(b"\0" * (3 * 1024 * 1024))
    server_env = {"AUTH_ENABLED": "false", "MAX_UPLOAD_MB": "2", "MAX_AUDIO_SECONDS": "5"}
    with uvicorn_server(tmp_path / "web.log", **server_env) as url:
        page = browser.new_page(viewport={"width": 375, "height": 740})
        page.goto(f"{url}/")
        expect(page.locator("#key-form")).to_be_hidden()  # no keys on this server
        expect(page.locator("#connection")).to_have_text("Live updates")

        page.set_input_files("#file-input", [not_audio, too_big, audio_file("jfk.flac")])
        refusals = page.locator("#uploads li.failed .upload-message")
        expect(refusals).to_have_count(3)
        texts = refusals.all_inner_texts()
        unreadable = next(t for t in texts if t.startswith("notes.mp3"))
        assert "is not audio or video this service can read" in unreadable
        assert "It accepts audio or video with an audio track" in unreadable
        big = next(t for t in texts if t.startswith("big.wav"))
        assert "is too large: this server accepts files of at most 2 MB" in big
        long = next(t for t in texts if t.startswith("jfk.flac"))
        assert "is too long: this server accepts recordings of at most 0:05" in long
        assert not any(re.search(r"\b41[35]\b", text) for text in texts)  # words, not codes

        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        unlabelled = page.evaluate("""() => [...document.querySelectorAll("input, select")]
            .filter(el => !el.labels?.length && !el.getAttribute("aria-label"))
            .map(el => el.id)""")
        assert unlabelled == []
        focused = []
        for _ in range(12):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id"))
        assert "file-input" in focused and "opt-words" in focused
