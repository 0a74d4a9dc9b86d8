"""Per-source token buckets for requests from untrusted addresses, sans-I/O (time is an
argument). The edge asks before any digest work, and drops the excess without an answer,
so a flood from one address is neither served nor reflected."""

from __future__ import annotations

__all__ = ["SourceRateLimiter"]

MAX_SOURCES = 10000
"""Buckets kept before all are forgotten: bounded memory under a spoofed-source flood."""


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class SourceRateLimiter:
    """``rate`` requests per second per source, bursts up to ``2 * rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, source: str, now: float) -> bool:
        """Whether one more request from ``source`` at ``now`` is within its rate."""
        rate = self.rate
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) > MAX_SOURCES:
                self._buckets.clear()
            bucket = self._buckets[source] = _Bucket(2 * rate, now)
        bucket.tokens = min(2 * rate, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True
