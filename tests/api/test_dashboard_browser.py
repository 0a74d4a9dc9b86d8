"""The dashboard in headless Chromium against uvicorn on loopback and a seeded SQLite DB.

Logs in, reads the overview, filters the call list, opens a call and checks that the
waterfall and network charts hold the seeded numbers, the transcript shows confidence and
the recording player's URL is served with the cookie (and not without it); creates two
campaigns through the API, runs one to completion with the real campaign worker and a
scripted dialer (outcomes and retries), leaves the other with a call in flight, and checks
the campaigns list and campaign page show the right counts. Screenshots go to
``artifacts/dashboard/`` for a human to look at.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_calls import TOKEN, seed
from tests.cluster.fakes import ScriptedDialer
from tests.servers import free_port
from voxgate.cluster.campaign_db import CampaignStore
from voxgate.cluster.campaigns import CampaignWorker, DialStatus
from voxgate.cluster.jobs import LocalJobQueue
from voxgate.observability.records import CallRecords

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing (Debian package: chromium)"),
]

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import uvicorn
    from pydantic import SecretStr
    from voxgate.api.app import create_app
    from voxgate.config import load_settings
    from voxgate.observability.records import CallRecords

    async def main():
        url, rec_dir, port, token = sys.argv[1:5]
        settings = load_settings()
        settings.auth.api_tokens = [SecretStr(token)]
        settings.records.recordings_dir = Path(rec_dir)
        records = await CallRecords.open(url)
        from voxgate.calls.manager import CallManager
        from voxgate.calls.router import Router
        app = create_app(settings, CallManager(Router([], {"agent": lambda rule: None})))
        app.state.records = records
        from voxgate.cluster.campaign_db import CampaignStore
        from voxgate.cluster.campaigns import Campaigns
        from voxgate.cluster.jobs import LocalJobQueue
        app.state.campaigns = Campaigns(CampaignStore(records.engine), LocalJobQueue(), "dash")
        config = uvicorn.Config(app, host="127.0.0.1", port=int(port), log_level="warning",
                                lifespan="off")
        await uvicorn.Server(config).serve()

    asyncio.run(main())
    """
)


async def _seed(url: str, rec_dir: Path) -> None:
    records = await CallRecords.open(url)
    try:
        await seed(records, rec_dir, extra=40)
    finally:
        await records.close()


PHONES = [f"+1555010{i:04d}" for i in range(9)]
SCRIPT: dict[str, list[DialStatus]] = {
    PHONES[0]: ["completed"], PHONES[1]: ["completed"], PHONES[2]: ["completed"],
    PHONES[3]: ["busy"], PHONES[4]: ["busy"],  # busy every time: 3 attempts each
    PHONES[5]: ["no_answer", "completed"],  # answers on the retry
    PHONES[6]: ["voicemail"], PHONES[7]: ["failed"],
}  # fmt: skip
# PHONES[8] is on the do-not-call list.
EXPECTED = {"completed": 4, "answered": 0, "voicemail": 1, "busy": 2, "no_answer": 0, "failed": 1,
            "dnc": 1, "done": 9, "dialing": 0, "pending": 0, "attempts": 3 + 6 + 2 + 1 + 1}  # fmt: skip


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


async def _run_campaign(url: str, campaign_id: str) -> None:
    """A node's campaign worker, in this process, on the server's DB, to the campaign's end."""
    records = await CallRecords.open(url)
    try:
        store = CampaignStore(records.engine)
        worker = CampaignWorker(store, LocalJobQueue(), ScriptedDialer(SCRIPT, hold_s=0.005), "dash", poll_s=0.01)
        await worker.resume_local()
        try:
            async with asyncio.timeout(30):
                while (await store.campaign(campaign_id) or {}).get("status") != "completed":  # noqa: ASYNC110
                    await worker.step()
                    await asyncio.sleep(0.01)
        finally:
            await worker.close()
    finally:
        await records.close()


