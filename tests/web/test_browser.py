"""End to end in a real headless browser: `cdp serve` as its own process, Debian's Chromium
driven by Playwright (no browser download: the system's /usr/bin/chromium). A person types a
customer's phone the way people type it, opens the profile, and sees the records linked from
three or more channels; every request stays on the local server (works offline)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.web.conftest import Person, Warehouse

CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]


def _chromium() -> str:
    found = os.environ.get("CDP_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not found:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: its absence is a broken set-up
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(warehouse: Warehouse, tmp_path: Path):
    port = _free_port()
    cdp = Path(sys.executable).with_name("cdp")
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(cdp), "--config", str(warehouse.config), "serve", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CDP_SERVE_TOKEN": ""})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("cdp serve did not start: "
                        + (tmp_path / "serve.log").read_text(encoding="utf-8"))
        time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=20)
    log.close()


def test_search_by_phone_then_profile_shows_three_channels(server: str, person: Person,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = _chromium()
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(server + "/")
            page.fill("#q", person.phone_typed)
            page.click("#search-button")
            result = page.locator(f'#results a.customer-link:text-is("{person.customer_id}")')
            expect(result).to_be_visible()
            # the list masks the phone it found
            expect(page.locator("#results")).not_to_contain_text(person.phone)
            result.click()

            page.wait_for_url(f"**/customers/{person.customer_id}")
            expect(page.locator("#customer-name")).to_contain_text(person.customer_id)
            sections = page.locator("#linked-records section.channel")
            expect(sections.first).to_be_visible()
            channels = set(sections.evaluate_all(
                "els => els.map(e => e.dataset.channel)"))
            assert channels == set(person.channels) and len(channels) >= 3
            for channel in channels:
                section = page.locator(f'section.channel[data-channel="{channel}"]')
                expect(section.locator("tr.linked-record").first).to_be_visible()
            expect(page.locator("#golden")).to_contain_text(person.phone)  # in full here
            # the charts are drawn by the locally served plotly.js
            expect(page.locator("[data-drawn=true]").first).to_be_attached()
            page.screenshot(path=str(tmp_path / "profile.png"), full_page=True)
        finally:
            browser.close()
    assert requested and all(url.startswith(server) for url in requested), [
        url for url in requested if not url.startswith(server)]
