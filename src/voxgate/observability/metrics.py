"""Prometheus metrics shared across voxgate.

One registry per process (not the global default) so tests and embedded uses can build
several apps without duplicate-metric errors, and so ``/metrics`` exports only voxgate's own
series plus the process collector.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

PARSER_REJECTIONS = Counter(
    "voxgate_parser_rejections_total",
    "Inputs rejected by a parser (bad bytes, bad JSON, bad config), by protocol.",
    ["protocol"],
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
