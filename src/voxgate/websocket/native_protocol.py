"""voxgate's own stream protocol, version 1, sans-I/O (spec: ``docs/websocket-protocol.md``).

Twilio's protocol wraps every 20 ms of audio in JSON and base64 and knows only mu-law at
8 kHz. This one sends audio as binary WebSocket frames in a negotiated encoding (PCM16 at
8/16/24/48 kHz, mu-law, Opus) and keeps JSON for control: marks, clear, DTMF, transcripts,
hang-up and transfer.

Roles follow the connection: the WebSocket *client* is the **caller side** (a browser or app
with a microphone, or voxgate's bridge streaming a call out) and the *server* is the **app
side** (voxgate's ``/v1/stream`` edge running a routed app, or an external app). The caller
side opens with ``hello`` listing the formats it can send and play, best first; the app side
answers ``ready`` with the one it picked. Both directions then use that format.

:class:`NativeAppProtocol` and :class:`NativeCallerProtocol` hold the state and validate
every message; failures are one :class:`~voxgate.websocket.errors.StreamProtocolError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from voxgate.websocket._json import (
    JsonObject,
    get_bool,
    get_int,
    get_obj,
    get_str,
    loads_object,
    opt_str,
    str_map,
)
from voxgate.websocket.errors import CLOSE_NO_FORMAT, CLOSE_POLICY, StreamProtocolError

VERSION = 1
PROTOCOL_NAME = "voxgate-stream"
RATES: Mapping[str, frozenset[int]] = {
    "pcm16": frozenset({8000, 16000, 24000, 48000}),
    "mulaw": frozenset({8000}),
    "opus": frozenset({8000, 16000, 24000, 48000}),
}
MAX_FRAME_BYTES = 65536
"""Largest binary audio frame accepted: ~0.7 s of 48 kHz PCM16; real-time senders use 20 ms."""
_DTMF = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class AudioFormat:
    encoding: str
    sample_rate: int

    def to_json(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "sample_rate": self.sample_rate}


# --- events (frozen; do not subclass) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    formats: tuple[AudioFormat, ...]
    call_id: str = ""
    caller: str = ""
    callee: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ready:
    format: AudioFormat
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class Audio:
    data: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    """Caller side: a digit the caller pressed. App side: digits to play to the caller."""

    digits: str


@dataclass(frozen=True, slots=True)
class Mark:
    """App side: tell me when playback reaches this point."""

    name: str


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """Caller side: playback reached the mark (``cleared``: it was dropped by a clear)."""

    name: str
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class Clear:
    pass


@dataclass(frozen=True, slots=True)
class Transcript:
    role: str
    text: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str = "hangup"


@dataclass(frozen=True, slots=True)
class Transfer:
    target: str


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str = "caller_hangup"


AppSideEvent = Hello | Audio | Dtmf | MarkPlayed | Stop
"""What the app side receives."""
CallerSideEvent = Ready | Audio | Mark | Clear | Transcript | Hangup | Transfer | Dtmf
"""What the caller side receives."""


class Phase(Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


def _policy(message: str, fieldname: str = "type") -> StreamProtocolError:
    return StreamProtocolError(message, field=fieldname, close_code=CLOSE_POLICY)


def _format(obj: object, where: str, strict: bool = True) -> AudioFormat:
    """A format object; ``strict=False`` (offers in ``hello``) lets unknown encodings and
    rates through, so a newer client can offer more and still negotiate a format we have."""
    if not isinstance(obj, dict):
        raise StreamProtocolError("must be an object", field=where)
    encoding = get_str(obj, "encoding", where, max_len=32)
    rate = get_int(obj, "sample_rate", where)
    if not strict:
        return AudioFormat(encoding, rate)
    if encoding not in RATES:
        raise StreamProtocolError(f"must be one of {sorted(RATES)}", field=f"{where}.encoding")
    if rate not in RATES[encoding]:
        raise StreamProtocolError(
            f"{encoding} runs at {sorted(RATES[encoding])}", field=f"{where}.sample_rate"
        )
    return AudioFormat(encoding, rate)


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class _Base:
    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.phase = Phase.HANDSHAKE
        self.format: AudioFormat | None = None

    def _audio(self, data: bytes) -> Audio:
        if self.phase is not Phase.OPEN or self.format is None:
            raise _policy(f"binary audio not allowed during {self.phase.value}", "$binary")
        if not data or len(data) > self.max_frame_bytes:
            raise StreamProtocolError(
                f"audio frame of {len(data)} bytes; allowed 1..{self.max_frame_bytes}",
                field="$binary",
            )
        if self.format.encoding == "pcm16" and len(data) % 2:
            raise StreamProtocolError("PCM16 frame has an odd byte count", field="$binary")
        return Audio(data)

    def _message(self, text: str | bytes) -> tuple[str, JsonObject]:
        msg = loads_object(text)
        kind = get_str(msg, "type", max_len=32)
        if self.phase is Phase.CLOSED:
            raise _policy(f"{kind!r} after the stream ended")
        return kind, msg

    def check_audio_out(self) -> None:
        if self.phase is not Phase.OPEN:
            raise RuntimeError(f"cannot send audio during {self.phase.value}")


class NativeAppProtocol(_Base):
    """The app side: receives ``hello``, answers ``ready``, then audio and control."""

    def __init__(
        self,
        supported: Sequence[AudioFormat] | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        super().__init__(max_frame_bytes)
        self.supported = frozenset(
            supported
            if supported is not None
            else [AudioFormat(e, r) for e, rates in RATES.items() for r in rates]
        )
        self.hello: Hello | None = None

    def receive(self, data: str | bytes, binary: bool = False) -> AppSideEvent:
        """One WebSocket message (``binary=True`` for a binary frame)."""
        if binary:
            return self._audio(bytes(data) if isinstance(data, bytes) else data.encode())
        kind, msg = self._message(data)
        if self.phase is Phase.HANDSHAKE:
            if kind != "hello":
                raise _policy(f"{kind!r} before hello")
            return self._hello(msg)
        if kind == "dtmf":
            digit = get_str(msg, "digit", max_len=1).upper()
            if len(digit) != 1 or digit not in _DTMF:
                raise StreamProtocolError("must be one of 0-9 * # A-D", field="digit")
            return Dtmf(digit)
        if kind == "mark":
            return MarkPlayed(get_str(msg, "name"), get_bool(msg, "cleared"))
        if kind == "stop":
            self.phase = Phase.CLOSED
            return Stop(opt_str(msg, "reason", default="caller_hangup"))
        if kind == "hello":
            raise _policy("second hello")
        raise _policy(f"unknown message type {kind!r}")

    def _hello(self, msg: JsonObject) -> Hello:
        version = get_int(msg, "version")
        if version != VERSION:
            raise _policy(f"unsupported version {version}; this server speaks {VERSION}", "version")
        raw = msg.get("formats")
        if not isinstance(raw, list) or not 1 <= len(raw) <= 16:
            raise StreamProtocolError("must be a list of 1-16 formats", field="formats")
        formats = tuple(_format(item, f"formats[{i}]", strict=False) for i, item in enumerate(raw))
        call = get_obj(msg, "call") if "call" in msg else {}
        hello = Hello(
            formats=formats,
            call_id=opt_str(call, "id", "call"),
            caller=opt_str(call, "caller", "call"),
            callee=opt_str(call, "callee", "call"),
            metadata=str_map(call, "metadata", "call"),
        )
        chosen = next((f for f in formats if f in self.supported), None)
        if chosen is None:
            raise StreamProtocolError(
                "no offered format is supported", field="formats", close_code=CLOSE_NO_FORMAT
            )
        self.hello = hello
        self.format = chosen
        return hello

    # --- sending -------------------------------------------------------------------

    def ready(self, call_id: str) -> str:
        if self.format is None or self.phase is not Phase.HANDSHAKE:
            raise RuntimeError("ready() needs a received hello")
        self.phase = Phase.OPEN
        return _dumps(
            {
                "type": "ready",
                "version": VERSION,
                "call_id": call_id,
                "format": self.format.to_json(),
            }
        )

    def mark(self, name: str) -> str:
        return _dumps({"type": "mark", "name": name})

    def clear(self) -> str:
        return '{"type":"clear"}'

    def transcript(self, role: str, text: str, final: bool = True) -> str:
        return _dumps({"type": "transcript", "role": role, "text": text, "final": final})

    def hangup(self, reason: str = "hangup") -> str:
        return _dumps({"type": "hangup", "reason": reason})

    def transfer(self, target: str) -> str:
        return _dumps({"type": "transfer", "target": target})

    def dtmf(self, digits: str) -> str:
        return _dumps({"type": "dtmf", "digits": digits})


class NativeCallerProtocol(_Base):
    """The caller side: sends ``hello``, gets ``ready``, then audio and control."""

    def __init__(self, max_frame_bytes: int = 1 << 20) -> None:
        super().__init__(max_frame_bytes)
        self.call_id = ""

    def hello(
        self,
        formats: Sequence[AudioFormat],
        *,
        call_id: str = "",
        caller: str = "",
        callee: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        return _dumps(
            {
                "type": "hello",
                "protocol": PROTOCOL_NAME,
                "version": VERSION,
                "formats": [f.to_json() for f in formats],
                "call": {
                    "id": call_id,
                    "caller": caller,
                    "callee": callee,
                    "metadata": dict(metadata or {}),
                },
            }
        )

    def receive(self, data: str | bytes, binary: bool = False) -> CallerSideEvent:
        if binary:
            return self._audio(bytes(data) if isinstance(data, bytes) else data.encode())
        kind, msg = self._message(data)
        if self.phase is Phase.HANDSHAKE:
            if kind != "ready":
                raise _policy(f"{kind!r} before ready")
            if get_int(msg, "version") != VERSION:
                raise _policy("unsupported version", "version")
            self.format = _format(msg.get("format"), "format")
            self.call_id = opt_str(msg, "call_id")
            self.phase = Phase.OPEN
            return Ready(self.format, self.call_id)
        if kind == "mark":
            return Mark(get_str(msg, "name"))
        if kind == "clear":
            return Clear()
        if kind == "transcript":
            role = get_str(msg, "role")
            if role not in ("caller", "agent"):
                raise StreamProtocolError("must be 'caller' or 'agent'", field="role")
            return Transcript(
                role, get_str(msg, "text", max_len=8192), get_bool(msg, "final", default=True)
            )
        if kind == "hangup":
            self.phase = Phase.CLOSED
            return Hangup(opt_str(msg, "reason", default="hangup"))
        if kind == "transfer":
            return Transfer(get_str(msg, "target"))
        if kind == "dtmf":
            digits = get_str(msg, "digits", max_len=64).upper()
            if not digits or any(d not in _DTMF for d in digits):
                raise StreamProtocolError("must be 1-64 of 0-9 * # A-D", field="digits")
            return Dtmf(digits)
        raise _policy(f"unknown message type {kind!r}")

    def dtmf(self, digit: str) -> str:
        return _dumps({"type": "dtmf", "digit": digit})

    def mark_played(self, name: str, cleared: bool = False) -> str:
        return _dumps({"type": "mark", "name": name, "cleared": cleared})

    def stop(self, reason: str = "caller_hangup") -> str:
        return _dumps({"type": "stop", "reason": reason})
