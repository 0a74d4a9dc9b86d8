"""baresip calls a whole voxgate node running the EMBEDDED models (Whisper tiny.en, Qwen 0.5B,
Piper, Silero VAD) over SIP with G.711: the agent greets, hears the question, answers.

baresip plays silence while the greeting runs, then "What time do you open on Saturday?"
(``/work/shared/audio/opening_hours.piper.8k.wav``), then silence, and records what it
receives. That recording is transcribed with our own Whisper: the greeting's words must be in
it, and the part after the question must hold the agent's answer (the words the call record
says the caller heard). RTP is counted both ways at the edge, and the node's records DB holds
the call: caller and agent transcript rows, a turn with its stage timings, an end reason.
"""

from __future__ import annotations

import asyncio
import re
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.sip.interop.peers import (
    AUDIO,
    baresip,
    baresip_config,
    free_port,
    free_sip_port,
    needs_baresip,
    read_pcm16,
    rtp_range,
    stop_process,
)
from voxgate.agent.config import AgentSettings
from voxgate.config import load_settings
from voxgate.node import Node

pytestmark = [pytest.mark.interop, pytest.mark.models, pytest.mark.timeout(120), needs_baresip]

QUIET_BEFORE_S = 6.0  # the greeting (~4.5 s of Piper) plays out before the caller speaks
RATE = 8000
STOPWORDS = {"a", "an", "the", "to", "you", "i", "we", "is", "are", "and", "at", "on", "of", "for",
             "in", "it", "our", "your", "be", "can", "do", "from"}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in STOPWORDS}


def _mic(folder: Path) -> tuple[Path, float]:
    """Silence while the agent greets, the question once, then silence for the answer."""
    with wave.open(str(AUDIO / "opening_hours.piper.8k.wav")) as w:
        assert w.getframerate() == RATE
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    quiet = np.zeros(int(RATE * QUIET_BEFORE_S), "<i2")
    pcm = np.concatenate([quiet, speech, np.zeros(RATE * 25, "<i2")])
    out = folder / "mic.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return out, QUIET_BEFORE_S + len(speech) / RATE


async def _create_node(settings: Any) -> Node:
    from voxgate.providers.models import ModelNotFoundError

    try:
        return await Node.create(settings)  # the configured (embedded) providers
    except (ModelNotFoundError, ImportError) as exc:
        pytest.skip(f"embedded models not installed: {exc}")


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
        await asyncio.sleep(0.05)


async def test_baresip_talks_to_the_embedded_agent(tmp_path: Path) -> None:
    low, high = rtp_range(100)
    settings = load_settings(
        auth={"api_tokens": ["embedded-sip-token"]},
        sip={"enabled": True, "host": "127.0.0.1", "port": free_sip_port(), "transports": ["udp"]},
        media={"rtp_port_min": low, "rtp_port_max": high - 1, "media_timeout_s": 10.0},
        records={
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/records.db",
            "recordings_dir": str(tmp_path / "recordings"),
        },
    )
    mic, question_end_s = _mic(tmp_path)
    cfg = baresip_config(tmp_path, sip_port=free_port(), source_wav=mic, rtp_ports=rtp_range(20))
    node = await _create_node(settings)
    try:
        await node.start_edges()
        edge = node.sip_edge
        assert edge is not None
        dial = f"/dial sip:agent@127.0.0.1:{settings.sip.port}"
        async with baresip(cfg, dial, quit_after_s=40) as phone:
            sip_call = await _until(lambda: next(iter(edge.calls.values()), None), 10, "the INVITE")
            call_id = sip_call.session.call_id

            async def answered() -> bool:
                call = await node.records.get_call(call_id)
                return bool(call and call["turns"])  # turn_done: the answer has played out

            await _until(answered, 30, "the agent's answer to the question")
            await asyncio.sleep(0.5)
            await stop_process(phone)  # baresip hangs up (BYE) as it quits
            await _until(lambda: sip_call.session.ended and not edge.calls, 10, "the call's end")
        call = await _until(lambda: _ended(node, call_id), 10, "the call's end in the records")
    finally:
        await node.stop()

    # RTP both ways, G.711 (baresip's config offers PCMU/PCMA only).
    media = sip_call.media
    assert media.negotiated is not None and media.negotiated.codec.name.upper() in ("PCMU", "PCMA")
    assert media.packets_in > 50 * (question_end_s - 1)  # 20 ms packets from baresip
    assert media.packets_out > 50 * 4  # greeting + answer, seconds of them

    # The call record.
    assert call["edge"] == "sip" and call["route"] == "default"
    assert call["end_reason"] == "caller_hangup", call  # baresip sent BYE as it quit
    assert call["turn_count"] >= 1
    said = [(t["speaker"], t["text"]) for t in call["transcript"] if t["is_final"]]
    caller_lines = [text for who, text in said if who == "caller"]
    agent_lines = [text for who, text in said if who == "agent"]
    # Whisper tiny sometimes hears "Saturday" as "set your day": check the sure words.
    assert any({"time", "open"} <= words(t) for t in caller_lines), said
    assert agent_lines and agent_lines[0].strip(), said
    turn = call["turns"][0]
    stages = turn["timeline"]["stages_ms"]
    for stage in ("endpointing", "stt", "llm_ttft", "tts_first_chunk", "voice_to_voice"):
        assert stages.get(stage) is not None, stages
    assert turn["voice_to_voice_ms"] is not None and turn["voice_to_voice_ms"] > 0

    # What baresip heard, through our STT.
    found = sorted((tmp_path / "rec").glob("dump-*-dec.wav"))
    assert found, list((tmp_path / "rec").iterdir())
    heard = read_pcm16(found[0])
    greeting_part = heard[: int(RATE * QUIET_BEFORE_S)]
    answer_part = heard[int(RATE * question_end_s):]
    from voxgate.providers.registry import load_embedded

    stt = load_embedded(stt=True, llm=False, tts=False).stt
    assert stt is not None
    greeting_text = (await stt.transcribe_async(_to_16k(greeting_part), words=False)).text
    answer_text = (await stt.transcribe_async(_to_16k(answer_part), words=False)).text
    print(f"greeting heard: {greeting_text!r}\nanswer heard: {answer_text!r}\nagent said: {agent_lines}"
          f"\nend: {call['end_reason']} rtp in/out: {media.packets_in}/{media.packets_out}")

    expected = words(AgentSettings().greeting)
    got = words(greeting_text)
    assert len(expected & got) >= len(expected) // 2, (greeting_text, expected)
    assert {"bright", "smile", "dental"} & got, greeting_text
    reply = words(" ".join(agent_lines))
    assert reply, agent_lines
    overlap = reply & words(answer_text)
    assert len(overlap) >= max(1, len(reply) // 3), (answer_text, agent_lines)


def _to_16k(pcm: np.ndarray) -> np.ndarray:
    x = pcm.astype(np.float32) / 32768.0
    up: np.ndarray = np.interp(np.arange(2 * len(x)) / 2.0, np.arange(len(x)), x).astype(np.float32)
    return up


async def _ended(node: Node, call_id: str) -> dict[str, Any] | None:
    call = await node.records.get_call(call_id)
    return call if call and call["ended_at"] and call["end_reason"] else None
