"""`voxgate serve` killed mid-call, and drained by SIGTERM, as real processes.

Each test runs ``python -m voxgate.cli serve --no-sip`` on a free loopback port with a
temporary SQLite records DB and the config-built fake providers (``providers.stt/llm/tts =
["fake"]``, WebRTC VAD: starts in a few seconds, no model), and calls it over the Twilio
Media Streams WebSocket with a caller that repeats a spoken question in real time.

- SIGKILL mid-call: everything recorded up to the kill stays, and the next start of a server
  on the same DB closes the call with end reason ``interrupted``.
- SIGTERM: readiness turns 503 at once, a new call is refused (close 1013), a call that hangs
  up during the grace period ends normally, the one still talking is ended ``shutdown`` when
  ``server.drain_timeout_s`` runs out, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.servers import free_port
from tests.websocket.helpers import TwilioPlayback, clip, media_msg, mulaw_chunks, start_msg

TOKEN = "crash-drain-token"
DRAIN_S = 2.0
pytestmark = pytest.mark.timeout(90)


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _env(db: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "VOXGATE_RECORDS__DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "VOXGATE_RECORDS__RECORDINGS_DIR": str(db.parent / "recordings"),
        "VOXGATE_AUTH__API_TOKENS": json.dumps([TOKEN]),
        "VOXGATE_PROVIDERS__STT": '["fake"]',
        "VOXGATE_PROVIDERS__LLM": '["fake"]',
        "VOXGATE_PROVIDERS__TTS": '["fake"]',
        "VOXGATE_PROVIDERS__VAD": "webrtc",
        **extra,
    }


@contextlib.contextmanager
def serve(db: Path, name: str, **extra: str) -> Iterator[Server]:
    """A real ``voxgate serve`` process; killed at the end whatever happened."""
    port = free_port()
    log = db.parent / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voxgate.cli", "serve", "--port", str(port), "--no-sip"],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=_env(db, **extra),
        )  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(server.base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{server.output()}")
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def api(server: Server, path: str) -> Any:
    r = httpx.get(server.base + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    r.raise_for_status()
    return r.json()


@dataclass
class Caller:
    """A Twilio Media Streams client that keeps asking its question, paced in real time."""

    ws: ClientConnection
    number: str
    hang_up: asyncio.Event = field(default_factory=asyncio.Event)
    playback: TwilioPlayback = field(default_factory=TwilioPlayback)
    close_code: int | None = None
    close_reason: str = ""
    closed_at: float | None = None

    async def run(self) -> None:
        speech = np.concatenate(
            [np.zeros(4000, np.int16), clip("opening_hours.piper.8k.wav"), np.zeros(8000 * 2, np.int16)]
        )
        chunks = mulaw_chunks(speech)
        reader = asyncio.create_task(self._read())
        loop = asyncio.get_running_loop()
        t0, seq = loop.time(), 1
        try:
            await self.ws.send(start_msg(stream_sid=self.sid, call_sid=f"CA{self.number}",
                                         From=self.number, To="+15550100"))  # fmt: skip
            while not self.hang_up.is_set() and not reader.done():
                seq += 1
                await self.ws.send(media_msg(seq, seq, chunks[seq % len(chunks)], self.sid))
                self.playback.advance(0.02)  # Twilio plays our audio and echoes its marks
                for name in self.playback.to_echo:
                    seq += 1
                    mark = {"event": "mark", "sequenceNumber": str(seq), "streamSid": self.sid,
                            "mark": {"name": name}}  # fmt: skip
                    await self.ws.send(json.dumps(mark))
                self.playback.to_echo.clear()
                await asyncio.sleep(max(0.0, t0 + seq * 0.02 - loop.time()))
            if self.hang_up.is_set():
                stop = {"event": "stop", "sequenceNumber": str(seq + 1), "streamSid": self.sid}
                await self.ws.send(json.dumps(stop))
        except ConnectionClosed:
            pass
        await reader

    @property
    def sid(self) -> str:
        return f"MZ{self.number.lstrip('+')}"

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.playback.on_message(json.loads(raw))
        except ConnectionClosed:
            pass
        self.closed_at = time.monotonic()
        self.close_code = self.ws.close_code
        self.close_reason = self.ws.close_reason or ""


@contextlib.asynccontextmanager
async def call(server: Server, number: str) -> AsyncIterator[tuple[Caller, asyncio.Task[None]]]:
    url = server.base.replace("http", "ws", 1) + f"/twilio/media?token={TOKEN}"
    async with connect(url, open_timeout=5, close_timeout=2) as ws:
        caller = Caller(ws, number)
        task = asyncio.create_task(caller.run())
        try:
            yield caller, task
        finally:
            caller.hang_up.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
            task.cancel()


async def until(predicate: Any, limit_s: float, what: str) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.1)


def call_with_turn(server: Server, number: str) -> dict[str, Any] | None:
    """The call from ``number``, once it has a turn and both speakers in its transcript."""
    for row in api(server, "/v1/calls?limit=20")["calls"]:
        if row["caller"] != number:
            continue
        full = api(server, f"/v1/calls/{row['id']}")
        speakers = {t["speaker"] for t in full["transcript"] if t["is_final"]}
        if full["turns"] and {"caller", "agent"} <= speakers:
            return dict(full)
    return None


async def status(server: Server, path: str) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(server.base + path, timeout=5)).status_code


def db_rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, args).fetchall()


async def test_sigkill_mid_call_keeps_the_record_and_restart_marks_it_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    with serve(db, "first") as server:
        async with call(server, "+15550001") as (caller, _task):
            before = await until(lambda: call_with_turn(server, "+15550001"), 20, "a recorded turn")
            assert before["live"] and before["ended_at"] is None
            server.proc.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(server.proc.wait, 10) == -signal.SIGKILL
            await until(lambda: caller.closed_at is not None, 10, "the caller to see the drop")
    call_id = before["id"]
    # On disk, before any restart: the call is open, its rows are there.
    assert db_rows(db, "SELECT ended_at, end_reason FROM calls WHERE id = ?", call_id) == [(None, None)]

    with serve(db, "second") as server:
        assert "marked 1 call(s) interrupted by the last shutdown" in server.output()
        after = api(server, f"/v1/calls/{call_id}")
        assert after["end_reason"] == "interrupted"
        assert after["ended_at"] is not None and after["duration_s"] >= 0
        assert not after["live"]
        key = ("speaker", "text", "offset_s", "is_final")
        got = [tuple(t[k] for k in key) for t in after["transcript"]]
        for entry in before["transcript"]:
            assert tuple(entry[k] for k in key) in got
        assert len(after["turns"]) >= len(before["turns"]) >= 1
        for old, new in zip(before["turns"], after["turns"], strict=False):
            assert (new["index"], new["voice_to_voice_ms"]) == (old["index"], old["voice_to_voice_ms"])
        said = [(t["speaker"], t["text"]) for t in after["transcript"] if t["is_final"]]
        assert ("caller", "Hello, I would like to know your opening hours.") in said
        assert ("agent", "OK.") in said
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.proc.wait, 15) == 0


async def test_sigterm_drains_refuses_new_calls_and_ends_active_ones(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    with serve(db, "drain", VOXGATE_SERVER__DRAIN_TIMEOUT_S=str(DRAIN_S)) as server:
        async with call(server, "+15550002") as (talker, _), call(server, "+15550003") as (leaver, leaver_task):
            await until(lambda: call_with_turn(server, "+15550002"), 20, "a turn on the long call")
            await until(lambda: call_with_turn(server, "+15550003"), 20, "a turn on the short call")
            assert await status(server, "/readyz") == 200

            server.proc.send_signal(signal.SIGTERM)
            t_term = time.monotonic()
            await until(
                lambda: httpx.get(server.base + "/readyz").status_code == 503, DRAIN_S, "/readyz 503"
            )
            assert await status(server, "/healthz") == 200  # alive, not ready

            # A new call is refused while draining.
            url = server.base.replace("http", "ws", 1) + f"/twilio/media?token={TOKEN}"
            async with connect(url, open_timeout=5) as ws:
                await ws.send(start_msg(stream_sid="MZnew", call_sid="CAnew"))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert (ws.close_code, ws.close_reason) == (1013, "node draining")

            # One caller hangs up within the grace period: that call ends normally.
            leaver.hang_up.set()
            await asyncio.wait_for(leaver_task, 5)
            # The other keeps talking: it is ended when the drain timeout runs out.
            await until(lambda: talker.closed_at is not None, DRAIN_S + 5, "the long call to be ended")
            assert talker.closed_at is not None
            assert DRAIN_S - 0.3 <= talker.closed_at - t_term <= DRAIN_S + 4
            assert (talker.close_code, talker.close_reason) == (1000, "shutdown")
            rc = await asyncio.to_thread(server.proc.wait, 15)
        assert rc == 0, server.output()[-3000:]

    rows = db_rows(db, "SELECT caller, end_reason, ended_at FROM calls")
    reasons = {sid: reason for sid, reason, _ in rows}
    assert reasons == {"+15550002": "shutdown", "+15550003": "caller_hangup"}, rows
    assert all(ended for _, _, ended in rows)
    assert "draining" in server.output()
