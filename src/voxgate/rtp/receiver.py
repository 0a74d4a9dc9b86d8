"""RTP audio in, one 20 ms :class:`AudioFrame` per playout tick out.

The receive half of a media path, sans-I/O: an edge calls :meth:`RtpAudioReceiver.push` for
every datagram with its arrival time and :meth:`RtpAudioReceiver.pull` on its playout clock.
Whatever the network did, ``pull`` returns exactly one frame of ``frame_ms`` at ``out_rate``:

* a decoded packet;
* a concealed one: ``decoder.conceal`` with the next payload when it is already buffered (so
  Opus can use in-band FEC), the codec's own PLC otherwise, and digital silence once a loss
  runs past ``max_conceal_ms`` (PLC that repeats a period for long sounds robotic);
* silence before the first packet, during DTX and after the sender stops.

Packets whose payload type has no decoder (RFC 4733 telephone-events, RFC 3389 comfort noise)
still go through the jitter buffer, because they share the stream's sequence space and would
otherwise look like losses; they play as silence and are handed to ``on_other`` (DTMF is
decoded elsewhere).

When the decoder's rate differs from ``out_rate`` a :class:`StreamResampler` converts, and a
small FIFO cuts its output into frames. The default quality is soxr "QQ": at "LQ" and above
libsoxr emits 8 kHz -> 16 kHz output in 60-100 ms bursts, which would add more delay than
the jitter buffer itself; for upsampling telephone audio the cubic filter is adequate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from voxgate.audio.codec import Decoder
from voxgate.audio.frame import FRAME_MS, AudioFrame, Pcm16
from voxgate.audio.resample import Quality, StreamResampler
from voxgate.errors import ParseError
from voxgate.rtp.jitterbuffer import JitterBuffer, JitterKind, JitterResult, JitterStats
from voxgate.rtp.packet import RtpPacket

__all__ = ["AudioReceiverStats", "RtpAudioReceiver"]

_STATIC_PT = {"pcmu": 0, "pcma": 8, "g722": 9}
_QUIET_PEAK_TO_PEAK = 1300
"""Below this (about -34 dBFS peak) a frame counts as quiet: dropping or repeating it is not
heard, so the jitter buffer saves its delay adjustments for such frames."""
_PLAY = JitterKind.PLAY
_LOSS = JitterKind.LOSS
_SILENCE = JitterKind.SILENCE
_new_frame = object.__new__


class AudioReceiverStats:
    """Receiver counters plus the jitter buffer's; a plain object read by metrics."""

    __slots__ = ("decode_errors", "frames", "jitter", "malformed", "other_packets")

    def __init__(
        self, frames: int, malformed: int, other: int, decode_errors: int, jitter: JitterStats
    ) -> None:
        self.frames = frames
        self.malformed = malformed
        self.other_packets = other
        self.decode_errors = decode_errors
        self.jitter = jitter


