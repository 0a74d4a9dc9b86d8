"""Adaptive audio jitter buffer: RTP packets in, one playout decision per frame tick out.

Sans-I/O like the rest of the core: :meth:`JitterBuffer.push` takes the packet and the time it
arrived, :meth:`JitterBuffer.pop` takes the time of the playout tick; the buffer never reads a
clock, so traces replay deterministically in tests and benchmarks.

How it decides (a small relative of WebRTC NetEq, without the DSP, which the receiver does):

* **Where to play from.** Every packet's relative transit ``arrival - ts/clock`` is compared
  with the smallest transit seen over the last 2-4 s (the *base*: the packet that met no
  queueing). The difference is the packet's *lateness*. The delay we play at is measured the
  same way: ``now - ts_playing/clock - base``, so "delay" means "how much later than the
  fastest possible packet we are playing", independent of the path's fixed latency.
* **How much delay to aim for.** Lateness goes into a histogram with exponential forgetting;
  the target delay is a high quantile of it (default 99 %) plus a small margin, clamped to
  ``[min_delay_ms, max_delay_ms]``. Forgetting per packet makes the target grow within a few
  late packets but shrink only over ~10 s: jitter comes in bursts, and shrinking too eagerly
  converts the next burst into losses.
* **How the delay follows the target.** Within a talkspurt the playout clock advances one
  packet per tick; the buffer then *stretches* (holds one tick, the receiver conceals) or
  *drops* a frame, preferably where it is inaudible: a stretch follows a frame the caller
  reports as quiet, and a drop discards a frame the caller decoded and found quiet
  (:meth:`JitterBuffer.compress`; dropping a frame unseen risks cutting a word's onset),
  and unseen only by force, far outside the band or after long without a quiet frame. A starved buffer holds too (an underrun), which
  is the fast way the delay grows. After silence (DTX, a new talkspurt, a resync) the first
  packet is simply scheduled at ``ts/clock + base + target``, which adapts for free.
* **Loss versus silence.** Sequence numbers decide: a missing sequence number whose
  successor is buffered is a loss to conceal; a timestamp gap between consecutive sequence
  numbers (DTX, marker bit) is silence; an empty buffer is an underrun for a few ticks and
  then silence.

Storage is a ring indexed by extended sequence number modulo a power-of-two capacity, so
push and pop are O(1) except for rare resyncs, and memory is bounded by the capacity.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["JitterBuffer", "JitterKind", "JitterResult", "JitterStats", "RtpLike"]


class RtpLike(Protocol):
    """The fields the buffer reads; :class:`voxgate.rtp.packet.RtpPacket` has them all."""

    @property
    def payload_type(self) -> int: ...
    @property
    def sequence_number(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def ssrc(self) -> int: ...
    @property
    def marker(self) -> bool: ...
    @property
    def payload(self) -> bytes: ...


class JitterKind(enum.IntEnum):
    """What the receiver should produce for one tick."""

    PLAY = 0
    """Decode ``packet``."""
    LOSS = 1
    """A packet is missing: conceal it; ``next_packet`` is its successor if buffered (FEC)."""
    UNDERRUN = 2
    """Mid-talkspurt and nothing has arrived yet: conceal, the playout clock is held."""
    STRETCH = 3
    """The buffer is growing its delay by one frame: conceal, nothing is missing."""
    SILENCE = 4
    """No talkspurt in progress (DTX, before the first packet): comfort silence."""


class JitterResult(NamedTuple):
    """One tick's decision. A tuple: built once per 20 ms per stream, so it must be cheap."""

    kind: JitterKind
    packet: RtpLike | None = None
    """The packet to decode (``PLAY``)."""
    next_packet: RtpLike | None = None
    """For ``LOSS``: the packet right after the lost one, when already buffered."""
    arrival: float = math.nan
    """When ``packet`` arrived (``PLAY``), for latency attribution."""
    duration: int = 0
    """RTP clock ticks this result covers (the packet's duration, or one expected frame)."""


