"""``CallObserver``: the one place a call's facts fan out to records, metrics and traces.

Edges, the call manager and the agent report what happened (call started, answered, a turn
finished, a transcript, a DTMF digit, a network interval, call ended); the observer writes
the record incrementally, updates Prometheus series and emits spans. Writes to the database
are queued and done by one background task per node, so a slow database never stalls a
media loop; the queue is drained on call end and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voxgate.calls.session import CallSession
from voxgate.observability import metrics as m
from voxgate.observability.cost import PriceTable, UsageMeter
from voxgate.observability.records import CallRecords
from voxgate.observability.tracing import CallTracer

log = logging.getLogger(__name__)

STAGES = ("endpointing", "stt", "llm_ttft", "llm_first_clause", "tts_first_chunk", "overhead")


@dataclass
class _CallState:
    started_mono: float
    usage: UsageMeter = field(default_factory=UsageMeter)
    turns: int = 0
    degraded: bool = False


class CallObserver:
    def __init__(
        self,
        records: CallRecords | None = None,
        tracer: CallTracer | None = None,
        prices: PriceTable | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = records
        self.tracer = tracer or CallTracer(None)
        self.prices = prices or PriceTable()
        self.clock = clock
        self._calls: dict[str, _CallState] = {}
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.write_errors = 0

    # --- lifecycle of the background writer ------------------------------------------

    def start(self) -> None:
        if self._writer is None and self.records is not None:
            self._writer = asyncio.create_task(self._write_loop(), name="records-writer")

    async def _write_loop(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                if job is None:
                    return
                await job()
            except Exception:
                self.write_errors += 1
                log.exception("call record write failed")
            finally:
                self._queue.task_done()

    def _write(self, job: Callable[[], Awaitable[None]]) -> None:
        if self.records is not None:
            self._queue.put_nowait(job)

    async def flush(self) -> None:
        """Wait until every queued write has reached the database."""
        if self._writer is not None:
            await self._queue.join()

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    def _offset(self, call_id: str) -> float:
        state = self._calls.get(call_id)
        return 0.0 if state is None else self.clock() - state.started_mono

    def usage(self, call_id: str) -> UsageMeter | None:
        state = self._calls.get(call_id)
        return None if state is None else state.usage

    # --- facts -----------------------------------------------------------------------

    async def call_started(self, session: CallSession) -> None:
        now = self.clock()
        self._calls[session.call_id] = _CallState(started_mono=now)
        m.SESSION_HEALTH.labels(health="ok").inc()
        self.tracer.start_call(
            session.call_id,
            {"voxgate.edge": session.edge, "voxgate.route": session.route,
             "voxgate.caller": session.caller, "voxgate.callee": session.callee},
            clock_now=now,
        )
        rec = self.records
        if rec is not None:
            # The first row is written before the call proceeds: a crash a moment later
            # still leaves a record to mark interrupted.
            await rec.start_call(
                session.call_id,
                edge=session.edge,
                caller=session.caller,
                callee=session.callee,
                route=session.route,
                direction=session.metadata.get("direction", "inbound"),
                codec=session.metadata.get("codec", ""),
                conversation_id=session.metadata.get("conversation_id", ""),
            )

    def call_answered(self, call_id: str, codec: str | None = None) -> None:
        """The far end answered; ``codec`` as negotiated (e.g. ``PCMU/8000``) when known then."""
        fields: dict[str, Any] = {"answered_at": datetime.now(UTC)}
        if codec:
            fields["codec"] = codec
        self._write(lambda: self._update(call_id, **fields))

    async def _update(self, call_id: str, **fields: Any) -> None:
        assert self.records is not None
        await self.records.update_call(call_id, **fields)

    def turn_finished(self, call_id: str, turn: Any) -> None:
        """``turn`` is an ``agent.records.TurnRecord``."""
        state = self._calls.get(call_id)
        if state is not None:
            state.turns += 1
        v2v = turn.voice_to_voice
        if v2v is not None:
            m.VOICE_TO_VOICE_SECONDS.observe(v2v)
        stages = turn.stages()
        for stage in STAGES:
            value = stages.get(stage)
            if value is not None:
                m.STAGE_SECONDS.labels(stage=stage).observe(value)
        interrupted = turn.interrupted_at is not None
        m.TURNS_TOTAL.labels(outcome="interrupted" if interrupted else "completed").inc()
        self.tracer.add_turn(call_id, turn)
        timeline = turn.to_dict()
        timeline["stages_ms"] = {
            k: (None if v is None else round(v * 1000, 1)) for k, v in stages.items()
        }
        self._write(
            lambda: self._add_turn(
                call_id,
                turn.index,
                timeline,
                None if v2v is None else round(v2v * 1000, 1),
                interrupted,
            )
        )

    async def _add_turn(
        self, call_id: str, index: int, timeline: dict[str, Any], v2v: float | None, interrupted: bool
    ) -> None:
        assert self.records is not None
        await self.records.add_turn(
            call_id, index, timeline, voice_to_voice_ms=v2v, interrupted=interrupted,
            completed=not interrupted,
        )

    def transcript(
        self, call_id: str, speaker: str, text: str, *, is_final: bool = True,
        confidence: float | None = None,
    ) -> None:
        if speaker == "caller" and is_final and confidence is not None:
            m.ASR_CONFIDENCE.observe(confidence)
        offset = self._offset(call_id)
        rec = self.records
        if rec is not None:
            self._write(
                lambda: rec.add_transcript(
                    call_id, speaker, text, is_final=is_final, confidence=confidence, offset_s=offset
                )
            )

    def event(self, call_id: str, kind: str, data: dict[str, Any] | None = None) -> None:
        offset = self._offset(call_id)
        if kind == "fallback":
            m.PROVIDER_FALLBACKS.labels(kind=str((data or {}).get("kind", "unknown"))).inc()
        elif kind == "provider_error":
            d = data or {}
            m.PROVIDER_ERRORS.labels(
                kind=str(d.get("kind", "unknown")), provider=str(d.get("provider", "unknown"))
            ).inc()
        rec = self.records
        if rec is not None:
            self._write(lambda: rec.add_event(call_id, kind, data, offset))

    def network(
        self,
        call_id: str,
        edge: str,
        *,
        packets: int,
        loss_fraction: float,
        jitter_s: float,
        jb_delay_ms: float,
        underruns: int,
        concealed_ms: float,
    ) -> None:
        """One reporting interval (e.g. every 5 s); counts are deltas for the interval."""
        m.PACKET_LOSS_RATIO.observe(loss_fraction)
        m.JITTER_SECONDS.observe(jitter_s)
        m.JITTER_UNDERRUNS.labels(edge=edge).inc(underruns)
        m.CONCEALED_SECONDS.labels(edge=edge).inc(concealed_ms / 1000)
        state = self._calls.get(call_id)
        degraded = loss_fraction > 0.05 or jitter_s > 0.06 or underruns > 10
        if state is not None and degraded != state.degraded:
            m.SESSION_HEALTH.labels(health="ok" if state.degraded else "degraded").dec()
            m.SESSION_HEALTH.labels(health="degraded" if degraded else "ok").inc()
            state.degraded = degraded
        offset = self._offset(call_id)
        rec = self.records
        if rec is not None:
            self._write(
                lambda: rec.add_network_stats(
                    call_id, offset_s=offset, packets=packets, loss_pct=100 * loss_fraction,
                    jitter_ms=1000 * jitter_s, jb_delay_ms=jb_delay_ms, underruns=underruns,
                    concealed_ms=concealed_ms,
                )
            )

    async def call_ended(self, session: CallSession) -> None:
        state = self._calls.pop(session.call_id, None)
        reason = session.end_reason or "unknown"
        m.AUDIO_FRAMES.labels(edge=session.edge, fate="dropped").inc(session.dropped_frames)
        m.AUDIO_FRAMES.labels(edge=session.edge, fate="delivered").inc(
            max(0, session.received_frames - session.dropped_frames)
        )
        cost: dict[str, float] | None = None
        if state is not None:
            m.SESSION_HEALTH.labels(health="degraded" if state.degraded else "ok").dec()
            seconds = self.clock() - state.started_mono
            cost = state.usage.cost(self.prices, session.edge, seconds)
            m.COST_PER_MINUTE.observe(cost["per_minute"])
            for kind in ("stt", "llm", "tts", "telephony"):
                m.COST_TOTAL.labels(kind=kind).inc(cost[kind])
        self.tracer.end_call(session.call_id, reason)
        if self.records is not None:
            await self.flush()
            await self.records.end_call(
                session.call_id, reason,
                cost_usd=None if cost is None else cost["total"], cost_detail=cost,
            )
