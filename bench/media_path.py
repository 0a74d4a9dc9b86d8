"""Receive media path cost per 20 ms frame: RTP parse -> jitter buffer -> PCMU decode -> 8->16 kHz.

Run: ``.venv/bin/python bench/media_path.py [--quick]``. Prints a markdown table.

Both chains run in this process on the same packet bytes, so background load inflates both
sides rather than the ratio:

* **voxgate**: ``RtpAudioReceiver.push(bytes, t)`` + ``pull(t)`` (parse, JitterBuffer push +
  pop, PcmuDecoder with PLC bookkeeping, StreamResampler soxr "QQ", one ``AudioFrame`` out
  with latency stamps), and its parts one by one.
* **aiortc 1.16**: ``aiortc.rtp.RtpPacket.parse``, ``aiortc.jitterbuffer.JitterBuffer(capacity=16,
  prefetch=4)`` (what ``RTCRtpReceiver`` uses for audio), ``aiortc.codecs.g711.PcmuDecoder``
  (PyAV) and ``av.AudioResampler(s16, mono, 16000)`` (PyAV's libswresample, as aiortc's own
  media helpers resample), ending in ``to_ndarray()`` so both sides hand over a PCM array.

"1,000 streams" interleaves 1,000 independent receivers tick by tick (each tick: one packet
in, one frame out, for every stream), which is how a media worker runs, with its cache
pressure. Streams per core = 20,000 us / (us per frame).
"""

from __future__ import annotations

import argparse
import datetime
import fractions
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import av  # noqa: E402
import webrtcvad  # noqa: E402
from aiortc.codecs import depayload  # noqa: E402
from aiortc.codecs.g711 import PcmuDecoder as AiortcPcmuDecoder  # noqa: E402
from aiortc.jitterbuffer import JitterBuffer as AiortcJitterBuffer  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpCodecParameters  # noqa: E402
from aiortc.rtp import RtpPacket as AiortcRtpPacket  # noqa: E402

from voxgate.audio import PcmuEncoder, get_decoder  # noqa: E402
from voxgate.audio.resample import StreamResampler  # noqa: E402
from voxgate.rtp.jitterbuffer import JitterBuffer  # noqa: E402
from voxgate.rtp.packet import RtpPacket  # noqa: E402
from voxgate.rtp.receiver import RtpAudioReceiver  # noqa: E402

PCMU = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, payloadType=0)
FRAME = 0.020
FRAME_US = 20_000.0


def machine() -> str:
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"nproc={os.cpu_count()}, {model}, Python {platform.python_version()}"


