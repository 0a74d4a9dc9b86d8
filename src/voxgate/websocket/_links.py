"""Per-protocol halves of the bridge: how caller audio and events go out to an external app,
and what the app's messages mean. One small class per protocol; the bridge owns the I/O.

Each link lives for one WebSocket connection: a reconnect makes a new link (new Twilio
stream ``start``, new native ``hello``), so encoder state never spans two connections.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.audio.frame import Pcm16
from voxgate.calls.session import CallSession
from voxgate.websocket import native_protocol as native
from voxgate.websocket import twilio_protocol as twilio
from voxgate.websocket._audio import WireDecoder, WireEncoder
from voxgate.websocket.errors import StreamProtocolError


@dataclass(frozen=True, slots=True)
class PlayAudio:
    pcm: Pcm16


@dataclass(frozen=True, slots=True)
class PlayMark:
    name: str


@dataclass(frozen=True, slots=True)
class ClearPlayback:
    pass


@dataclass(frozen=True, slots=True)
class AppHangup:
    reason: str


@dataclass(frozen=True, slots=True)
class AppTransfer:
    target: str


@dataclass(frozen=True, slots=True)
class AppDtmf:
    digits: str


@dataclass(frozen=True, slots=True)
class Nothing:
    pass


Action = PlayAudio | PlayMark | ClearPlayback | AppHangup | AppTransfer | AppDtmf | Nothing


class TwilioLink:
    """voxgate as Twilio: the app sees an ordinary Twilio Media Stream."""

    echo_marks_on_clear = True
    """Twilio echoes every pending mark right after a clear; apps rely on it."""

    def __init__(self, session: CallSession, attempt: int, max_message_bytes: int) -> None:
        params = {"From": session.caller, "To": session.callee, "voxgate_call_id": session.call_id}
        if attempt:
            params["voxgate_reconnect"] = str(attempt)
        sid = session.metadata.get("call_sid") or session.call_id
        self.proto = twilio.TwilioClientProtocol(
            twilio.Start(
                stream_sid=f"MZ{session.call_id.removeprefix('call_')}",
                call_sid=sid,
                account_sid="ACvoxgate",
                tracks=("inbound",),
                custom_parameters=params,
            ),
            max_payload_bytes=max_message_bytes,
        )
        self._encoder = WireEncoder("mulaw", twilio.SAMPLE_RATE, session.sample_rate)
        self._decoder = WireDecoder("mulaw", twilio.SAMPLE_RATE, session.sink.sample_rate)
        self._sent_ms = 0

    def opening(self) -> list[str]:
        return [self.proto.connected(), self.proto.start_message()]

    def accept_opening(self, data: str | bytes) -> bool:
        """Twilio's protocol has no reply to ``start``: the stream is open at once."""
        return True

    needs_reply = False

    def audio(self, pcm: Pcm16) -> list[str | bytes]:
        out: list[str | bytes] = []
        for chunk in self._encoder.encode(pcm):
            out.append(self.proto.media(chunk, self._sent_ms))
            self._sent_ms += 20
        return out

    def dtmf(self, digit: str) -> str:
        return self.proto.dtmf(digit)

    def mark_played(self, name: str, cleared: bool) -> str:
        return self.proto.mark(name)

    def stop(self, reason: str) -> str:
        return self.proto.stop()

    def receive(self, data: str | bytes, binary: bool) -> Action:
        if binary:
            raise StreamProtocolError("binary frames are not part of the Twilio protocol")
        event = self.proto.receive(data)
        if isinstance(event, twilio.Media):
            return PlayAudio(self._decoder.decode(event.payload))
        if isinstance(event, twilio.Mark):
            return PlayMark(event.name)
        return ClearPlayback()


class NativeLink:
    """voxgate as the caller side of its own protocol, offering the session's rate first."""

    echo_marks_on_clear = True
    needs_reply = True

    def __init__(self, session: CallSession, attempt: int, max_message_bytes: int) -> None:
        self.session = session
        self.attempt = attempt
        self.proto = native.NativeCallerProtocol(max_message_bytes)
        self._encoder: WireEncoder | None = None
        self._decoder: WireDecoder | None = None

    def opening(self) -> list[str]:
        rate = self.session.sample_rate
        offers = [native.AudioFormat("pcm16", rate)] if rate in native.RATES["pcm16"] else []
        offers += [native.AudioFormat("pcm16", 16000), native.AudioFormat("mulaw", 8000)]
        metadata = dict(self.session.metadata)
        if self.attempt:
            metadata["voxgate_reconnect"] = str(self.attempt)
        return [
            self.proto.hello(
                list(dict.fromkeys(offers)),
                call_id=self.session.call_id,
                caller=self.session.caller,
                callee=self.session.callee,
                metadata=metadata,
            )
        ]

    def accept_opening(self, data: str | bytes) -> bool:
        event = self.proto.receive(data)
        if not isinstance(event, native.Ready):  # pragma: no cover - the core enforces order
            return False
        fmt = event.format
        self._encoder = WireEncoder(fmt.encoding, fmt.sample_rate, self.session.sample_rate)
        self._decoder = WireDecoder(fmt.encoding, fmt.sample_rate, self.session.sink.sample_rate)
        return True

    def audio(self, pcm: Pcm16) -> list[str | bytes]:
        assert self._encoder is not None
        return list(self._encoder.encode(pcm))

    def dtmf(self, digit: str) -> str:
        return self.proto.dtmf(digit)

    def mark_played(self, name: str, cleared: bool) -> str:
        return self.proto.mark_played(name, cleared)

    def stop(self, reason: str) -> str:
        return self.proto.stop(reason)

    def receive(self, data: str | bytes, binary: bool) -> Action:
        event = self.proto.receive(data, binary)
        if isinstance(event, native.Audio):
            assert self._decoder is not None
            return PlayAudio(self._decoder.decode(event.data))
        if isinstance(event, native.Mark):
            return PlayMark(event.name)
        if isinstance(event, native.Clear):
            return ClearPlayback()
        if isinstance(event, native.Hangup):
            return AppHangup(event.reason)
        if isinstance(event, native.Transfer):
            return AppTransfer(event.target)
        if isinstance(event, native.Dtmf):
            return AppDtmf(event.digits)
        if isinstance(event, native.Transcript):
            transcript = getattr(self.session.sink, "transcript", None)
            if callable(transcript):
                transcript(event.role, event.text, event.final)
        return Nothing()


Link = TwilioLink | NativeLink


def make_link(protocol: str, session: CallSession, attempt: int, max_bytes: int) -> Link:
    if protocol == "native":
        return NativeLink(session, attempt, max_bytes)
    if protocol == "twilio":
        return TwilioLink(session, attempt, max_bytes)
    raise ValueError(f"unknown external app protocol {protocol!r}; use 'twilio' or 'native'")
