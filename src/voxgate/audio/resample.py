"""Streaming sample-rate conversion between the rates of edges, codecs and models.

A call resamples frame by frame (8 kHz phone audio to 16 kHz for STT, 22.05/24 kHz TTS to
8 kHz for the phone), so the converter must keep its filter state across frames: resampling
each 20 ms frame on its own restarts the filter every frame and clicks at every border.

Why not soxr (the design's choice) on the real-time path: libsoxr filters in blocks, so at
"LQ" and above its output comes in bursts (measured with soxr 1.1, 20 ms int16 frames,
8k->16k "HQ": nothing for five frames, then 1,660 samples every fifth frame), i.e. up to
~100 ms of added, uneven latency; only its "QQ" streams smoothly, and that is cubic
interpolation without an anti-alias filter. Latency is the product, so the default path here
is a rational polyphase FIR written for streaming:

* ratio ``L/M = out/in`` reduced by their gcd; one Kaiser-windowed-sinc prototype per
  (in, out, quality), designed once and cached for the process;
* stopband edge at ``min(in, out) / 2`` (nothing folds back into the band, no image leaks
  out) and the transition band set by a *latency budget*: the prototype is exactly as long
  as the group delay allows, and the Kaiser length formula picks the narrowest transition
  that still meets the stopband target. Default "HQ": >= 60 dB stopband, group delay
  <= 2 ms at 8 kHz (<= 1 ms when the lower rate is 16 kHz), -3 dB at 0.43 x the lower
  rate (3.4 kHz at 8 kHz);
* each ``process`` call returns exactly the output samples whose time falls inside the
  input received so far (a fractional phase is carried between calls), so 160 samples in at
  8k->16k give 320 out on every call, from the first one: no priming, no bursts.

``quality="soxr-hq"`` (and "soxr-qq" ... "soxr-vhq") keeps libsoxr for offline work where a
longer, sharper filter matters more than latency; its output is bursty as described above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from voxgate.audio.frame import Pcm16

Quality = Literal[
    "QQ", "LQ", "MQ", "HQ", "VHQ", "soxr-qq", "soxr-lq", "soxr-mq", "soxr-hq", "soxr-vhq"
]

_F32 = npt.NDArray[np.float32]

# quality -> (stopband attenuation in dB, half-length of the prototype in samples of the
# lower rate, i.e. the group delay: 16 samples is 2 ms at 8 kHz, 1 ms at 16 kHz).
_FIR_QUALITY: dict[str, tuple[float, int]] = {
    "QQ": (40.0, 8),
    "LQ": (50.0, 12),
    "MQ": (55.0, 14),
    "HQ": (60.0, 16),
    "VHQ": (80.0, 40),
}
# The Kaiser length formula is an approximation (off by up to ~1 dB either way across
# ratios); designing 3 dB above the target keeps every ratio at or above it (62-63 dB for HQ).
_MARGIN_DB = 3.0
_SOXR_QUALITY = {"soxr-qq": "QQ", "soxr-lq": "LQ", "soxr-mq": "MQ", "soxr-hq": "HQ",
                 "soxr-vhq": "VHQ"}  # fmt: skip
# Up to this many phases, one frame is a single matrix product over "cycles" of L outputs;
# above it (22050 <-> 8000 has L = 160) gathering one window per output is cheaper.
_MAX_CYCLE_PHASES = 8
_GATHER_CACHE_MAX = 1 << 17  # elements of the per-stream gather matrices worth keeping


@dataclass(frozen=True, eq=False)
class _Design:
    """A polyphase prototype, shared read-only by every stream with the same conversion."""

    up: int  # L
    down: int  # M
    taps: int  # K, taps per phase
    phases: _F32  # (L, K); row p holds h[p + (K-1-j) L] so it multiplies a forward window
    delay_s: float  # group delay of the prototype
    tail: int  # input samples (zeros) that push the group delay's worth out at the end
    _cycles: dict[int, _F32] = field(default_factory=dict)

    @property
    def cycle_rows(self) -> int:
        """Length of the input window one cycle of L outputs spans (any start phase)."""
        return self.taps + (self.up - 1) * (self.down + 1) // self.up

    def cycle_filter(self, b: int) -> _F32:
        """(rows, L) matrix turning one input window into L consecutive outputs.

        Output r of a cycle starting at phase ``b`` uses phase ``(b + r M) % L`` on a window
        shifted by ``(b + r M) // L``; placing each phase at its shift in one column makes a
        whole frame one matrix product. There are at most L start phases, cached here.
        """
        g = self._cycles.get(b)
        if g is None:
            g = np.zeros((self.cycle_rows, self.up), dtype=np.float32)
            for r in range(self.up):
                shift, p = divmod(b + r * self.down, self.up)
                g[shift : shift + self.taps, r] = self.phases[p]
            g.flags.writeable = False
            self._cycles[b] = g
        return g


@lru_cache(maxsize=64)
def _design(in_rate: int, out_rate: int, quality: str) -> _Design:
    """Kaiser-windowed sinc sized by the latency budget, then split into L phases.

    Fixing the length first (from the group-delay budget) and deriving the transition width
    from the Kaiser formula makes latency the guaranteed property and the passband edge the
    one that gives; the stopband edge stays at the lower Nyquist so aliasing never passes.
    """
    atten, half_low = _FIR_QUALITY[quality]
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    fs = in_rate * up  # rate of the (virtual) upsampled signal the prototype runs at
    f_low = min(in_rate, out_rate)
    taps = max(2, int((2 * half_low * fs / f_low + 1) // up))
    n = taps * up
    a = atten + _MARGIN_DB
    transition = (a - 7.95) * fs / (2.285 * 2 * math.pi * (n - 1))
    cutoff = (f_low / 2 - transition / 2) / fs  # cycles per sample at fs
    beta = 0.1102 * (a - 8.7) if a > 50 else 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    t = np.arange(n) - (n - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(n, beta)
    h *= up / h.sum()  # unity gain at DC after zero-stuffing by L
    phases = np.ascontiguousarray(h.reshape(taps, up).T[:, ::-1], dtype=np.float32)
    phases.flags.writeable = False
    return _Design(up, down, taps, phases, (n - 1) / 2 / fs, -(-(n - 1) // (2 * up)))


class _Engine(Protocol):
    def process(self, pcm: Pcm16) -> Pcm16: ...
    def flush(self) -> Pcm16: ...
    def reset(self) -> None: ...


class _Polyphase:
    """One stream through a :class:`_Design`: input history, phase and reusable buffers.

    ``_pos`` is the next output's position minus the stream's input length, in units of
    1/L input sample (0 <= pos < M): carrying it is what makes every call emit exactly the
    samples due. Buffers grow to the largest chunk seen and are then reused, so a steady
    stream of 20 ms frames allocates only its output array.
    """

    def __init__(self, design: _Design) -> None:
        self._d = design
        self._hist = design.taps - 1
        self._pos = 0
        self._zeros = np.zeros(design.tail, dtype=np.int16)
        self._fed = False  # anything since the last reset? (else flush has no tail to give)
        self._cycle = design.up <= _MAX_CYCLE_PHASES
        self._k = np.arange(design.taps)
        self._gather_key = (-1, -1)
        self._gather: tuple[npt.NDArray[np.intp], _F32] | None = None
        self._cap = 0
        self._buf: _F32 = np.zeros(self._hist, dtype=np.float32)
        self._grow(320)

    def _grow(self, n: int) -> None:
        d = self._d
        # Room for the history, the chunk and, for the cycle path, the windows of a last
        # partial cycle (their outputs are discarded, but they must read inside the buffer).
        cap = self._hist + n + d.cycle_rows + 2 * d.down + d.up
        buf = np.zeros(cap, dtype=np.float32)
        buf[: self._hist] = self._buf[: self._hist]
        self._buf = buf
        self._cap = n
        # Windows of every start over the whole buffer, so a frame only slices this view.
        self._windows = np.lib.stride_tricks.sliding_window_view(buf, d.cycle_rows)
        self._out = np.empty((-(-n // d.down) + 2, d.up), dtype=np.float32)

    def process(self, pcm: Pcm16) -> Pcm16:
        d = self._d
        n = pcm.shape[0]
        if n > self._cap:
            self._grow(n)
        buf, h = self._buf, self._hist
        buf[h : h + n] = pcm
        self._fed = self._fed or n > 0
        pos = self._pos
        count = max(0, -(-(d.up * n - pos) // d.down))
        if count == 0:
            y: _F32 = self._out[:0, 0]
        elif self._cycle:
            a, b = divmod(pos, d.up)
            cycles = -(-count // d.up)
            wins = self._windows[a : a + cycles * d.down : d.down]
            out = self._out[:cycles]
            np.dot(wins, d.cycle_filter(b), out=out)
            y = out.reshape(-1)[:count]
        else:
            # Steady frames repeat the same (phase, size), so the index and filter matrices
            # are built once per stream, not once per frame (kept only while small).
            if self._gather is not None and self._gather_key == (pos, n):
                idx, filters = self._gather
            else:
                start, phase = np.divmod(pos + np.arange(count) * d.down, d.up)
                idx, filters = start[:, None] + self._k, d.phases[phase]
                if count * d.taps <= _GATHER_CACHE_MAX:
                    self._gather, self._gather_key = (idx, filters), (pos, n)
            y = np.einsum("ij,ij->i", buf.take(idx), filters)
        self._pos = pos + count * d.down - d.up * n
        buf[:h] = buf[n : n + h]
        # In place (np.clip costs 4x a ufunc pair here); the int16 copy is the only allocation.
        np.minimum(y, 32767.0, out=y)
        np.maximum(y, -32768.0, out=y)
        np.rint(y, out=y)
        return y.astype(np.int16)

    def flush(self) -> Pcm16:
        # The last group delay's worth of signal is still in the filter: push zeros through.
        tail = self.process(self._zeros) if self._fed else self._zeros[:0].copy()
        self.reset()
        return tail

    def reset(self) -> None:
        self._buf[: self._hist] = 0.0
        self._pos = 0
        self._fed = False


class _Soxr:
    """libsoxr's stream, for offline uses; bursty output (see the module notes)."""

    def __init__(self, in_rate: int, out_rate: int, quality: str) -> None:
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    def process(self, pcm: Pcm16) -> Pcm16:
        out: Pcm16 = self._stream.resample_chunk(pcm)
        return out

    def flush(self) -> Pcm16:
        out: Pcm16 = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream.clear()
        return out

    def reset(self) -> None:
        self._stream.clear()


