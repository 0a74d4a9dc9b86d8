"""Agent pipeline with fake providers on virtual time: behaviour, not timing."""

from __future__ import annotations

import pytest

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


def test_llm_failure_mid_turn_falls_back_and_turn_completes() -> None:
    from voxgate.providers._fault import Fault
    from voxgate.providers.fallback import FallbackLLM, FallbackTTS
    from voxgate.providers.tts.fake import FakeTTS

    answer = "We open at ten on Saturday, and we close at two."
    broken = FakeLLM([answer], fault=Fault(after=3), name="broken")
    backup = FakeLLM([answer], name="backup")
    bad_tts = FakeTTS(sample_rate=24000, fault=Fault(after=0, times=1), name="bad-tts")
    good_tts = FakeTTS(sample_rate=22050, seconds_per_char=0.05, name="good-tts")
    llm, tts = FallbackLLM([broken, backup]), FallbackTTS([bad_tts, good_tts])
    p = providers(["What time do you open on Saturday?"], llm, tts=tts)
    result = LocalCall(p).run_virtual(
        [WaitForAgent(), Say(speech(1500), 16000), WaitForAgent(), HangUp()]
    )
    assert result.transcript[-1] == ("assistant", answer)
    (rec,) = result.records
    assert rec.heard_text == answer and rec.errors == []
    assert broken.failed == 1 and backup.completed == 1
    assert llm.switches == 1 and tts.switches == 1


def test_every_llm_failing_still_answers_with_the_error_message() -> None:
    from voxgate.providers._fault import Fault

    llm = FakeLLM(["never heard"], fault=Fault())
    p = providers(["What time do you open on Saturday?"], llm)
    result = LocalCall(p).run_virtual(
        [WaitForAgent(), Say(speech(1500), 16000), WaitForAgent(), HangUp()]
    )
    (rec,) = result.records
    assert rec.heard_text == AgentSettings().error_message
    assert len(rec.errors) == 1 and "llm" in rec.errors[0]


def test_speculative_reply_discarded_when_final_differs() -> None:
    from voxgate.agent.config import TurnSettings
    from voxgate.providers.tts.fake import FakeTTS

    tts = FakeTTS(sample_rate=16000, seconds_per_char=0.05)
    # The STT is flushed only after 450 ms of silence (as suits an STT with good streaming
    # partials): the lagging partial "What time do you" has been stable for 250 ms of
    # silence before that and is speculated on; then the final says more.
    settings = AgentSettings(turn=TurnSettings(pause_ms=450))
    p = providers(
        ["What time do you open on Saturday?"],
        {"saturday": "We open at ten on Saturday."},
        default="Sorry, I did not catch that.",
        tts=tts,
    )
    result = LocalCall(p, settings).run_virtual(
        [WaitForAgent(), Say(speech(1000), 16000), WaitForAgent(), HangUp()]
    )
    (rec,) = result.records
    assert rec.speculations_discarded == 1 and not rec.speculative
    assert isinstance(p.llm, FakeLLM) and len(p.llm.calls) == 2
    assert p.llm.calls[0][0][-1].content.startswith("What time do")
    assert p.llm.calls[0][0][-1].content != "What time do you open on Saturday?"
    assert result.transcript[-1] == ("assistant", "We open at ten on Saturday.")
    # Nothing of the discarded reply reached the caller: the agent's audio is exactly the
    # greeting plus the real answer.
    import numpy as np

    voiced = float(np.count_nonzero(result.agent_audio)) / 16000
    expected = tts.duration_of(GREETING) + tts.duration_of("We open at ten on Saturday.")
    discarded = tts.duration_of("Sorry, I did not catch that.")
    assert abs(voiced - expected) < 0.2 < discarded


