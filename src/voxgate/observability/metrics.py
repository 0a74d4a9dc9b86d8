"""Prometheus metrics shared across voxgate.

One registry per process (not the global default) so tests and embedded uses can build
several apps without duplicate-metric errors, and so ``/metrics`` exports only voxgate's own
series plus the process collector.

With ``server.workers > 1`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any
worker imports prometheus_client: every metric's value then lives in a per-process file
there, and :func:`exposition` (``/metrics``, served by whichever worker the kernel picked)
reads all workers' files, so a scrape shows the whole node. Gauges say how workers combine
(``livesum``: the sum over live workers); single-process mode ignores that.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

PARSER_REJECTIONS = Counter(
    "voxgate_parser_rejections_total",
    "Inputs rejected by a parser (bad bytes, bad JSON, bad config), by protocol.",
    ["protocol"],
    registry=REGISTRY,
)

SIP_FRONT_DATAGRAMS = Counter(
    "voxgate_sip_front_datagrams",
    "Datagrams at the SIP front (server.workers > 1): dispatched or dropped (the worker's "
    "link was full) per worker; garbage (no Call-ID, sent to worker 0) and keep-alives",
    ["worker", "outcome"],
    registry=REGISTRY,
)
HTTP_AUTH_FAILURES = Counter(
    "voxgate_auth_failures_total",
    "Requests refused for a missing or wrong token, by surface.",
    ["surface"],
    registry=REGISTRY,
)

ACTIVE_CALLS = Gauge(
    "voxgate_active_calls",
    "Calls in progress, by edge.",
    ["edge"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

CALLS_TOTAL = Counter(
    "voxgate_calls_total",
    "Calls ended, by edge and end reason.",
    ["edge", "reason"],
    registry=REGISTRY,
)

VOICE_TO_VOICE_SECONDS = Histogram(
    "voxgate_voice_to_voice_seconds",
    "Caller end of speech to first agent audio played.",
    buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0),
    registry=REGISTRY,
)


def count_rejection(protocol: str) -> None:
    """Count one rejected input; edges call this where they catch a ParseError."""
    PARSER_REJECTIONS.labels(protocol=protocol).inc()

_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)

STAGE_SECONDS = Histogram(
    "voxgate_stage_seconds",
    "Latency each stage added to a turn (endpointing, stt, llm_ttft, llm_first_clause, "
    "tts_first_chunk, overhead).",
    ["stage"],
    buckets=_STAGE_BUCKETS,
    registry=REGISTRY,
)

TURNS_TOTAL = Counter(
    "voxgate_turns_total",
    "Agent turns by outcome: completed (reply fully played) or interrupted.",
    ["outcome"],
    registry=REGISTRY,
)

ASR_CONFIDENCE = Histogram(
    "voxgate_asr_confidence",
    "Confidence of final caller transcripts.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
    registry=REGISTRY,
)

AUDIO_FRAMES = Counter(
    "voxgate_audio_frames_total",
    "Inbound audio frames by fate: delivered to the app, or dropped (slow consumer).",
    ["edge", "fate"],
    registry=REGISTRY,
)

COST_PER_MINUTE = Histogram(
    "voxgate_cost_per_call_minute",
    "Cost of each ended call per minute of call time (price table units).",
    buckets=(0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)

COST_TOTAL = Counter(
    "voxgate_cost_total",
    "Accumulated cost of ended calls, by kind (stt, llm, tts, telephony).",
    ["kind"],
    registry=REGISTRY,
)

SESSION_HEALTH = Gauge(
    "voxgate_session_health",
    "Calls in progress by health: ok, degraded (loss/jitter/underruns over thresholds).",
    ["health"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

JITTER_UNDERRUNS = Counter(
    "voxgate_jitter_buffer_underruns_total",
    "Playout ticks with no audio to play (jitter buffer starved).",
    ["edge"],
    registry=REGISTRY,
)

CONCEALED_SECONDS = Counter(
    "voxgate_concealed_audio_seconds_total",
    "Audio synthesised by loss concealment instead of received.",
    ["edge"],
    registry=REGISTRY,
)

PACKET_LOSS_RATIO = Histogram(
    "voxgate_packet_loss_ratio",
    "Packet loss fraction per reporting interval per call.",
    buckets=(0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)

JITTER_SECONDS = Histogram(
    "voxgate_interarrival_jitter_seconds",
    "RFC 3550 interarrival jitter per reporting interval per call.",
    buckets=(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.2),
    registry=REGISTRY,
)

PROVIDER_ERRORS = Counter(
    "voxgate_provider_errors_total",
    "Provider failures (errors and timeouts), by kind and provider.",
    ["kind", "provider"],
    registry=REGISTRY,
)

PROVIDER_FALLBACKS = Counter(
    "voxgate_provider_fallbacks_total",
    "Switches to the next provider of a fallback chain, by kind.",
    ["kind"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The ``/metrics`` body: this process's registry, or with ``PROMETHEUS_MULTIPROC_DIR``
    (``server.workers > 1``) every worker's values merged, so the node answers as one.

    In multiprocess mode the process collector is left out: its CPU and memory would be
    the scraped worker's alone, mislabelled as the node's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(merged)
