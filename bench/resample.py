"""Streaming resamplers on 20 ms frames: CPU per frame and the latency each one adds.

Run: ``.venv/bin/python bench/resample.py``. Prints one Markdown table. All candidates run in
this process on the same real speech (/work/shared/audio), numpy int16 in and out:

* voxgate ``StreamResampler`` (polyphase FIR, default "HQ"; "QQ" and "VHQ" for the range);
* soxr ``ResampleStream`` at "HQ" and "QQ" (what StreamResampler wrapped before);
* PyAV ``av.AudioResampler`` (FFmpeg libswresample), including the ndarray <-> AudioFrame
  conversions a numpy caller pays.

Latency columns, both properties of the output stream (not wall-clock timings):

* *first output*: input fed (ms) before a call first returned any samples; 20 means the
  first frame's own call;
* *held back*: the most input (ms) that has gone in but not come out, over the stream, i.e.
  the buffering a frame-synchronous caller sees;
* *group delay*: where an impulse peaks in the concatenated output minus where it went in
  (ms): the filter's own delay, on top of what is held back (soxr removes its filter delay
  from the stream by holding output back instead, hence ~0 here);
* *added latency*: held back + group delay, what a sample waits in the worst case;
* *worst alias/image*: the loudest alias (downsampling) or image (upsampling) of a sweep of
  12 tones that should not get through, relative to the tone (quality, not speed).
"""

from __future__ import annotations

import fractions
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from voxgate.audio.resample import StreamResampler  # noqa: E402
from voxgate.audio.wav import read_wav  # noqa: E402

AUDIO = Path("/work/shared/audio/opening_hours.piper.16k.wav")
REPEATS = 5
RATIOS = [(8000, 16000), (16000, 8000), (48000, 16000), (48000, 8000), (22050, 8000)]

Step = Callable[[np.ndarray], np.ndarray]  # one frame in, whatever came out


def _ours(in_rate: int, out_rate: int, quality: str) -> tuple[Step, Step]:
    r = StreamResampler(in_rate, out_rate, quality)  # type: ignore[arg-type]
    return r.process, lambda _: r.flush()


def _soxr(in_rate: int, out_rate: int, quality: str) -> tuple[Step, Step]:
    s = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
    empty = np.zeros(0, np.int16)
    return s.resample_chunk, lambda _: s.resample_chunk(empty, last=True)


def _pyav(in_rate: int, out_rate: int) -> tuple[Step, Step]:
    rs = av.AudioResampler(format="s16", layout="mono", rate=out_rate)
    pts = [0]
    base = fractions.Fraction(1, in_rate)

    def collect(frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, np.int16)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])

    def step(pcm: np.ndarray) -> np.ndarray:
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = in_rate
        frame.pts = pts[0]
        frame.time_base = base
        pts[0] += pcm.shape[0]
        return collect(rs.resample(frame))

    return step, lambda _: collect(rs.resample(None))


CANDIDATES: list[tuple[str, Callable[[int, int], tuple[Step, Step]]]] = [
    ("voxgate FIR HQ (default)", lambda i, o: _ours(i, o, "HQ")),
    ("voxgate FIR QQ", lambda i, o: _ours(i, o, "QQ")),
    ("voxgate FIR VHQ", lambda i, o: _ours(i, o, "VHQ")),
    ("soxr ResampleStream HQ", lambda i, o: _soxr(i, o, "HQ")),
    ("soxr ResampleStream QQ", lambda i, o: _soxr(i, o, "QQ")),
    ("PyAV AudioResampler (swr)", _pyav),
]


def _frames(rate: int) -> list[np.ndarray]:
    pcm, file_rate = read_wav(AUDIO)
    pcm = np.asarray(soxr.resample(pcm, file_rate, rate), dtype=np.int16)
    n = rate // 50
    return [pcm[i : i + n] for i in range(0, pcm.shape[0] - n + 1, n)]