def test_speculative_reply_committed_when_final_matches() -> None:
    p = providers(
        ["What time do you open on Saturday?"],
        {"saturday": "We open at ten on Saturday."},
    )
    result = LocalCall(p).run_virtual(
        [WaitForAgent(), Say(speech(1500), 16000), WaitForAgent(), HangUp()]
    )
    (rec,) = result.records
    assert rec.speculative and rec.speculations_discarded == 0
    assert rec.llm_start is not None and rec.endpoint is not None
    assert rec.llm_start < rec.endpoint  # the LLM ran during the endpointing silence
    assert result.transcript[-1] == ("assistant", "We open at ten on Saturday.")


def test_goodbye_ends_the_call_after_the_farewell() -> None:
    p = providers(
        ["What time do you open on Saturday?", "Okay, that's all. Goodbye."],
        {"saturday": "We open at ten on Saturday."},
    )
    call = LocalCall(p)
    result = call.run_virtual(
        [
            WaitForAgent(),
            Say(speech(1500), 16000),
            WaitForAgent(),
            Say(speech(1200, seed=5), 16000),
            WaitForAgent(timeout=20),
            Silence(30),  # the agent must hang up long before this runs out
        ]
    )
    assert result.end_reason == "goodbye"
    assert call.control.actions == ["hangup:goodbye"]
    assert result.transcript[-1] == ("assistant", AgentSettings().farewell)
    assert result.records[-1].heard_text == AgentSettings().farewell


def test_dtmf_is_recorded_in_history() -> None:
    from voxgate.agent.local import PressDigit

    p = providers([], {})
    result = LocalCall(p).run_virtual([WaitForAgent(), PressDigit("5"), PressDigit("#"), HangUp()])
    assert ("user", "[DTMF 5]") in result.transcript and ("user", "[DTMF #]") in result.transcript


def test_reconnect_with_same_conversation_id_resumes_context(tmp_path: object) -> None:
    from pathlib import Path

    from voxgate.agent.store import SqliteStore
    from voxgate.agent.vclock import run_virtual

    db = str(Path(str(tmp_path)) / "conv.db")

    def call(question: str, answer: str) -> tuple[LocalCall, object]:
        p = providers([question], {"": answer})
        c = LocalCall(p, store=SqliteStore(db), conversation_id="caller-42")
        return c, p

    c1, p1 = call("My name is Ana.", "Nice to meet you, Ana.")
    r1 = c1.run_virtual([WaitForAgent(), Say(speech(1200), 16000), WaitForAgent(), HangUp()])
    assert r1.transcript[-1] == ("assistant", "Nice to meet you, Ana.")

    c2, p2 = call("What is my name?", "Your name is Ana.")
    r2 = c2.run_virtual([WaitForAgent(), Say(speech(1200), 16000), WaitForAgent(), HangUp()])
    assert c2.pipeline is not None and c2.pipeline.resumed
    assert r2.transcript[0] == ("assistant", GREETING)  # the first call's greeting
    assert ("assistant", AgentSettings().resume_greeting) in r2.transcript
    llm = p2.llm  # type: ignore[attr-defined]
    sent = [m.content for m in llm.calls[0][0]]
    assert "My name is Ana." in sent and "Nice to meet you, Ana." in sent

    async def stored() -> list[str]:
        store = SqliteStore(db)
        conv = await store.load("caller-42")
        await store.close()
        assert conv is not None and len(conv.turns) == 2
        return [m.message.content for m in conv.messages]

    assert run_virtual(stored())[-2:] == ["What is my name?", "Your name is Ana."]