def speechlike(num_frames: int, seed: int = 1) -> np.ndarray:
    """A voiced-ish signal (harmonics + noise, syllable envelope): realistic G.711 codes."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames * 160) / 8000.0
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 8000.0
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) + 0.1 * rng.standard_normal(t.shape)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (4000 * x * env).astype(np.int16)


def make_stream(num_frames: int, ssrc: int, seq0: int, ts0: int) -> list[bytes]:
    pcm = speechlike(num_frames, seed=ssrc)
    enc = PcmuEncoder()
    return [
        RtpPacket(
            0,
            (seq0 + i) & 0xFFFF,
            (ts0 + 160 * i) & 0xFFFFFFFF,
            ssrc,
            payload=enc.encode(pcm[160 * i : 160 * (i + 1)]),
        ).serialize()
        for i in range(num_frames)
    ]


def best(fn: Callable[[], int], repeat: int) -> float:
    """Fastest of ``repeat`` runs, in microseconds of this process's CPU time per frame.

    CPU time, not wall time, and the fastest run: the machine is shared, and time spent
    waiting for a core says nothing about the code (``fn`` returns the frames it did).
    """
    runs = []
    for _ in range(repeat):
        t0 = time.process_time_ns()
        n = fn()
        runs.append((time.process_time_ns() - t0) / 1000.0 / n)
    return min(runs)


# -- voxgate -----------------------------------------------------------------------------------


def ours_chain(streams: list[list[bytes]]) -> Callable[[], int]:
    def run() -> int:
        rxs = [RtpAudioReceiver(get_decoder("PCMU"), 16000) for _ in streams]
        n = len(streams[0])
        pairs = list(zip(rxs, streams, strict=True))
        for i in range(n):
            t = i * FRAME
            for rx, pkts in pairs:
                rx.push(pkts[i], t)
                rx.pull(t + 0.0001)
        return n * len(streams)

    return run


def ours_parse(pkts: list[bytes]) -> Callable[[], int]:
    parse = RtpPacket.parse

    def run() -> int:
        for p in pkts:
            parse(p)
        return len(pkts)

    return run


def ours_jitter(pkts: list[bytes]) -> Callable[[], int]:
    parsed = [RtpPacket.parse(p) for p in pkts]

    def run() -> int:
        jb = JitterBuffer(8000, 160)
        for i, p in enumerate(parsed):
            t = i * FRAME
            jb.push(p, t)
            jb.pop(t + 0.0001)
        return len(parsed)

    return run


def ours_decode(pkts: list[bytes]) -> Callable[[], int]:
    payloads = [RtpPacket.parse(p).payload for p in pkts]

    def run() -> int:
        dec = get_decoder("PCMU")
        for p in payloads:
            dec.decode(p)
        return len(payloads)

    return run


def ours_resample(pkts: list[bytes], quality: str) -> Callable[[], int]:
    dec = get_decoder("PCMU")
    pcm = [dec.decode(RtpPacket.parse(p).payload) for p in pkts]

    def run() -> int:
        rs = StreamResampler(8000, 16000, quality)  # type: ignore[arg-type]
        for x in pcm:
            rs.process(x)
        return len(pcm)

    return run


def vad_cost(pkts: list[bytes]) -> Callable[[], int]:
    dec = get_decoder("PCMU")
    rs = StreamResampler(8000, 16000, "QQ")
    frames = []
    for p in pkts:
        y = rs.process(dec.decode(RtpPacket.parse(p).payload))
        if y.shape[0] >= 320:
            frames.append(y[:320].tobytes())

    def run() -> int:
        vad = webrtcvad.Vad(2)
        for f in frames:
            vad.is_speech(f, 16000)
        return len(frames)

    return run


# -- aiortc ------------------------------------------------------------------------------------


class AiortcChain:
    """aiortc's receive pieces wired the way RTCRtpReceiver + a resampling consumer use them."""

    def __init__(self) -> None:
        self.jb = AiortcJitterBuffer(capacity=16, prefetch=4)
        self.dec = AiortcPcmuDecoder()
        self.rs = av.AudioResampler(format="s16", layout="mono", rate=16000)

    def push(self, data: bytes) -> int:
        packet = AiortcRtpPacket.parse(data)
        packet._data = depayload(PCMU, packet.payload)  # what RTCRtpReceiver does before add()
        _, frame = self.jb.add(packet)
        out = 0
        if frame is not None:
            for f in self.dec.decode(frame):
                for g in self.rs.resample(f):
                    out += g.to_ndarray().shape[-1]
        return out


def aiortc_chain(streams: list[list[bytes]]) -> Callable[[], int]:
    def run() -> int:
        chains = [AiortcChain() for _ in streams]
        n = len(streams[0])
        pairs = list(zip(chains, streams, strict=True))
        for i in range(n):
            for ch, pkts in pairs:
                ch.push(pkts[i])
        return n * len(streams)

    return run


def aiortc_parse(pkts: list[bytes]) -> Callable[[], int]:
    parse = AiortcRtpPacket.parse

    def run() -> int:
        for p in pkts:
            parse(p)
        return len(pkts)

    return run


def aiortc_jitter(pkts: list[bytes]) -> Callable[[], int]:
    parsed = [AiortcRtpPacket.parse(p) for p in pkts]
    for p in parsed:
        p._data = p.payload

    def run() -> int:
        jb = AiortcJitterBuffer(capacity=16, prefetch=4)
        for p in parsed:
            jb.add(p)
        return len(parsed)

    return run