@dataclass(frozen=True, slots=True)
class JitterStats:
    """A snapshot of counters; take one per RTCP report or metrics scrape, not per frame."""

    delay_ms: float
    """Delay of the last played frame above the fastest packet's path."""
    target_delay_ms: float
    jitter_ms: float
    """RFC 3550 interarrival jitter estimate, for RTCP receiver reports."""
    received: int
    played: int
    lost: int
    """Sequence numbers never received in time (concealed or skipped during silence)."""
    late_drops: int
    duplicates: int
    underruns: int
    concealed_ms: float
    """Audio the receiver had to invent: losses, underruns and stretches."""
    dropped_frames: int
    """Frames discarded to shrink the delay: time compression, or catching up past the
    maximum delay after a stall."""
    stretched_frames: int
    silence_frames: int
    overflow_drops: int
    resets: int
    """Stream restarts: SSRC change, sequence jump."""
    buffered: int
    """Packets waiting in the buffer now."""


_new_result = tuple.__new__
"""Builds a :class:`JitterResult` without the generated ``__new__``'s argument binding."""
_NO_SEQ = -(1 << 62)
_SEQ_ORIGIN = 1 << 20
"""Extended sequence numbers start here, so backward unwraps never go negative."""
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
"""RFC 3550 appendix A.1: jumps beyond these restart the sequence after two in a row."""
_BASE_BLOCK_S = 2.0
_TIMELINE_JUMP_AHEAD_S = 1.0
_TIMELINE_JUMP_BEHIND_S = 3.0
_BUCKET_MS = 2.0
_PER_SECOND = 1000.0 / _BUCKET_MS
"""Histogram buckets per second of lateness."""
_PRIOR = 5.0
_FORGET = 0.995
"""Histogram forgetting per packet: ~4 s memory at 20 ms; a 1 % tail takes ~18 s to decay."""
_GROW = 1.0 / _FORGET


