"""Small helpers over redis-py's reply types (``bytes | str`` depending on the client)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FieldValue = bytes | bytearray | memoryview | str | int | float


def text(value: Any) -> str:
    """One reply item as text: clients made without ``decode_responses`` return bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    return str(value)


def text_map(raw: Mapping[Any, Any] | None) -> dict[str, str]:
    return {text(k): text(v) for k, v in (raw or {}).items()}


def text_set(raw: Iterable[Any] | None) -> set[str]:
    return {text(v) for v in (raw or ())}


def fields(mapping: Mapping[str, Any]) -> dict[FieldValue, FieldValue]:
    """A mapping typed the way ``hset``/``xadd`` accept it."""
    return {k: (v if isinstance(v, int | float | str | bytes) else str(v)) for k, v in mapping.items()}


def connect(url: str, max_connections: int = 64, wait_s: float = 10.0) -> Any:
    """A client whose pool *waits* for a free connection instead of failing.

    redis-py's default async pool raises ``MaxConnectionsError`` at 100 connections in use:
    300 calls ending at once (a drain) would then lose registry writes. A blocking pool
    queues them for up to ``wait_s`` instead, and caps sockets per node.
    """
    from redis.asyncio import BlockingConnectionPool, Redis

    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_s)
    return Redis(connection_pool=pool)