def aiortc_decode(pkts: list[bytes]) -> Callable[[], int]:
    jb = AiortcJitterBuffer(capacity=16, prefetch=4)
    frames = []
    for data in pkts:
        p = AiortcRtpPacket.parse(data)
        p._data = p.payload
        if (f := jb.add(p)[1]) is not None:
            frames.append(f)

    def run() -> int:
        dec = AiortcPcmuDecoder()
        for f in frames:
            dec.decode(f)
        return len(frames)

    return run


def aiortc_resample(pkts: list[bytes]) -> Callable[[], int]:
    dec = get_decoder("PCMU")
    frames = []
    for i, p in enumerate(pkts):
        x = dec.decode(RtpPacket.parse(p).payload)
        f = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
        f.sample_rate = 8000
        f.pts = 160 * i
        f.time_base = fractions.Fraction(1, 8000)
        frames.append(f)

    def run() -> int:
        rs = av.AudioResampler(format="s16", layout="mono", rate=16000)
        for f in frames:
            for g in rs.resample(f):
                g.to_ndarray()
        return len(frames)

    return run


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    ap.add_argument("--streams", type=int, default=1000)
    args = ap.parse_args()
    frames = 500 if args.quick else 3000
    many_frames = 50 if args.quick else 150
    repeat = 3 if args.quick else 5

    one = [make_stream(frames, 0x1000, 1000, 5000)]
    pkts = one[0]
    many = [
        make_stream(many_frames, 0x2000 + k, (k * 7919) & 0xFFFF, k * 104_729)
        for k in range(args.streams)
    ]

    rows: list[tuple[str, float | None, float | None]] = [
        ("RTP parse", best(ours_parse(pkts), repeat), best(aiortc_parse(pkts), repeat)),
        (
            "jitter buffer (push + pop / add)",
            best(ours_jitter(pkts), repeat),
            best(aiortc_jitter(pkts), repeat),
        ),
        ("PCMU decode", best(ours_decode(pkts), repeat), best(aiortc_decode(pkts), repeat)),
        (
            "resample 8->16 kHz (ours soxr QQ / PyAV swr)",
            best(ours_resample(pkts, "QQ"), repeat),
            best(aiortc_resample(pkts), repeat),
        ),
        ("resample 8->16 kHz, soxr HQ (bursty)", best(ours_resample(pkts, "HQ"), repeat), None),
        (
            "full chain, 1 stream",
            best(ours_chain(one), repeat),
            best(aiortc_chain(one), repeat),
        ),
        (
            f"full chain, {args.streams:,} interleaved streams",
            best(ours_chain(many), max(1, repeat - 2)),
            best(aiortc_chain(many), max(1, repeat - 2)),
        ),
        ("VAD (webrtcvad, 16 kHz frame), on its own", best(vad_cost(pkts), repeat), None),
    ]

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"Run: `.venv/bin/python bench/media_path.py{' --quick' if args.quick else ''}` "
        f"on {now}; {machine()}; fastest of {repeat} runs in process CPU time "
        f"({frames} frames for 1 stream, {many_frames} frames x {args.streams:,} streams)."
    )
    print(f"aiortc {_version('aiortc')}, PyAV {av.__version__}, numpy {np.__version__}")
    print()
    print(
        "| stage | voxgate us/frame | aiortc us/frame | aiortc / voxgate | voxgate streams/core |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, ours, theirs in rows:
        o = f"{ours:.2f}" if ours is not None else "-"
        t = f"{theirs:.2f}" if theirs is not None else "-"
        ratio = f"{theirs / ours:.2f}x" if ours and theirs else "-"
        per_core = f"{FRAME_US / ours:,.0f}" if ours and name.startswith("full") else "-"
        print(f"| {name} | {o} | {t} | {ratio} | {per_core} |")
    chain = rows[5][1] or 0.0
    parse_ratio = (rows[0][2] or 0.0) / (rows[0][1] or 1.0)
    print()
    print(
        f"Targets: chain <= 25 us/frame (>= 800 streams/core): "
        f"{'met' if chain <= 25.0 else 'MISSED'} ({chain:.1f} us); "
        f"RTP parse >= 3x aiortc: {'met' if parse_ratio >= 3.0 else 'MISSED'} "
        f"({parse_ratio:.2f}x)."
    )


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
