"""The fakes behave as their docstrings promise: the agent pipeline's tests rely on them."""

from __future__ import annotations

import asyncio

import pytest

from voxgate.audio.frame import AudioFrame
from voxgate.providers._fault import Fault
from voxgate.providers.base import ProviderError, TextDelta, ToolCall, Transcript, Usage
from voxgate.providers.llm.fake import FakeLLM, FakeReply
from voxgate.providers.stt.fake import FakeSTT, FakeUtterance
from voxgate.providers.tts.fake import FakeTTS, split_sentences


async def _collect(stream: object, n: int) -> list[Transcript]:
    out: list[Transcript] = []
    async for t in stream:  # type: ignore[attr-defined]
        out.append(t)
        if len(out) == n:
            break
    return out


async def test_fake_llm_streams_words_then_usage() -> None:
    llm = FakeLLM(["Hello there, friend.", "Second."])
    events = [e async for e in llm.chat([])]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, friend."
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert isinstance(events[-1], Usage)
    second = [e async for e in llm.chat([])]
    third = [e async for e in llm.chat([])]
    assert second[0] == TextDelta("Second.") and third[0] == TextDelta("Second.")
    assert llm.completed == 3 and len(llm.calls) == 3


async def test_fake_llm_rules_and_tool_calls() -> None:
    from voxgate.providers.base import ChatMessage

    call = ToolCall("c1", "transfer", "{}")
    llm = FakeLLM.from_rules({"HUMAN": FakeReply("One moment.", [call])}, default="Pardon?")
    events = [e async for e in llm.chat([ChatMessage("user", "a human please")])]
    assert call in events
    events = [e async for e in llm.chat([ChatMessage("user", "hm")])]
    assert events[0] == TextDelta("Pardon?")


async def test_fake_llm_cancel_and_fault_once() -> None:
    llm = FakeLLM(["one two three four"], fault=Fault(ProviderError("down"), after=2, times=1))
    seen: list[str] = []
    with pytest.raises(ProviderError):
        async for e in llm.chat([]):
            assert isinstance(e, TextDelta)
            seen.append(e.text)
    assert seen == ["one ", "two "]
    gen = llm.chat([])
    first = await gen.__anext__()  # type: ignore[attr-defined]
    assert first == TextDelta("one ")
    await gen.aclose()  # type: ignore[attr-defined]
    assert (llm.failed, llm.cancelled, llm.completed) == (1, 1, 0)


async def test_fake_llm_hang_is_cancellable() -> None:
    llm = FakeLLM(["x"], fault=Fault(hang=True))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async for _ in llm.chat([]):
                pass


async def test_fake_tts_sentences_tagged_and_sized() -> None:
    tts = FakeTTS(sample_rate=8000, seconds_per_char=0.05, chunk_ms=100)
    chunks = [c async for c in tts.synthesize("Hi there. How are you today?")]
    assert [c.text for c in chunks if c.text] == ["Hi there.", "How are you today?"]
    total = sum(c.pcm.shape[0] for c in chunks) / 8000
    assert total == pytest.approx(tts.duration_of("Hi there. How are you today?"), abs=0.01)
    assert all(c.sample_rate == 8000 for c in chunks)
    assert max(abs(int(c.pcm.max())) for c in chunks) > 1000
    assert split_sentences("  ") == []


async def test_fake_tts_fault_after_first_chunk() -> None:
    tts = FakeTTS(fault=Fault(after=1))
    got = []
    with pytest.raises(ProviderError):
        async for c in tts.synthesize("One. Two."):
            got.append(c)
    assert len(got) == 1 and tts.failed == 1


def _frames(seconds: float, rate: int = 16000) -> list[AudioFrame]:
    return [AudioFrame.silence(rate) for _ in range(int(seconds * 50))]


async def test_fake_stt_partials_then_one_final_per_flush() -> None:
    stt = FakeSTT([FakeUtterance("book a cleaning", 0.8)], partial_every_ms=200)
    s = stt.stream()
    for f in _frames(1.0):
        s.push_frame(f)
    s.flush()
    s.flush()  # script exhausted: still exactly one (empty) final
    out = await _collect(s, 5)
    assert [t.text for t in out] == ["book", "book a", "book a cleaning", "book a cleaning", ""]
    final = out[3]
    assert final.is_final and final.confidence == 0.8 and final.end == pytest.approx(1.0)
    assert [w.word for w in final.words] == ["book", "a", "cleaning"]
    assert out[4].is_final and out[4].text == ""
    await s.aclose()
    assert [t async for t in s] == []


async def test_fake_stt_fault_per_stream() -> None:
    stt = FakeSTT(["hi"], fault=Fault(times=1))
    s1, s2 = stt.stream(), stt.stream()
    s1.flush()
    s2.flush()
    with pytest.raises(ProviderError):
        await _collect(s1, 1)
    assert (await _collect(s2, 1))[0].text == "hi"
