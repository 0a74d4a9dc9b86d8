"""Traces reach a local OTLP/HTTP collector stand-in: call -> turn -> stage spans."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from voxgate.agent.records import TurnRecord
from voxgate.observability.tracing import CallTracer, make_tracer_provider


class Collector:
    """Speaks OTLP/HTTP protobuf on loopback, as an OpenTelemetry Collector would."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, bytes, bytes, int, int, dict[str, object]]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                for rs in req.resource_spans:
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            attrs = {a.key: a.value for a in s.attributes}
                            collector.spans.append(
                                (s.name, s.span_id, s.parent_span_id, s.start_time_unix_nano,
                                 s.end_time_unix_nano, attrs)
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.server.shutdown()


def test_call_turn_and_stage_spans_exported(collector: Collector) -> None:
    provider = make_tracer_provider(f"http://127.0.0.1:{collector.port}/v1/traces", node_id="n1")
    assert provider is not None
    tracer = CallTracer(provider)
    tracer.start_call("call_x", {"voxgate.edge": "sip"}, clock_now=100.0)
    turn = TurnRecord(
        index=0, speech_start=101.0, speech_end=102.0, endpoint=102.5, stt_final=102.6,
        llm_start=102.6, llm_first_token=102.8, tts_start=102.9, tts_first_audio=103.0,
        first_audio_out=103.01, reply_done=105.0,
    )
    tracer.add_turn("call_x", turn)
    tracer.end_call("call_x", "caller_hangup")
    provider.force_flush()
    provider.shutdown()
    by_name = {s[0]: s for s in collector.spans}
    assert {"call", "turn", "endpointing", "stt", "llm", "tts", "playback"} <= set(by_name)
    call, turn_span = by_name["call"], by_name["turn"]
    assert turn_span[2] == call[1]  # turn's parent is the call
    assert by_name["llm"][2] == turn_span[1]
    assert by_name["endpointing"][4] - by_name["endpointing"][3] == pytest.approx(0.5e9, rel=1e-3)
    assert call[5]["voxgate.end_reason"].string_value == "caller_hangup"  # type: ignore[attr-defined]
    assert turn_span[5]["voxgate.turn.voice_to_voice_ms"].double_value == pytest.approx(1010, abs=1)  # type: ignore[attr-defined]


def test_no_endpoint_means_no_provider() -> None:
    assert make_tracer_provider(None) is None
    tracer = CallTracer(None)
    tracer.start_call("c", {}, clock_now=0.0)
    tracer.end_call("c", "done")
