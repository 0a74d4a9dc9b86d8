"""OpenTelemetry traces: a span per call, a child per turn, grandchildren per stage.

Turn and stage spans are created after the fact from the ``TurnRecord`` timestamps (explicit
start/end times), so tracing adds nothing to the media path while a turn is live. Spans go
over OTLP/HTTP when an endpoint is configured; otherwise no provider is installed and the
calls below cost a no-op.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Tracer

from voxgate import __version__


def make_tracer_provider(
    endpoint: str | None,
    *,
    node_id: str = "",
    headers: dict[str, str] | None = None,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """A provider exporting to ``endpoint`` (e.g. ``http://127.0.0.1:4318/v1/traces``)."""
    if exporter is None:
        if not endpoint:
            return None
        exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers or {}, timeout=5)
    resource = Resource.create(
        {"service.name": "voxgate", "service.version": __version__, "service.instance.id": node_id}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    return provider


class CallTracer:
    """Turns one call's lifecycle and TurnRecords into spans."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._tracer: Tracer = (
            provider.get_tracer("voxgate") if provider is not None else trace.NoOpTracer()
        )
        self._calls: dict[str, tuple[Span, float]] = {}

    def start_call(self, call_id: str, attributes: dict[str, Any], clock_now: float) -> None:
        """``clock_now`` is the pipeline clock (monotonic) at this moment, to map stage times."""
        span = self._tracer.start_span("call", attributes={"voxgate.call_id": call_id, **attributes})
        self._calls[call_id] = (span, time.time() - clock_now)

    def _ns(self, offset: float, t: float) -> int:
        return int((t + offset) * 1e9)

    def add_turn(self, call_id: str, turn: Any) -> None:
        """Record a finished turn (an ``agent.records.TurnRecord``) as spans."""
        entry = self._calls.get(call_id)
        if entry is None:
            return
        parent, offset = entry
        start = turn.speech_start if turn.speech_start is not None else turn.speech_end
        end = turn.reply_done or turn.interrupted_at or turn.first_audio_out or turn.endpoint
        if start is None or end is None:
            return
        ctx = trace.set_span_in_context(parent)
        attrs: dict[str, Any] = {
            "voxgate.turn.index": turn.index,
            "voxgate.turn.interrupted": turn.interrupted_at is not None,
        }
        v2v = turn.voice_to_voice
        if v2v is not None:
            attrs["voxgate.turn.voice_to_voice_ms"] = round(v2v * 1000, 1)
        turn_span = self._tracer.start_span(
            "turn", context=ctx, start_time=self._ns(offset, start), attributes=attrs
        )
        tctx = trace.set_span_in_context(turn_span)
        stt_done = (
            max(turn.endpoint, turn.stt_final)
            if turn.endpoint is not None and turn.stt_final is not None
            else None
        )
        stages = (
            ("caller_speech", turn.speech_start, turn.speech_end),
            ("endpointing", turn.speech_end, turn.endpoint),
            ("stt", turn.endpoint, stt_done),
            ("llm", turn.llm_start, turn.llm_first_token),
            ("tts", turn.tts_start, turn.tts_first_audio),
            ("playback", turn.first_audio_out, turn.reply_done or turn.interrupted_at),
        )
        for name, a, b in stages:
            if a is None or b is None or b < a:
                continue
            self._tracer.start_span(name, context=tctx, start_time=self._ns(offset, a)).end(
                end_time=self._ns(offset, b)
            )
        turn_span.end(end_time=self._ns(offset, max(end, start)))

    def end_call(self, call_id: str, reason: str) -> None:
        entry = self._calls.pop(call_id, None)
        if entry is None:
            return
        span, _ = entry
        span.set_attribute("voxgate.end_reason", reason)
        span.end()
