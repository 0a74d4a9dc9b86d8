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