class StreamResampler:
    """Converts a stream of PCM16 chunks from ``in_rate`` to ``out_rate``, keeping state.

    With the default low-latency qualities ("QQ" ... "VHQ", default "HQ") every ``process``
    call returns exactly the samples due for the input so far: over a stream of any chunk
    sizes the total is ``ceil(len(input) * out_rate / in_rate)`` (so 20 ms in gives 20 ms
    out), delayed by the filter's group delay (<= 2 ms at 8 kHz for "HQ"). ``flush`` returns
    that delay's worth of tail at the end of the stream. "soxr-*" qualities use libsoxr
    instead (bursty, see the module notes). Equal rates pass frames through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: Quality = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"rates must be positive, got {in_rate} -> {out_rate}")
        if quality not in _FIR_QUALITY and quality not in _SOXR_QUALITY:
            raise ValueError(f"unknown resampler quality {quality!r}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = quality
        self._engine: _Engine | None = None
        if in_rate != out_rate:
            if quality in _SOXR_QUALITY:
                self._engine = _Soxr(in_rate, out_rate, _SOXR_QUALITY[quality])
            else:
                self._engine = _Polyphase(_design(in_rate, out_rate, quality))

    @property
    def passthrough(self) -> bool:
        return self._engine is None

    def process(self, pcm: Pcm16) -> Pcm16:
        """Resample one chunk; returns every output sample the chunk completes."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError(f"StreamResampler takes 1-D int16 PCM, got {pcm.dtype} {pcm.shape}")
        if self._engine is None:
            return pcm
        return self._engine.process(pcm)

    def flush(self) -> Pcm16:
        """The samples still inside the filter; call once at the end of the stream."""
        if self._engine is None:
            return np.zeros(0, dtype=np.int16)
        return self._engine.flush()

    def reset(self) -> None:
        """Start a new stream (drops any buffered samples)."""
        if self._engine is not None:
            self._engine.reset()
