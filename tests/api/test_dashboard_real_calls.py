"""The dashboard in headless Chromium against calls made in the test, not seeded rows.

A node (fake STT/LLM/TTS, real pipeline, VAD, records DB, observer) takes two real calls at
once: a Twilio Media Streams call over its WebSocket edge and a baresip call over its SIP edge
(G.711 RTP both ways: RTCP reports give the call network rows). Then Chromium logs in to the
node's own dashboard, and the call list and both call pages must show exactly what the
records hold for those calls: id, edge, caller, end reason, turn count, the turn's stored
voice-to-voice time, transcript lines, waterfall segments with the stored stage timings, and
(SIP) jitter and loss points. Screenshots go to ``artifacts/dashboard-real/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from tests.agent.fakes import providers
from tests.sip.interop.peers import (
    AUDIO,
    baresip,
    baresip_config,
    free_port,
    free_sip_port,
    needs_baresip,
    rtp_range,
    stop_process,
)
from tests.websocket.helpers import TwilioPlayback, clip, media_msg, mulaw_chunks, serve, start_msg
from voxgate.audio.vad import WebRtcVad
from voxgate.config import load_settings
from voxgate.node import Node
from voxgate.providers.tts.fake import FakeTTS

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard-real"
TOKEN = "dashboard-real-token"
QUESTION = "What time do you open on Saturday?"
ANSWER = "We open at ten on Saturday."

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(120),
    needs_baresip,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing (Debian package: chromium)"),
]


async def _until(predicate: Any, limit_s: float, what: str) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.1)


async def twilio_call(port: int) -> None:
    """Like Twilio: silence, the question, silence; plays our audio back and echoes marks."""
    caller = np.concatenate(
        [np.zeros(8000 * 1, np.int16), clip("opening_hours.piper.8k.wav"), np.zeros(8000 * 3, np.int16)]
    )
    playback = TwilioPlayback()
    async with connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws:

        async def reader() -> None:
            async for raw in ws:
                playback.on_message(json.loads(raw))

        task = asyncio.create_task(reader())
        await ws.send(start_msg(From="+15550101", To="+15550199"))
        loop = asyncio.get_running_loop()
        t0, seq = loop.time(), 1
        for i, chunk in enumerate(mulaw_chunks(caller), start=1):
            seq += 1
            await ws.send(media_msg(seq, i, chunk))
            playback.advance(0.02)
            for name in playback.to_echo:
                seq += 1
                await ws.send(json.dumps({"event": "mark", "sequenceNumber": str(seq),
                                          "streamSid": "MZ1", "mark": {"name": name}}))  # fmt: skip
            playback.to_echo.clear()
            await asyncio.sleep(max(0.0, t0 + i * 0.02 - loop.time()))
        await ws.send(json.dumps({"event": "stop", "sequenceNumber": str(seq + 1), "streamSid": "MZ1"}))
        await asyncio.wait_for(task, 10)


def _mic(folder: Path) -> Path:
    with wave.open(str(AUDIO / "opening_hours.piper.8k.wav")) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    pcm = np.concatenate([np.zeros(8000 * 3, "<i2"), speech, np.zeros(8000 * 20, "<i2")])
    out = folder / "mic.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return out


async def sip_call(node: Node, folder: Path) -> None:
    """baresip asks the question; we hang up once the turn and a network report are recorded."""
    edge = node.sip_edge
    assert edge is not None
    cfg = baresip_config(folder, sip_port=free_port(), source_wav=_mic(folder), rtp_ports=rtp_range(20))
    async with baresip(cfg, f"/dial sip:agent@127.0.0.1:{node.settings.sip.port}", quit_after_s=40) as phone:
        call = await _until(lambda: next(iter(edge.calls.values()), None), 10, "the INVITE")

        async def recorded() -> bool:
            row = await node.records.get_call(call.session.call_id)
            return bool(row and row["turns"] and row["network"])

        await _until(recorded, 25, "the SIP call's turn and network report")
        await call.session.control.hangup()
        await _until(lambda: not edge.calls, 10, "the SIP call's end")
        await stop_process(phone)


async def test_dashboard_shows_the_real_calls(tmp_path: Path) -> None:
    async_api = pytest.importorskip("playwright.async_api")
    low, high = rtp_range(100)
    settings = load_settings(
        auth={"api_tokens": [TOKEN]},
        sip={"enabled": True, "host": "127.0.0.1", "port": free_sip_port(), "transports": ["udp"]},
        media={"rtp_port_min": low, "rtp_port_max": high - 1, "media_timeout_s": 10.0},
        records={
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/records.db",
            "recordings_dir": str(tmp_path / "rec"),
        },
        observability={"recording": True},
    )
    fake = providers(
        [QUESTION], {"saturday": ANSWER},
        tts=FakeTTS(sample_rate=16000, seconds_per_char=0.02), vad=WebRtcVad,
    )  # fmt: skip
    node = await Node.create(settings, providers=fake)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        await node.start_edges()
        async with serve(node.app) as port:
            await asyncio.gather(twilio_call(port), sip_call(node, tmp_path))

            async def both_ended() -> list[dict[str, Any]] | None:
                rows = await node.records.list_calls()
                return rows if len(rows) == 2 and all(r["ended_at"] for r in rows) else None

            rows = await _until(both_ended, 10, "both calls' ends in the records")
            calls = {r["edge"]: await node.records.get_call(r["id"]) for r in rows}
            assert set(calls) == {"websocket", "sip"}
            for call in calls.values():
                assert call is not None and call["turn_count"] >= 1 and call["turns"]
            await _check_dashboard(async_api, f"http://127.0.0.1:{port}", calls)
    finally:
        await node.stop()


def _ms(v: float | None) -> str:
    """What the page prints for a millisecond value (``Math.round``, half up)."""
    return "—" if v is None else f"{int(np.floor(v + 0.5))} ms"


async def _check_dashboard(async_api: Any, base: str, calls: dict[str, Any]) -> None:
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1360, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(f"{msg.text} {msg.location.get('url')}")
                    if msg.type == "error" else None)  # fmt: skip

            await page.goto(base + "/dashboard")
            await page.fill("#token", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_selector("[data-tile=calls] .value")
            assert await page.locator("[data-tile=calls] .value").inner_text() == "2"
            assert await page.locator("[data-tile=failed] .value").inner_text() == "0"
            turns = sum(c["turn_count"] for c in calls.values())
            completion = await page.locator("[data-tile=completion] .sub").inner_text()
            assert completion == f"{turns} of {turns} turns"
            await page.wait_for_selector("#reasons-chart rect.bar")
            reasons = {c["end_reason"] for c in calls.values()}
            assert await page.locator("#reasons-chart rect.bar").count() == len(reasons)
            for reason in reasons:
                assert await page.locator("#reasons-chart text", has_text=reason).count() == 1
            await page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # Call list: one row per real call, with its numbers.
            await page.click("a[data-nav=calls]")
            await page.wait_for_selector("#calls-table tbody tr")
            assert await page.locator("#calls-table tbody tr").count() == 2
            for edge, call in calls.items():
                cells = page.locator(f"#calls-table tr[data-call='{call['id']}'] td")
                assert await cells.nth(1).inner_text() == edge
                assert await cells.nth(2).inner_text() == call["caller"]
                assert await cells.nth(4).inner_text() == call["route"]
                assert await cells.nth(6).inner_text() == str(call["turn_count"])
                assert await cells.nth(7).inner_text() == _ms(call["latency_p50_ms"])
                assert await cells.nth(9).inner_text() == call["end_reason"]
            await page.screenshot(path=str(ARTIFACTS / "calls.png"), full_page=True)

            for edge in ("websocket", "sip"):
                await _check_call_page(page, calls[edge], edge)
                await page.click("a[href='#/calls']")
                await page.wait_for_selector("#calls-table tbody tr")
            assert [e for e in errors if not e.endswith("/favicon.ico")] == []  # none is served
        finally:
            await browser.close()


async def _check_call_page(page: Any, call: dict[str, Any], edge: str) -> None:
    await page.click(f"#calls-table tr[data-call='{call['id']}']")
    await page.wait_for_selector("#waterfall rect.segment")
    heading = await page.locator("h1").inner_text()
    assert call["id"] in heading and call["end_reason"] in heading
    meta = {
        (await d.locator("span").inner_text()): (await d.inner_text()).split("\n", 1)[-1].strip()
        for d in await page.locator(".meta > div").all()
    }
    assert meta["Edge"] == edge
    assert meta["From"] == call["caller"]
    assert meta["Turns"] == str(call["turn_count"])
    assert meta["p50 / max latency"] == f"{_ms(call['latency_p50_ms'])} / {_ms(call['latency_max_ms'])}"

    # Waterfall: one row per stored turn; segments carry the stored stage timings; the
    # turn's note is its stored voice-to-voice time.
    turns = call["turns"]
    assert await page.locator("#waterfall g.turn").count() == len(turns)
    first = page.locator("#waterfall g.turn[data-turn='0']")
    segments = first.locator("rect.segment")
    shown = {
        await segments.nth(i).get_attribute("data-stage"): float(await segments.nth(i).get_attribute("data-ms") or 0)
        for i in range(await segments.count())
    }
    stored = {k: v for k, v in turns[0]["timeline"]["stages_ms"].items() if v}
    for stage in ("endpointing", "stt", "llm_ttft", "tts_first_chunk"):
        if stage in stored:
            assert shown[stage] == pytest.approx(stored[stage], abs=0.05), (stage, shown, stored)
    assert shown, stored
    v2v = turns[0]["voice_to_voice_ms"]
    assert v2v is not None
    assert f"(pipeline {_ms(v2v)})" in (await first.text_content() or "")

    # Transcript: every final line the records hold, in order.
    rows = page.locator("#transcript tbody tr")
    finals = [t for t in call["transcript"] if t["is_final"]]
    assert await rows.count() == len(finals)
    for i, entry in enumerate(finals):
        cells = rows.nth(i).locator("td")
        assert await cells.nth(1).inner_text() == entry["speaker"]
        assert await cells.nth(2).inner_text() == entry["text"]
    texts = [(t["speaker"], t["text"]) for t in finals]
    assert ("caller", QUESTION) in texts and ("agent", ANSWER) in texts

    # Network charts: points for a SIP call (RTCP reports), none for the WebSocket one.
    jitter = page.locator("#network-chart .series[data-series='Jitter'] circle")
    loss = page.locator("#loss-chart .series circle")
    if edge == "sip":
        assert len(call["network"]) >= 1
        assert await jitter.count() == len(call["network"])
        assert await loss.count() == len(call["network"])
    else:
        assert call["network"] == []

    # Both recorded tracks are offered, and served with the session cookie.
    for track in ("caller", "agent"):
        src = await page.locator(f"audio[data-track={track}]").get_attribute("src")
        assert src == f"/v1/calls/{call['id']}/recording/{track}"
        assert await page.evaluate("async (u) => (await fetch(u)).status", src) == 200
    await page.screenshot(path=str(ARTIFACTS / f"call-{edge}.png"), full_page=True)
