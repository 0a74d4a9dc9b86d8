"""Per-frame cost of voxgate's codecs, resampler and VADs against references, in one run.

Run: ``.venv/bin/python bench/codecs.py``. Prints a Markdown table of microseconds per
20 ms frame (best of a few repeats over real speech from /work/shared/audio, so the numbers
are the floor a call pays, not the mean under load).

References: Python 3.11's stdlib ``audioop`` (removed in 3.13, skipped when absent) and
aiortc's codecs (PyAV/FFmpeg). aiortc's Opus codec runs 48 kHz *stereo* at 96 kbps and goes
through its own resampler; ours is mono at 32 kbps, so that row compares the per-frame cost
of the two integrations, not identical work.
"""

from __future__ import annotations

import fractions
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from voxgate.audio import (  # noqa: E402
    AudioFrame,
    _libopus,  # noqa: E402
    get_decoder,
    get_encoder,
)
from voxgate.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode  # noqa: E402
from voxgate.audio.resample import StreamResampler  # noqa: E402
from voxgate.audio.vad import SileroVad, WebRtcVad  # noqa: E402
from voxgate.audio.wav import frames_from_pcm, read_wav  # noqa: E402

AUDIO = Path("/work/shared/audio")
REPEATS = 5


def _speech(rate: int) -> list[np.ndarray]:
    tag = "8k" if rate == 8000 else "16k"
    pcm, file_rate = read_wav(AUDIO / f"opening_hours.piper.{tag}.wav")
    if file_rate != rate:
        import soxr

        pcm = np.asarray(soxr.resample(pcm, file_rate, rate), dtype=np.int16)
    return [f.samples for f in frames_from_pcm(pcm, rate)]


def per_frame_us(fn: Callable[[int], object], n: int) -> float:
    """Best-of-REPEATS microseconds per call of ``fn(i)`` for i in range(n)."""
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter_ns() - t0) / n / 1000)
    return best


