"""The pure half of a SIP call's media: the send clock, packetizer and DTMF interleaving.

Sans-I/O like the rest of the stack: times are arguments, nothing here reads a clock or
touches a socket, so the pacing that must hold for a ten-minute call is tested over 30,000
packets on a virtual clock in microseconds.

Why packets are scheduled on *absolute* times (``t0 + n * period``) rather than "sleep 20 ms
after the last send": each sleep overshoots by the event loop's wake-up latency, and those
overshoots add up. Over ten minutes a 0.2 ms average overshoot is 6 s of drift; the far end's
jitter buffer sees a sender running 1 % slow and conceals every hundredth packet. With
absolute deadlines the error of one wake-up never carries into the next. The RTP timestamp
is derived from the same index ``n``, so media time and wall time cannot diverge either.
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from typing import Generic, TypeVar

import numpy as np

from voxgate.audio.codec import Encoder
from voxgate.audio.frame import Pcm16
from voxgate.audio.resample import StreamResampler
from voxgate.rtp.dtmf import DtmfSender
from voxgate.rtp.packet import RtpPacket, pack_header
from voxgate.rtp.stats import SenderStats

__all__ = ["PacketClock", "RtpSender", "SharedClock"]

M = TypeVar("M")


class PacketClock:
    """Packet ``n`` is due at ``t0 + n * period``; :meth:`take` says which one to send now.

    After a stall longer than ``max_late`` (the event loop blocked, the process was paused)
    the clock skips the packets it missed instead of bursting them out at wire speed: a burst
    would overflow the far end's jitter buffer, while a gap is concealed like a loss. Skipping
    keeps the schedule anchored at ``t0``, so even a stall causes no drift afterwards.
    """

    __slots__ = ("early", "max_late", "n", "period", "skipped", "t0")

    def __init__(
        self, t0: float, period: float = 0.02, max_late: float = 0.2, early: float = 0.0
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.t0 = t0
        self.period = period
        self.max_late = max_late
        self.early = early
        """A packet counts as due this much before its deadline. Event loops with coarse
        timers (uvloop: 1 ms) wake up to a tick early; sending then costs less jitter than
        going back to sleep for a fraction of a millisecond and waking again."""
        self.n = 0
        """Index of the next packet to send."""
        self.skipped = 0

    def due(self, n: int | None = None) -> float:
        """When packet ``n`` (default: the next one) is due."""
        return self.t0 + (self.n if n is None else n) * self.period

    def take(self, now: float) -> int | None:
        """The index of the packet to send at ``now``, or ``None`` if none is due yet.

        Call repeatedly until ``None``: a wake-up a little late sends the one or two packets
        due since, back to back (the far end's jitter buffer absorbs that).
        """
        n = self.n
        due = self.t0 + n * self.period
        if now < due - self.early:
            return None
        late = now - due
        if late > self.max_late:
            skip = int(late / self.period)
            n += skip
            self.skipped += skip
        self.n = n + 1
        return n


class SharedClock(Generic[M]):
    """One clock for many streams: ``slots`` phase-staggered ticks instead of a timer each.

    Slot ``k`` ticks at ``origin + k * period / slots + j * period``. A stream that joins
    gets its own :class:`PacketClock` laid on the grid of the least loaded slot (same ``t0``,
    its index starting at that slot's next tick), so its deadlines are bit-for-bit the slot's:
    when the slot wakes, every member's packet is due, per-stream pacing stays on absolute
    times (no drift) and a stall skips the same way for each. The event loop then runs
    ``slots`` timers per period whatever the number of calls, and each wake-up pulls and
    sends a batch; staggering the slots keeps a batch small enough to leave within its
    ``period / slots`` window.

    Pure: the driver asks :meth:`next_due`, sleeps until then and calls :meth:`due` with
    the time it woke up; ``due`` returns the members whose slot ticked (each member then
    drains its own clock).
    """

    __slots__ = ("_clocks", "_members", "_tuples", "early", "max_late", "period")

    def __init__(
        self,
        origin: float,
        period: float = 0.02,
        slots: int = 4,
        max_late: float = 0.2,
        early: float = 0.0,
    ) -> None:
        if slots < 1:
            raise ValueError("need at least one slot")
        self.period = period
        self.max_late = max_late
        self.early = early
        self._clocks = [
            PacketClock(origin + k * period / slots, period, max_late, early) for k in range(slots)
        ]
        self._members: list[dict[M, PacketClock]] = [{} for _ in range(slots)]
        self._tuples: list[tuple[M, ...]] = [() for _ in range(slots)]

    def __len__(self) -> int:
        return sum(len(m) for m in self._members)

    def join(self, member: M, now: float) -> PacketClock:
        """Add ``member`` at ``now``; returns its clock (first packet at the slot's next tick)."""
        self.leave(member)
        k = min(range(len(self._clocks)), key=lambda i: len(self._members[i]))
        slot = self._clocks[k]
        if not self._members[k]:
            # An idle slot's clock stood still: move it to its first tick at or after now.
            slot.n = max(0, math.ceil((now - slot.early - slot.t0) / slot.period))
        clock = PacketClock(slot.t0, slot.period, slot.max_late, slot.early)
        clock.n = slot.n
        self._members[k][member] = clock
        self._tuples[k] = tuple(self._members[k])
        return clock

    def leave(self, member: M) -> None:
        for k, members in enumerate(self._members):
            if members.pop(member, None) is not None:
                self._tuples[k] = tuple(members)
                return

    def next_due(self) -> float | None:
        """The earliest tick of a slot with members (None: no member, nothing to wake for)."""
        best: float | None = None
        for clock, members in zip(self._clocks, self._members, strict=True):
            if members:
                due = clock.due()
                if best is None or due < best:
                    best = due
        return best

    def due(self, now: float) -> list[M]:
        """Members of every slot that ticked by ``now``, in slot then join order."""
        out: list[M] = []
        for clock, members in zip(self._clocks, self._tuples, strict=True):
            if members and clock.take(now) is not None:
                while clock.take(now) is not None:
                    pass  # late by more than a tick: the members catch up on their own clocks
                out.extend(members)
        return out


class RtpSender:
    """Turns one 20 ms PCM frame per tick into the RTP packet for tick ``n``.

    The RTP timestamp of tick ``n`` is ``ts0 + n * samples_per_packet`` (continuous across
    silence, DTMF and skipped ticks); sequence numbers count packets actually sent. While
    DTMF digits are queued the audio of those ticks is replaced by RFC 4733 events (sending
    both would make the far end play the tone and detect it twice).
    """

    __slots__ = (
        "_digits", "_dtmf", "_dtmf_pt", "_dtmf_until", "_encode", "_first", "_pcm_samples",
        "_resampler", "_same_rate", "_silence", "encoder", "payload_type", "ptime_ms",
        "samples_per_packet", "sequence", "ssrc", "stats", "ts0",
    )

    def __init__(
        self,
        encoder: Encoder,
        payload_type: int,
        *,
        pcm_rate: int,
        ptime_ms: int = 20,
        dtmf_payload_type: int | None = None,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.payload_type = payload_type
        self.ptime_ms = ptime_ms
        self.samples_per_packet = encoder.clock_rate * ptime_ms // 1000
        self.ssrc = ssrc if ssrc is not None else secrets.randbits(32)
        self.sequence = sequence if sequence is not None else secrets.randbits(16)
        self.ts0 = timestamp if timestamp is not None else secrets.randbits(32)
        self.stats = SenderStats(self.ssrc, encoder.clock_rate)
        self._resampler = StreamResampler(pcm_rate, encoder.sample_rate)
        self._same_rate = pcm_rate == encoder.sample_rate
        self._encode = encoder.encode
        self._pcm_samples = pcm_rate * ptime_ms // 1000
        self._silence = encoder.encode(
            np.zeros(encoder.sample_rate * ptime_ms // 1000, dtype=np.int16)
        )
        self._dtmf_pt = dtmf_payload_type
        self._digits: deque[tuple[str, float, float]] = deque()
        self._dtmf: dict[int, list[RtpPacket]] = {}
        self._dtmf_until = -1
        self._first = True

    def timestamp(self, n: int) -> int:
        """RTP timestamp of tick ``n``."""
        return (self.ts0 + n * self.samples_per_packet) & 0xFFFF_FFFF

    @property
    def dtmf_pending(self) -> bool:
        """Whether digits are queued or being sent."""
        return bool(self._digits) or bool(self._dtmf)

    def queue_dtmf(self, digits: str, duration: float = 0.1, gap: float = 0.06) -> None:
        """Queue digits for RFC 4733 sending (ValueError if the far end took no DTMF)."""
        if self._dtmf_pt is None:
            raise ValueError("the far end did not negotiate telephone-event")
        for digit in digits:
            self._digits.append((digit, duration, gap))

    def _schedule_dtmf(self, n: int) -> None:
        digit, duration, gap = self._digits.popleft()
        assert self._dtmf_pt is not None
        sender = DtmfSender(
            self.ssrc, self._dtmf_pt, self.encoder.clock_rate, interval=self.ptime_ms / 1000
        )
        period = self.ptime_ms / 1000
        scheduled = sender.packets(
            digit, duration, timestamp=self.timestamp(n), sequence_number=self.sequence
        )
        last = n
        for item in scheduled:
            tick = n + round(item.offset / period)
            self._dtmf.setdefault(tick, []).append(item.packet)
            last = max(last, tick)
        self.sequence = (self.sequence + len(scheduled)) & 0xFFFF
        self._dtmf_until = last + max(0, round(gap / period))

    def wire(self, n: int, pcm: Pcm16 | None, now: float) -> list[bytes]:
        """:meth:`packets` for tick ``n`` already serialized; the common audio packet is
        built straight to bytes (no :class:`RtpPacket` on the way: one a call every 20 ms)."""
        if self._digits or self._dtmf or (pcm is not None and pcm.shape[0] != self._pcm_samples):
            return [p.serialize() for p in self.packets(n, pcm, now)]
        if pcm is None:
            payload = self._silence
        else:
            payload = self._encode(pcm if self._same_rate else self._resampler.process(pcm))
        ts = (self.ts0 + n * self.samples_per_packet) & 0xFFFF_FFFF
        seq = self.sequence
        data = pack_header(
            0x80, (0x80 if self._first else 0) | self.payload_type, seq, ts, self.ssrc
        ) + payload
        self._first = False
        self.sequence = (seq + 1) & 0xFFFF
        self.stats.on_packet_sent(len(payload), ts, now)
        return [data]

    def packets(self, n: int, pcm: Pcm16 | None, now: float) -> list[RtpPacket]:
        """The packets to send for tick ``n`` (normally one; ``pcm`` None = silence)."""
        dtmf = self._dtmf
        if self._digits and not dtmf and n > self._dtmf_until:
            self._schedule_dtmf(n)
        if dtmf:
            events = dtmf.pop(n, None)
            for stale in [k for k in dtmf if k < n]:
                del dtmf[stale]  # ticks the clock skipped after a stall
            if events is not None:
                for packet in events:
                    self.stats.on_packet_sent(len(packet.payload), packet.timestamp, now)
                return events
            if dtmf:
                return []  # the digit is still playing: no audio in between
        # In the gap after a digit audio (usually silence) flows again: the gap only keeps
        # the next digit's start a distinct event for receivers that merge close ones.
        if pcm is None:
            payload = self._silence
        else:
            if pcm.shape[0] != self._pcm_samples:
                raise ValueError(f"expected {self._pcm_samples} samples, got {pcm.shape[0]}")
            payload = self.encoder.encode(self._resampler.process(pcm))
        ts = self.timestamp(n)
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence_number=self.sequence,
            timestamp=ts,
            ssrc=self.ssrc,
            marker=self._first,
            payload=payload,
        )
        self._first = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.stats.on_packet_sent(len(payload), ts, now)
        return [packet]
