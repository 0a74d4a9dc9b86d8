"""DTMF over RTP as RFC 4733 telephone-events: payload codec, sender schedule, receiver.

Sans-I/O like the rest of :mod:`voxgate.rtp`: :class:`DtmfSender` returns the packets for a
digit with the offset (seconds after the start) at which each should leave, and the caller's
RTP session schedules them; :class:`DtmfReceiver` is fed packets plus the arrival time and is
asked for expired events with :meth:`DtmfReceiver.poll` at :meth:`DtmfReceiver.next_timeout`.

An event is identified by its RTP timestamp (RFC 4733 2.5.1.1: every packet of one event
carries the timestamp of its start, retransmissions included), which is what lets the receiver
report each digit exactly once despite the three end packets, reordering and lost packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from voxgate.rtp.packet import RtpPacket, RtpParseError

__all__ = [
    "DTMF_DIGITS",
    "DtmfEvent",
    "DtmfParseError",
    "DtmfReceiver",
    "DtmfSender",
    "ScheduledPacket",
    "TelephoneEvent",
    "digit_to_event",
    "event_to_digit",
]

DTMF_DIGITS = "0123456789*#ABCD"
"""Telephone-event codes 0-15 in order (RFC 4733 section 3.2)."""

MAX_SEGMENT = 0xFFFF
"""Longest duration one timestamp can describe; longer events are split (RFC 4733 2.5.1.3)."""

_EVENT = struct.Struct("!BBH")


class DtmfParseError(RtpParseError):
    """A telephone-event payload that is malformed (an :class:`RtpParseError` too)."""

    protocol = "dtmf"


def digit_to_event(digit: str) -> int:
    """Event code for a DTMF digit (``0``-``9``, ``*``, ``#``, ``A``-``D``, case-insensitive)."""
    code = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit")
    return code


def event_to_digit(event: int) -> str | None:
    """DTMF digit for an event code, or None for other telephone events (flash, tones)."""
    return DTMF_DIGITS[event] if 0 <= event < 16 else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte telephone-event payload (RFC 4733 section 2.3).

    ``volume`` is the power level in -dBm0 (0-63); ``duration`` is in RTP timestamp units
    since the event's (or segment's) timestamp. The reserved bit is ignored on parse and sent
    as zero.
    """

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        """Parse a payload; bytes past the first four are ignored (no redundancy here)."""
        if len(data) < 4:
            raise DtmfParseError(f"telephone-event payload of {len(data)} bytes is not 4")
        event, flags, duration = _EVENT.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError(f"telephone-event volume {self.volume} is not 0-63")
        try:
            return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)
        except struct.error as exc:
            raise ValueError(f"telephone-event field out of range: {exc}") from None

    def __bytes__(self) -> bytes:
        return self.serialize()


class ScheduledPacket(NamedTuple):
    """A packet and when to send it, in seconds after the first packet of the event."""

    offset: float
    packet: RtpPacket


class DtmfSender:
    """Builds the RFC 4733 packet sequence for one digit.

    The schedule: one packet per ``interval`` (50 ms by default; use the audio ptime to
    interleave with audio), the first with the marker bit, each carrying the duration so
    far; the final one with the end bit, sent three times one interval apart (2.5.1.4), each
    with its own sequence number but the same timestamp. Events longer than 0xFFFF
    timestamp units are split into segments whose timestamps advance by 0xFFFF, the end bit
    only on the last segment and the marker only on the first packet (2.5.1.3).
    """

    def __init__(
        self,
        ssrc: int,
        payload_type: int = 101,
        clock_rate: int = 8000,
        interval: float = 0.05,
        volume: int = 10,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.interval = interval
        self.volume = volume

    def packets(
        self, digit: str, duration: float, *, timestamp: int, sequence_number: int
    ) -> list[ScheduledPacket]:
        """Packets for ``digit`` lasting ``duration`` seconds.

        ``timestamp`` is the RTP timestamp of the event start on the audio stream's clock and
        ``sequence_number`` the next free number of that stream; the caller continues its
        stream at ``sequence_number + len(result)``.
        """
        event = digit_to_event(digit)
        total = max(1, round(duration * self.clock_rate))
        step = max(1, round(self.interval * self.clock_rate))
        out: list[ScheduledPacket] = []
        seq = sequence_number

        def emit(offset: float, segment_start: int, length: int, end: bool) -> None:
            nonlocal seq
            payload = TelephoneEvent(event, end, self.volume, length).serialize()
            packet = RtpPacket(
                payload_type=self.payload_type,
                sequence_number=seq & 0xFFFF,
                timestamp=(timestamp + segment_start) & 0xFFFF_FFFF,
                ssrc=self.ssrc,
                marker=not out,
                payload=payload,
            )
            out.append(ScheduledPacket(offset, packet))
            seq += 1

        segment_start = 0
        elapsed = 0
        k = 0
        while True:
            offset = k * self.interval
            elapsed = min(elapsed + step, total)
            while elapsed - segment_start > MAX_SEGMENT:  # crossed a segment boundary
                emit(offset, segment_start, MAX_SEGMENT, False)
                segment_start += MAX_SEGMENT
            if elapsed == total:
                for retransmission in range(3):
                    emit(offset + retransmission * self.interval, segment_start,
                         elapsed - segment_start, True)
                return out
            emit(offset, segment_start, elapsed - segment_start, False)
            if elapsed - segment_start == MAX_SEGMENT:
                segment_start += MAX_SEGMENT
            k += 1


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One received digit, reported once when it ends.

    ``end_received`` is False when the event was closed by the timeout or by the next event
    starting before any end packet arrived; ``duration`` is then the longest seen so far.
    """

    digit: str
    timestamp: int
    duration: int
    duration_seconds: float
    volume: int
    end_received: bool