def main() -> None:
    rows: list[tuple[str, str, float]] = []
    f8 = _speech(8000)
    f16 = _speech(16000)
    f48 = _speech(48000)
    n8, n16, n48 = len(f8), len(f16), len(f48)
    u8 = [ulaw_encode(f) for f in f8]
    a8 = [alaw_encode(f) for f in f8]

    rows.append(
        (
            "G.711 mu-law encode",
            "voxgate (numpy LUT)",
            per_frame_us(lambda i: ulaw_encode(f8[i]), n8),
        )
    )
    rows.append(
        (
            "G.711 mu-law decode",
            "voxgate (numpy LUT)",
            per_frame_us(lambda i: ulaw_decode(u8[i]), n8),
        )
    )
    rows.append(
        (
            "G.711 A-law encode",
            "voxgate (numpy LUT)",
            per_frame_us(lambda i: alaw_encode(f8[i]), n8),
        )
    )
    rows.append(
        (
            "G.711 A-law decode",
            "voxgate (numpy LUT)",
            per_frame_us(lambda i: alaw_decode(a8[i]), n8),
        )
    )
    pcmu_dec = get_decoder("PCMU")
    rows.append(
        (
            "G.711 mu-law decode",
            "voxgate PcmuDecoder (with PLC bookkeeping)",
            per_frame_us(lambda i: pcmu_dec.decode(u8[i]), n8),
        )
    )
    rows.append(
        (
            "G.711 mu-law conceal",
            "voxgate PcmuDecoder.conceal (1 lost frame)",
            per_frame_us(lambda i: (pcmu_dec.decode(u8[i]), pcmu_dec.conceal(160)), n8)
            - rows[-1][2],
        )
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            audioop = None  # type: ignore[assignment]
    if audioop is not None:
        b8 = [f.tobytes() for f in f8]
        rows.append(
            (
                "G.711 mu-law encode",
                "stdlib audioop.lin2ulaw",
                per_frame_us(lambda i: audioop.lin2ulaw(b8[i], 2), n8),
            )
        )
        rows.append(
            (
                "G.711 mu-law decode",
                "stdlib audioop.ulaw2lin",
                per_frame_us(lambda i: audioop.ulaw2lin(u8[i], 2), n8),
            )
        )

    import av
    from aiortc.codecs.g711 import PcmuDecoder as AiortcPcmuDecoder
    from aiortc.codecs.g711 import PcmuEncoder as AiortcPcmuEncoder
    from aiortc.codecs.opus import OpusDecoder as AiortcOpusDecoder
    from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder
    from aiortc.jitterbuffer import JitterFrame

    def av_frame(samples: np.ndarray, rate: int, pts: int) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, rate)
        return frame

    av8 = [av_frame(f, 8000, i * 160) for i, f in enumerate(f8)]
    a_enc, a_dec = AiortcPcmuEncoder(), AiortcPcmuDecoder()
    rows.append(
        (
            "G.711 mu-law encode",
            "aiortc PcmuEncoder (PyAV, from av.AudioFrame)",
            per_frame_us(lambda i: a_enc.encode(av8[i]), n8),
        )
    )
    j8 = [JitterFrame(p, i * 160) for i, p in enumerate(u8)]
    rows.append(
        (
            "G.711 mu-law decode",
            "aiortc PcmuDecoder (PyAV, to av.AudioFrame)",
            per_frame_us(lambda i: a_dec.decode(j8[i]), n8),
        )
    )

    for rate, frames, n in ((16000, f16, n16), (48000, f48, n48)):
        enc = get_encoder("opus", rate, bitrate=32000)
        packets = [enc.encode(f) for f in frames]
        enc2 = get_encoder("opus", rate, bitrate=32000)
        dec = get_decoder("opus", rate)
        rows.append(
            (
                f"Opus encode {rate // 1000} kHz mono",
                "voxgate (libopus via ctypes, 32 kbps)",
                per_frame_us(lambda i, e=enc2, fr=frames: e.encode(fr[i]), n),
            )
        )
        rows.append(
            (
                f"Opus decode {rate // 1000} kHz mono",
                "voxgate (libopus via ctypes)",
                per_frame_us(lambda i, d=dec, p=packets: d.decode(p[i]), n),
            )
        )
        plc = get_decoder("opus", rate)
        decode_us = per_frame_us(lambda i, d=plc, p=packets: d.decode(p[i]), n)
        both_us = per_frame_us(
            lambda i, d=plc, p=packets, r=rate: (d.decode(p[i]), d.conceal(r // 50)), n
        )
        rows.append(
            (
                f"Opus conceal {rate // 1000} kHz (PLC)",
                "voxgate (libopus PLC, 1 lost frame after a good one)",
                both_us - decode_us,
            )
        )
        fec_enc = get_encoder("opus", rate, bitrate=32000, fec=True, packet_loss_pct=10)
        fec_packets = [fec_enc.encode(f) for f in frames]
        fec_dec = get_decoder("opus", rate)
        rows.append(
            (
                f"Opus conceal {rate // 1000} kHz (FEC)",
                "voxgate (libopus FEC from next packet)",
                per_frame_us(
                    lambda i, d=fec_dec, p=fec_packets, r=rate: d.conceal(r // 50, p[i]), n
                ),
            )
        )

    av48 = [av_frame(f, 48000, i * 960) for i, f in enumerate(f48)]
    ao_enc, ao_dec = AiortcOpusEncoder(), AiortcOpusDecoder()
    ao_packets = [p for fr in av48 for p in ao_enc.encode(fr)[0]]
    ao_enc2 = AiortcOpusEncoder()
    rows.append(
        (
            "Opus encode 48 kHz",
            "aiortc OpusEncoder (PyAV; stereo, 96 kbps)",
            per_frame_us(lambda i: ao_enc2.encode(av48[i]), n48),
        )
    )
    jo = [JitterFrame(p, i * 960) for i, p in enumerate(ao_packets)]
    rows.append(
        (
            "Opus decode 48 kHz",
            "aiortc OpusDecoder (PyAV; stereo)",
            per_frame_us(lambda i: ao_dec.decode(jo[i % len(jo)]), len(jo)),
        )
    )

    for q in ("HQ", "LQ"):
        rs = StreamResampler(8000, 16000, quality=q)  # type: ignore[arg-type]
        rows.append(
            (
                "Resample 8 -> 16 kHz",
                f"voxgate StreamResampler (polyphase FIR {q}; soxr etc. in bench/resample.py)",
                per_frame_us(lambda i, r=rs: r.process(f8[i]), n8),
            )
        )
    rs48 = StreamResampler(48000, 8000)
    rows.append(
        (
            "Resample 48 -> 8 kHz",
            "voxgate StreamResampler (polyphase FIR HQ)",
            per_frame_us(lambda i: rs48.process(f48[i]), n48),
        )
    )

    for rate, frames, n in ((8000, f8, n8), (16000, f16, n16)):
        vf = [AudioFrame(f, rate) for f in frames]
        wv = WebRtcVad(2)
        rows.append(
            (
                f"VAD {rate // 1000} kHz",
                "WebRtcVad (webrtcvad-wheels)",
                per_frame_us(lambda i, v=wv, x=vf: v.process(x[i]), n),
            )
        )
        try:
            sv = SileroVad(rate)
        except (FileNotFoundError, ValueError) as exc:
            print(f"skipping Silero at {rate} Hz: {exc}", file=sys.stderr)
            continue
        rows.append(
            (
                f"VAD {rate // 1000} kHz",
                f"SileroVad (onnxruntime, 1 thread, {sv.model_path.name})",
                per_frame_us(lambda i, v=sv, x=vf: v.process(x[i]), n),
            )
        )

    print(f"libopus: {_libopus.version()}, PyAV {av.__version__}, numpy {np.__version__}")
    print()
    print("| operation | implementation | us per 20 ms frame |")
    print("|---|---|---:|")
    for op, impl, us in rows:
        print(f"| {op} | {impl} | {us:.1f} |")


if __name__ == "__main__":
    main()