class RtpAudioReceiver:
    """Jitter buffer + decoder + concealment + resampler for one incoming RTP audio stream.

    ``decoders`` maps payload types to decoders (all sharing one RTP clock rate); a single
    decoder is accepted for the static payload types of PCMU/PCMA/G.722 or with
    ``payload_type``. The delay, ``quantile`` and ``margin_ms`` parameters go to the
    :class:`JitterBuffer`.
    """

    __slots__ = (
        "_arrival", "_buffered", "_chunks", "_concealed_run", "_credit", "_decode_errors",
        "_decoders", "_default", "_frame_out", "_last_decoder", "_malformed", "_max_conceal",
        "_on_other", "_other", "_quality", "_quiet", "_resamplers", "_sequence", "_stamp",
        "clock_rate", "frame_ms", "jitter", "out_rate",
    )

    def __init__(
        self,
        decoders: Decoder | Mapping[int, Decoder],
        out_rate: int,
        *,
        payload_type: int | None = None,
        frame_ms: int = FRAME_MS,
        min_delay_ms: float = 20.0,
        max_delay_ms: float = 200.0,
        initial_delay_ms: float = 40.0,
        max_conceal_ms: float = 100.0,
        resample_quality: Quality = "QQ",
        on_other: Callable[[RtpPacket, float], None] | None = None,
        stamp: bool = True,
        quantile: float = 0.99,
        margin_ms: float = 5.0,
    ) -> None:
        if isinstance(decoders, Mapping):
            table = dict(decoders)
        else:
            pt = payload_type if payload_type is not None else _STATIC_PT.get(decoders.name.lower())
            if pt is None:
                raise ValueError(f"{decoders.name} has no static payload type: pass payload_type")
            table = {pt: decoders}
        if not table:
            raise ValueError("need at least one decoder")
        clocks = {d.clock_rate for d in table.values()}
        if len(clocks) != 1:
            raise ValueError(f"decoders of one stream must share an RTP clock, got {clocks}")
        self._decoders = table
        self._default = next(iter(table.values()))
        self._last_decoder = self._default
        clock = clocks.pop()
        self.clock_rate = clock
        self.out_rate = out_rate
        self.frame_ms = frame_ms
        self._frame_out = out_rate * frame_ms // 1000
        self.jitter = JitterBuffer(
            clock,
            clock * frame_ms // 1000,
            min_delay_ms,
            max_delay_ms,
            initial_delay_ms,
            quantile=quantile,
            margin_ms=margin_ms,
        )
        self._quality: Quality = resample_quality
        self._resamplers: dict[int, StreamResampler] = {}
        self._max_conceal = max_conceal_ms / 1000.0
        self._on_other = on_other
        self._stamp = stamp
        self._chunks: list[Pcm16] = []
        self._buffered = 0  # output-rate samples in _chunks
        self._credit = 0.0  # output-rate samples in _chunks plus inside the resampler
        self._concealed_run = 0.0  # seconds of consecutive concealment
        self._quiet = False
        self._arrival = math.nan
        self._sequence = 0
        self._malformed = 0
        self._other = 0
        self._decode_errors = 0

    # -- input -----------------------------------------------------------------------------

    def push(self, data: bytes | RtpPacket, arrival: float) -> None:
        """Take one datagram (or an already parsed packet); malformed ones are counted."""
        if isinstance(data, RtpPacket):
            packet = data
        else:
            try:
                packet = RtpPacket.parse(data)
            except ParseError:
                self._malformed += 1
                return
        if packet.payload_type not in self._decoders:
            self._other += 1
            if self._on_other is not None:
                self._on_other(packet, arrival)
        self.jitter.push(packet, arrival)

    # -- output ----------------------------------------------------------------------------

    def pull(self, now: float) -> AudioFrame:
        """The frame to play at the tick ``now``: always ``frame_ms`` at ``out_rate``."""
        n = self._frame_out
        out_rate = self.out_rate
        samples = None
        while self._credit < n:
            pcm, rate = self._next_pcm(now)
            if rate == out_rate:
                out = pcm
                gained = float(pcm.shape[0])
            else:
                rs = self._resamplers.get(rate)
                if rs is None:
                    rs = self._resamplers[rate] = StreamResampler(rate, out_rate, self._quality)
                out = rs.process(pcm)
                gained = pcm.shape[0] * out_rate / rate
            got = out.shape[0]
            if got == n and gained == n and not self._buffered and self._credit == 0.0:
                samples = out  # the steady state: one packet in, exactly one frame out
                break
            if got:
                self._chunks.append(out)
                self._buffered += got
            self._credit += gained
        else:
            self._credit -= n
            chunks = self._chunks
            if len(chunks) == 1 and self._buffered == n:
                samples = chunks[0]
                chunks.clear()
                self._buffered = 0
            else:
                samples = self._take(n)
        frame: AudioFrame = _new_frame(AudioFrame)
        # Filled directly: the samples are ours and known valid, and __post_init__'s checks
        # are a measurable share of a 20 ms frame's budget.
        frame.samples = samples
        frame.sample_rate = self.out_rate
        frame.timestamp = self._arrival if self._arrival == self._arrival else now
        frame.sequence = self._sequence
        self._sequence += 1
        frame.stamps = {"rtp_arrival": frame.timestamp, "jitter_out": now} if self._stamp else None
        return frame

    def _take(self, n: int) -> Pcm16:
        """First ``n`` buffered samples, zero-padded at the front if the FIFO runs short.

        Short only while a resampler is filling up at the start of a stream: the padding then
        becomes a constant latency of the resampler's delay, not a gap in the middle.
        """
        chunks = self._chunks
        have = self._buffered
        joined = np.concatenate(chunks) if len(chunks) > 1 else chunks[0] if chunks else None
        if joined is None or have < n:
            pad = np.zeros(n - have, dtype=np.int16)
            out = pad if joined is None else np.concatenate((pad, joined))
            chunks.clear()
            self._buffered = 0
            return out
        out = joined[:n]
        rest = joined[n:]
        chunks.clear()
        if rest.shape[0]:
            chunks.append(rest)
        self._buffered = have - n
        return out

    def _next_pcm(self, now: float) -> tuple[Pcm16, int]:
        """One jitter buffer decision turned into PCM at the deciding decoder's rate."""
        jb = self.jitter
        r = jb.pop(now, self._quiet)
        kind = r[0]
        if kind is _PLAY:
            pcm, dec = self._decode(r)
            if jb.adjusting:
                quiet = int(pcm.max()) - int(pcm.min()) < _QUIET_PEAK_TO_PEAK
                if quiet and (r2 := jb.compress(now)) is not None:
                    # Above target delay and this frame is near silence: skip it, unheard
                    # (decoded all the same, so the codec's state stays continuous).
                    pcm, dec = self._decode(r2)
                    quiet = int(pcm.max()) - int(pcm.min()) < _QUIET_PEAK_TO_PEAK
                self._quiet = quiet
            return pcm, dec.sample_rate
        dec = self._last_decoder
        if kind is _SILENCE:
            self._quiet = True
            return self._zeros(dec, r[4]), dec.sample_rate
        nxt = r[2] if kind is _LOSS else None
        pcm = self._conceal(dec, r[4], nxt.payload if nxt is not None else None)
        if jb.adjusting:
            self._quiet = int(pcm.max()) - int(pcm.min()) < _QUIET_PEAK_TO_PEAK
        return pcm, dec.sample_rate

    def _decode(self, r: JitterResult) -> tuple[Pcm16, Decoder]:
        packet = r[1]
        assert packet is not None
        self._arrival = r[3]
        dec = self._decoders.get(packet.payload_type)
        if dec is None:
            # Telephone-event or comfort noise: its time passes as silence.
            dec = self._last_decoder
            return self._zeros(dec, r[4]), dec
        self._last_decoder = dec
        try:
            pcm = dec.decode(packet.payload)
        except ParseError:
            self._decode_errors += 1
            return self._conceal(dec, r[4], None), dec
        self._concealed_run = 0.0
        return pcm, dec

    def _conceal(self, dec: Decoder, duration: int, next_payload: bytes | None) -> Pcm16:
        seconds = duration / self.clock_rate
        self._concealed_run += seconds
        if self._concealed_run > self._max_conceal:
            return self._zeros(dec, duration)
        n = round(seconds * dec.sample_rate)
        try:
            return dec.conceal(n, next_payload)
        except (ParseError, ValueError):
            self._decode_errors += 1
            return self._zeros(dec, duration)

    def _zeros(self, dec: Decoder, duration: int) -> Pcm16:
        return np.zeros(duration * dec.sample_rate // self.clock_rate, dtype=np.int16)

    # -- observability ---------------------------------------------------------------------

    @property
    def stats(self) -> AudioReceiverStats:
        return AudioReceiverStats(
            self._sequence, self._malformed, self._other, self._decode_errors, self.jitter.stats
        )