def _cost_us(make: Callable[[], tuple[Step, Step]], frames: list[np.ndarray]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        step, _flush = make()
        t0 = time.perf_counter_ns()
        for f in frames:
            step(f)
        best = min(best, (time.perf_counter_ns() - t0) / len(frames) / 1000)
    return best


def _latency(
    make: Callable[[], tuple[Step, Step]], in_rate: int, out_rate: int
) -> tuple[float, float, float]:
    """(first output ms, max held back ms, impulse group delay ms) over 0.5 s of frames."""
    n = in_rate // 50
    pcm = np.zeros(in_rate // 2, np.int16)
    at = in_rate // 10
    pcm[at] = 30000
    step, flush = make()
    outs, first, held, fed, got = [], None, 0.0, 0, 0
    for i in range(0, pcm.shape[0], n):
        out = step(pcm[i : i + n])
        outs.append(out)
        fed += n
        got += out.shape[0]
        if first is None and out.shape[0]:
            first = fed / in_rate * 1000
        held = max(held, (fed / in_rate - got / out_rate) * 1000)
    outs.append(flush(pcm[:0]))
    y = np.concatenate(outs)
    delay = (int(np.argmax(np.abs(y.astype(np.int32)))) / out_rate - at / in_rate) * 1000
    return first if first is not None else float("nan"), held, delay


def _level_db(y: np.ndarray, freq: float, rate: int, ref: float) -> float:
    y = y[y.shape[0] // 4 : -y.shape[0] // 4].astype(np.float64)
    w = np.hanning(y.shape[0])
    t = np.arange(y.shape[0]) / rate
    amp = np.abs(np.sum(y * w * np.exp(-2j * np.pi * freq * t))) * 2 / w.sum()
    return float(20 * np.log10(max(amp, 1e-9) / ref))


def _worst_leak_db(make: Callable[[], tuple[Step, Step]], in_rate: int, out_rate: int) -> float:
    """Loudest alias (down) or image (up) over a sweep of tones that must not get through."""
    if out_rate < in_rate:  # tones above the output's Nyquist fold back into it
        tones = np.linspace(out_rate / 2 * 1.01, min(in_rate / 2, out_rate) * 0.99, 12)
        leaks = np.abs(tones - np.rint(tones / out_rate) * out_rate)
    else:  # zero-stuffing mirrors every input tone f to in_rate - f
        tones = np.linspace(in_rate / 2 * 0.05, in_rate / 2 * 0.99, 12)
        leaks = in_rate - tones
    worst = -200.0
    t = np.arange(in_rate // 4) / in_rate
    n = in_rate // 50
    for tone, leak in zip(tones, leaks, strict=True):
        pcm = np.rint(10000 * np.sin(2 * np.pi * tone * t)).astype(np.int16)
        step, flush = make()
        parts = [step(pcm[i : i + n]) for i in range(0, pcm.shape[0], n)]
        y = np.concatenate([*parts, flush(pcm[:0])])
        worst = max(worst, _level_db(y, float(leak), out_rate, 10000))
    return worst


def main() -> None:
    print(f"numpy {np.__version__}, soxr {soxr.__version__}, PyAV {av.__version__}")
    print()
    print("| conversion | implementation | us per 20 ms frame | first output (ms in) "
          "| held back (ms, max) | group delay (ms) | added latency (ms) "
          "| worst alias/image (dB) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for in_rate, out_rate in RATIOS:
        frames = _frames(in_rate)
        for name, factory in CANDIDATES:
            make = functools.partial(factory, in_rate, out_rate)
            us = _cost_us(make, frames)
            first, held, delay = _latency(make, in_rate, out_rate)
            leak = _worst_leak_db(make, in_rate, out_rate)
            print(
                f"| {in_rate / 1000:g} -> {out_rate / 1000:g} kHz | {name} | {us:.1f} "
                f"| {first:.0f} | {held:.1f} | {delay:.2f} | {held + max(delay, 0):.1f} "
                f"| {leak:.0f} |"
            )


if __name__ == "__main__":
    main()
