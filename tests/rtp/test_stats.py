"""ReceiverStats / SenderStats against RFC 3550 A.1, A.3, A.8 and hand-computed values."""

from __future__ import annotations

import pytest

from voxgate.rtp.rtcp import ReportBlock
from voxgate.rtp.stats import (
    NTP_UNIX_OFFSET,
    ReceiverStats,
    SenderStats,
    ntp_from_unix,
    ntp_middle32,
    round_trip_time,
    unix_from_ntp,
)


def feed(stats: ReceiverStats, seqs: list[int], ts_step: int = 160) -> list[bool]:
    """Feed sequence numbers with timestamps and arrivals that carry no jitter."""
    out = []
    for seq in seqs:
        out.append(stats.update(seq, (seq * ts_step) & 0xFFFF_FFFF, seq * ts_step / 8000))
    return out


def test_probation_first_packet_not_counted() -> None:
    stats = ReceiverStats(ssrc=1, clock_rate=8000)
    assert stats.expected == 0
    assert feed(stats, [100]) == [False]
    assert stats.received == 0
    assert stats.expected == 0
    assert feed(stats, [101, 102]) == [True, True]
    assert (stats.received, stats.expected, stats.cumulative_lost) == (2, 2, 0)


def test_probation_restarts_on_non_sequential() -> None:
    stats = ReceiverStats(1, 8000)
    assert feed(stats, [100, 200, 201, 202]) == [False, False, True, True]
    assert stats.extended_max_seq == 202
    assert stats.expected == 2


def test_sequence_wrap_extends_with_cycles() -> None:
    stats = ReceiverStats(1, 8000)
    assert all(feed(stats, [65533, 65534, 65535, 0, 1, 2])[1:])
    assert stats.extended_max_seq == 65536 + 2
    assert (stats.received, stats.expected, stats.cumulative_lost) == (5, 5, 0)
    block = stats.report_block(now=0.0)
    assert block.highest_sequence == 0x0001_0002
    assert block.fraction_lost == 0


def test_wrap_with_reordering_across_the_boundary() -> None:
    stats = ReceiverStats(1, 8000)
    results = feed(stats, [65532, 65533, 65534, 0, 65535, 1])
    assert results == [False, True, True, True, True, True]
    assert stats.extended_max_seq == 65536 + 1
    assert stats.cumulative_lost == 0


def test_reordering_within_window_is_not_loss() -> None:
    stats = ReceiverStats(1, 8000)
    assert feed(stats, [100, 101, 103, 102, 104]) == [False, True, True, True, True]
    assert stats.extended_max_seq == 104
    assert (stats.expected, stats.received, stats.cumulative_lost) == (4, 4, 0)


def test_duplicates_make_cumulative_loss_negative() -> None:
    stats = ReceiverStats(1, 8000)
    feed(stats, [100, 101, 102, 102, 103, 103])
    assert (stats.expected, stats.received) == (3, 5)
    assert stats.cumulative_lost == -2
    block = stats.report_block(now=0.0)
    assert block.packets_lost == -2
    assert block.fraction_lost == 0  # negative interval loss reports 0 (A.3)


def test_loss_fraction_and_intervals() -> None:
    stats = ReceiverStats(7, 8000)
    feed(stats, [s for s in range(100, 120) if s not in (105, 110)])
    assert (stats.expected, stats.received) == (19, 17)
    block = stats.report_block(now=1.0)
    assert block.ssrc == 7
    assert block.packets_lost == 2
    assert block.fraction_lost == (2 << 8) // 19  # 26, i.e. 10.2 %
    # Next interval without loss: fraction resets, cumulative loss stays.
    feed(stats, list(range(120, 130)))
    block = stats.report_block(now=2.0)
    assert (block.fraction_lost, block.packets_lost) == (0, 2)
    # Interval with nothing received: fraction 0 (expected_interval == 0).
    assert stats.report_block(now=3.0).fraction_lost == 0


def test_interval_with_heavy_loss() -> None:
    stats = ReceiverStats(1, 8000)
    feed(stats, [100, 101])
    stats.report_block(now=0.0)
    feed(stats, [105])  # expected 4 more (102..105), received 1
    assert stats.report_block(now=1.0).fraction_lost == (3 << 8) // 4


def test_late_packet_beyond_misorder_rejected_and_restart_resyncs() -> None:
    stats = ReceiverStats(1, 8000)
    feed(stats, list(range(5000, 5010)))
    assert feed(stats, [5009 - 50]) == [True]  # late but within MAX_MISORDER
    assert feed(stats, [5009 - 200]) == [False]  # too late: treated as a jump
    # A jump of >= MAX_DROPOUT is rejected once, then accepted when the next follows on.
    assert feed(stats, [40000]) == [False]
    assert feed(stats, [40001, 40002]) == [True, True]
    assert (stats.received, stats.expected, stats.extended_max_seq) == (2, 2, 40002)


