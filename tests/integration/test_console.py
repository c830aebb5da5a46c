"""The console in a real browser: Debian's headless Chromium driven by Playwright, the whole
app on the test bed, a real SIPp caller, the built-in sample agent.

One test walks what a developer does: sign in with an access key, watch a real call appear
with the caller's words and the turn's latency bar, hang it up from the button, find it in
the history, then create an agent with a bad webhook and read the API's error at the field.
Screenshots go to the test's directory; with ARI_OFFLOAD_UPDATE_SCREENSHOTS=1 the one of the
live call also replaces docs/console.png (the README shows it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, async_playwright, expect

from ari_offload.agent.contract import WebhookRequest
from ari_offload.app import App
from ari_offload.sdk.client import Client
from testbed.asterisk import REPO_ROOT
from testbed.dialogue import Say, Silence, run_dialogue

pytestmark = [pytest.mark.integration, pytest.mark.models]

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (scripts/install-testbed); never downloaded
# Headless as root in a closed network: no sandbox, no GPU, and none of Chromium's own calls
# home (they are refused here, and would each cost a timeout).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
README_SCREENSHOT = REPO_ROOT / "docs" / "console.png"
WAIT_MS = 30_000  # a step of the call (speech recognised, reply measured) on a loaded box


async def _no_horizontal_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"the page is {width} px wider than the phone's screen"


async def test_the_console_shows_a_real_call_live_and_hangs_it_up(
    app: App, sample_agent: tuple[str, list[WebhookRequest]], tmp_path: Path
) -> None:
    assert os.access(CHROMIUM, os.X_OK), "Debian's chromium is missing: run scripts/install-testbed"
    expect.set_options(timeout=WAIT_MS)  # a step of a real call can take a while here
    async with await Client.signup(app.api_url, "console-user", "password-123") as client:
        await _walk_through(app, client, sample_agent[0], tmp_path)


async def _walk_through(app: App, client: Client, webhook: str, tmp_path: Path) -> None:
    agent = await client.agents.create("support", webhook=webhook)
    flow = await client.flows.create(
        "support-flow",
        [
            {"type": "record"},
            {"type": "ai_talk", "agent_id": agent.id, "welcome_message": "Hello! How can I help?"},
        ],
    )
    problems: list[str] = []  # script errors, policy (CSP, Trusted Types) violations
    urls: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # An API refusal (the bad webhook below) is logged by Chromium as a failed load.
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(message.text)

    def on_request(request: Request) -> None:
        urls.append(request.url)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 820})
        page.set_default_timeout(WAIT_MS)
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", on_request)

        await page.goto(f"{app.api_url}/console")
        await page.get_by_label("Access key").fill(client.accesskey)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#stream-status")).to_have_text("Live")

        caller = asyncio.create_task(
            run_dialogue(
                f"8{flow.id}", [Silence(2.0), Say("I need to reset my password"), Silence(60.0)]
            )
        )
        card = page.locator("li.call")
        await expect(card).to_have_count(1)
        await expect(card.locator("h2")).to_contain_text("Inbound call from")
        await expect(card.locator(".line.agent").first).to_contain_text("Hello! How can I help?")
        await expect(card.locator(".line.caller")).to_contain_text("password")
        await expect(card.locator(".line.agent").nth(1)).to_contain_text("email address")
        bar = card.locator(".turn .bar")
        await expect(bar.locator(".seg")).to_have_count(4)  # endpoint, STT, webhook, TTS
        await expect(bar).to_have_attribute("aria-label", re.compile(r"^Turn 1: \d+ ms"))
        label = await bar.get_attribute("aria-label") or ""
        assert "endpoint 400 ms" in label, label
        await page.screenshot(path=tmp_path / "console-live.png")
        if os.environ.get("ARI_OFFLOAD_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(tmp_path / "console-live.png", README_SCREENSHOT)
        await page.set_viewport_size({"width": 390, "height": 844})  # a phone
        await _no_horizontal_scroll(page)
        await page.screenshot(path=tmp_path / "console-live-phone.png", full_page=True)
        await page.set_viewport_size({"width": 1280, "height": 820})

        await card.get_by_role("button", name="Hang up").click()
        await expect(card.locator(".status")).to_have_text("ended: api")
        result = await asyncio.wait_for(caller, 30)  # the caller got our BYE, long before 60 s
        (call,) = await client.calls.list()
        await expect(card).to_have_count(0)  # gone from the live calls after a few seconds

        await page.get_by_role("button", name="History").click()
        await page.get_by_label("Status").select_option("ended")
        await page.get_by_role("button", name="Apply").click()
        item = page.locator(f'li.history-item[data-call-id="{call.id}"]')
        await expect(item).to_contain_text("ended")
        await expect(item).to_contain_text("api")
        await item.get_by_role("button").click()
        detail = page.locator("#call-detail")
        await expect(detail.locator(".line.caller")).to_contain_text("password")
        await expect(detail.locator(".turn")).to_have_count(1)
        player = detail.locator("audio")  # the recording, fetched with the key, plays
        await expect(player).to_have_count(1)
        seconds = await player.evaluate(
            "a => a.readyState >= 1 ? a.duration"
            " : new Promise(r => a.addEventListener('loadedmetadata', () => r(a.duration)))"
        )
        await page.screenshot(path=tmp_path / "console-history.png", full_page=True)

        await page.get_by_role("button", name="Agents", exact=True).click()
        form = page.get_by_role("form", name="New agent")
        await form.get_by_label("Name").fill("broken")
        await form.get_by_label("Webhook URL").fill("ftp://127.0.0.1/hook")
        await form.get_by_role("button", name="Create agent").click()
        error = form.locator("#agent-webhook-error")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text("webhook")
        await expect(form.get_by_label("Webhook URL")).to_have_attribute("aria-invalid", "true")
        await expect(form.locator("#agent-name-error")).to_be_hidden()
        await page.screenshot(path=tmp_path / "console-agent-error.png", full_page=True)
        await browser.close()

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert call.status == "ended"
    assert call.hangup_reason == "api"
    assert call.answered_at is not None
    assert call.ended_at is not None
    lasted = (call.ended_at - call.answered_at).total_seconds()
    assert lasted - 1 < seconds <= lasted, f"the player shows {seconds} s of a {lasted} s call"
    assert [a.name for a in await client.agents.list()] == ["support"]  # "broken" was refused
    assert problems == []
    assert urls, "the browser's requests were seen"
    assert not [url for url in urls if client.accesskey in url], "the key went into a URL"
