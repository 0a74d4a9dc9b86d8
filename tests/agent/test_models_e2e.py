"""End to end with the embedded models (Whisper -> Qwen -> Piper), in real time.

The agent's audio is re-transcribed with the same Whisper model, so "the caller heard a
meaningful answer" is checked on what actually came out of the sink, not on the LLM text.
Two calls (~15 s each of real time) keep the wall time modest.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest

from voxgate.agent.config import AgentSettings
from voxgate.agent.local import HangUp, LocalCall, Say, Silence, WaitForAgent, WaitForAgentSpeech
from voxgate.agent.pipeline import AgentProviders
from voxgate.agent.text import words
from voxgate.audio.resample import StreamResampler
from voxgate.audio.wav import read_wav

pytestmark = pytest.mark.models

AUDIO = Path("/work/shared/audio")


def _need_audio() -> None:
    if not (AUDIO / "transcripts.json").is_file():
        pytest.skip(f"test speech not found in {AUDIO}")


def _transcribe(providers: AgentProviders, pcm: np.ndarray, rate: int) -> str:
    """Whisper on the agent's audio (resampled to 16 kHz)."""
    rs = StreamResampler(rate, 16000)
    audio16 = np.concatenate([rs.process(pcm.astype(np.int16)), rs.flush()])
    stt = providers.stt
    text: str = stt.transcribe(audio16.astype(np.float32) / 32768.0, words=False).text  # type: ignore[attr-defined]
    return text


def test_greeting_question_spoken_answer(embedded: AgentProviders) -> None:
    _need_audio()
    pcm, rate = read_wav(AUDIO / "opening_hours.piper.8k.wav")
    call = LocalCall(embedded, rate=8000)
    result = asyncio.run(
        call.run(
            [WaitForAgent(timeout=30), Silence(0.3), Say(pcm, rate, "opening_hours"),
             WaitForAgent(settle=1.0, timeout=60), HangUp()],
            max_seconds=120,
        )
    )
    assert result.errors == [] and not result.timed_out
    (rec,) = result.records
    assert "saturday" in words(rec.user_text), rec.user_text
    assert rec.heard_text and rec.heard_text == rec.agent_text.strip()
    for stage, value in rec.stages().items():
        assert value is not None and value >= 0.0, stage

    greeting_end = result.utterances[0].start
    greeting = _transcribe(embedded, result.agent_audio_between(0.0, greeting_end), 8000)
    assert {"thank", "calling", "help"} & set(words(greeting)), greeting

    answer = _transcribe(embedded, result.agent_audio_between(result.utterances[0].speech_end), 8000)
    print(f"\nuser: {rec.user_text}\nagent (LLM): {rec.agent_text}\nagent (heard, re-STT): {answer}")
    print({k: round(1000 * v) for k, v in rec.stages().items() if v is not None})
    meaningful = {"saturday", "open", "opens", "10", "ten", "am", "a.m", "2", "two", "pm", "p.m"}
    assert meaningful & set(words(answer)), answer
    # What came out of the sink is what the LLM wrote (allowing for STT errors).
    # Whisper writes "10am" where the LLM wrote "10 am": split digits from letters first.
    def tokens(text: str) -> set[str]:
        return set(words(re.sub(r"(\d)([a-zA-Z])", r"\1 \2", text)))

    spoken, written = tokens(answer), tokens(rec.agent_text)
    assert len(spoken & written) >= 0.5 * len(written), (answer, rec.agent_text)


def test_interruption_with_real_models(embedded: AgentProviders) -> None:
    _need_audio()
    transcripts = {t["id"]: t["text"] for t in json.loads((AUDIO / "transcripts.json").read_text())}
    assert transcripts["interrupt_long"]
    question, rate = read_wav(AUDIO / "book_appointment.piper.16k.wav")
    stop, _ = read_wav(AUDIO / "interrupt_long.piper.16k.wav")
    settings = AgentSettings(
        greeting="",
        system_prompt=(
            "You are a talkative dental receptionist on the phone. Always answer in four or "
            "five full sentences, with details about available times, the dentist, and "
            "what to bring."
        ),
    )
    call = LocalCall(embedded, settings, rate=16000)
    result = asyncio.run(
        call.run(
            [Silence(0.3), Say(question, rate, "book"), WaitForAgentSpeech(after=0.6, timeout=60),
             Say(stop, rate, "stop"), WaitForAgent(settle=1.0, timeout=60), HangUp()],
            max_seconds=150,
        )
    )
    assert not result.timed_out
    for r in result.records:
        print(f"\nuser: {r.user_text}\nagent: {r.agent_text}\nheard: {r.heard_text}")
    print(result.interruptions)
    assert len(result.interruptions) >= 1 and result.sink_clears >= 1
    first = result.records[0]
    assert first.interrupted_at is not None and first.sink_cleared_at is not None
    # History keeps only the heard part: whole clauses, a prefix of what was generated.
    assert len(first.heard_text) <= len(first.agent_text)
    assert first.agent_text.replace(" ", "").startswith(first.heard_text.replace(" ", ""))
    assistant = [t for r, t in result.transcript if r == "assistant"]
    if first.heard_text:
        assert assistant[0] == first.heard_text
    # Playback stopped at the decision: silence until the next reply's first audio (ticks
    # run a little late under load in real time, so leave 100 ms of slack at the end).
    second_out = result.records[1].first_audio_out
    assert second_out is not None
    after = result.agent_audio_between(first.interrupted_at + 0.02, second_out - 0.1)
    assert after.size > 0 and not np.any(after)
    # The interrupting question was answered.
    users = [t for r, t in result.transcript if r == "user"]
    assert len(users) == 2 and {"wait", "stop"} & set(words(users[1])), users
    assert result.transcript[-1][0] == "assistant"


def test_600ms_pause_mid_sentence_is_not_cut_off(embedded: AgentProviders) -> None:
    """Real speech with 600 ms of silence inserted after "for" ("... an appointment for |
    next Tuesday ..."), default settings: one turn, one answer, all the words."""
    _need_audio()
    pcm, rate = read_wav(AUDIO / "book_appointment.piper.16k.wav")
    timed = embedded.stt.transcribe(pcm.astype(np.float32) / 32768.0, words=True)  # type: ignore[attr-defined]
    ends = [w.end for w in timed.words if words(w.word) == ["for"]]
    assert ends, timed.text
    cut = int((ends[0] + 0.03) * rate)
    gapped = np.concatenate([pcm[:cut], np.zeros(int(0.6 * rate), np.int16), pcm[cut:]])
    call = LocalCall(embedded, AgentSettings(greeting=""), rate=16000)
    result = asyncio.run(
        call.run(
            [Silence(0.3), Say(gapped, rate, "gapped"), WaitForAgent(settle=1.0, timeout=60), HangUp()],
            max_seconds=120,
        )
    )
    assert not result.timed_out
    assert len(result.records) == 1, [r.user_text for r in result.records]
    said = set(words(result.records[0].user_text))
    assert {"appointment", "tuesday"} <= said, result.records[0].user_text
