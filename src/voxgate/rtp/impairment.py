"""Seeded network impairment of RTP packet traces, for tests and benchmarks.

This kernel has no ``tc netem`` (see ``peers.md``), and unit tests want exact repeatability
anyway, so loss, jitter, reordering, duplication and sender clock drift are applied to a list
of packets in memory. Same seed, same trace: a failing scenario can be replayed and bisected.

Models, chosen to resemble real paths rather than to be convenient:

* **Loss** is Gilbert-Elliott with a lossless good state and a lossy bad state: ``burst`` is
  the mean number of packets lost in a row (1 gives independent random loss).
* **Jitter** is a queueing delay in ``[0, jitter_ms]`` that follows a correlated (AR(1))
  process, and packets leave the queue in order: a delay spike makes packets arrive in a
  bunch, as congestion does, instead of shuffling them.
* **Reordering** holds a packet back behind 1-3 of its successors.
* **Drift**: the sender's clock runs ``drift_ppm`` fast (positive) or slow; its timestamps
  advance by a frame per packet while real send times stretch or shrink.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from voxgate.rtp.packet import RtpPacket

__all__ = [
    "Arrival",
    "Impairment",
    "SentPacket",
    "impair",
    "talk_stream",
    "ticks",
]


@dataclass(frozen=True, slots=True)
class SentPacket:
    """One packet as the sender emitted it; ``frame`` indexes the sender's audio frames."""

    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    send_time: float
    frame: int

    def to_rtp(self, payload: bytes, payload_type: int = 0) -> RtpPacket:
        return RtpPacket(
            payload_type=payload_type,
            sequence_number=self.seq,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            marker=self.marker,
            payload=payload,
        )


@dataclass(frozen=True, slots=True)
class Arrival:
    time: float
    packet: SentPacket


@dataclass(frozen=True, slots=True)
class Impairment:
    """Impairment parameters; probabilities are per packet."""

    loss: float = 0.0
    burst: float = 1.0
    """Mean loss burst length in packets (Gilbert-Elliott); 1 means independent loss."""
    jitter_ms: float = 0.0
    delay_ms: float = 30.0
    """Fixed one-way path delay under the jitter."""
    jitter_corr: float = 0.7
    """Packet-to-packet correlation of the queueing delay (AR(1) coefficient)."""
    reorder: float = 0.0
    duplicate: float = 0.0
    seed: int = 0


def talk_stream(
    num_frames: int,
    *,
    ptime_ms: float = 20.0,
    clock_rate: int = 8000,
    seq0: int = 1000,
    ts0: int = 123_456,
    ssrc: int = 0x1234ABCD,
    start: float = 0.0,
    drift_ppm: float = 0.0,
    silent: Iterable[tuple[int, int]] = (),
) -> list[SentPacket]:
    """Packets of a sender that has ``num_frames`` frames to send.

    Frames inside a ``silent`` range ``[first, end)`` are not sent (DTX): timestamps keep
    running, sequence numbers do not, and the first packet after a gap carries the marker
    bit, as RFC 3551 section 4.1 asks. Sequence numbers and timestamps wrap as on the wire.
    """
    dtx = [False] * num_frames
    for first, end in silent:
        for i in range(max(first, 0), min(end, num_frames)):
            dtx[i] = True
    samples = round(clock_rate * ptime_ms / 1000.0)
    period = ptime_ms / 1000.0 / (1.0 + drift_ppm * 1e-6)
    out: list[SentPacket] = []
    seq = seq0
    marker = True
    for i in range(num_frames):
        if dtx[i]:
            marker = True
            continue
        out.append(
            SentPacket(
                seq=seq & 0xFFFF,
                timestamp=(ts0 + i * samples) & 0xFFFFFFFF,
                ssrc=ssrc,
                marker=marker,
                send_time=start + i * period,
                frame=i,
            )
        )
        marker = False
        seq += 1
    return out


def impair(packets: Sequence[SentPacket], imp: Impairment) -> list[Arrival]:
    """What the receiver sees: surviving packets (and copies) with arrival times, in order."""
    rng = random.Random(imp.seed)
    if imp.loss > 0.0:
        r = 1.0 / max(imp.burst, 1.0)
        p = min(1.0, imp.loss * r / max(1e-9, 1.0 - imp.loss))
    else:
        r = p = 0.0
    bad = False
    x = 0.0
    rho = imp.jitter_corr
    innov = math.sqrt(max(0.0, 1.0 - rho * rho))
    fixed = imp.delay_ms / 1000.0
    spread = imp.jitter_ms / 1000.0
    last_out = -math.inf
    out: list[Arrival] = []
    for pkt in packets:
        # Draw every random number for every packet, lost or not, so changing one rate does
        # not reshuffle the rest of the trace.
        lose_draw = rng.random()
        x = rho * x + innov * rng.gauss(0.0, 1.0)
        reorder_draw = rng.random()
        hold = rng.randint(1, 3)
        dup_draw = rng.random()
        dup_gap = rng.uniform(0.0, 0.010)
        bad = (lose_draw >= r) if bad else (lose_draw < p)
        if bad:
            continue
        queue = spread * min(1.0, max(0.0, (x + 2.0) / 4.0))
        t = max(pkt.send_time + fixed + queue, last_out)
        last_out = t
        if reorder_draw < imp.reorder:
            t += hold * 0.020 + 0.001
        out.append(Arrival(t, pkt))
        if dup_draw < imp.duplicate:
            out.append(Arrival(t + dup_gap, pkt))
    out.sort(key=lambda a: a.time)
    return out


def ticks(
    arrivals: Sequence[Arrival], start: float, count: int, tick: float = 0.020
) -> Iterator[tuple[float, list[Arrival]]]:
    """Replay a trace against a playout clock: ``(now, arrived since the last tick)`` pairs.

    ``now`` runs ``start, start + tick, ...``; arrivals later than the last tick are dropped.
    """
    i = 0
    n = len(arrivals)
    for k in range(count):
        now = start + k * tick
        j = i
        while j < n and arrivals[j].time <= now:
            j += 1
        yield now, list(arrivals[i:j])
        i = j
