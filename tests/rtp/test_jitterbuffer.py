"""JitterBuffer behaviour on seeded synthetic traces, through its public surface only.

Each scenario replays a trace against a 20 ms playout clock and checks the contract:
one result per tick; every sequence number from the first to the last accounted for exactly
once (played, lost, dropped to shrink delay, overflowed or still buffered); played sequence
numbers strictly increasing across the wrap; losses only where the network lost or badly
delayed a packet; the playout delay inside the configured bounds once settled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.rtp.impairment import Arrival, Impairment, SentPacket, impair, talk_stream, ticks
from voxgate.rtp.jitterbuffer import JitterBuffer, JitterKind, JitterResult, JitterStats
from voxgate.rtp.packet import RtpPacket

PAYLOAD = b"\xff" * 160
TICK = 0.020


@dataclass
class Run:
    results: list[JitterResult]
    played: list[int]
    delays: list[tuple[float, float]]  # (now, delay_ms) after each played frame
    targets: list[float]
    stats: JitterStats
    kinds: Counter[JitterKind] = field(default_factory=Counter)


def replay(
    arrivals: Sequence[Arrival],
    num_ticks: int,
    *,
    start: float = 0.0,
    quiet_every: int = 10,
    **options: float,
) -> Run:
    """Push each arrival before the tick after it, pop once per tick.

    Every ``quiet_every``-th tick reports a quiet frame, the way a receiver sees pauses
    between words, and offers it to :meth:`JitterBuffer.compress`.
    """
    jb = JitterBuffer(8000, 160, **options)  # type: ignore[arg-type]
    results: list[JitterResult] = []
    played: list[int] = []
    delays: list[tuple[float, float]] = []
    targets: list[float] = []
    for k, (now, batch) in enumerate(ticks(arrivals, start, num_ticks)):
        for a in batch:
            jb.push(a.packet.to_rtp(PAYLOAD), a.time)
        quiet = quiet_every > 0 and k % quiet_every == 0
        r = jb.pop(now, quiet=quiet)
        if quiet and r.kind is JitterKind.PLAY:
            # As a receiver does on decoding a quiet frame: let the buffer skip it.
            r = jb.compress(now) or r
        results.append(r)
        if r.kind is JitterKind.PLAY:
            assert r.packet is not None
            played.append(r.packet.sequence_number)
            delays.append((now, jb.delay_ms))
        targets.append(jb.target_delay_ms)
    return Run(results, played, delays, targets, jb.stats, Counter(r.kind for r in results))


def unwrap(seqs: Sequence[int]) -> list[int]:
    out: list[int] = []
    for s in seqs:
        if not out:
            out.append(s)
            continue
        d = (s - out[-1]) & 0xFFFF
        out.append(out[-1] + (d - 0x10000 if d >= 0x8000 else d))
    return out


def ticks_for(sent: Sequence[SentPacket], tail: float = 1.0) -> int:
    return int((sent[-1].send_time + tail) / TICK) + 1


def check_contract(run: Run, sent: Sequence[SentPacket], arrivals: Sequence[Arrival]) -> None:
    s = run.stats
    n_ticks = len(run.results)
    assert sum(run.kinds.values()) == n_ticks
    assert run.kinds[JitterKind.PLAY] == s.played == len(run.played)
    # Played in order, strictly increasing through the 16-bit wrap, no repeats.
    u = unwrap(run.played)
    assert all(b > a for a, b in zip(u, u[1:], strict=False))
    # Every sequence number from the first received to the last is accounted for once.
    first = arrivals[0].packet
    first_index = next(i for i, p in enumerate(sent) if p.seq == first.seq)
    span = len(sent) - first_index
    assert s.played + s.lost + s.dropped_frames + s.overflow_drops + s.buffered == span
    # Only packets that were sent can be played, and each at most once.
    sent_seqs = {p.seq for p in sent}
    assert set(run.played) <= sent_seqs
    assert len(set(run.played)) == len(run.played)
    # Concealment is asked for no more often than packets went missing.
    assert run.kinds[JitterKind.LOSS] <= s.lost
    arrived = {a.packet.seq for a in arrivals}
    assert s.played <= len(arrived)


def check_delay(run: Run, min_ms: float = 20.0, max_ms: float = 200.0, settle: float = 2.0) -> None:
    assert all(min_ms <= t <= max_ms for t in run.targets)
    settled = [d for now, d in run.delays if now >= settle]
    assert settled
    # Frames play between the lower bound (minus a quarter frame of hysteresis) and one frame
    # above the upper bound (a stall is caught up by dropping, one decision late at most).
    assert min(settled) >= min_ms - 5.0 - 1e-6
    assert max(settled) <= max_ms + 20.0 + 1e-6


def scenario(
    imp: Impairment, frames: int = 1500, **stream: float
) -> tuple[list[SentPacket], list[Arrival], Run]:
    sent = talk_stream(frames, **stream)  # type: ignore[arg-type]
    arrivals = impair(sent, imp)
    run = replay(arrivals, ticks_for(sent))
    check_contract(run, sent, arrivals)
    return sent, arrivals, run


def network_lost(sent: Sequence[SentPacket], arrivals: Sequence[Arrival]) -> int:
    """Packets the network lost after the first one that arrived (the buffer's span)."""
    first = arrivals[0].packet.frame
    return sum(1 for p in sent if p.frame > first) + 1 - len({a.packet.seq for a in arrivals})


# -- clean paths -----------------------------------------------------------------------------


def test_clean_path_plays_every_packet_in_order() -> None:
    sent, arrivals, run = scenario(Impairment(jitter_ms=0.0))
    # The 40 ms initial delay shrinks toward the 20 ms minimum by dropping one quiet frame.
    assert run.stats.dropped_frames <= 2
    assert len(run.played) + run.stats.dropped_frames == len(sent)
    assert run.stats.lost == 0
    assert run.kinds[JitterKind.LOSS] == 0
    check_delay(run)


def test_initial_delay_then_settles_to_minimum_without_jitter() -> None:
    sent, arrivals, run = scenario(Impairment(jitter_ms=0.0), frames=1500)
    first_play = next(i for i, r in enumerate(run.results) if r.kind is JitterKind.PLAY)
    # 30 ms path + 40 ms initial delay, rounded up to the next 20 ms tick.
    assert first_play * TICK == pytest.approx(0.080)
    assert run.delays[-1][1] <= 40.0


# -- loss -------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [0.05, 0.10, 0.20])
@pytest.mark.parametrize("burst", [1.0, 3.0])
def test_loss_is_detected_and_concealed(loss: float, burst: float) -> None:
    imp = Impairment(loss=loss, burst=burst, jitter_ms=40.0, seed=int(loss * 100 + burst))
    sent, arrivals, run = scenario(imp)
    lost_on_wire = network_lost(sent, arrivals)
    assert lost_on_wire > 0
    assert run.stats.lost >= lost_on_wire
    # Jitter within the target's reach adds few late losses on top of the network's.
    assert run.stats.lost - lost_on_wire <= 0.02 * len(sent)
    # Mid-talkspurt losses are concealed (as losses, or as underruns while the buffer waits
    # to learn that a long burst was loss and not delay), not skipped.
    concealed = run.kinds[JitterKind.LOSS] + run.kinds[JitterKind.UNDERRUN]
    assert concealed >= 0.8 * lost_on_wire
    check_delay(run)


def test_loss_result_carries_the_next_packet_when_buffered() -> None:
    sent = talk_stream(300)
    arrivals = [a for a in impair(sent, Impairment(jitter_ms=0.0)) if a.packet.frame != 150]
    run = replay(arrivals, ticks_for(sent), quiet_every=0)
    losses = [r for r in run.results if r.kind is JitterKind.LOSS]
    assert len(losses) == 1
    assert losses[0].next_packet is not None
    assert losses[0].next_packet.sequence_number == sent[151].seq


# -- jitter, reordering, duplicates -----------------------------------------------------------


@pytest.mark.parametrize("jitter_ms", [20.0, 60.0, 120.0])
def test_target_follows_jitter(jitter_ms: float) -> None:
    sent, arrivals, run = scenario(Impairment(jitter_ms=jitter_ms, seed=7), frames=2000)
    assert run.stats.lost <= 0.03 * len(sent)
    late_targets = run.targets[len(run.targets) // 2 :]
    # The target covers most of the queueing spread, and not much more.
    assert min(late_targets) >= min(0.6 * jitter_ms, 180.0)
    assert max(late_targets) <= jitter_ms + 40.0
    check_delay(run)


def test_more_jitter_means_more_delay() -> None:
    medians = []
    for jitter_ms in (20.0, 60.0, 120.0):
        _, _, run = scenario(Impairment(jitter_ms=jitter_ms, seed=3), frames=1500)
        d = sorted(d for _, d in run.delays)
        medians.append(d[len(d) // 2])
    assert medians[0] < medians[1] < medians[2]


def test_reordered_packets_are_played_in_order() -> None:
    imp = Impairment(jitter_ms=20.0, reorder=0.05, seed=11)
    sent, arrivals, run = scenario(imp)
    arrival_order = [a.packet.seq for a in arrivals]
    assert arrival_order != sorted(arrival_order)  # the trace really reorders
    # Packets held back 1-3 frames arrive after their turn unless the delay covers them;
    # the target grows to cover most of them.
    assert run.stats.lost <= 0.05 * len(sent)


def test_duplicates_are_counted_and_played_once() -> None:
    imp = Impairment(jitter_ms=20.0, duplicate=0.10, seed=5)
    sent, arrivals, run = scenario(imp)
    copies = len(arrivals) - len({a.packet.seq for a in arrivals})
    assert copies > 50
    assert run.stats.duplicates == copies
    assert run.stats.played + run.stats.lost + run.stats.dropped_frames == len(sent)


def test_packet_after_its_turn_is_a_late_drop() -> None:
    sent = talk_stream(100)
    arrivals = impair(sent, Impairment(jitter_ms=0.0))
    late = next(a for a in arrivals if a.packet.frame == 50)
    arrivals = [a for a in arrivals if a is not late] + [Arrival(late.time + 0.5, late.packet)]
    arrivals.sort(key=lambda a: a.time)
    run = replay(arrivals, ticks_for(sent), quiet_every=0)
    assert run.stats.late_drops == 1
    assert run.stats.lost == 1
    assert sent[50].seq not in run.played


def test_compress_skips_a_quiet_frame_only_above_target() -> None:
    jb = JitterBuffer(
        8000, 160, min_delay_ms=20, initial_delay_ms=100, max_delay_ms=200, capacity=512
    )
    for i in range(10):
        jb.push(RtpPacket(0, i, 160 * i, 5, payload=PAYLOAD), 0.02 * i)
    first = jb.pop(0.12)
    assert first.kind is JitterKind.PLAY
    assert jb.compress(0.12) is None  # within a frame of the ~107 ms target: keep it
    # Later lateness evidence shrinks the target; the 100 ms delay is then above the band.
    for i in range(10, 400):
        jb.push(RtpPacket(0, i, 160 * i, 5, payload=PAYLOAD), 0.02 * i)
    assert jb.target_delay_ms < 50
    r = jb.pop(0.14)
    assert r.packet is not None and r.packet.sequence_number == 1
    skipped = jb.compress(0.14)
    assert skipped is not None and skipped.packet is not None
    assert skipped.packet.sequence_number == 2
    s = jb.stats
    assert (s.played, s.dropped_frames) == (2, 1)
    assert jb.delay_ms == pytest.approx(100.0, abs=1.0)


# -- wraps, resets, timeline jumps ------------------------------------------------------------


def test_sequence_and_timestamp_wrap() -> None:
    sent, arrivals, run = scenario(
        Impairment(jitter_ms=30.0, loss=0.02, seed=2),
        frames=800,
        seq0=65_200,
        ts0=0xFFFF_FFFF - 160 * 300,
    )
    assert any(p.seq < 100 for p in sent) and any(p.timestamp < 160 * 100 for p in sent)
    u = unwrap(run.played)
    assert u[-1] - u[0] > 700


def test_ssrc_change_resets_the_stream() -> None:
    a = talk_stream(300, ssrc=1, seq0=100, ts0=5_000)
    b = talk_stream(300, ssrc=2, seq0=40_000, ts0=9_999_999, start=a[-1].send_time + 0.020)
    sent = a + b
    arrivals = impair(sent, Impairment(jitter_ms=20.0, seed=4))
    run = replay(arrivals, ticks_for(sent))
    assert run.stats.resets == 1
    seqs = run.played
    played_a = [q for q in seqs if 100 <= q < 400]
    played_b = [q for q in seqs if q >= 40_000]
    assert seqs == played_a + played_b  # the old source ends before the new one starts
    assert len(played_a) + len(played_b) + run.stats.dropped_frames >= len(sent) - 3
    assert seqs[-1] == b[-1].seq
    # Only the switch itself may cost a frame or two, no stream of losses.
    assert run.kinds[JitterKind.LOSS] <= 2
    # A stray packet of the old source after the switch is dropped, not a second reset.
    jb = JitterBuffer(8000, 160)
    for p in a[:10]:
        jb.push(p.to_rtp(PAYLOAD), p.send_time)
    for p in b[:10]:
        jb.push(p.to_rtp(PAYLOAD), p.send_time + 1.0)
    jb.push(a[10].to_rtp(PAYLOAD), 1.5)
    assert jb.stats.resets == 1
    assert jb.stats.late_drops == 1


def test_timestamp_jump_without_marker_keeps_playing() -> None:
    sent = talk_stream(600)
    jumped = [
        p
        if i < 300
        else SentPacket(
            p.seq, (p.timestamp + 80_000_000) & 0xFFFFFFFF, p.ssrc, False, p.send_time, p.frame
        )
        for i, p in enumerate(sent)
    ]
    arrivals = impair(jumped, Impairment(jitter_ms=10.0, seed=1))
    run = replay(arrivals, ticks_for(sent))
    check_contract(run, jumped, arrivals)
    assert run.stats.played + run.stats.dropped_frames >= 595
    first = next(i for i, r in enumerate(run.results) if r.kind is JitterKind.PLAY)
    last = max(i for i, r in enumerate(run.results) if r.kind is JitterKind.PLAY)
    gap = [r for r in run.results[first:last] if r.kind is not JitterKind.PLAY]
    assert len(gap) <= 3


def test_sequence_jump_restarts_after_two_consecutive_packets() -> None:
    jb = JitterBuffer(8000, 160)
    t = 0.0
    for i in range(20):
        jb.push(RtpPacket(0, 100 + i, 160 * i, 7, payload=PAYLOAD), t + 0.02 * i)
    for i in range(20):
        jb.push(RtpPacket(0, 30_000 + i, 160 * (20 + i), 7, payload=PAYLOAD), 0.4 + 0.02 * i)
    s = jb.stats
    assert s.resets == 1
    assert s.buffered == 19  # the first packet of the jump is not believed, the rest are


# -- DTX and drift ----------------------------------------------------------------------------


def test_dtx_gaps_are_silence_not_loss() -> None:
    gaps = [(200, 260), (400, 700), (900, 905)]
    sent, arrivals, run = scenario(Impairment(jitter_ms=20.0, seed=9), frames=1200, silent=gaps)
    assert run.stats.lost == 0
    assert run.kinds[JitterKind.LOSS] == 0
    assert run.stats.played + run.stats.dropped_frames == len(sent)
    # The ~360 silent frames come out as silence; the only underruns are the last
    # packet's hangover at the very end of the trace.
    assert run.kinds[JitterKind.SILENCE] >= 350
    # (While a talkspurt's end is still indistinguishable from a network stall the buffer
    # says UNDERRUN for up to 4 ticks; once the next talkspurt shows it was DTX, the stats
    # count those ticks as silence.)
    assert run.stats.underruns <= 4
    assert run.stats.concealed_ms == 20.0 * (run.stats.underruns + run.stats.stretched_frames)
    check_delay(run)


@pytest.mark.parametrize("drift_ppm", [1000.0, -1000.0])
def test_sender_clock_drift_is_absorbed(drift_ppm: float) -> None:
    # 0.1 % over 60 s is 60 ms: three frames to drop or to insert.
    sent, arrivals, run = scenario(
        Impairment(jitter_ms=20.0, seed=6), frames=3000, drift_ppm=drift_ppm
    )
    assert run.stats.lost == 0
    if drift_ppm > 0:
        assert run.stats.dropped_frames >= 2
    else:
        assert run.stats.stretched_frames + run.stats.underruns >= 2
    check_delay(run)


# -- memory and robustness --------------------------------------------------------------------


def test_far_ahead_packets_never_grow_memory() -> None:
    jb = JitterBuffer(8000, 160)
    for i in range(10 * jb.capacity):
        jb.push(RtpPacket(0, (i * 37) & 0xFFFF, 160 * i, 1, payload=PAYLOAD), 0.001 * i)
        assert jb.stats.buffered <= jb.capacity


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(8000, 160, min_delay_ms=100, max_delay_ms=50)
    with pytest.raises(ValueError):
        JitterBuffer(8000, 160, capacity=48)
    with pytest.raises(ValueError):
        JitterBuffer(0, 160)


_packet = st.builds(
    RtpPacket,
    payload_type=st.just(0),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.sampled_from([1, 2, 3]),
    marker=st.booleans(),
    payload=st.just(b"\x00" * 4),
)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), _packet, st.floats(0.0, 0.5)),
        st.tuples(st.just("pop"), st.booleans(), st.floats(0.0, 0.1)),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_arbitrary_push_pop_never_raises_or_overflows(
    ops: list[tuple[str, RtpPacket | bool, float]],
) -> None:
    jb = JitterBuffer(8000, 160, capacity=32)
    now = 0.0
    for op, arg, dt in ops:
        if op == "push":
            assert isinstance(arg, RtpPacket)
            jb.push(arg, now + dt)
        else:
            now += dt
            r = jb.pop(now, quiet=bool(arg))
            assert isinstance(r.kind, JitterKind)
        s = jb.stats
        assert 0 <= s.buffered <= jb.capacity
        assert 20.0 <= s.target_delay_ms <= 200.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.floats(0.0, 0.3)), min_size=1, max_size=200),
    st.integers(0, 0xFFFF),
)
def test_arbitrary_arrival_orders_play_in_sequence_order(
    order: list[tuple[int, float]], seq0: int
) -> None:
    jb = JitterBuffer(8000, 160)
    played: list[int] = []
    now = 0.0
    for k, jitter in order:
        jb.push(RtpPacket(0, (seq0 + k) & 0xFFFF, 160 * k, 9, payload=PAYLOAD), now + jitter)
        now += 0.02
        r = jb.pop(now)
        if r.packet is not None:
            played.append(r.packet.sequence_number)
    u = unwrap(played)
    assert all(b > a for a, b in zip(u, u[1:], strict=False))


# -- the trace generator itself ---------------------------------------------------------------


def test_impairment_is_deterministic_and_hits_its_rates() -> None:
    sent = talk_stream(20_000)
    imp = Impairment(loss=0.10, burst=3.0, jitter_ms=60.0, duplicate=0.05, seed=42)
    a = impair(sent, imp)
    assert a == impair(sent, imp)
    assert a != impair(sent, Impairment(loss=0.10, burst=3.0, jitter_ms=60.0, seed=43))
    unique = {x.packet.seq for x in a}
    assert 1.0 - len(unique) / len(sent) == pytest.approx(0.10, abs=0.015)
    # Mean burst length of the Gilbert-Elliott losses.
    frames = sorted(x.packet.frame for x in a)
    gaps = [b - a - 1 for a, b in zip(frames, frames[1:], strict=False) if b - a > 1]
    assert sum(gaps) / len(gaps) == pytest.approx(3.0, rel=0.15)
    assert (len(a) - len(unique)) / len(unique) == pytest.approx(0.05, abs=0.01)
    queueing = [x.time - x.packet.send_time - 0.030 for x in a]
    assert min(queueing) >= -1e-9 and max(queueing) <= 0.060 + 0.011
