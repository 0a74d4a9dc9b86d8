"""Fallback chains switch within the turn on errors and timeouts (driven by the fakes)."""

from __future__ import annotations

import asyncio
import time

import pytest

from voxgate.audio.frame import AudioFrame
from voxgate.providers._fault import Fault
from voxgate.providers.base import ProviderError, TextDelta, ToolCall, ToolSchema, Transcript, Usage
from voxgate.providers.fallback import FallbackLLM, FallbackSTT, FallbackTTS, SwitchEvent
from voxgate.providers.llm.fake import FakeLLM, FakeReply
from voxgate.providers.stt.fake import FakeSTT
from voxgate.providers.tts.fake import FakeTTS


def _text(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_llm_error_before_output_switches() -> None:
    seen: list[SwitchEvent] = []
    chain = FallbackLLM(
        [FakeLLM(["A"], fault=Fault(), name="a"), FakeLLM(["B reply."], name="b")],
        on_switch=seen.append,
    )
    events = [e async for e in chain.chat([])]
    assert _text(events) == "B reply."
    assert chain.switches == 1 and chain.switch_reasons["error"] == 1
    assert seen[0].failed == "a" and seen[0].next == "b" and seen[0].reason == "error"


async def test_llm_timeout_bounds_silence() -> None:
    chain = FallbackLLM(
        [FakeLLM(["slow"], fault=Fault(hang=True), name="a"), FakeLLM(["fast"], name="b")],
        timeout=0.1,
    )
    t0 = time.monotonic()
    first = await anext(aiter(chain.chat([])))
    assert first == TextDelta("fast")
    assert time.monotonic() - t0 < 1.0  # bounded by the 0.1 s timeout, generously
    assert chain.switch_reasons["timeout"] == 1


async def test_llm_midstream_failure_continues_without_repeating() -> None:
    a = FakeLLM(["We open at nine on Monday."], fault=Fault(after=3), name="a")
    b = FakeLLM(["We open at nine on Monday."], name="b")
    events = [e async for e in FallbackLLM([a, b]).chat([])]
    assert _text(events) == "We open at nine on Monday."
    assert isinstance(events[-1], Usage)


async def test_llm_midstream_divergent_reply_restarts() -> None:
    a = FakeLLM(["We open at nine."], fault=Fault(after=2), name="a")
    b = FakeLLM(["Sure, nine am."], name="b")
    events = [e async for e in FallbackLLM([a, b]).chat([])]
    assert _text(events) == "We open Sure, nine am."


async def test_llm_tool_call_from_second_and_cooldown() -> None:
    call = ToolCall("c", "transfer", "{}")
    a = FakeLLM(["x"], fault=Fault(), name="a")
    b = FakeLLM([FakeReply(tool_calls=[call])], name="b")
    chain = FallbackLLM([a, b], cooldown=60.0)
    assert call in [e async for e in chain.chat([])]
    # next turn: a is cooling down, b goes first, no new switch
    assert call in [e async for e in chain.chat([])]
    assert len(a.calls) == 1 and chain.switches == 1


async def test_llm_all_fail_raises() -> None:
    chain = FallbackLLM([FakeLLM(fault=Fault(), name="a"), FakeLLM(fault=Fault(), name="b")])
    with pytest.raises(ProviderError, match="every provider failed"):
        async for _ in chain.chat([]):
            pass
    assert chain.switches == 1 and chain.switch_reasons["error"] == 2


async def test_tts_resumes_with_unspoken_text() -> None:
    a = FakeTTS(fault=Fault(after=1), chunk_ms=10_000, name="a")
    b = FakeTTS(chunk_ms=10_000, name="b")
    chunks = [c async for c in FallbackTTS([a, b]).synthesize("One. Two. Three.")]
    assert [c.text for c in chunks] == ["One.", "Two.", "Three."]
    assert b.requests == ["Two. Three."]


async def test_tts_first_chunk_timeout() -> None:
    a = FakeTTS(fault=Fault(hang=True), name="a")
    chain = FallbackTTS([a, FakeTTS(name="b")], timeout=0.05)
    chunks = [c async for c in chain.synthesize("Hello.")]
    assert chunks[0].text == "Hello." and chain.switch_reasons["timeout"] == 1


def _frames(n: int) -> list[AudioFrame]:
    return [AudioFrame.silence(16000) for _ in range(n)]


async def _finals(stream: object, n: int) -> list[Transcript]:
    out: list[Transcript] = []
    async with asyncio.timeout(5):
        async for t in stream:  # type: ignore[attr-defined]
            if t.is_final:
                out.append(t)
                if len(out) == n:
                    break
    return out


async def test_stt_error_replays_utterance_into_next() -> None:
    a = FakeSTT(["from a"], fault=Fault(), name="a")
    b = FakeSTT(["from b"], name="b")
    chain = FallbackSTT([a, b])
    s = chain.stream()
    for f in _frames(25):
        s.push_frame(f)
    s.flush()
    finals = await _finals(s, 1)
    assert [t.text for t in finals] == ["from b"]
    assert b.streams[0].frames == 25  # the utterance was replayed
    assert chain.switches == 1
    await s.aclose()


async def test_stt_final_timeout_switches() -> None:
    a = FakeSTT(["slow"], final_latency=10.0, name="a")
    b = FakeSTT(["quick"], name="b")
    chain = FallbackSTT([a, b], timeout=0.1)
    s = chain.stream()
    for f in _frames(10):
        s.push_frame(f)
    s.flush()
    for f in _frames(5):  # next utterance already under way
        s.push_frame(f)
    assert [t.text for t in await _finals(s, 1)] == ["quick"]
    assert chain.switch_reasons["timeout"] == 1
    assert b.streams[0].frames == 15
    await s.aclose()


async def test_llm_tool_choice_reaches_the_provider_that_answers_and_a_bad_one_does_not_switch() -> None:
    tools = [ToolSchema("transfer", "Transfer"), ToolSchema("hold", "Hold")]
    a = FakeLLM(["x"], fault=Fault(), name="a")
    b = FakeLLM([FakeReply("Sure.", tool_calls=[ToolCall("c", "transfer", "{}")])], name="b")
    chain = FallbackLLM([a, b])
    events = [e async for e in chain.chat([], tools, tool_choice="none")]
    assert a.tool_choices == b.tool_choices == ["none"]
    assert not any(isinstance(e, ToolCall) for e in events) and _text(events) == "Sure."
    with pytest.raises(ValueError, match="park"):
        async for _ in chain.chat([], tools, tool_choice="park"):
            pass
    assert chain.switches == 1 and len(b.calls) == 1
