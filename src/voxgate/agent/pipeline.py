"""One agent per call: caller audio -> VAD -> STT -> turns -> LLM -> clauses -> TTS -> sink.

This module only wires the parts together and owns the per-call state; the decisions live
in small pure policies (``turns``, ``interruption``, ``backchannel``, ``intent``), the audio
plumbing in ``inbound`` and ``speaker``, one reply's generation in ``reply``, the reply on
the floor (interruption, what was heard) in ``floor``, the history in ``history``. Three loops run per call, none of which ever blocks the event loop:

- the frame handler (synchronous, per 20 ms frame): resample, VAD, feed the STT, run the
  turn, barge-in and backchannel policies, and act on their decisions immediately; a barge-in
  clears the sink inside the handler that decided it;
- the transcript loop: files partials/finals under their turn (may end a turn);
- the event loop: playback marks (what the caller heard), DTMF.

Providers are injected (fakes in tests, embedded models in production) and so is the clock,
so a whole call can run on virtual time (``vclock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from voxgate.agent.backchannel import BackchannelPolicy
from voxgate.agent.config import AgentSettings
from voxgate.agent.floor import Floor
from voxgate.agent.history import History
from voxgate.agent.inbound import InboundAudio, Vad
from voxgate.agent.intent import EarlyIntent
from voxgate.agent.interruption import Interrupt, InterruptionPolicy
from voxgate.agent.records import TurnRecord
from voxgate.agent.reply import ReplyRun
from voxgate.agent.speaker import Speaker
from voxgate.agent.store import ConversationStore, MemoryStore
from voxgate.agent.text import is_backchannel, words
from voxgate.agent.transcripts import TranscriptRouter, TurnText
from voxgate.agent.turns import (
    Completeness,
    EndOfTurn,
    Pause,
    SpeechStarted,
    TurnAbandoned,
    TurnDetector,
    TurnEvent,
    completeness,
)
from voxgate.audio.frame import AudioFrame
from voxgate.calls.session import CallSession, DtmfReceived, MarkPlayed
from voxgate.providers.base import LLM, TTS, ChatMessage, StreamingSTT, STTStream, Transcript

if TYPE_CHECKING:
    from voxgate.knowledge.runtime import Knowledge

__all__ = ["AgentPipeline", "AgentProviders"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(slots=True)
class AgentProviders:
    """Everything model-shaped a pipeline needs; one VAD per call (VADs keep stream state)."""

    stt: StreamingSTT
    llm: LLM
    tts: TTS
    vad_factory: Callable[[], Vad]
    knowledge: Knowledge | None = None
    """Tools, knowledge base and business rules of the agent (``voxgate.knowledge``); None:
    plain conversation. Carried here so every edge (LocalCall, talk, the server) passes it."""


def _contains_phrase(text: str, phrases: list[str]) -> bool:
    ws = words(text)
    for phrase in phrases:
        target = words(phrase)
        n = len(target)
        if n and any(ws[i : i + n] == target for i in range(len(ws) - n + 1)):
            return True
    return False


class AgentPipeline:
    """Runs one in-process agent on one :class:`CallSession` until the call ends."""

    def __init__(
        self,
        session: CallSession,
        providers: AgentProviders,
        settings: AgentSettings | None = None,
        *,
        store: ConversationStore | None = None,
        conversation_id: str | None = None,
        clock: Clock | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.session = session
        self.on_event = on_event
        """``(kind, data)`` for the call record: "tool_call", "retrieval", "escalation"..."""
        self.providers = providers
        self.settings = s = settings or AgentSettings()
        self.history = History(
            store or MemoryStore(),
            conversation_id or session.call_id,
            max_messages=s.max_history_messages,
        )
        self._clock_override = clock
        self._clock: Clock = clock or (lambda: 0.0)
        self._threshold = s.turn.vad_threshold
        self._inbound = InboundAudio(providers.vad_factory())
        self._turns = TurnDetector(s.turn.to_config())
        self._barge = InterruptionPolicy(s.interruption.to_config())
        self._backchannel = BackchannelPolicy(s.backchannel.to_config())
        self._intent = EarlyIntent(s.intent_config())
        self._router = TranscriptRouter()
        self._stt: STTStream | None = None
        self._pushing = False
        self._preroll: deque[AudioFrame] = deque(maxlen=10)  # 200 ms before speech onset
        self._spec: ReplyRun | None = None
        self._next_turn = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.records: list[TurnRecord] = []
        """One per answered caller turn, in order."""
        self.errors: list[str] = []
        self.resumed = False
        self.ready = asyncio.Event()
        """Set once the history is loaded and the STT stream is open (the greeting starts)."""
        k = providers.knowledge
        self._knowledge = k.for_call(session, self._event) if k is not None else None
        self._system_prompt = s.system_prompt
        if self._knowledge is not None:
            self._system_prompt = self._knowledge.system_prompt(s.system_prompt)
            self.history.redact = self._knowledge.redact
        self._floor = Floor(
            llm=providers.llm,
            tts=providers.tts,
            speaker=Speaker(session.sink),
            history=self.history,
            barge=self._barge,
            backchannel=self._backchannel,
            settings=s,
            clock=lambda: self._clock(),
            spawn=self._spawn,
            hang_up=lambda delay: self._spawn(self._hangup_later(delay)),
            knowledge=self._knowledge,
            emit=self._event,
        )

    # --- public -----------------------------------------------------------------------

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) of the conversation so far, as stored (interrupted replies truncated);
        tool calls and results are left out (they are in the history and the turn records)."""
        return [
            (m.role, m.content)
            for m in self.history.messages
            if m.role in ("user", "assistant") and not m.tool_calls
        ]

    @property
    def interruptions(self) -> list[Interrupt]:
        return self._floor.interruptions

    @property
    def sink_clears(self) -> int:
        return self._floor.speaker.clears

    @property
    def agent_speaking(self) -> bool:
        return self._floor.current is not None

    async def run(self) -> None:
        """Greet, converse, and return when the call has ended (either side hung up)."""
        if self._clock_override is None:
            self._clock = asyncio.get_running_loop().time
        self.resumed = await self.history.load(
            {"call_id": self.session.call_id, "caller": self.session.caller}
        )
        self._stt = self.providers.stt.stream(language=self.settings.language)
        self._spawn(self._transcript_loop())
        self._spawn(self._event_loop())
        self.ready.set()
        greeting = self.settings.resume_greeting if self.resumed else self.settings.greeting
        hangup = False
        if self._knowledge is not None:  # after hours: another greeting, or message + hang up
            greeting, hangup = self._knowledge.greeting(greeting)
        if self.session.greet_gate is not None:
            greeting, hangup = await self._gated(self.session.greet_gate, greeting, hangup)
        if greeting:
            self._floor.start(TurnRecord(-1), fixed_text=greeting, hang_up_after=hangup)
        prewarm = self.settings.prewarm_llm
        if prewarm is None:  # auto: only a local model with a prompt cache gains from it
            prewarm = getattr(self.providers.llm, "prompt_cache", False) is True
        if prewarm:
            self._spawn(self._prewarm_llm())
        try:
            if not self.session.ended:  # (a gate may have read the end of the audio)
                async for frame in self.session.audio():
                    self._on_frame(frame)
        finally:
            await self._shutdown()

    async def _gated(
        self, gate: Callable[[str, bool], Awaitable[tuple[str, bool]]], greeting: str, hangup: bool
    ) -> tuple[str, bool]:
        """Let the session's gate (e.g. answering-machine detection) decide what to say
        first. Caller audio meanwhile is not a turn to answer (a "Hello?", a machine's
        greeting): it is read and dropped so it neither queues up nor reaches the STT."""
        decision = asyncio.ensure_future(gate(greeting, hangup))
        audio = cast(AsyncGenerator[AudioFrame, None], self.session.audio())
        frame: asyncio.Future[AudioFrame | None] | None = None
        try:
            while True:
                frame = asyncio.ensure_future(anext(audio, None))
                await asyncio.wait({decision, frame}, return_when=asyncio.FIRST_COMPLETED)
                if frame.done() and frame.result() is None:  # the call ended
                    return "", False
                if decision.done():
                    return decision.result()
        finally:
            decision.cancel()
            if frame is not None and not frame.done():
                frame.cancel()
                await asyncio.wait({frame})
            await audio.aclose()

    # --- frame handler (synchronous) ----------------------------------------------------

    def _on_frame(self, frame: AudioFrame) -> None:
        for f, probability in self._inbound.process(frame):
            now = self._clock()
            speech = probability >= self._threshold
            if self._pushing:
                self._push(f)
            else:
                self._preroll.append(f)
            decision = self._barge.update(now, speech)
            if decision is not None:
                self._floor.interrupt(decision)  # clears the sink in this very frame
            for event in self._turns.update(now, speech):
                self._on_turn_event(event)
            phrase = self._backchannel.update(now, speech)
            if phrase is not None:
                self._floor.backchannel(phrase)
            self._maybe_speculate(now)

    def _push(self, frame: AudioFrame) -> None:
        if self._stt is not None:
            self._stt.push_frame(frame)

    def _flush_stt(self) -> None:
        if self._pushing and self._stt is not None:
            self._stt.flush()
            self._router.flushed()
        self._pushing = False

    def _on_turn_event(self, event: TurnEvent) -> None:
        if isinstance(event, SpeechStarted):
            if not self._pushing:
                for f in self._preroll:
                    self._push(f)
                self._preroll.clear()
                self._pushing = True
            if event.resumed:
                self._discard_speculation()
        elif isinstance(event, Pause):
            self._flush_stt()
            self._judge_turn_text(event.at)
        elif isinstance(event, EndOfTurn):
            self._flush_stt()
            turn = self._router.close_turn()
            spec, spec_text = self._spec, self._intent.close_turn()
            self._spec = None
            record = TurnRecord(
                self._next_turn,
                speech_start=event.speech_start,
                speech_end=event.speech_end,
                endpoint=event.at,
            )
            self._next_turn += 1
            self._spawn(self._finish_turn(turn, record, spec, spec_text))
        elif isinstance(event, TurnAbandoned):
            self._flush_stt()
            self._router.close_turn()
            self._intent.reset()
            self._discard_speculation()

    # --- transcripts and events ---------------------------------------------------------

    async def _transcript_loop(self) -> None:
        while not self.session.ended:
            stream = self._stt
            assert stream is not None
            try:
                async for t in stream:
                    self._on_transcript(t)
                return
            except Exception as exc:  # keep the call alive on a new stream
                self.errors.append(f"stt {self.providers.stt.name}: {exc!r}")
                log.warning("STT stream failed, reopening: %r", exc)
                self._router.abort()
                self._pushing = False
                with contextlib.suppress(Exception):
                    await stream.aclose()
                self._stt = self.providers.stt.stream(language=self.settings.language)

    def _on_transcript(self, t: Transcript) -> None:
        now = self._clock()
        turn = self._router.on_transcript(t, now)
        if turn is not self._router.current:
            return  # a late final of a turn already closed: its finisher is waiting on it
        full = turn.text()
        self._event("transcript", {"role": "caller", "text": full, "final": False})
        if t.is_final and turn.from_finals_only:
            self._intent.on_final(full, now)
        else:
            self._intent.on_partial(full, now)
        decision = self._barge.on_text(full, now)
        if decision is not None:
            self._floor.interrupt(decision)
        self._judge_turn_text(now)
        self._maybe_speculate(now)  # a final in the silence: start now, not at the next frame

    def _judge_turn_text(self, now: float) -> None:
        """Give the turn detector the words to judge completeness by.

        While a flushed segment is still being decoded, the words so far are stale: the
        caller said more after the last partial ("... at 3 in the" was followed by
        "afternoon"), so they would make a finished sentence look unfinished, or the other
        way round. Until the final arrives the detector gets no words, i.e. "unknown".
        """
        turn = self._router.current
        judged = turn.text() if turn.pending == 0 else ""
        for event in self._turns.set_text(judged, now):
            self._on_turn_event(event)

    async def _event_loop(self) -> None:
        async for event in self.session.events():
            if isinstance(event, MarkPlayed):
                self._floor.on_mark(event.name)
            elif isinstance(event, DtmfReceived):
                self.history.add(ChatMessage("user", f"[DTMF {event.digit}]"))

    # --- turns and replies --------------------------------------------------------------

    async def _finish_turn(
        self, turn: TurnText, record: TurnRecord, spec: ReplyRun | None, spec_text: str | None
    ) -> None:
        await turn.settled()
        record.stt_final = turn.last_final_at if turn.last_final_at is not None else record.endpoint
        text = turn.text().strip()
        record.user_text = text
        speaking = self._floor.current is not None
        ignore = not text or (speaking and is_backchannel(text, self._barge.config.backchannels))  # noise, or "mm-hm" while the agent talks: an acknowledgement, not a turn
        if ignore or _contains_phrase(text, self.settings.goodbye_phrases):
            if spec is not None:
                spec.cancel()
            spec = None
        if ignore:
            return
        conf = turn.confidences
        self._event(
            "transcript",
            {"role": "caller", "text": text, "final": True,
             "confidence": round(sum(conf) / len(conf), 3) if conf else None},
        )
        if speaking:  # real words while the agent talks: the caller takes the floor
            self._floor.interrupt(Interrupt(self._clock(), record.speech_start or 0.0, 0, "turn"))
        if _contains_phrase(text, self.settings.goodbye_phrases):
            self.history.add(ChatMessage("user", text))
            self._add_record(record)
            self._floor.start(record, fixed_text=self.settings.farewell, hang_up_after=True)
            return
        escalation = self._knowledge.escalate(text) if self._knowledge is not None else None
        if escalation is not None:  # "a real person, please": transfer, deterministically
            if spec is not None:
                spec.cancel()
            self.history.add(ChatMessage("user", text))
            self._add_record(record)
            self._floor.start(record, fixed_text=escalation)
            return
        if spec is not None and self._intent.resolve(text, spec_text):
            self.history.add(ChatMessage("user", text))
            for name in ("speech_start", "speech_end", "endpoint", "stt_final", "user_text"):
                setattr(spec.record, name, getattr(record, name))
            spec.record.index = record.index
            spec.record.speculative = True
            self._add_record(spec.record)
            spec.commit()  # before adopting: a finished run must see its marks pending
            self._floor.adopt(spec)
            return
        if spec is not None:
            spec.cancel()
            record.speculations_discarded += 1
        self.history.add(ChatMessage("user", text))
        self._add_record(record)
        self._floor.start(record, messages=self.history.prompt(self._system_prompt))

    def _add_record(self, record: TurnRecord) -> None:
        self.records.append(record)

    def _maybe_speculate(self, now: float) -> None:
        if self._spec is not None or self._floor.current is not None:
            return
        if self._turns.silent_since is None or self._router.current.pending:
            return  # speaking, or the STT is decoding newer words than the text we have
        text = self._router.current.text()
        if completeness(text) is Completeness.INCOMPLETE:
            return  # "... an appointment for": the caller is not done; nothing to guess yet
        if self._intent.should_start(now, self._turns.silent_since) is None:
            return
        extra = ChatMessage("user", text)
        self._spec = self._floor.make(
            TurnRecord(self._next_turn, user_text=text),
            messages=self.history.prompt(self._system_prompt, extra),
            held=True,
        )
        self._spec.start()

    def _discard_speculation(self) -> None:
        self._intent.invalidate()
        if self._spec is not None:
            self._spec.cancel()
            self._spec = None

    async def _prewarm_llm(self) -> None:
        """Have a local LLM read the system prompt with the call's tools block (and any resumed
        history) while the greeting plays, so the first answer, and the first tool call, do
        not pay for it (~5-7 s for the tools block on two cores); stop at the first token."""
        prompt = self.history.prompt(self._system_prompt, ChatMessage("user", "Hello."))
        tools = self._knowledge.schemas() if self._knowledge is not None else ()
        stream = self.providers.llm.chat(prompt, tools, tool_choice="none") if tools else self.providers.llm.chat(prompt)
        try:
            async for _ in stream:
                break
        except Exception as exc:  # a failing warm-up is not a failing call
            log.info("LLM warm-up failed: %r", exc)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def _hangup_later(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if not self.session.ended:
            try:
                await self.session.control.hangup("goodbye")
            except Exception as exc:
                self.errors.append(f"hangup: {exc!r}")
                self.session.end("goodbye")

    # --- plumbing -----------------------------------------------------------------------

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            redact = self.history.redact  # events feed the call records: no PII there either
            if redact is not None and kind == "transcript":
                data = {**data, "text": redact(str(data.get("text", "")))}
            elif redact is not None and kind == "turn_done":
                data = {**data, "record": self.history.redacted_turn(data["record"])}
            try:
                self.on_event(kind, data)
            except Exception:  # an observer bug must not break the call
                log.exception("on_event hook failed (%s)", kind)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(f"task: {task.exception()!r}")
            log.error("agent task failed", exc_info=task.exception())

    async def _shutdown(self) -> None:
        if self._spec is not None:
            self._spec.cancel()
            self._spec = None
        self._floor.close()
        if self._stt is not None:
            with contextlib.suppress(Exception):
                await self._stt.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.history.close()