def test_backchannel_while_caller_talks_at_length() -> None:
    from voxgate.agent.config import BackchannelSettings
    from voxgate.providers.tts.fake import FakeTTS

    tts = FakeTTS(sample_rate=16000, seconds_per_char=0.05)
    settings = AgentSettings(backchannel=BackchannelSettings(enabled=True, min_talk_s=4.0))
    p = providers(
        ["So my tooth has been hurting for a while,", "and now it is worse."],
        {"tooth": "I am sorry to hear that. Let us book you in."},
        tts=tts,
    )
    result = LocalCall(p, settings).run_virtual(
        [
            WaitForAgent(),
            Say(speech(4500), 16000),
            Silence(0.3),
            Say(speech(1500, seed=6), 16000),
            WaitForAgent(),
            HangUp(),
        ]
    )
    assert "Mm-hm." in tts.requests
    assert result.interruptions == []
    assert all("Mm-hm" not in text for _, text in result.transcript)
    assert result.transcript[-1] == ("assistant", "I am sorry to hear that. Let us book you in.")


def test_llm_prewarm_reads_the_prompt_during_the_greeting() -> None:
    llm = FakeLLM(["Warm.", "We open at ten on Saturday."])
    p = providers(["What time do you open on Saturday?"], llm)
    settings = AgentSettings(prewarm_llm=True)
    result = LocalCall(p, settings).run_virtual(
        [WaitForAgent(), Say(speech(1500), 16000), WaitForAgent(), HangUp()]
    )
    assert llm.calls[0][0][0].role == "system" and llm.calls[0][0][-1].content == "Hello."
    assert llm.cancelled == 1  # stopped at its first token
    assert result.transcript[-1] == ("assistant", "We open at ten on Saturday.")
    assert "Warm." not in [t for _, t in result.transcript]


def test_caller_can_barge_in_on_the_greeting() -> None:
    p = providers(["What time do you open on Saturday?"], {"saturday": "We open at ten."})
    result = LocalCall(p).run_virtual(
        [WaitForAgentSpeech(after=0.8), Say(speech(1500), 16000), WaitForAgent(), HangUp()]
    )
    assert len(result.interruptions) == 1
    assert result.transcript[0][0] == "assistant" and len(result.transcript[0][1]) < len(GREETING)
    assert result.transcript[-1] == ("assistant", "We open at ten.")


def test_stt_stream_failure_reopens_a_stream_and_the_call_goes_on() -> None:
    from voxgate.providers._fault import Fault

    p = providers(["What time do you open on Saturday?"], {"saturday": "We open at ten."})
    stt = FakeSTT(["What time do you open on Saturday?"], fault=Fault(after=0, times=1))
    p.stt = stt
    call = LocalCall(p)
    result = call.run_virtual([WaitForAgent(), Say(speech(1500), 16000), WaitForAgent(), HangUp()])
    assert len(stt.streams) == 2
    assert any("stt" in e for e in result.errors)
    assert result.transcript[-1] == ("assistant", "We open at ten.")


@pytest.mark.parametrize("slow", ["llm", "tts"])
def test_barge_in_cancels_llm_and_tts_work_in_flight(slow: str) -> None:
    from voxgate.providers.tts.fake import FakeTTS

    llm = FakeLLM.from_rules({"saturday": LONG_ANSWER}, token_delay=0.2 if slow == "llm" else 0.0)
    # A TTS producing audio in real time is still synthesizing when the caller barges in.
    tts = FakeTTS(sample_rate=16000, seconds_per_char=0.05, realtime_factor=1.0 if slow == "tts" else 0.0)
    p = providers(
        ["What time do you open on Saturday?", "Stop, stop, I need something else."], llm, tts=tts
    )
    result = LocalCall(p).run_virtual(
        [
            WaitForAgent(),
            Say(speech(1500), 16000),
            WaitForAgentSpeech(after=0.5),
            Say(speech(1200, seed=8), 16000),
            WaitForAgent(),
            HangUp(),
        ]
    )
    assert len(result.interruptions) == 1
    if slow == "llm":
        assert llm.cancelled == 1  # the answer was still being generated: stopped
        assert len(result.records[0].agent_text) < len(LONG_ANSWER)
    else:
        assert tts.cancelled == 1  # a clause was still being synthesized: stopped
    assert result.transcript[3] == ("user", "Stop, stop, I need something else.")
