"""``SipDialer``: campaign attempts as outbound calls through the node's SIP edge.

One attempt: ``edge.dial`` through the campaign's trunk (a contact may name its own in
``variables["trunk"]``); unanswered after ``answer_timeout_s`` -> hang up (CANCEL) and
report ``no_answer``; busy/480/408 map from the edge's end reasons. Once answered, the
route app runs as for any call (the manager starts it), and, when AMD is on, the first
seconds of caller audio are classified on the side through a session tap:

- MACHINE with a ``voicemail_message``: wait for the beep or the end of the greeting
  (:class:`~voxgate.cluster.amd.MessageCue`), have the message spoken, hang up ->
  ``voicemail``;
- MACHINE without a message: hang up at once -> ``voicemail``;
- HUMAN / UNKNOWN: the app's conversation goes on -> ``answered``, or ``completed`` with the
  app's result when it put one in ``session.metadata["campaign_result"]`` (JSON).

The answered call runs the campaign's app (``session.requested_app``). An in-process agent
holds its greeting on :class:`GreetGate` (``session.greet_gate``): it greets once the verdict
is HUMAN/UNKNOWN, or after ``greet_wait_s`` (3 s; up to 5 s while the callee is still
talking), and on a MACHINE it speaks the campaign's message with its own TTS after the
cue, then hangs up. Apps that do not use the gate (external apps) get the pre-rendered
``message_audio`` instead, as does an agent that had already greeted when a late MACHINE
verdict came. The verdict is also published in
``session.metadata["amd"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from voxgate.audio.frame import AudioFrame
from voxgate.calls.session import CallSession
from voxgate.cluster.amd import AmdConfig, AmdDetector, MessageCue, Verdict
from voxgate.cluster.campaigns import Contact, DialOutcome, DialStatus

if TYPE_CHECKING:
    from voxgate.sip.endpoint import SipEdge

log = logging.getLogger(__name__)

MessageAudio = Callable[[Contact, int], AudioFrame | None]
"""(contact, sample rate) -> the voicemail message as one frame of PCM, or None."""

_BEFORE_ANSWER: dict[str, DialStatus] = {
    "busy": "busy", "no_answer": "no_answer", "declined": "busy",
}  # fmt: skip


class SipDialer:
    def __init__(
        self, edge: SipEdge, *, answer_timeout_s: float = 30.0, amd: AmdConfig | None = None,
        amd_timeout_s: float = 6.0, message_audio: MessageAudio | None = None,
        max_call_s: float = 3600.0, greet_wait_s: float = 3.0, message_limit_s: float = 60.0,
    ) -> None:  # fmt: skip
        self.edge = edge
        self.answer_timeout_s = answer_timeout_s
        self.amd_config = amd or AmdConfig()
        self.amd_timeout_s = amd_timeout_s
        self.message_audio = message_audio
        self.max_call_s = max_call_s
        self.greet_wait_s = greet_wait_s
        """How long an agent's greeting waits for the AMD verdict."""
        self.message_limit_s = message_limit_s
        """How long an agent may take to speak the voicemail message before we hang up."""
        self._answered: dict[str, asyncio.Future[None]] = {}
        edge.manager.on_start.append(self._on_start)

    async def _on_start(self, session: CallSession) -> None:
        fut = self._answered.get(session.call_id)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def dial(self, contact: Contact, app: str) -> DialOutcome:
        trunk = str(contact.variables.get("trunk") or contact.trunk or "") or None
        call = self.edge.dial(contact.phone, trunk=trunk, caller=contact.caller_id, app=app)
        session = call.session
        gate = GreetGate(self.greet_wait_s) if contact.amd else None
        if gate is not None:
            session.greet_gate = gate.opening
        session.metadata.update({
            "campaign_id": contact.campaign_id, "contact_id": str(contact.contact_id),
            "campaign_app": app, "campaign_attempt": str(contact.attempt),
            **{f"var_{k}": str(v) for k, v in contact.variables.items()},
        })  # fmt: skip
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._answered[session.call_id] = answered
        try:
            ended: asyncio.Future[Any] = asyncio.ensure_future(session.wait_ended())
            waiting: set[asyncio.Future[Any]] = {answered, ended}
            done, _ = await asyncio.wait(waiting, timeout=self.answer_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if not done:
                session.end("no_answer")  # the edge CANCELs the INVITE
                await asyncio.wait_for(call.wait_finished(), 40)
                return DialOutcome("no_answer", session.call_id, "no answer in time")
            if answered not in done:
                reason = session.end_reason or "failed"
                return DialOutcome(_BEFORE_ANSWER.get(reason, "failed"), session.call_id, reason)
            ended.cancel()
            return await self.connected(contact, session, gate)
        finally:
            self._answered.pop(session.call_id, None)
            if gate is not None:
                gate.close()

    async def connected(self, contact: Contact, session: CallSession, gate: GreetGate | None = None) -> DialOutcome:
        """Everything after the answer: AMD, the message on a machine, the call's outcome.
        Public so the flow can run on a local session (tests, other edges)."""
        verdict = Verdict.UNKNOWN
        if contact.amd:
            result = await self._classify(session, gate)
            verdict = result.verdict if result is not None else Verdict.UNKNOWN
            session.metadata["amd"] = verdict.value
            if gate is not None:
                gate.decided(verdict)
            if verdict is Verdict.MACHINE and not session.ended:
                await self._leave_message(contact, session, gate)
                cue = session.metadata.get("voicemail_cue", "none")
                reason = result.reason if result is not None else ""
                return DialOutcome("voicemail", session.call_id, f"amd {reason}; message after {cue}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.wait_ended(), self.max_call_s)
        if not session.ended:
            await session.control.hangup("max_call_time")
        raw = session.metadata.get("campaign_result")
        detail = f"amd {verdict.value}; ended {session.end_reason}"
        if raw:
            try:
                parsed: Any = json.loads(raw)
            except ValueError:
                parsed = {"value": raw}
            return DialOutcome("completed", session.call_id, detail,
                               parsed if isinstance(parsed, dict) else {"value": parsed})  # fmt: skip
        return DialOutcome("answered", session.call_id, detail)

    async def _listen(self, session: CallSession, feed: Callable[[Any, int], object], limit_s: float) -> None:
        """Feed caller audio to ``feed`` until it returns non-None, the call ends or
        ``limit_s`` passes. Gaps without RTP (a far end that stopped sending after its
        greeting) are fed as silence: for the classifiers no packets and quiet are alike."""
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[None] = loop.create_future()
        last = [loop.time()]
        rate = session.sample_rate

        def tap(frame: AudioFrame) -> None:
            last[0] = loop.time()
            if not decided.done() and feed(frame.samples, frame.sample_rate) is not None:
                decided.set_result(None)

        session.taps.append(tap)
        deadline = loop.time() + limit_s
        try:
            while not decided.done() and not session.ended and loop.time() < deadline:
                await asyncio.wait({decided}, timeout=0.1)
                gap = loop.time() - last[0]
                if gap >= 0.1 and not decided.done():
                    last[0] = loop.time()
                    if feed(np.zeros(int(gap * rate), dtype=np.int16), rate) is not None:
                        decided.set_result(None)
        finally:
            session.taps.remove(tap)

    async def _classify(self, session: CallSession, gate: GreetGate | None = None) -> Any:
        detector = AmdDetector(self.amd_config)
        if gate is not None:
            gate.talking = lambda: detector.talking
        await self._listen(session, detector.feed, self.amd_timeout_s)
        return detector.result

    async def _leave_message(self, contact: Contact, session: CallSession, gate: GreetGate | None) -> None:
        text = contact.voicemail_message
        agent_speaks = gate is not None and gate.waiting
        message = None
        if text is not None and not agent_speaks and self.message_audio is not None:
            message = self.message_audio(contact, session.sink.sample_rate)
        if text is not None and (agent_speaks or message is not None):
            cue = MessageCue(self.amd_config)
            await self._listen(session, cue.feed, cue.max_wait_s + 1)
            session.metadata["voicemail_cue"] = cue.cue or "timeout"
            if agent_speaks and gate is not None:
                gate.speak(text)  # the agent says it with its TTS, then hangs up
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(session.wait_ended(), self.message_limit_s)
            elif message is not None:
                session.sink.clear()  # whatever the app queued for the greeting goes
                session.sink.write(message)
                await asyncio.sleep(message.num_samples / message.sample_rate + 0.3)
        elif gate is not None:
            gate.speak("")  # nothing to leave: the agent stays quiet
        if not session.ended:
            await session.control.hangup("voicemail_left")


class GreetGate:
    """``session.greet_gate`` for an outbound call with AMD: what the agent says first.

    The agent calls :meth:`opening` as it is about to greet; it gets its greeting back once
    the verdict is HUMAN/UNKNOWN (or ``wait_s`` passed without one), and on a MACHINE the
    voicemail message with "hang up after it" once the dialer has heard the beep. While the
    callee is still talking at ``wait_s`` (a greeting that started late: greeting now would
    talk over it) the gate waits on, up to ``max_s``.
    """

    def __init__(self, wait_s: float = 3.0, max_s: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        self.wait_s = wait_s
        self.max_s = max_s
        self.talking: Callable[[], bool] = lambda: False
        self._verdict: asyncio.Future[Verdict] = loop.create_future()
        self._message: asyncio.Future[str] = loop.create_future()
        self.waiting = False
        """An app awaits the gate and has not greeted: it will speak what it is given."""
        self.greeted = False

    def decided(self, verdict: Verdict) -> None:
        if not self._verdict.done():
            self._verdict.set_result(verdict)

    def speak(self, text: str) -> None:
        if not self._message.done():
            self._message.set_result(text)

    def close(self) -> None:
        """The attempt is over: release an agent still waiting (it says nothing)."""
        self.decided(Verdict.UNKNOWN)
        self.speak("")

    async def opening(self, greeting: str, hang_up: bool) -> tuple[str, bool]:
        self.waiting = True
        loop = asyncio.get_running_loop()
        start = loop.time()
        verdict = Verdict.UNKNOWN
        while not self._verdict.done():
            elapsed = loop.time() - start
            if elapsed >= self.max_s or (elapsed >= self.wait_s and not self.talking()):
                break
            await asyncio.wait({self._verdict}, timeout=min(0.1, self.max_s - elapsed))
        if self._verdict.done():
            verdict = self._verdict.result()
        if verdict is not Verdict.MACHINE:
            self.waiting = False
            self.greeted = True
            return greeting, hang_up
        text = await self._message
        self.waiting = False
        return text, bool(text)


def tone_message(seconds: float = 1.0, hz: float = 440.0) -> MessageAudio:
    """A stand-in message (a tone) for tests and for nodes without TTS at dial time."""

    def make(contact: Contact, rate: int) -> AudioFrame:
        t = np.arange(int(seconds * rate)) / rate
        return AudioFrame((np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16), rate)

    return make
