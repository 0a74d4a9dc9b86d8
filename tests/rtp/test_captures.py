"""Real packets captured from sipp (Debian sip-tester's bundled pcaps), parsed field by field."""

from __future__ import annotations

import pytest
from aiortc import rtp as aiortc_rtp

from voxgate.rtp import RtpPacket
from voxgate.rtp.dtmf import TelephoneEvent

from .captures import load, load_datagrams


def test_pcma_packet_fields() -> None:
    data = load("pcma_packet.bin")
    p = RtpPacket.parse(data)
    assert p.payload_type == 8
    assert p.sequence_number == 59133
    assert p.timestamp == 240
    assert p.ssrc == 0xDEE0EE8F
    assert p.marker is True  # first packet of the talkspurt
    assert (p.csrc, p.extension, p.padding_size) == ((), None, 0)
    assert len(p.payload) == 240  # 30 ms of 8 kHz A-law
    assert bytes(p) == data


def test_pcma_stream_is_contiguous() -> None:
    packets = [RtpPacket.parse(d) for d in load_datagrams("g711a_first5.rtps")]
    assert [p.sequence_number for p in packets] == list(range(59133, 59138))
    assert [p.timestamp for p in packets] == [240 * (i + 1) for i in range(5)]
    assert [p.marker for p in packets] == [True, False, False, False, False]


def test_pcma_agrees_with_aiortc() -> None:
    for data in load_datagrams("g711a_first5.rtps"):
        ours, theirs = RtpPacket.parse(data), aiortc_rtp.RtpPacket.parse(data)
        assert (ours.payload_type, ours.sequence_number, ours.timestamp, ours.ssrc) == (
            theirs.payload_type, theirs.sequence_number, theirs.timestamp, theirs.ssrc,
        )
        assert ours.payload == theirs.payload


@pytest.mark.parametrize(("name", "code"), [("1", 1), ("9", 9), ("star", 10), ("pound", 11)])
def test_rfc4733_capture_fields(name: str, code: int) -> None:
    packets = [RtpPacket.parse(d) for d in load_datagrams(f"dtmf_2833_{name}.rtps")]
    assert len(packets) == 10
    assert {p.payload_type for p in packets} == {101}
    assert len({p.timestamp for p in packets}) == 1  # one event, one timestamp
    assert [p.marker for p in packets] == [True] + [False] * 9
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert {e.event for e in events} == {code}
    assert {e.volume for e in events} == {10}
    assert [e.end for e in events] == [False] * 7 + [True] * 3  # three end packets
    assert [e.duration for e in events] == [320 * i for i in range(8)] + [2240, 2240]
    assert all(bytes(e) == p.payload for e, p in zip(events, packets, strict=True))
