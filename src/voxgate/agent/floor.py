"""The agent's hold on the conversational floor: which reply the caller hears, and its end.

One reply at a time is "on the floor": it can be interrupted, its playback marks tell what
the caller heard, and when it ends (played out, interrupted, failed) exactly that much goes
into the history. Kept apart from the pipeline, which decides *when* to reply or stop; this
class carries out those decisions and keeps the bookkeeping consistent (every reply is
finalized once; the barge-in and backchannel policies learn when the agent speaks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from voxgate.agent.backchannel import BackchannelPolicy
from voxgate.agent.config import AgentSettings
from voxgate.agent.history import History
from voxgate.agent.interruption import Interrupt, InterruptionPolicy
from voxgate.agent.records import TurnRecord
from voxgate.agent.reply import ReplyRun
from voxgate.agent.speaker import Speaker
from voxgate.providers.base import LLM, TTS, ChatMessage

if TYPE_CHECKING:
    from voxgate.knowledge.runtime import CallKnowledge

__all__ = ["Floor"]

Clock = Callable[[], float]
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Floor:
    def __init__(
        self,
        *,
        llm: LLM,
        tts: TTS,
        speaker: Speaker,
        history: History,
        barge: InterruptionPolicy,
        backchannel: BackchannelPolicy,
        settings: AgentSettings,
        clock: Clock,
        spawn: Spawn,
        hang_up: Callable[[float], None],
        knowledge: CallKnowledge | None = None,
        emit: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._emit = emit
        """``(kind, data)``: "turn_done" and the agent's "transcript" (what the caller heard),
        for call records and live displays."""
        self._llm = llm
        self._tts = tts
        self.speaker = speaker
        self._history = history
        self._barge = barge
        self._backchannel = backchannel
        self._settings = settings
        self._clock = clock
        self._spawn = spawn
        self._hang_up = hang_up
        self._knowledge = knowledge
        self.current: ReplyRun | None = None
        """The reply the caller hears (or is about to), None when the agent is silent."""
        self.interruptions: list[Interrupt] = []
        self._next_id = 0
        self._finalized: set[int] = set()
        self._hangup_after: int | None = None

    def make(
        self,
        record: TurnRecord,
        *,
        messages: list[ChatMessage] | None = None,
        fixed_text: str | None = None,
        held: bool = False,
    ) -> ReplyRun:
        """A reply not yet on the floor (speculations, backchannels)."""
        self._next_id += 1
        return ReplyRun(
            self._next_id,
            llm=self._llm,
            tts=self._tts,
            speaker=self.speaker,
            record=record,
            clock=self._clock,
            messages=messages or (),
            fixed_text=fixed_text,
            error_text=self._settings.error_message,
            chunker=self._settings.chunker_config(),
            held=held,
            knowledge=self._knowledge,
        )

    def start(
        self,
        record: TurnRecord,
        *,
        messages: list[ChatMessage] | None = None,
        fixed_text: str | None = None,
        hang_up_after: bool = False,
    ) -> ReplyRun:
        """Start a reply and put it on the floor; ``hang_up_after``: end the call after it."""
        run = self.make(record, messages=messages, fixed_text=fixed_text)
        if hang_up_after:
            self._hangup_after = run.reply_id
            self._hang_up(self._settings.hangup_after_farewell_s)  # safety net
        run.start()
        self.adopt(run)
        return run

    def adopt(self, run: ReplyRun) -> None:
        """Make ``run`` (started) the reply the caller hears and can interrupt."""
        self.current = run
        self._barge.agent_started()
        self._backchannel.suppressed = True
        assert run.task is not None
        run.task.add_done_callback(lambda task: self._task_done(run, task))
        if run.task.done():
            self._task_done(run, run.task)

    def interrupt(self, decision: Interrupt) -> None:
        """Barge-in: clear the sink now, cancel the reply, keep only what was heard."""
        run = self.current
        if run is None:
            return
        self.speaker.clear()
        rec = run.record
        rec.interrupted_at = decision.at
        rec.interruption_onset = decision.onset
        rec.sink_cleared_at = self._clock()
        self.interruptions.append(decision)
        run.cancel()
        self.finalize(run, interrupted=True)

    def on_mark(self, name: str) -> None:
        info = self.speaker.on_mark(name)
        run = self.current
        if info is None or run is None or info.reply_id != run.reply_id:
            return
        if info.clause < 0 and run.record.first_audio_played is None:
            run.record.first_audio_played = self._clock()
        if run.generated and self.speaker.pending_marks(run.reply_id) == 0:
            self.finalize(run, interrupted=False)

    def backchannel(self, phrase: str) -> None:
        """Say a short acknowledgement off the floor (not interruptible, not in history)."""
        if self.current is not None:
            return
        run = self.make(TurnRecord(-1), fixed_text=phrase)
        self._spawn(self._run_quietly(run))

    def finalize(self, run: ReplyRun, *, interrupted: bool) -> None:
        """The reply is over: record what the caller heard, free the floor (idempotent)."""
        if run.reply_id in self._finalized:
            return
        self._finalized.add(run.reply_id)
        heard = self.speaker.heard_text(run.reply_id)
        rec = run.record
        rec.agent_text = run.text
        rec.heard_text = heard
        for m in run.tool_messages:
            self._history.add(m)
        for call, result, at in run.tool_results:
            self._history.add_tool_call(call, result.content, at, error=not result.ok)
        if self._knowledge is not None and self._knowledge.context.deferred:
            self._spawn(self._knowledge.run_deferred())  # transfer/hang up after the last words
        if heard:
            self._history.add(ChatMessage("assistant", heard), interrupted=interrupted)
        if rec.index >= 0:
            self._history.add_turn(rec)
        if self._emit is not None and rec.index >= 0:
            if heard:
                self._emit(
                    "transcript",
                    {"role": "agent", "text": heard, "final": True, "interrupted": interrupted},
                )
            self._emit("turn_done", {"record": rec})
        self.speaker.forget(run.reply_id)
        if self.current is run:
            self.current = None
            self._barge.agent_stopped()
            self._backchannel.suppressed = False
        if run.reply_id == self._hangup_after:
            self._hang_up(0.0)

    def close(self) -> None:
        """The call ended: whatever is on the floor counts as interrupted."""
        run = self.current
        if run is not None:
            run.cancel()
            self.finalize(run, interrupted=True)

    def _task_done(self, run: ReplyRun, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.current is not run:
            return
        exc = task.exception()
        if exc is not None:
            run.record.errors.append(f"reply: {exc!r}")
            self.finalize(run, interrupted=False)
        elif self.speaker.pending_marks(run.reply_id) == 0:
            self.finalize(run, interrupted=False)

    @staticmethod
    async def _run_quietly(run: ReplyRun) -> None:
        run.start()
        assert run.task is not None
        with contextlib.suppress(Exception):
            await run.task