async def _dialing(url: str, campaign_id: str) -> None:
    """One contact of a campaign with an attempt in progress (as a worker leaves it mid-call)."""
    records = await CallRecords.open(url)
    try:
        store = CampaignStore(records.engine)
        contacts = await store.contacts(campaign_id)
        await store.start_attempt(contacts[0]["id"], campaign_id, 1, "dash")
    finally:
        await records.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    rec_dir = tmp_path / "rec"
    asyncio.run(_seed(url, rec_dir))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, url, str(rec_dir), str(port), TOKEN],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {proc.stderr.read() if proc.stderr else ''}") from None
                time.sleep(0.1)
        done = _post(base, "/v1/campaigns", {
            "name": "Dental reminders", "app": "agent", "window": "00:00-24:00", "cps": 100,
            "max_concurrent": 3, "max_attempts": 3, "retry_backoff_s": 0.01, "dnc": [PHONES[8]],
            "contacts": [{"phone": p, "name": f"Patient {i}"} for i, p in enumerate(PHONES)]})  # fmt: skip
        asyncio.run(_run_campaign(url, done["id"]))
        live = _post(base, "/v1/campaigns", {
            "name": "Payment follow-ups", "app": "agent", "window": "00:00-24:00",
            "contacts": [{"phone": f"+1555020{i:04d}"} for i in range(4)]})  # fmt: skip
        asyncio.run(_dialing(url, live["id"]))
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_dashboard_in_chromium(server: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

            # Login.
            page.goto(server + "/dashboard")
            page.fill("#token", "wrong-token")
            page.click("button[type=submit]")
            assert page.locator(".error").inner_text() == "That token is not valid."
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-tile=calls]")
            errors.clear()  # the 401 of the wrong-token attempt is logged as a console error
            cookies = page.context.cookies()
            auth = next(c for c in cookies if c["name"] == "voxgate_token")
            assert auth["httpOnly"] and auth["sameSite"] == "Strict"
            assert page.evaluate("document.cookie") == ""  # not readable from scripts

            # Overview: tiles, p50/p95 chart with points, end-reason bars.
            page.wait_for_selector("#latency-chart svg .series circle")
            stats = page.evaluate("async () => (await fetch('/v1/stats/overview')).json()")
            assert stats["calls"] >= 40
            assert page.locator("[data-tile=calls] .value").inner_text() == str(stats["calls"])
            p50 = page.locator("[data-tile=p50] .value").inner_text()
            assert abs(float(p50.removesuffix(" ms")) - stats["p50_ms"]) <= 0.5
            completion = page.locator("[data-tile=completion] .value").inner_text()
            rate = float(completion.removesuffix("%"))
            assert abs(rate - 100 * stats["turn_completion_rate"]) <= 0.05
            assert page.locator("#latency-chart .series[data-series=p95] circle").count() >= 5
            assert page.locator("#reasons-chart rect.bar").count() >= 4
            assert page.locator("#latency-chart text", has_text="ms").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # Call list and filters.
            page.click("a[data-nav=calls]")
            page.wait_for_selector("#calls-table tbody tr")
            total = page.locator("#calls-table tbody tr").count()
            assert total >= 45
            page.select_option("select[name=edge]", "sip")
            page.fill("input[name=min_latency_ms]", "1000")
            # Mark the old table; the filtered render replaces it. (Selector waits, because
            # the page's CSP forbids the eval that string wait_for_function polling needs.)
            page.evaluate("document.getElementById('calls-table').dataset.stale = '1'")
            page.click("#call-filters button[type=submit]")
            page.wait_for_selector("#calls-table:not([data-stale]) tbody tr")
            assert "min_latency_ms=1000" in page.evaluate("location.hash")
            assert page.locator("#calls-table tbody tr").count() < total
            rows = page.locator("#calls-table tbody tr")
            assert rows.count() >= 1
            for i in range(rows.count()):
                cells = rows.nth(i).locator("td")
                assert cells.nth(1).inner_text() == "sip"
                assert float(cells.nth(8).inner_text().removesuffix(" ms")) >= 1000
            assert page.locator("#calls-table tr[data-call=call_a1]").count() == 1
            page.screenshot(path=str(ARTIFACTS / "calls-filtered.png"), full_page=True)

            # One call: waterfall, network charts, transcript, recording.
            page.click("#calls-table tr[data-call=call_a1]")
            page.wait_for_selector("#waterfall rect.segment")
            assert page.locator("#waterfall g.turn").count() == 3
            first = page.locator("#waterfall g.turn[data-turn='0']")
            stage_ms = {
                first.locator("rect.segment").nth(i).get_attribute("data-stage"):
                float(first.locator("rect.segment").nth(i).get_attribute("data-ms") or 0)
                for i in range(first.locator("rect.segment").count())
            }
            assert stage_ms["endpointing"] == 250 and stage_ms["stt"] == 40
            assert stage_ms["llm_ttft"] == 180 and stage_ms["tts_first_chunk"] == 110
            assert stage_ms["playback"] == pytest.approx(60, abs=0.5)
            assert 30 <= stage_ms["network"] <= 90  # the seeded jitter-buffer delay range
            assert page.locator("#network-chart .series[data-series='Jitter'] circle").count() == 12
            assert page.locator("#loss-chart .series circle").count() == 12
            conf = page.locator("#transcript .conf")
            assert conf.count() == 3 and conf.first.inner_text() == "55%"
            src = page.locator("audio[data-track=caller]").get_attribute("src")
            assert src == "/v1/calls/call_a1/recording/caller"
            status = page.evaluate("async (u) => (await fetch(u)).status", src)
            assert status == 200
            page.screenshot(path=str(ARTIFACTS / "call.png"), full_page=True)

            # Live page renders (no live calls in this process).
            page.click("a[data-nav=live]")
            page.wait_for_selector("text=No live calls.")

            # Campaigns: the list's counts, then one campaign's page.
            page.click("a[data-nav=campaigns]")
            page.wait_for_selector("#campaigns-table tbody tr")
            assert page.locator("#campaigns-table tbody tr").count() == 2
            listed = page.evaluate("async () => (await fetch('/v1/campaigns')).json()")
            by_name = {c["name"]: c for c in listed}
            done_row = page.locator(f"#campaigns-table tr[data-campaign={by_name['Dental reminders']['id']}]")
            for key, value in EXPECTED.items():  # outcome chips show only outcomes that occurred
                cell = done_row.locator(f"[data-count={key}]")
                assert (cell.inner_text() if cell.count() else "0") == str(value), key
            assert done_row.locator("[data-count=answered]").count() == 0
            assert done_row.locator("[data-status]").inner_text() == "completed"
            live_row = page.locator(f"#campaigns-table tr[data-campaign={by_name['Payment follow-ups']['id']}]")
            assert live_row.locator("td[data-count=dialing]").inner_text() == "1"
            assert live_row.locator("td[data-count=pending]").inner_text() == "3"
            assert live_row.locator("[data-status]").inner_text() == "running"
            page.screenshot(path=str(ARTIFACTS / "campaigns.png"), full_page=True)

            done_row.click()
            page.wait_for_selector("#contacts-table tbody tr")
            assert page.locator("[data-tile=total] .value").inner_text() == "9"
            assert page.locator("[data-tile=attempts] .value").inner_text() == str(EXPECTED["attempts"])
            assert page.locator("[data-tile=attempts] .sub").inner_text() == "3 contact(s) retried"
            assert page.locator("[data-tile=dialing] .value").inner_text() == "0"
            outcomes = page.locator("#contacts-table tbody tr")
            assert outcomes.count() == 9
            seen: dict[str, tuple[str, str]] = {}
            for i in range(9):
                cells = outcomes.nth(i).locator("td")
                seen[cells.nth(0).inner_text()] = (cells.nth(3).inner_text(), cells.nth(4).inner_text())
            assert seen[PHONES[0]] == ("completed", "1")
            assert seen[PHONES[3]] == ("busy", "3") and seen[PHONES[4]] == ("busy", "3")
            assert seen[PHONES[5]] == ("completed", "2")
            assert seen[PHONES[6]] == ("voicemail", "1") and seen[PHONES[7]] == ("failed", "1")
            assert seen[PHONES[8]] == ("dnc", "0")
            assert page.locator("#outcome-chart rect.bar").count() >= 4
            page.screenshot(path=str(ARTIFACTS / "campaign.png"), full_page=True)

            # Another browser context without the cookie gets no recording.
            other = browser.new_context()
            response = other.request.get(server + src)
            assert response.status == 401
            other.close()

            # Sign out.
            page.click(".logout button")
            page.wait_for_selector("#token")
            assert all(c["name"] != "voxgate_token" for c in page.context.cookies())
            assert errors == []
        finally:
            browser.close()
