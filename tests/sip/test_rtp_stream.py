"""The send clock and packetizer on a virtual clock: exact over a ten-minute call."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.audio.codecs import get_decoder, get_encoder
from voxgate.rtp.dtmf import DtmfReceiver
from voxgate.sip.rtp_stream import PacketClock, RtpSender

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
