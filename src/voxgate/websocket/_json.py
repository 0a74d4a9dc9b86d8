"""Strict field access for JSON protocol messages: every failure names the field.

Shared by the Twilio and native protocol cores. The helpers never coerce silently
(``"1"`` is not an int, ``1`` is not a string) except where a protocol documents it.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from voxgate.websocket.errors import StreamProtocolError

JsonObject = dict[str, Any]


def loads_object(text: str | bytes) -> JsonObject:
    """Parse one message; it must be a JSON object."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise StreamProtocolError(f"message is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise StreamProtocolError(f"message must be a JSON object, got {type(value).__name__}")
    return value


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def get_obj(obj: JsonObject, key: str, parent: str = "") -> JsonObject:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise StreamProtocolError(_missing_or_type(value, "an object"), field=_path(parent, key))
    return value


def get_str(obj: JsonObject, key: str, parent: str = "", *, max_len: int = 256) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise StreamProtocolError(_missing_or_type(value, "a string"), field=_path(parent, key))
    if len(value) > max_len:
        raise StreamProtocolError(f"longer than {max_len} characters", field=_path(parent, key))
    return value


def opt_str(obj: JsonObject, key: str, parent: str = "", default: str = "") -> str:
    if key not in obj:
        return default
    return get_str(obj, key, parent)


def get_int(obj: JsonObject, key: str, parent: str = "") -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise StreamProtocolError(_missing_or_type(value, "an integer"), field=_path(parent, key))
    return value


def get_bool(obj: JsonObject, key: str, parent: str = "", default: bool = False) -> bool:
    if key not in obj:
        return default
    value = obj[key]
    if not isinstance(value, bool):
        raise StreamProtocolError("must be true or false", field=_path(parent, key))
    return value


def get_digits(obj: JsonObject, key: str, parent: str = "") -> int:
    """A non-negative integer sent as a decimal string (Twilio's sequenceNumber, chunk...).

    Plain JSON integers are accepted too: some Twilio-compatible senders emit them.
    """
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        return int(value)
    raise StreamProtocolError(
        _missing_or_type(value, "a non-negative decimal string"), field=_path(parent, key)
    )


def str_map(obj: JsonObject, key: str, parent: str = "", *, max_items: int = 64) -> dict[str, str]:
    """An optional object of string values (Twilio customParameters, native metadata)."""
    if key not in obj:
        return {}
    value = get_obj(obj, key, parent)
    if len(value) > max_items:
        raise StreamProtocolError(f"more than {max_items} entries", field=_path(parent, key))
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(item, str) or len(name) > 256 or len(item) > 4096:
            raise StreamProtocolError(
                "must map names to strings (<= 4096 characters)",
                field=_path(_path(parent, key), name[:40]),
            )
        out[name] = item
    return out


def b64decode(text: str | bytes, field: str, max_bytes: int) -> bytes:
    """Strict base64 (no stray characters, correct padding) with a size limit."""
    if len(text) > (max_bytes + 2) // 3 * 4:
        raise StreamProtocolError(f"payload larger than {max_bytes} bytes", field=field)
    if len(text) % 4:  # strict_mode still takes excess trailing padding ("QUJD=")
        raise StreamProtocolError("payload is not valid base64 (length)", field=field)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise StreamProtocolError("payload is not valid base64", field=field) from None


def _missing_or_type(value: object, expected: str) -> str:
    if value is None:
        return f"required; must be {expected}"
    return f"must be {expected}, got {type(value).__name__}"
