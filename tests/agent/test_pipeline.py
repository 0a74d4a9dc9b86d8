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