def test_forward_gap_below_dropout_is_loss() -> None:
    stats = ReceiverStats(1, 8000)
    feed(stats, [10, 11])
    assert feed(stats, [11 + 2999]) == [True]
    assert stats.cumulative_lost == 2998


def test_jitter_hand_computed_a8() -> None:
    # 20 ms PCMU packets (160 timestamp units); arrivals in seconds.
    # Seq 10 is in probation (not counted); seq 11 sets transit = 0.02*8000 - 160 = 0.
    #   seq 12: transit 320 - 320 = 0,  D = 0,  J = 0
    #   seq 13: transit 520 - 480 = 40, D = 40, J = 0 + (40 - 0)/16 = 2.5
    #   seq 14: transit 640 - 640 = 0,  D = 40, J = 2.5 + (40 - 2.5)/16 = 4.84375
    stats = ReceiverStats(1, 8000)
    arrivals = [0.000, 0.020, 0.040, 0.065, 0.080]
    for i, arrival in enumerate(arrivals):
        stats.update(10 + i, 160 * i, arrival)
    assert stats.jitter == pytest.approx(4.84375)
    assert stats.report_block(now=1.0).jitter == 4


def test_jitter_zero_for_perfect_timing_across_timestamp_wrap() -> None:
    stats = ReceiverStats(1, 8000)
    base = 2**32 - 480
    for i in range(10):
        stats.update(i, (base + 160 * i) & 0xFFFF_FFFF, 100.0 + 0.02 * i)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_report_block_lsr_dlsr() -> None:
    stats = ReceiverStats(1, 8000)
    feed(stats, [1, 2, 3])
    block = stats.report_block(now=10.5, last_sr_ntp_middle32=0x12345678, last_sr_arrival=10.0)
    assert block.lsr == 0x12345678
    assert block.dlsr == 32768  # 0.5 s in 1/65536 s units
    no_sr = stats.report_block(now=10.5)
    assert (no_sr.lsr, no_sr.dlsr) == (0, 0)


def test_ntp_helpers() -> None:
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET << 32
    assert ntp_from_unix(1.5) == ((NTP_UNIX_OFFSET + 1) << 32) | (1 << 31)
    assert unix_from_ntp(ntp_from_unix(1_700_000_000.25)) == pytest.approx(1_700_000_000.25)
    assert ntp_middle32(0x1122_3344_5566_7788) == 0x3344_5566


def test_round_trip_time_from_our_sr_and_their_rr() -> None:
    sender = SenderStats(ssrc=0xAA, clock_rate=8000)
    sr = sender.sender_report(now_unix=1_700_000_000.0)
    # The peer receives the SR 50 ms later, holds it 250 ms, its RR reaches us 50 ms later.
    peer = ReceiverStats(0xAA, 8000)
    feed(peer, [1, 2, 3])
    block = peer.report_block(
        now=5.25, last_sr_ntp_middle32=ntp_middle32(sr.ntp_timestamp), last_sr_arrival=5.0
    )
    rtt = round_trip_time(1_700_000_000.35, block)
    assert rtt == pytest.approx(0.1, abs=1e-4)


def test_round_trip_time_without_sr_and_negative() -> None:
    assert round_trip_time(1.0, ReportBlock(1, 0, 0, 0, 0, lsr=0, dlsr=0)) is None
    lsr = ntp_middle32(ntp_from_unix(1_000.0))
    assert round_trip_time(1_000.0, ReportBlock(1, 0, 0, 0, 0, lsr=lsr, dlsr=655)) == 0.0


def test_sender_stats_counts_and_extrapolated_timestamp() -> None:
    sender = SenderStats(ssrc=5, clock_rate=8000)
    assert not sender.has_sent
    assert sender.sender_report(now_unix=10.0).rtp_timestamp == 0
    for i in range(3):
        sender.on_packet_sent(160, rtp_timestamp=1000 + 160 * i, now=100.0 + 0.02 * i)
    assert sender.has_sent
    sr = sender.sender_report(now_unix=1_700_000_000.0, now=100.05)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (5, 3, 480)
    assert sr.rtp_timestamp == 1000 + 320 + 80  # 10 ms after the last packet
    assert sr.ntp_timestamp == ntp_from_unix(1_700_000_000.0)
