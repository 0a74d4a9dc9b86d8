"""The send clock and packetizer on a virtual clock: exact over a ten-minute call."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.audio.codecs import get_decoder, get_encoder
from voxgate.rtp.dtmf import DtmfReceiver
from voxgate.sip.rtp_stream import PacketClock, RtpSender, SharedClock

TEN_MINUTES = 30_000  # 20 ms packets


def test_ten_minutes_of_ticks_have_no_drift() -> None:
    """Wake-ups that are always a little late never shift later deadlines."""
    t0 = 1234.5678
    clock = PacketClock(t0, 0.02)
    sender = RtpSender(get_encoder("PCMU"), 0, pcm_rate=8000, ssrc=1, sequence=65000, timestamp=2**32 - 800)
    rng = np.random.default_rng(7)
    sent_at: list[float] = []
    stamps: list[int] = []
    seqs: list[int] = []
    now = t0
    while len(sent_at) < TEN_MINUTES:
        now = clock.due() + float(rng.uniform(0.0, 0.004))  # 0-4 ms late, every time
        while (n := clock.take(now)) is not None:
            for packet in sender.packets(n, None, now):
                sent_at.append(clock.due(n))
                stamps.append(packet.timestamp)
                seqs.append(packet.sequence_number)
    n = np.arange(TEN_MINUTES)
    assert np.array_equal(np.array(sent_at), t0 + n * 0.02)
    assert stamps == [int(x) for x in (2**32 - 800 + n * 160) % 2**32]
    assert seqs == [int(x) for x in (65000 + n) % 2**16]
    assert clock.skipped == 0
    assert clock.due() == t0 + TEN_MINUTES * 0.02


def test_stall_skips_missed_packets_instead_of_bursting() -> None:
    clock = PacketClock(0.0, 0.02, max_late=0.2)
    assert clock.take(0.0) == 0
    assert clock.take(0.01) is None
    # The loop was blocked for a second: no burst of 50 packets, the schedule resumes.
    assert clock.take(1.0) == 50
    assert clock.take(1.0) is None
    assert clock.skipped == 49
    assert clock.due() == pytest.approx(1.02)
    # A small delay (under max_late) sends the missed packets back to back.
    assert [clock.take(1.09) for _ in range(5)] == [51, 52, 53, 54, None]


def test_sender_encodes_and_resamples_frames() -> None:
    sender = RtpSender(get_encoder("PCMA"), 8, pcm_rate=16000, ssrc=5, sequence=0, timestamp=0)
    t = np.arange(320) / 16000
    pcm = (8000 * np.sin(2 * np.pi * 400 * t)).astype(np.int16)
    first = sender.packets(0, pcm, 0.0)[0]
    second = sender.packets(1, pcm, 0.02)[0]
    assert first.marker and not second.marker
    assert (first.payload_type, len(first.payload), second.timestamp) == (8, 160, 160)
    decoded = get_decoder("PCMA").decode(second.payload)
    assert np.abs(decoded).max() > 4000
    with pytest.raises(ValueError):
        sender.packets(2, pcm[:100], 0.04)


def test_dtmf_replaces_audio_and_decodes_once_per_digit() -> None:
    sender = RtpSender(
        get_encoder("PCMU"), 0, pcm_rate=8000, dtmf_payload_type=101, ssrc=9, sequence=10,
        timestamp=1000,
    )  # fmt: skip
    sender.queue_dtmf("4#", duration=0.1, gap=0.06)
    receiver = DtmfReceiver(101)
    digits: list[str] = []
    kinds: list[int] = []
    seqs: list[int] = []
    for n in range(40):
        for packet in sender.packets(n, None, n * 0.02):
            kinds.append(packet.payload_type)
            seqs.append(packet.sequence_number)
            digits += [e.digit for e in receiver.receive(packet, n * 0.02)]
    assert digits == ["4", "#"]
    assert seqs == list(range(10, 10 + len(seqs)))  # one sequence space, no gaps
    assert kinds[0] == 101 and kinds[-1] == 0
    assert not sender.dtmf_pending


def test_dtmf_needs_negotiated_telephone_event() -> None:
    sender = RtpSender(get_encoder("PCMU"), 0, pcm_rate=8000)
    with pytest.raises(ValueError):
        sender.queue_dtmf("1")


def test_early_wakeup_within_slack_sends_without_shifting_the_schedule() -> None:
    clock = PacketClock(10.0, 0.02, early=0.001)
    assert clock.take(10.0) == 0
    assert clock.take(10.0185) is None  # 1.5 ms early: sleep again
    assert clock.take(10.0192) == 1  # 0.8 ms early: send now
    assert clock.due() == pytest.approx(10.04)  # the next deadline is unchanged


def test_shared_clock_paces_every_member_exactly_for_ten_minutes() -> None:
    """Seven streams on four phase-staggered slots, woken 0-4 ms late every time: each
    stream's packet n leaves at the first wake-up at or after its own t0 + n * 20 ms, with
    no gaps, no bursts beyond the lateness and no drift over 30,000 packets."""
    origin = 500.25
    shared: SharedClock[int] = SharedClock(origin, 0.02, slots=4)
    rng = np.random.default_rng(11)
    clocks: dict[int, PacketClock] = {}
    sent: dict[int, list[tuple[int, float]]] = {}
    now = origin
    wakeups = 0
    while not sent or min(len(v) for v in sent.values()) < TEN_MINUTES:
        if len(clocks) < 7 and wakeups % 3 == 0:  # streams join over the first wake-ups
            m = len(clocks)
            clocks[m] = shared.join(m, now)
            sent[m] = []
        due = shared.next_due()
        assert due is not None
        now = max(now, due + float(rng.uniform(0.0, 0.004)))
        wakeups += 1
        for m in shared.due(now):
            while (n := clocks[m].take(now)) is not None:
                sent[m].append((n, now))
    # Seven streams on four slots: the least loaded slot is always taken.
    t0s = sorted({c.t0 for c in clocks.values()})
    assert t0s == [pytest.approx(origin + k * 0.005) for k in range(4)]
    assert sorted([c.t0 for c in clocks.values()].count(t) for t in t0s) == [1, 2, 2, 2]
    for m, packets in sent.items():
        clock = clocks[m]
        ns = np.array([n for n, _ in packets])
        at = np.array([t for _, t in packets])
        first = int(ns[0])
        assert np.array_equal(ns, np.arange(first, first + ns.size))  # no gap, no repeat
        due_times = clock.t0 + ns * 0.02
        late = at - due_times
        assert late.min() >= 0.0 and late.max() <= 0.004 + 1e-9  # sent within its wake-up
        assert clock.skipped == 0
    # Wake-ups scale with slots, not with streams: at most 4 per 20 ms (plus the joins).
    assert wakeups <= 4 * (TEN_MINUTES + 50)


def test_shared_clock_member_deadlines_equal_their_slot_ticks() -> None:
    shared: SharedClock[str] = SharedClock(10.0, 0.02, slots=2, early=0.001)
    a = shared.join("a", 10.0)
    b = shared.join("b", 10.003)  # the empty slot 1 (t0 10.01): first tick at 10.01
    assert (a.t0, a.due()) == (10.0, 10.0)
    assert (b.t0, b.due()) == (10.01, 10.01)
    assert shared.next_due() == 10.0
    assert shared.due(10.0) == ["a"]
    assert a.take(10.0) == 0
    assert shared.due(10.0) == []  # slot 0 already ticked
    assert shared.next_due() == 10.01
    assert shared.due(10.0092) == ["b"]  # 0.8 ms early: within the timer slack
    assert b.take(10.0092) == b.n - 1
    # A late joiner to a running slot starts at the slot's next tick, on the same grid.
    c = shared.join("c", 10.015)
    assert c.t0 == 10.0 and c.due() == a.due() == 10.02
    shared.leave("a")
    shared.leave("c")
    assert shared.next_due() == pytest.approx(10.03)
    shared.leave("b")
    assert shared.next_due() is None and len(shared) == 0


def test_shared_clock_idle_slot_restarts_at_the_next_tick_and_stalls_skip() -> None:
    shared: SharedClock[str] = SharedClock(0.0, 0.02, slots=1, max_late=0.2)
    a = shared.join("a", 0.0)
    assert shared.due(0.0) == ["a"] and a.take(0.0) == 0
    # The loop stalls for a second: the slot wakes once, the member skips like a lone clock.
    assert shared.due(1.0) == ["a"]
    assert a.take(1.0) == 50 and a.take(1.0) is None and a.skipped == 49
    shared.leave("a")
    b = shared.join("b", 5.001)  # the slot stood still while empty: next tick after now
    assert b.due() == pytest.approx(5.02) and b.t0 == 0.0


def test_wire_bytes_equal_serialized_packets_with_audio_silence_and_dtmf() -> None:
    def make() -> RtpSender:
        return RtpSender(
            get_encoder("PCMU"), 0, pcm_rate=16000, dtmf_payload_type=101, ssrc=77,
            sequence=65530, timestamp=2**32 - 320,
        )  # fmt: skip

    a, b = make(), make()
    t = np.arange(320) / 16000
    pcm = (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    for n in range(60):
        if n == 20:
            a.queue_dtmf("5")
            b.queue_dtmf("5")
        frame = None if n % 7 == 3 else pcm
        assert a.wire(n, frame, n * 0.02) == [p.serialize() for p in b.packets(n, frame, n * 0.02)]
    assert (a.sequence, a.stats.packet_count, a.stats.octet_count) == (
        b.sequence, b.stats.packet_count, b.stats.octet_count,
    )  # fmt: skip