class JitterBuffer:
    """Reorders RTP audio packets and paces them out at one frame per :meth:`pop` call.

    ``samples_per_frame`` is the expected packet duration in RTP clock ticks (160 for 20 ms
    of PCMU); the buffer learns the real one from consecutive packets. Delays are in
    milliseconds; ``quantile`` and ``margin_ms`` set how much lateness the target covers.
    """

    __slots__ = (
        "_active", "_arr", "_bad_seq", "_base", "_base_cur", "_base_prev", "_block_start",
        "_concealed", "_count", "_delay", "_dropped", "_dups", "_frame_ts", "_hangover",
        "_high_raw_ts", "_highest", "_hist", "_hist_w", "_inv_clock", "_jitter", "_late", "_lost",
        "_margin", "_mask", "_max_delay", "_min_delay", "_nbuckets", "_next", "_overflow",
        "_pending_underruns", "_pkts", "_play_ts", "_played", "_prev_ssrc", "_prev_transit",
        "_quantile", "_r_silence", "_r_stretch", "_r_underrun", "_received", "_resets", "_seen",
        "_silence", "_since_adjust", "_since_target", "_spf", "_ssrc", "_step_candidate",
        "_stretched", "_target", "_ts", "_ts_offset", "_underrun_run", "_underruns", "capacity",
        "clock_rate",
    )

    def __init__(
        self,
        clock_rate: int,
        samples_per_frame: int,
        min_delay_ms: float = 20.0,
        max_delay_ms: float = 200.0,
        initial_delay_ms: float = 40.0,
        *,
        quantile: float = 0.99,
        margin_ms: float = 5.0,
        capacity: int | None = None,
        underrun_hangover: int = 4,
    ) -> None:
        if clock_rate <= 0 or samples_per_frame <= 0:
            raise ValueError("clock_rate and samples_per_frame must be positive")
        if not 0 <= min_delay_ms <= max_delay_ms:
            raise ValueError(f"need 0 <= min_delay_ms ({min_delay_ms}) <= max_delay_ms")
        if not 0.5 <= quantile < 1.0:
            raise ValueError(f"quantile {quantile} must be in [0.5, 1)")
        self.clock_rate = clock_rate
        self._inv_clock = 1.0 / clock_rate
        self._spf = samples_per_frame
        self._set_frame_ts(samples_per_frame)
        self._step_candidate = 0
        self._min_delay = min_delay_ms / 1000.0
        self._max_delay = max_delay_ms / 1000.0
        self._quantile = quantile
        self._margin = margin_ms / 1000.0
        self._hangover = underrun_hangover
        frame_ms = 1000.0 * samples_per_frame / clock_rate
        if capacity is None:
            need = 2 * math.ceil(max_delay_ms / frame_ms) + 16
            capacity = 32
            while capacity < need:
                capacity *= 2
        if capacity < 4 or capacity & (capacity - 1):
            raise ValueError(f"capacity {capacity} must be a power of two >= 4")
        self.capacity = capacity
        self._mask = capacity - 1
        self._pkts: list[RtpLike | None] = [None] * capacity
        self._seen: list[int] = [_NO_SEQ] * capacity
        self._ts: list[int] = [0] * capacity
        self._arr: list[float] = [0.0] * capacity
        self._nbuckets = int(max_delay_ms / _BUCKET_MS) + 2
        self._hist: list[float] = [0.0] * self._nbuckets
        self._hist_w = 1.0
        # A prior at the initial delay, worth ~5 packets: the first ~5 s of a call keep
        # the configured delay unless lateness says more is needed.
        self._hist[min(int(initial_delay_ms / _BUCKET_MS), self._nbuckets - 1)] = _PRIOR
        self._target = min(max(initial_delay_ms / 1000.0, self._min_delay), self._max_delay)
        self._since_target = 0
        self._jitter = 0.0
        self._prev_transit = math.nan
        self._delay = 0.0
        self._ssrc: int | None = None
        self._prev_ssrc: int | None = None
        self._reset_stream()
        self._received = self._played = self._lost = self._late = self._dups = 0
        self._underruns = self._dropped = self._stretched = self._silence = 0
        self._overflow = self._resets = self._concealed = 0
        self._pending_underruns = 0

    def _set_frame_ts(self, frame_ts: int) -> None:
        """Packet duration changed: rebuild the shared packet-less results for it."""
        self._frame_ts = frame_ts
        self._r_underrun = JitterResult(JitterKind.UNDERRUN, None, None, math.nan, frame_ts)
        self._r_stretch = JitterResult(JitterKind.STRETCH, None, None, math.nan, frame_ts)
        self._r_silence = JitterResult(JitterKind.SILENCE, None, None, math.nan, frame_ts)

    # -- stream state ----------------------------------------------------------------------

    def _reset_stream(self) -> None:
        """Forget the current sequence/timestamp space (new source or a restart).

        The lateness histogram and target survive: the network path is the same one.
        """
        if getattr(self, "_count", 0):
            self._pkts = [None] * self.capacity
        self._seen = [_NO_SEQ] * self.capacity
        self._count = 0
        self._highest = _NO_SEQ
        self._high_raw_ts = 0
        self._ts_offset = 0
        self._next = _NO_SEQ
        self._play_ts = 0
        self._active = False
        self._underrun_run = 0
        self._since_adjust = 0
        self._bad_seq = -1
        self._base_cur = math.inf
        self._base_prev = math.inf
        self._base = math.inf
        self._block_start = -math.inf
        self._prev_transit = math.nan

    def _restart(self, ssrc: int) -> None:
        if self._ssrc is not None:
            self._resets += 1
        self._overflow += self._count
        self._prev_ssrc = self._ssrc if ssrc != self._ssrc else self._prev_ssrc
        self._ssrc = ssrc
        self._reset_stream()

    # -- input -----------------------------------------------------------------------------

    def push(self, packet: RtpLike, arrival: float) -> None:
        """Buffer one packet that arrived at ``arrival`` (seconds, any monotonic origin).

        Duplicates and packets whose turn has passed are counted and dropped; packets from a
        new SSRC restart the stream (a stray packet of the previous SSRC is dropped as late).
        """
        self._received += 1
        ssrc = packet.ssrc
        if ssrc != self._ssrc:
            if ssrc == self._prev_ssrc and self._ssrc is not None:
                self._late += 1
                return
            self._restart(ssrc)
        seq = packet.sequence_number
        highest = self._highest
        if highest == _NO_SEQ:
            ext = _SEQ_ORIGIN + seq
            d = 0
            self._next = ext
            self._highest = highest = ext
            self._high_raw_ts = packet.timestamp
        else:
            d = (seq - highest) & 0xFFFF
            if d >= 0x8000:
                d -= 0x10000
            ext = highest + d
        rel = ext - self._next
        if rel < 0 or rel >= self.capacity:
            if d > _MAX_DROPOUT or d < -_MAX_MISORDER:
                # RFC 3550 A.1: a big jump is believed once the packet after it follows.
                if seq != self._bad_seq:
                    self._bad_seq = (seq + 1) & 0xFFFF
                    self._late += 1
                    return
                self._restart(ssrc)
                self.push(packet, arrival)
                self._received -= 1
                return
            if rel < 0:
                if self._seen[ext & self._mask] == ext:
                    self._dups += 1
                else:
                    self._late += 1
                return
            self._make_room(ext)
        mask = self._mask
        slot = ext & mask
        if self._seen[slot] == ext:
            self._dups += 1
            return
        # Unwrap the 32-bit timestamp against the highest packet's, then map it into our
        # continuous internal timeline (``_ts_offset`` absorbs sender timeline jumps).
        dts = (packet.timestamp - self._high_raw_ts) & 0xFFFFFFFF
        if dts >= 0x80000000:
            dts -= 0x100000000
        raw_ext = self._high_raw_ts + dts
        ts = raw_ext + self._ts_offset
        transit = arrival - ts * self._inv_clock
        base = self._base
        if base != math.inf and (
            transit < base - _TIMELINE_JUMP_AHEAD_S or transit > base + _TIMELINE_JUMP_BEHIND_S
        ):
            # The sender's timestamps jumped (not a DTX gap, which keeps transit steady):
            # shift our timeline so this packet looks on time, and carry on.
            shift = round((arrival - base) * self.clock_rate) - ts
            self._ts_offset += shift
            ts += shift
            transit = arrival - ts * self._inv_clock
        if ext > highest:
            if ext == highest + 1 and not packet.marker:
                step = ts - (self._high_raw_ts + self._ts_offset)
                if step != self._frame_ts and 0 < step <= 8 * self._spf:
                    # Believe a new packet duration only once two steps agree.
                    if step == self._step_candidate:
                        self._set_frame_ts(step)
                    else:
                        self._step_candidate = step
            self._highest = ext
            self._high_raw_ts = raw_ext
        self._pkts[slot] = packet
        self._seen[slot] = ext
        self._ts[slot] = ts
        self._arr[slot] = arrival
        self._count += 1
        # Lateness bookkeeping, inline (this runs for every packet): base transit as the
        # minimum over the current and previous 2 s block, RFC 3550 jitter, histogram.
        if arrival - self._block_start >= _BASE_BLOCK_S:
            self._base_prev = self._base_cur
            self._base_cur = transit
            self._block_start = arrival
        elif transit < self._base_cur:
            self._base_cur = transit
        base = self._base_cur if self._base_cur < self._base_prev else self._base_prev
        self._base = base
        prev = self._prev_transit
        self._prev_transit = transit
        if prev == prev:  # not NaN
            dd = transit - prev
            self._jitter += ((dd if dd >= 0.0 else -dd) - self._jitter) * 0.0625
        late = transit - base
        i = int(late * _PER_SECOND)
        if i >= self._nbuckets:
            i = self._nbuckets - 1
        # Forgetting by growing the weight of new samples instead of decaying old ones.
        w = self._hist_w
        self._hist[i] += w
        w *= _GROW
        if w > 1e12:
            self._hist = [h / w for h in self._hist]
            w = 1.0
        self._hist_w = w
        self._since_target += 1
        if late > self._target or self._since_target >= 16:
            self._update_target()

    def _make_room(self, ext: int) -> None:
        """A packet is a whole capacity ahead: skip the oldest sequence numbers for it."""
        new_next = ext - self.capacity + 1
        pkts = self._pkts
        mask = self._mask
        for e in range(self._next, new_next):
            slot = e & mask
            if pkts[slot] is not None:
                pkts[slot] = None
                self._count -= 1
                self._overflow += 1
            else:
                self._lost += 1
        self._next = new_next
        self._active = False

    def _update_target(self) -> None:
        """Target = lateness quantile + margin, clamped; scanned from the top (short tail)."""
        self._since_target = 0
        hist = self._hist
        tail = (1.0 - self._quantile) * sum(hist)
        acc = 0.0
        i = self._nbuckets - 1
        while i > 0:
            acc += hist[i]
            if acc > tail:
                break
            i -= 1
        t = (i + 1) * _BUCKET_MS / 1000.0 + self._margin
        self._target = self._min_delay if t < self._min_delay else min(t, self._max_delay)

    # -- output ----------------------------------------------------------------------------

    @property
    def adjusting(self) -> bool:
        """True when the delay is outside its band and a quiet frame would be used to adjust.

        Lets the receiver skip measuring frame loudness when the answer cannot matter.
        """
        err = self._delay - self._target
        f = self._frame_ts * self._inv_clock
        return self._active and (err < -0.25 * f or err >= 1.25 * f)

    def pop(self, now: float, quiet: bool = False) -> JitterResult:
        """Decide what plays at the tick ``now``; call once per frame duration.

        ``quiet`` says the previously played frame was near silence, so stretching (a
        concealed frame inserted to grow the delay) would not be heard now.
        """
        if self._count == 0:
            if self._active and self._underrun_run < self._hangover:
                self._underrun_run += 1
                self._underruns += 1
                self._pending_underruns += 1
                self._concealed += self._frame_ts
                return self._r_underrun
            self._active = False
            self._silence += 1
            return self._r_silence
        mask = self._mask
        nxt = self._next
        slot = nxt & mask
        pkt = self._pkts[slot]
        if self._active:
            if pkt is not None:
                if self._ts[slot] <= self._play_ts + (self._frame_ts >> 1):
                    return self._play(slot, now, quiet)
                # Consecutive sequence numbers, a timestamp gap: the sender paused (DTX);
                # the next talkspurt is scheduled afresh below.
                self._active = False
            else:
                if self._underrun_run:
                    # We held (concealing) waiting for this packet, and its successor came
                    # instead: those held ticks were this loss's concealment. Skip it and
                    # decide again, so the timeline does not slip a frame per loss.
                    self._underrun_run -= 1
                    self._underruns -= 1
                    if self._pending_underruns:
                        self._pending_underruns -= 1
                    self._lost += 1
                    self._next = nxt + 1
                    self._play_ts += self._frame_ts
                    return JitterBuffer.pop(self, now, quiet)  # at most hangover deep
                self._lost += 1
                self._next = nxt + 1
                self._play_ts += self._frame_ts
                self._concealed += self._frame_ts
                self._pending_underruns = 0
                return _new_result(
                    JitterResult,
                    (JitterKind.LOSS, None, self._pkts[(nxt + 1) & mask], math.nan, self._frame_ts),
                )
        # No talkspurt in progress: play the first buffered packet once it is due.
        e = nxt
        while pkt is None:
            e += 1
            slot = e & mask
            pkt = self._pkts[slot]
        ts = self._ts[slot]
        if ts * self._inv_clock + self._base + self._target > now:
            self._silence += 1
            return self._r_silence
        if self._pending_underruns and e == nxt and ts > self._play_ts + (self._frame_ts >> 1):
            # The starvation before this gap was the sender going quiet (DTX), not the
            # network: count those ticks as silence after all.
            n = self._pending_underruns
            self._underruns -= n
            self._silence += n
            self._concealed -= n * self._frame_ts
        self._lost += e - nxt  # lost while nothing was playing: nothing to conceal
        self._next = e
        self._active = True
        self._play_ts = ts
        return self._play(slot, now, quiet, adjust=False)

    def compress(self, now: float) -> JitterResult | None:
        """Drop the frame just played, because the caller decoded it and found it quiet.

        If the delay is above its band and the next packet is here and contiguous, the frame
        returned by the last :meth:`pop` is counted as dropped instead of played and the next
        packet's ``PLAY`` result is returned to be played in its place, shrinking the delay
        by one frame where nobody hears it. Otherwise returns ``None`` and nothing changes.
        """
        f = self._frame_ts * self._inv_clock
        if not self._active or self._count == 0 or self._delay - self._target < 1.25 * f:
            return None
        slot = self._next & self._mask
        if self._pkts[slot] is None or self._ts[slot] > self._play_ts + (self._frame_ts >> 1):
            return None
        self._played -= 1
        self._dropped += 1
        self._since_adjust = 0
        return self._play(slot, now, False, adjust=False)

    def _play(self, slot: int, now: float, quiet: bool, adjust: bool = True) -> JitterResult:
        pkts = self._pkts
        ts = self._ts[slot]
        delay = now - ts * self._inv_clock - self._base
        self._since_adjust += 1
        if adjust:
            err = delay - self._target
            f = self._frame_ts * self._inv_clock
            if err >= 1.25 * f:
                # Normally the caller shrinks the delay through compress() on a quiet frame;
                # without those (a continuous tone, hold music, no pause for seconds), or far
                # past the maximum after a stall, drop unseen.
                forced = (
                    delay > self._max_delay + f
                    or (err >= 2.0 * f and self._since_adjust >= 100)
                    or self._since_adjust >= 500
                )
                if forced:
                    # Drop frames while the following one is here and contiguous.
                    mask = self._mask
                    while True:
                        nslot = (self._next + 1) & mask
                        npkt = pkts[nslot]
                        if npkt is None or self._ts[nslot] > ts + self._frame_ts + (
                            self._frame_ts >> 1
                        ):
                            break
                        pkts[slot] = None
                        self._count -= 1
                        self._next += 1
                        self._dropped += 1
                        slot = nslot
                        ts = self._ts[slot]
                        delay = now - ts * self._inv_clock - self._base
                        self._since_adjust = 0
                        if delay <= self._max_delay + f:
                            break
            elif err < -0.25 * f and (quiet or err < -2.0 * f):
                self._stretched += 1
                self._since_adjust = 0
                self._concealed += self._frame_ts
                self._delay = delay + f
                return self._r_stretch
        pkt = pkts[slot]
        pkts[slot] = None
        self._count -= 1
        self._next += 1
        self._play_ts = ts + self._frame_ts
        self._underrun_run = 0
        self._pending_underruns = 0
        self._played += 1
        self._delay = delay
        return _new_result(
            JitterResult, (JitterKind.PLAY, pkt, None, self._arr[slot], self._frame_ts)
        )

    # -- observability ---------------------------------------------------------------------

    @property
    def delay_ms(self) -> float:
        return self._delay * 1000.0

    @property
    def target_delay_ms(self) -> float:
        return self._target * 1000.0

    @property
    def stats(self) -> JitterStats:
        return JitterStats(
            delay_ms=self._delay * 1000.0,
            target_delay_ms=self._target * 1000.0,
            jitter_ms=self._jitter * 1000.0,
            received=self._received,
            played=self._played,
            lost=self._lost,
            late_drops=self._late,
            duplicates=self._dups,
            underruns=self._underruns,
            concealed_ms=self._concealed * 1000.0 * self._inv_clock,
            dropped_frames=self._dropped,
            stretched_frames=self._stretched,
            silence_frames=self._silence,
            overflow_drops=self._overflow,
            resets=self._resets,
            buffered=self._count,
        )
