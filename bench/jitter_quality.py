"""Speech quality and delay through loss and jitter: our jitter buffer vs aiortc's vs fixed 60 ms.

Run: ``.venv/bin/python bench/jitter_quality.py [--quick]``. Prints a markdown table.

The test speech in ``/work/shared/audio`` (8 kHz Piper and eSpeak utterances, concatenated
with 300 ms pauses) is packetized as 20 ms PCMU, impaired with the seeded traces of
:mod:`voxgate.rtp.impairment` (random loss 0/5/10 %, queueing jitter 20/60/120 ms over a
30 ms path) and played out on a 20 ms clock by:

* **voxgate**: ``RtpAudioReceiver`` (adaptive ``JitterBuffer``, G.711 PLC from
  ``PcmuDecoder.conceal``, quiet-frame time-scale adjustments) with default settings;
* **aiortc**: ``aiortc.jitterbuffer.JitterBuffer(capacity=16, prefetch=4)`` as
  ``RTCRtpReceiver`` builds it for audio, ``aiortc.codecs.g711.PcmuDecoder``, and a playout
  clock that takes the next decoded frame from the track's queue each tick and plays silence
  when there is none: aiortc conceals nothing and has no playout clock of its own, so this
  is what a real-time consumer of ``track.recv()`` hears;
* **fixed 60 ms**: our receiver with ``min = max = initial = 60 ms`` (same PLC; isolates
  what adaptation buys).

Reported per condition: added delay (playout time - send time - the 30 ms path delay, i.e.
jitter plus buffering) p50/p95 over played frames; concealed % (frames the receiver invented
with PLC, per frame sent); unplayed % (sent frames never played: lost, late or discarded);
PESQ P.862 narrowband MOS-LQO of the played signal against the clean one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aiortc.codecs.g711 import PcmuDecoder as AiortcPcmuDecoder  # noqa: E402
from aiortc.jitterbuffer import JitterBuffer as AiortcJitterBuffer  # noqa: E402
from aiortc.rtp import RtpPacket as AiortcRtpPacket  # noqa: E402
from pesq import pesq  # noqa: E402

from voxgate.audio import PcmuEncoder, get_decoder  # noqa: E402
from voxgate.audio.wav import read_wav  # noqa: E402
from voxgate.rtp.impairment import (  # noqa: E402
    Arrival,
    Impairment,
    SentPacket,
    impair,
    talk_stream,
    ticks,
)
from voxgate.rtp.jitterbuffer import JitterKind, JitterResult  # noqa: E402
from voxgate.rtp.receiver import RtpAudioReceiver  # noqa: E402

AUDIO = Path("/work/shared/audio")
RATE = 8000
SPF = 160
TICK = 0.020
PATH_DELAY_MS = 30.0
TAIL_S = 1.0


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


def load_speech(limit: int | None) -> np.ndarray:
    files = sorted(AUDIO.glob("*.8k.wav"))[:limit]
    gap = np.zeros(int(0.3 * RATE), dtype=np.int16)
    parts = [gap]
    for f in files:
        pcm, rate = read_wav(f)
        assert rate == RATE, f
        parts += [pcm, gap]
    x = np.concatenate(parts)
    return x[: len(x) // SPF * SPF]


@dataclass
class Outcome:
    audio: np.ndarray
    delays_ms: list[float]
    concealed: int
    played: int


def run_ours(
    sent: list[SentPacket], payloads: list[bytes], arrivals: list[Arrival], **kw: float
) -> Outcome:
    rx = RtpAudioReceiver(get_decoder("PCMU"), RATE, **kw)  # type: ignore[arg-type]
    jb = rx.jitter
    pop = jb.pop
    delays: list[float] = []
    concealed = 0
    played = 0
    clock = [0.0]

    def spy(now: float, quiet: bool = False) -> JitterResult:
        nonlocal concealed, played
        r = pop(now, quiet)
        if r.kind is JitterKind.PLAY:
            assert r.packet is not None
            frame = ((r.packet.timestamp - sent[0].timestamp) & 0xFFFFFFFF) // SPF
            delays.append(1000.0 * (clock[0] - sent[frame].send_time) - PATH_DELAY_MS)
            played += 1
        elif r.kind in (JitterKind.LOSS, JitterKind.UNDERRUN, JitterKind.STRETCH):
            concealed += 1
        return r

    compress = jb.compress

    def compress_spy(now: float) -> JitterResult | None:
        r = compress(now)
        if r is not None and r.packet is not None:  # the frame just counted was skipped
            frame = ((r.packet.timestamp - sent[0].timestamp) & 0xFFFFFFFF) // SPF
            delays[-1] = 1000.0 * (clock[0] - sent[frame].send_time) - PATH_DELAY_MS
        return r

    jb.pop = spy  # type: ignore[method-assign]
    jb.compress = compress_spy  # type: ignore[method-assign]
    out = []
    for now, batch in ticks(arrivals, 0.0, len(sent) + int(TAIL_S / TICK)):
        for a in batch:
            rx.push(a.packet.to_rtp(payloads[a.packet.frame]).serialize(), a.time)
        clock[0] = now
        out.append(rx.pull(now).samples)
    return Outcome(np.concatenate(out), delays, concealed, played)


def run_aiortc(sent: list[SentPacket], payloads: list[bytes], arrivals: list[Arrival]) -> Outcome:
    jb = AiortcJitterBuffer(capacity=16, prefetch=4)
    dec = AiortcPcmuDecoder()
    queue: deque[tuple[int, np.ndarray]] = deque()
    delays: list[float] = []
    out = []
    played = 0
    silence = np.zeros(SPF, dtype=np.int16)
    for now, batch in ticks(arrivals, 0.0, len(sent) + int(TAIL_S / TICK)):
        for a in batch:
            data = a.packet.to_rtp(payloads[a.packet.frame]).serialize()
            packet = AiortcRtpPacket.parse(data)
            packet._data = packet.payload  # depayload() is the identity for PCMU
            _, frame = jb.add(packet)
            if frame is not None:
                for f in dec.decode(frame):
                    queue.append((frame.timestamp, f.to_ndarray().reshape(-1).astype(np.int16)))
        if queue:
            ts, pcm = queue.popleft()
            index = ((ts - sent[0].timestamp) & 0xFFFFFFFF) // SPF
            delays.append(1000.0 * (now - sent[index].send_time) - PATH_DELAY_MS)
            out.append(pcm)
            played += 1
        else:
            out.append(silence)
    return Outcome(np.concatenate(out), delays, 0, played)


def score(ref: np.ndarray, deg: np.ndarray) -> float:
    try:
        return float(pesq(RATE, ref, deg[: len(ref) + int(TAIL_S * RATE)], "nb"))
    except Exception as exc:  # pesq raises on signals it cannot align; report, not crash
        print(f"pesq failed: {exc}", file=sys.stderr)
        return float("nan")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 utterances, fewer conditions")
    args = ap.parse_args()
    speech = load_speech(4 if args.quick else None)
    n = len(speech) // SPF
    enc = PcmuEncoder()
    payloads = [enc.encode(speech[i * SPF : (i + 1) * SPF]) for i in range(n)]
    sent = talk_stream(n)
    losses = (0.0, 0.05) if args.quick else (0.0, 0.05, 0.10)
    jitters = (60.0,) if args.quick else (20.0, 60.0, 120.0)
    strategies: list[tuple[str, Callable[[list[Arrival]], Outcome]]] = [
        ("voxgate adaptive", lambda arr: run_ours(sent, payloads, arr)),
        ("aiortc JitterBuffer", lambda arr: run_aiortc(sent, payloads, arr)),
        (
            "fixed 60 ms",
            lambda arr: run_ours(
                sent, payloads, arr, min_delay_ms=60, max_delay_ms=60, initial_delay_ms=60
            ),
        ),
    ]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"Run: `.venv/bin/python bench/jitter_quality.py{' --quick' if args.quick else ''}` on "
        f"{now}; {machine()}. Speech: {n * TICK:.1f} s ({n} PCMU frames). Seeds fixed "
        f"(seed = 100 * loss% + jitter ms), 30 ms path delay, random (Bernoulli) loss."
    )
    clean = run_ours(sent, payloads, impair(sent, Impairment(jitter_ms=0.0)))
    print(
        f"PESQ of the clean PCMU chain (no loss, no jitter, voxgate): {score(speech, clean.audio):.2f}"
    )
    print()
    print(
        "| loss | jitter | buffer | added delay p50 ms | p95 ms | concealed % | unplayed % | PESQ NB |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for loss in losses:
        for jitter in jitters:
            imp = Impairment(loss=loss, jitter_ms=jitter, seed=int(100 * loss * 100 + jitter))
            arrivals = impair(sent, imp)
            for name, fn in strategies:
                o = fn(arrivals)
                print(
                    f"| {loss:.0%} | {jitter:.0f} ms | {name} | {pct(o.delays_ms, 50):.0f} | "
                    f"{pct(o.delays_ms, 95):.0f} | {100.0 * o.concealed / n:.1f} | "
                    f"{100.0 * (n - o.played) / n:.1f} | {score(speech, o.audio):.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