@dataclass(slots=True)
class _Active:
    event: int
    timestamp: int  # of the first segment: identifies the event
    segment_timestamp: int  # of the latest segment
    previous_segments: int  # duration of the segments before the latest
    duration: int  # within the latest segment
    volume: int
    last_seen: float


def _is_older(ts: int, reference: int) -> bool:
    """Serial-number comparison of 32-bit RTP timestamps (RFC 1982 style)."""
    return 0 < (reference - ts) & 0xFFFF_FFFF < 1 << 31


class DtmfReceiver:
    """Turns telephone-event packets into :class:`DtmfEvent` s, exactly once per event.

    Each event is reported when its first end packet arrives, when a newer event starts, or
    (via :meth:`poll`) when no packet for it arrived for ``timeout`` seconds. Packets whose
    timestamp is older than the newest event, or equal to an event already reported, are
    ignored, so retransmitted end packets and late reordered updates cannot repeat a digit.
    A lost start packet does not matter: any packet with a new timestamp starts the event.
    Non-DTMF telephone events (codes above 15) are ignored.
    """

    def __init__(
        self, payload_type: int = 101, clock_rate: int = 8000, timeout: float = 0.5
    ) -> None:
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.timeout = timeout
        self._active: _Active | None = None
        self._newest: int | None = None  # timestamp of the newest event seen (any segment)

    def receive(self, packet: RtpPacket, now: float) -> list[DtmfEvent]:
        """Feed one RTP packet (others than ``payload_type`` are ignored).

        Returns the events that completed, oldest first (at most two: one closed by the
        timeout or by this packet starting a new event, and this one if it is an end).
        Raises :class:`DtmfParseError` if the payload is not a telephone event.
        """
        if packet.payload_type != self.payload_type:
            return []
        done = self.poll(now)
        tev = TelephoneEvent.parse(packet.payload)
        if tev.event > 15:
            return done
        ts = packet.timestamp
        active = self._active
        newest = self._newest
        if newest is not None and (ts == newest and active is None or _is_older(ts, newest)):
            return done  # a retransmission or late packet of an event already handled
        if active is not None and ts != active.segment_timestamp:
            if (
                tev.event == active.event
                and ts == (active.segment_timestamp + MAX_SEGMENT) & 0xFFFF_FFFF
            ):
                # Next segment of a long event (2.5.1.3): same event, duration restarts.
                active.previous_segments += MAX_SEGMENT
                active.segment_timestamp = ts
                active.duration = 0
            else:
                done.append(self._finish(active, end_received=False))
                active = None
        if active is None:
            active = _Active(tev.event, ts, ts, 0, 0, tev.volume, now)
            self._active = active
        self._newest = ts
        active.duration = max(active.duration, tev.duration)
        active.volume = tev.volume
        active.last_seen = now
        if tev.end:
            done.append(self._finish(active, end_received=True))
        return done

    def poll(self, now: float) -> list[DtmfEvent]:
        """Report the active event if it timed out (call at :meth:`next_timeout`)."""
        active = self._active
        if active is not None and now - active.last_seen >= self.timeout:
            return [self._finish(active, end_received=False)]
        return []

    def next_timeout(self) -> float | None:
        """When :meth:`poll` should next be called, or None if no event is in progress."""
        return None if self._active is None else self._active.last_seen + self.timeout

    def _finish(self, active: _Active, *, end_received: bool) -> DtmfEvent:
        self._active = None
        duration = active.previous_segments + active.duration
        return DtmfEvent(
            digit=DTMF_DIGITS[active.event],
            timestamp=active.timestamp,
            duration=duration,
            duration_seconds=duration / self.clock_rate,
            volume=active.volume,
            end_received=end_received,
        )
