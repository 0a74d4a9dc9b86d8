"""baresip (a real softphone) calls voxgate and is called by it; audio checked both ways.

baresip plays a speech WAV from the shared test audio as its microphone and records what it
receives (``dump-*-dec.wav`` from its sndfile module): that recording must contain voxgate's
600 Hz greeting, and voxgate's app must hear the speech."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.sip.apps import ControlApp, ToneApp, dominant_hz, manager_for, rms, wait_for
from tests.sip.interop.peers import (
    AUDIO,
    baresip,
    baresip_config,
    edge_options,
    free_port,
    needs_baresip,
    read_pcm16,
    rtp_range,
    running_edge,
    stop_process,
)
from voxgate.calls.session import CallSession
from voxgate.config import SipTrunk

pytestmark = [pytest.mark.interop, needs_baresip]


def _speech(folder: Path) -> Path:
    """8 kHz speech followed by silence (baresip's aufile stops the source at its end)."""
    with wave.open(str(AUDIO / "book_appointment.piper.8k.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    out = folder / "in8k.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.concatenate([pcm, np.zeros(8000 * 6, dtype=np.int16)]).astype("<i2").tobytes())
    return out


def _recording(folder: Path) -> np.ndarray:
    found = sorted((folder / "rec").glob("dump-*-dec.wav"))
    assert found, f"baresip recorded nothing in {folder / 'rec'}"
    return read_pcm16(found[0])


async def test_baresip_calls_in_and_records_the_greeting(tmp_path: Path) -> None:
    app = ToneApp(ms=2500, hz=600.0, hangup_after=True)
    cfg = baresip_config(tmp_path, sip_port=free_port(), source_wav=_speech(tmp_path), rtp_ports=rtp_range(20))
    async with running_edge(manager_for(app), edge_options()) as edge:
        dial = f"/dial sip:agent@127.0.0.1:{edge.transports.port('udp')}"
        async with baresip(cfg, dial, quit_after_s=10) as phone:
            await asyncio.wait_for(app.started.wait(), 8)
            await wait_for(lambda: app.sessions[0].ended, 10)
            await wait_for(lambda: not edge.calls, 10)
            await stop_process(phone)
    session = app.sessions[0]
    assert session.end_reason == "agent_hangup"
    assert app.loud_frames > 25  # baresip's microphone (speech) reached the app
    heard = _recording(tmp_path)
    loud = heard[np.abs(heard) > 3000]
    assert loud.size > 8000  # over a second of the tone
    assert abs(dominant_hz(heard, 8000) - 600.0) < 20
    assert rms(heard) > 0.05


async def test_voxgate_calls_baresip_and_hears_it(tmp_path: Path) -> None:
    async def listen_then_hang_up(session: CallSession) -> None:
        await asyncio.sleep(4.0)
        await session.control.hangup()

    app = ControlApp(listen_then_hang_up)
    app.keep_audio = True
    port = free_port()
    cfg = baresip_config(tmp_path, sip_port=port, source_wav=_speech(tmp_path), rtp_ports=rtp_range(20))
    trunk = SipTrunk(name="phone", host="127.0.0.1", port=port)
    async with (
        running_edge(manager_for(app), edge_options(trunks=[trunk])) as edge,
        baresip(cfg, quit_after_s=15) as phone,
    ):
        await asyncio.sleep(1.0)  # baresip binds its SIP port
        call = edge.dial("alice", trunk="phone")
        await asyncio.wait_for(call.wait_finished(), 15)
        await stop_process(phone)
    assert call.session.end_reason == "agent_hangup", call.session.end_reason
    heard = np.concatenate(app.audio)
    speech = np.abs(heard) > 1500
    assert app.loud_frames > 40  # ~2.5 s of speech in 4 s
    assert speech.mean() > 0.05
