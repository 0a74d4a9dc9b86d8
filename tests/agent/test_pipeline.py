"""Agent pipeline with fake providers on virtual time: behaviour, not timing."""

from __future__ import annotations

from voxgate.agent.config import AgentSettings
from voxgate.agent.local import HangUp, LocalCall, Say, Silence, WaitForAgent, WaitForAgentSpeech
from voxgate.providers.llm.fake import FakeLLM
from voxgate.providers.stt.fake import FakeSTT

from .fakes import providers, speech

GREETING = AgentSettings().greeting


def test_greeting_question_answer() -> None:
    p = providers(["What time do you open on Saturday?"], {"open": "We open at ten on Saturday."})
    call = LocalCall(p, rate=8000)
    result = call.run_virtual([WaitForAgent(), Say(speech(1500, 8000), 8000), WaitForAgent(), HangUp()])
    assert result.transcript == [
        ("assistant", GREETING),
        ("user", "What time do you open on Saturday?"),
        ("assistant", "We open at ten on Saturday."),
    ]
    assert result.errors == []
    (rec,) = result.records
    assert rec.user_text == "What time do you open on Saturday?"
    assert rec.heard_text == "We open at ten on Saturday."
    assert rec.interrupted_at is None
    for stage, value in rec.stages().items():
        assert value is not None and value >= 0.0, stage
    assert rec.first_audio_played is not None
    assert result.end_reason == "caller_hangup"
    assert result.sample_rate == 8000 and result.agent_audio.size > 0
    assert isinstance(p.stt, FakeSTT) and p.stt.streams[0].sample_rates == {16000}
    assert isinstance(p.llm, FakeLLM) and p.llm.calls[0][0][0].role == "system"


LONG_ANSWER = (
    "Sure. We open at ten on Saturday. We close at two in the afternoon. "
    "On weekdays we are open from nine to five. Is there anything else?"
)


def _silent_after(result_audio: object, start_s: float, end_s: float, rate: int) -> bool:
    import numpy as np

    audio = np.asarray(result_audio)
    a, b = int(start_s * rate), int(end_s * rate)
    return bool(b > a and not np.any(audio[a:b]))


def test_barge_in_stops_playback_and_keeps_only_heard_part() -> None:
    p = providers(
        ["What time do you open on Saturday?", "Wait, wait, stop. What about Sunday?"],
        {"sunday": "We are closed on Sunday.", "saturday": LONG_ANSWER},
    )
    call = LocalCall(p)
    result = call.run_virtual(
        [
            WaitForAgent(),
            Say(speech(1500), 16000),
            WaitForAgentSpeech(after=1.5),
            Say(speech(1500, seed=1), 16000),
            WaitForAgent(),
            HangUp(),
        ]
    )
    assert len(result.interruptions) == 1
    assert result.sink_clears == 1
    first, second = result.records
    assert first.interrupted_at is not None and first.sink_cleared_at == first.interrupted_at
    # Only whole clauses whose playback marks came back count as heard.
    assert first.heard_text == "Sure. We open at ten on Saturday."
    assert first.agent_text == LONG_ANSWER
    assert result.transcript == [
        ("assistant", GREETING),
        ("user", "What time do you open on Saturday?"),
        ("assistant", "Sure. We open at ten on Saturday."),
        ("user", "Wait, wait, stop. What about Sunday?"),
        ("assistant", "We are closed on Sunday."),
    ]
    # Playback stopped at the decision: the frame after it is silent until the next reply.
    assert second.first_audio_out is not None
    assert _silent_after(result.agent_audio, first.interrupted_at + 0.02, second.first_audio_out, 16000)
    assert second.heard_text == "We are closed on Sunday."
    # The cancelled reply's LLM/TTS work stopped.
    assert isinstance(p.llm, FakeLLM)


def test_cough_noise_and_backchannel_do_not_interrupt() -> None:
    import numpy as np

    noise = (np.random.default_rng(7).standard_normal(16000 // 4) * 3000).astype(np.int16)
    p = providers(
        ["What time do you open on Saturday?", "", "", "Mm-hm."],
        {"saturday": LONG_ANSWER},
    )
    call = LocalCall(p)
    result = call.run_virtual(
        [
            WaitForAgent(),
            Say(speech(1500), 16000),
            WaitForAgentSpeech(after=0.5),
            Say(speech(150, seed=2), 16000),  # cough
            Silence(1.0),
            Say(noise, 16000),  # 250 ms noise burst
            Silence(1.0),
            Say(speech(400, seed=3), 16000),  # "mm-hm"
            WaitForAgent(),
            HangUp(),
        ]
    )
    assert result.interruptions == [] and result.sink_clears == 0
    (rec,) = result.records
    assert rec.heard_text == LONG_ANSWER
    assert [t for r, t in result.transcript if r == "user"] == ["What time do you open on Saturday?"]
    assert isinstance(p.llm, FakeLLM) and len(p.llm.calls) == 1


def test_600ms_pause_mid_sentence_is_not_an_endpoint() -> None:
    p = providers(
        ["I would like to book an appointment for", "next Tuesday at three."],
        {"tuesday": "Tuesday at three is free. Shall I book it?"},
    )
    result = LocalCall(p).run_virtual(
        [
            WaitForAgent(),
            Say(speech(1800), 16000),
            Silence(0.6),
            Say(speech(1000, seed=4), 16000),
            WaitForAgent(),
            HangUp(),
        ]
    )
    (rec,) = result.records
    assert rec.user_text == "I would like to book an appointment for next Tuesday at three."
    assert result.transcript[-1] == ("assistant", "Tuesday at three is free. Shall I book it?")
    assert isinstance(p.llm, FakeLLM) and len(p.llm.calls) == 1
