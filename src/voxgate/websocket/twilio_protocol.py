"""Twilio Media Streams (bidirectional), sans-I/O: JSON text in, events out, and back.

Two roles, as in Twilio's own deployment:

- :class:`TwilioServerProtocol` is the *app* side that Twilio connects to. voxgate's
  ``/twilio/media`` edge runs it, and so does :mod:`voxgate.client` for external apps.
  It receives ``connected``, ``start``, ``media``, ``dtmf``, ``mark`` and ``stop`` and
  sends ``media``, ``mark`` and ``clear``.
- :class:`TwilioClientProtocol` is the *Twilio* side. voxgate's bridge runs it when it
  streams a call out to an app written for Twilio, so that app works unchanged.

No sockets, no clocks: callers pass text in and get frozen event dataclasses out (compare
h11/websockets). Validation is strict and every failure is one
:class:`~voxgate.websocket.errors.StreamProtocolError` naming the field. The order rules
are Twilio's: ``connected`` (optional, first), then exactly one ``start``, then media, DTMF
and marks, then ``stop``; nothing after ``stop``. ``sequenceNumber`` must increase; gaps
(messages lost upstream) are counted in :attr:`TwilioServerProtocol.sequence_gaps`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from voxgate.websocket._json import (
    JsonObject,
    b64decode,
    get_digits,
    get_int,
    get_obj,
    get_str,
    loads_object,
    opt_str,
    str_map,
)
from voxgate.websocket.errors import CLOSE_POLICY, StreamProtocolError

MULAW = "audio/x-mulaw"
SAMPLE_RATE = 8000
FRAME_BYTES = 160
"""20 ms of 8 kHz mu-law: the chunk size Twilio sends and expects."""
MAX_PAYLOAD_BYTES = 8000
"""One second of mu-law; Twilio sends 160 bytes, so anything near this is abuse."""
TRACKS = frozenset({"inbound", "outbound", "inbound_track", "outbound_track"})


# --- events (frozen; do not subclass) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    encoding: str = MULAW
    sample_rate: int = SAMPLE_RATE
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Media:
    payload: bytes
    track: str = "inbound"
    chunk: int = 0
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str
    track: str = "inbound_track"


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    account_sid: str = ""
    call_sid: str = ""


@dataclass(frozen=True, slots=True)
class Clear:
    pass


ServerEvent = Connected | Start | Media | Dtmf | Mark | Stop
"""What the app side receives from Twilio (or voxgate's bridge)."""
ClientEvent = Media | Mark | Clear
"""What the Twilio side receives from the app."""


class StreamState(Enum):
    IDLE = "idle"
    CONNECTED = "connected"
    STARTED = "started"
    STOPPED = "stopped"


_DTMF = frozenset("0123456789*#ABCDabcd")

# The fast path for ``media`` (50 messages a second per stream): the exact layout Twilio
# (and voxgate's own bridge) sends, optionally with json.dumps' default ", "/": " spacing,
# matched as a whole. A match proves the message is a JSON object holding exactly these
# fields with these types (digits-only strings, a base64-alphabet payload, a sid without
# escapes or control characters), so it is as strict as json.loads + the field checks
# below; anything else (other order, escapes, extra fields, bad values) takes the general
# path, which accepts or rejects it with the precise error. Measured here: ~2 us instead
# of ~5 us for json.loads alone, and on bytes it also spares the UTF-8 decode (a match
# is pure ASCII).
_MEDIA_FAST = (
    r'\{"event": ?"media", ?"sequenceNumber": ?"([0-9]{1,20})", ?"media": ?\{'
    r'"track": ?"(inbound|outbound|inbound_track|outbound_track)", ?'
    r'"chunk": ?"([0-9]{1,20})", ?"timestamp": ?"([0-9]{1,20})", ?'
    r'"payload": ?"([A-Za-z0-9+/]*={0,2})"\}, ?"streamSid": ?"([^"\\\x00-\x1f]{1,64})"\}'
)
_MEDIA_FAST_STR = re.compile(_MEDIA_FAST)
_MEDIA_FAST_BYTES = re.compile(_MEDIA_FAST.encode())
_TRACK_NAMES = {t.encode(): t for t in TRACKS} | {t: t for t in TRACKS}
_EVENTS = ("connected", "start", "media", "dtmf", "mark", "stop")


def _order_error(event: str, state: StreamState) -> StreamProtocolError:
    return StreamProtocolError(
        f"{event!r} not allowed while stream is {state.value}",
        field="event",
        close_code=CLOSE_POLICY,
    )


class TwilioServerProtocol:
    """The app side of one Twilio media stream."""

    def __init__(self, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.state = StreamState.IDLE
        self.start: Start | None = None
        self.last_sequence = 0
        self.sequence_gaps = 0
        """Messages missing between consecutive sequenceNumbers (lost upstream)."""
        self._media_prefix: str | None = None
        self._sid_str = ""
        self._sid_bytes = b""

    @property
    def stream_sid(self) -> str:
        if self.start is None:
            raise RuntimeError("no stream started yet")
        return self.start.stream_sid

    # --- receiving -----------------------------------------------------------------

    def receive(self, text: str | bytes) -> ServerEvent:
        """Parse and validate one message; raises StreamProtocolError and nothing else.

        ``bytes`` are taken as UTF-8 (what a WebSocket text frame carries)."""
        if self.state is StreamState.STARTED:
            fast = (
                _MEDIA_FAST_BYTES.fullmatch(text)
                if type(text) is bytes
                else _MEDIA_FAST_STR.fullmatch(text)  # type: ignore[arg-type]
            )
            if fast is not None:
                seq, track, chunk, stamp, payload, sid = fast.groups()
                n = int(seq)
                if n > self.last_sequence and sid in (self._sid_str, self._sid_bytes):
                    if self.last_sequence:
                        self.sequence_gaps += n - self.last_sequence - 1
                    self.last_sequence = n
                    return Media(
                        payload=b64decode(payload, "media.payload", self.max_payload_bytes),
                        track=_TRACK_NAMES[track],
                        chunk=int(chunk),
                        timestamp_ms=int(stamp),
                    )
                # an out-of-order sequence or a foreign sid: the general path says which
        msg = loads_object(text)
        event = msg.get("event")
        if event == "media":  # the hot path first
            return self._media(msg)
        if not isinstance(event, str):
            raise StreamProtocolError("required; must be a string", field="event")
        if event == "connected":
            if self.state is not StreamState.IDLE:
                raise _order_error(event, self.state)
            self.state = StreamState.CONNECTED
            return Connected(protocol=opt_str(msg, "protocol"), version=opt_str(msg, "version"))
        if event not in _EVENTS:
            raise StreamProtocolError(
                f"unknown event {event[:40]!r}", field="event", close_code=CLOSE_POLICY
            )
        if event == "start":
            return self._start(msg)
        if self.state is not StreamState.STARTED:
            raise _order_error(event, self.state)
        self._sequence(msg)
        self._check_sid(msg)
        if event == "dtmf":
            body = get_obj(msg, "dtmf")
            digit = get_str(body, "digit", "dtmf")
            if len(digit) != 1 or digit not in _DTMF:
                raise StreamProtocolError("must be one of 0-9 * # A-D", field="dtmf.digit")
            return Dtmf(digit=digit.upper(), track=opt_str(body, "track", "dtmf", "inbound_track"))
        if event == "mark":
            return Mark(name=get_str(get_obj(msg, "mark"), "name", "mark"))
        # stop
        stop = msg.get("stop")
        self.state = StreamState.STOPPED
        if isinstance(stop, dict):
            return Stop(
                account_sid=opt_str(stop, "accountSid", "stop"),
                call_sid=opt_str(stop, "callSid", "stop"),
            )
        return Stop()

    def _start(self, msg: JsonObject) -> Start:
        if self.state not in (StreamState.IDLE, StreamState.CONNECTED):
            raise _order_error("start", self.state)
        self._sequence(msg)
        body = get_obj(msg, "start")
        tracks_raw = body.get("tracks", ["inbound"])
        if (
            not isinstance(tracks_raw, list)
            or not tracks_raw
            or not all(isinstance(t, str) and t in TRACKS for t in tracks_raw)
        ):
            raise StreamProtocolError(
                "must be a non-empty list of inbound/outbound", field="start.tracks"
            )
        fmt = get_obj(body, "mediaFormat", "start")
        encoding = get_str(fmt, "encoding", "start.mediaFormat")
        if encoding != MULAW:
            raise StreamProtocolError(f"must be {MULAW!r}", field="start.mediaFormat.encoding")
        if get_int(fmt, "sampleRate", "start.mediaFormat") != SAMPLE_RATE:
            raise StreamProtocolError("must be 8000", field="start.mediaFormat.sampleRate")
        if get_int(fmt, "channels", "start.mediaFormat") != 1:
            raise StreamProtocolError("must be 1", field="start.mediaFormat.channels")
        stream_sid = get_str(body, "streamSid", "start")
        if not stream_sid:
            raise StreamProtocolError("must not be empty", field="start.streamSid")
        outer = msg.get("streamSid")
        if outer is not None and outer != stream_sid:
            raise StreamProtocolError("differs from start.streamSid", field="streamSid")
        start = Start(
            stream_sid=stream_sid,
            call_sid=get_str(body, "callSid", "start"),
            account_sid=opt_str(body, "accountSid", "start"),
            tracks=tuple(tracks_raw),
            custom_parameters=str_map(body, "customParameters", "start"),
        )
        self.start = start
        self._sid_str = stream_sid
        self._sid_bytes = stream_sid.encode()
        self.state = StreamState.STARTED
        return start

    def _media(self, msg: JsonObject) -> Media:
        """The hot path (50 calls a second per stream): the same checks as the helpers,
        inlined, falling back to them only to build the error for a bad field."""
        if self.state is not StreamState.STARTED:
            raise _order_error("media", self.state)
        seq = msg.get("sequenceNumber")
        if seq is not None:
            if type(seq) is str and seq.isdigit() and seq.isascii() and len(seq) <= 20:
                n = int(seq)
                if n > self.last_sequence:
                    if self.last_sequence:
                        self.sequence_gaps += n - self.last_sequence - 1
                    self.last_sequence = n
                else:
                    self._sequence(msg)
            else:
                self._sequence(msg)
        sid = msg.get("streamSid")
        if sid is not None and (self.start is None or sid != self.start.stream_sid):
            raise StreamProtocolError("does not match the started stream", field="streamSid")
        body = msg.get("media")
        if type(body) is not dict:
            body = get_obj(msg, "media")
        track = body.get("track", "inbound")
        if track not in TRACKS:
            raise StreamProtocolError("must be inbound or outbound", field="media.track")
        payload = body.get("payload")
        if type(payload) is not str:
            payload = get_str(body, "payload", "media")
        chunk = body.get("chunk")
        if chunk is None:
            chunk = 0
        elif not (type(chunk) is str and chunk.isdigit() and chunk.isascii() and len(chunk) <= 20):
            chunk = get_digits(body, "chunk", "media")
        stamp = body.get("timestamp")
        if stamp is None:
            stamp = 0
        elif not (type(stamp) is str and stamp.isdigit() and stamp.isascii() and len(stamp) <= 20):
            stamp = get_digits(body, "timestamp", "media")
        return Media(
            payload=b64decode(payload, "media.payload", self.max_payload_bytes),
            track=track,
            chunk=int(chunk),
            timestamp_ms=int(stamp),
        )

    def _sequence(self, msg: JsonObject) -> None:
        if "sequenceNumber" not in msg:
            return
        seq = get_digits(msg, "sequenceNumber")
        if seq <= self.last_sequence:
            raise StreamProtocolError(
                f"{seq} does not follow {self.last_sequence}", field="sequenceNumber"
            )
        if self.last_sequence:
            self.sequence_gaps += seq - self.last_sequence - 1
        self.last_sequence = seq

    def _check_sid(self, msg: JsonObject) -> None:
        sid = msg.get("streamSid")
        if sid is not None and (self.start is None or sid != self.start.stream_sid):
            raise StreamProtocolError("does not match the started stream", field="streamSid")

    # --- sending -------------------------------------------------------------------

    def media(self, payload: bytes) -> str:
        """One outbound ``media`` message (payload: mu-law bytes, normally 160)."""
        # Built by concatenation: this runs 50 times a second per call. The sid is
        # JSON-escaped once per stream, so a hostile streamSid cannot inject fields.
        prefix = self._media_prefix
        if prefix is None:
            prefix = '{"event":"media","streamSid":' + json.dumps(self.stream_sid)
            prefix = self._media_prefix = prefix + ',"media":{"payload":"'
        return prefix + base64.b64encode(payload).decode() + '"}}'

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def clear(self) -> str:
        return json.dumps({"event": "clear", "streamSid": self.stream_sid})


class TwilioClientProtocol:
    """The Twilio side of one media stream (voxgate streaming a call out to an app)."""

    def __init__(self, start: Start, max_payload_bytes: int = 1 << 20) -> None:
        self.start = start
        self.max_payload_bytes = max_payload_bytes
        self._sequence = 0
        self._chunk = 0
        self._sid_json = json.dumps(start.stream_sid)

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def connected(self) -> str:
        return '{"event":"connected","protocol":"Call","version":"1.0.0"}'

    def start_message(self) -> str:
        s = self.start
        return json.dumps(
            {
                "event": "start",
                "sequenceNumber": self._next(),
                "start": {
                    "accountSid": s.account_sid,
                    "streamSid": s.stream_sid,
                    "callSid": s.call_sid,
                    "tracks": list(s.tracks),
                    "mediaFormat": {"encoding": MULAW, "sampleRate": SAMPLE_RATE, "channels": 1},
                    "customParameters": dict(s.custom_parameters),
                },
                "streamSid": s.stream_sid,
            }
        )

    def media(self, payload: bytes, timestamp_ms: int) -> str:
        self._chunk += 1
        return (
            f'{{"event":"media","sequenceNumber":"{self._next()}","media":{{"track":"inbound",'
            f'"chunk":"{self._chunk}","timestamp":"{timestamp_ms}","payload":"'
            + base64.b64encode(payload).decode()
            + '"},"streamSid":'
            + self._sid_json
            + "}"
        )

    def dtmf(self, digit: str) -> str:
        return json.dumps(
            {
                "event": "dtmf",
                "streamSid": self.start.stream_sid,
                "sequenceNumber": self._next(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def mark(self, name: str) -> str:
        """Echo a mark: playback reached it (or it was cleared, as Twilio does)."""
        return json.dumps(
            {
                "event": "mark",
                "sequenceNumber": self._next(),
                "streamSid": self.start.stream_sid,
                "mark": {"name": name},
            }
        )

    def stop(self) -> str:
        return json.dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "streamSid": self.start.stream_sid,
                "stop": {"accountSid": self.start.account_sid, "callSid": self.start.call_sid},
            }
        )

    def receive(self, text: str | bytes) -> ClientEvent:
        """Parse one message from the app: ``media``, ``mark`` or ``clear``."""
        msg = loads_object(text)
        event = msg.get("event")
        if not isinstance(event, str):
            raise StreamProtocolError("required; must be a string", field="event")
        if event not in ("media", "mark", "clear"):
            raise StreamProtocolError(
                f"unknown event {event[:40]!r}", field="event", close_code=CLOSE_POLICY
            )
        if get_str(msg, "streamSid") != self.start.stream_sid:
            raise StreamProtocolError("does not match the started stream", field="streamSid")
        if event == "media":
            body = get_obj(msg, "media")
            payload = get_str(body, "payload", "media", max_len=self.max_payload_bytes * 2)
            return Media(
                payload=b64decode(payload, "media.payload", self.max_payload_bytes),
                track="outbound",
            )
        if event == "mark":
            return Mark(name=get_str(get_obj(msg, "mark"), "name", "mark"))
        return Clear()
