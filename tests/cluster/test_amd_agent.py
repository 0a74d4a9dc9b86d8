"""The in-process agent on an outbound campaign call with AMD, on virtual time.

The dialer's answered-call flow (``SipDialer.connected``: AMD classifier, message cue) runs
on a local session next to a real ``AgentPipeline`` with fake providers; the caller side is
the shared speech WAVs and a generated beep. The agent must hold its greeting until the
verdict: a person ("yes") is greeted; a machine (a long greeting, then a beep) gets the
campaign's message spoken with the agent's TTS after the beep, then the call is hung up and
reported ``voicemail``; a silent line is greeted after the bounded wait (3 s).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.agent.fakes import providers
from tests.cluster.test_amd import silence, tone, wav
from voxgate.agent.config import AgentSettings
from voxgate.agent.local import HangUp, LocalCall, LocalCallResult, Say, Silence, Step, WaitForAgent
from voxgate.calls.session import CallSession
from voxgate.cluster.campaigns import Contact, DialOutcome
from voxgate.cluster.dialer import GreetGate, SipDialer

RATE = 8000
MESSAGE = "Hello, this is Acme Dental reminding you of your appointment tomorrow at ten."
GREETING = AgentSettings().greeting


def campaign_call(steps: list[Step], message: str | None = MESSAGE) -> tuple[LocalCallResult, DialOutcome, list[Any]]:
    edge = SimpleNamespace(manager=SimpleNamespace(on_start=[]))
    dialer = SipDialer(edge, message_audio=None)  # type: ignore[arg-type]
    contact = Contact("camp", 1, 1, "+15550001", amd=True, voicemail_message=message)
    flow: list[Any] = []

    def on_session(session: CallSession) -> None:
        gate = GreetGate(dialer.greet_wait_s)
        session.greet_gate = gate.opening
        flow.append(asyncio.ensure_future(dialer.connected(contact, session, gate)))
        flow.append(session)

    call = LocalCall(providers([], {}), rate=RATE, on_session=on_session)

    async def run() -> tuple[LocalCallResult, DialOutcome]:
        result = await call.run(steps, max_seconds=120)
        return result, await asyncio.wait_for(flow[0], 5)

    from voxgate.agent.vclock import run_virtual

    result, outcome = run_virtual(run())
    return result, outcome, flow


def voiced_at(result: LocalCallResult, threshold: int = 300) -> float:
    """Loop time of the agent's first audible sample."""
    idx = np.flatnonzero(np.abs(result.agent_audio.astype(np.int32)) > threshold)
    assert idx.size, "the agent said nothing"
    return result.start_time + idx[0] / result.sample_rate


def pcm(*parts: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    return np.concatenate(parts)


def test_person_is_greeted_once_the_verdict_is_human() -> None:
    hello = wav("yes", RATE)
    result, outcome, flow = campaign_call([Say(hello, RATE), Silence(1.5), WaitForAgent(), HangUp()])
    assert result.agent_said() == [GREETING]  # greeted; the "yes" was not answered as a turn
    assert outcome.status == "answered" and outcome.detail.startswith("amd human"), outcome
    session: CallSession = flow[1]
    assert session.metadata["amd"] == "human" and session.dropped_frames == 0
    # The greeting waited for the verdict (speech end + 0.8 s of silence), well within 3 s.
    spoke = voiced_at(result) - result.start_time
    assert len(hello) / RATE < spoke < len(hello) / RATE + 1.5, spoke


def test_machine_gets_the_message_spoken_after_the_beep_then_voicemail() -> None:
    greeting = pcm(wav("book_appointment", RATE), silence(0.3, RATE))
    beep = tone(0.5, RATE)
    steps: list[Step] = [Say(pcm(greeting, beep), RATE), Say(silence(30, RATE), RATE)]
    result, outcome, flow = campaign_call(steps)
    assert result.agent_said() == [MESSAGE]  # no greeting: the message, with the agent's TTS
    assert outcome.status == "voicemail", outcome
    assert outcome.detail == "amd long_greeting; message after beep"
    assert result.end_reason == "goodbye"  # the agent hung up after its message
    beep_end = (len(greeting) + len(beep)) / RATE
    assert beep_end <= voiced_at(result) - result.start_time < beep_end + 1.0
    assert flow[1].metadata["amd"] == "machine"


def test_machine_without_a_message_is_hung_up_silently() -> None:
    steps: list[Step] = [Say(pcm(wav("book_appointment", RATE), silence(10, RATE)), RATE)]
    result, outcome, _ = campaign_call(steps, message=None)
    assert result.agent_said() == []
    assert outcome.status == "voicemail" and result.end_reason == "voicemail_left"


def test_silent_line_is_greeted_after_the_bounded_wait() -> None:
    result, outcome, _ = campaign_call([Silence(5), WaitForAgent(), HangUp()])
    assert result.agent_said() == [GREETING]
    assert 3.0 <= voiced_at(result) - result.start_time < 3.5  # greet_wait_s, not the 3.5 s verdict
    assert outcome.status == "answered" and "amd unknown" in outcome.detail


def test_greeting_that_starts_late_is_still_a_machine() -> None:
    """Speech still going at 3 s: greeting now would talk over it, so the gate waits on
    (up to 5 s) and the machine gets the message, not the greeting."""
    greeting = pcm(silence(1.0, RATE), wav("book_appointment", RATE), silence(0.3, RATE))
    steps: list[Step] = [Say(pcm(greeting, tone(0.5, RATE)), RATE), Say(silence(30, RATE), RATE)]
    result, outcome, _ = campaign_call(steps)
    assert result.agent_said() == [MESSAGE]
    assert outcome.status == "voicemail" and outcome.detail == "amd long_greeting; message after beep"
