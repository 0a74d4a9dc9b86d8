"""RFC 4733 telephone-events: payload codec, sender schedule and exactly-once receiver."""

from __future__ import annotations

import random

import pytest

from voxgate.errors import ParseError
from voxgate.rtp import RtpPacket, RtpParseError
from voxgate.rtp.dtmf import (
    DtmfEvent,
    DtmfParseError,
    DtmfReceiver,
    DtmfSender,
    ScheduledPacket,
    TelephoneEvent,
    digit_to_event,
    event_to_digit,
)

from .captures import load_datagrams


def test_telephone_event_wire_format() -> None:
    ev = TelephoneEvent(event=11, end=True, volume=10, duration=2240)
    assert ev.serialize() == bytes((11, 0x8A, 0x08, 0xC0))
    assert TelephoneEvent.parse(bytes((11, 0x8A, 0x08, 0xC0))) == ev
    # Reserved bit ignored on parse.
    assert TelephoneEvent.parse(bytes((1, 0x4A, 0, 0))) == TelephoneEvent(1, False, 10, 0)


def test_telephone_event_errors() -> None:
    with pytest.raises(DtmfParseError) as info:
        TelephoneEvent.parse(b"\x01\x0a\x00")
    assert isinstance(info.value, RtpParseError)
    assert isinstance(info.value, ParseError)
    assert info.value.protocol == "dtmf"
    for bad in (TelephoneEvent(256), TelephoneEvent(1, volume=64), TelephoneEvent(1, duration=-1)):
        with pytest.raises(ValueError):
            bad.serialize()


def test_digit_mapping() -> None:
    assert [digit_to_event(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert digit_to_event("a") == 12
    assert event_to_digit(11) == "#"
    assert event_to_digit(16) is None
    for bad in ("E", "", "12", "x"):
        with pytest.raises(ValueError):
            digit_to_event(bad)


def _events(plan: list[ScheduledPacket]) -> list[TelephoneEvent]:
    return [TelephoneEvent.parse(s.packet.payload) for s in plan]


def test_sender_schedule_short_digit() -> None:
    sender = DtmfSender(ssrc=42, payload_type=101, clock_rate=8000, interval=0.05)
    plan = sender.packets("5", 0.2, timestamp=1000, sequence_number=65534)
    # 200 ms in 50 ms updates: 400, 800, 1200, then end (1600) three times.
    assert [s.offset for s in plan] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    assert [e.duration for e in _events(plan)] == [400, 800, 1200, 1600, 1600, 1600]
    assert [e.end for e in _events(plan)] == [False] * 3 + [True] * 3
    assert {e.event for e in _events(plan)} == {5}
    packets = [s.packet for s in plan]
    assert [p.marker for p in packets] == [True] + [False] * 5
    assert {p.timestamp for p in packets} == {1000}
    assert {(p.ssrc, p.payload_type) for p in packets} == {(42, 101)}
    # New sequence number for every packet, retransmissions included, wrapping at 16 bits.
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1, 2, 3]


def test_sender_duration_not_multiple_of_interval() -> None:
    plan = DtmfSender(1, interval=0.02).packets("#", 0.05, timestamp=0, sequence_number=0)
    assert [e.duration for e in _events(plan)] == [160, 320, 400, 400, 400]


def test_sender_long_event_is_segmented() -> None:
    # 20 s at 8 kHz = 160000 units: segments of 65535, 65535, 28930.
    sender = DtmfSender(7, clock_rate=8000, interval=0.05)
    plan = sender.packets("0", 20.0, timestamp=2**32 - 100, sequence_number=0)
    packets = [s.packet for s in plan]
    events = _events(plan)
    starts = [(2**32 - 100 + k * 65535) & 0xFFFF_FFFF for k in range(3)]
    assert sorted({p.timestamp for p in packets}) == sorted(starts)
    assert sum(p.marker for p in packets) == 1 and packets[0].marker
    for start in starts[:2]:  # closed segments end at 0xFFFF without the end bit
        seg = [e for p, e in zip(packets, events, strict=True) if p.timestamp == start]
        assert max(e.duration for e in seg) == 0xFFFF
        assert not any(e.end for e in seg)
    last = [e for p, e in zip(packets, events, strict=True) if p.timestamp == starts[2]]
    assert [e.duration for e in last[-3:]] == [160000 - 2 * 65535] * 3
    assert all(e.end for e in last[-3:])
    assert [p.sequence_number for p in packets] == list(range(len(packets)))
    offsets = [s.offset for s in plan]
    assert offsets == sorted(offsets)


def test_sender_rejects_bad_digit() -> None:
    with pytest.raises(ValueError):
        DtmfSender(1).packets("E", 0.1, timestamp=0, sequence_number=0)


def _feed(receiver: DtmfReceiver, packets: list[RtpPacket], t0: float = 0.0) -> list[DtmfEvent]:
    out = []
    for i, p in enumerate(packets):
        out += receiver.receive(p, now=t0 + 0.02 * i)
    return out


@pytest.mark.parametrize(("name", "digit"), [("1", "1"), ("9", "9"), ("star", "*"), ("pound", "#")])
def test_receiver_captured_digit_reported_once(name: str, digit: str) -> None:
    packets = [RtpPacket.parse(d) for d in load_datagrams(f"dtmf_2833_{name}.rtps")]
    receiver = DtmfReceiver(payload_type=101, clock_rate=8000)
    events = _feed(receiver, packets)
    assert len(events) == 1
    event = events[0]
    assert event.digit == digit
    assert event.end_received
    assert event.duration == 2240
    assert event.duration_seconds == pytest.approx(0.28)
    assert event.timestamp == packets[0].timestamp
    assert receiver.next_timeout() is None
    assert receiver.poll(now=100.0) == []


def _plan(digit: str, ts: int, seq: int, duration: float = 0.2) -> list[RtpPacket]:
    return [s.packet for s in DtmfSender(9).packets(digit, duration, timestamp=ts, sequence_number=seq)]


def test_receiver_lost_start_and_reordering() -> None:
    packets = _plan("7", 5000, 10)
    mangled = [packets[2], packets[1], packets[4], packets[3], packets[5]]  # start lost
    events = _feed(DtmfReceiver(), mangled)
    assert [(e.digit, e.duration, e.end_received) for e in events] == [("7", 1600, True)]


def test_receiver_only_end_packets() -> None:
    events = _feed(DtmfReceiver(), _plan("A", 0, 0)[-2:])
    assert [(e.digit, e.end_received) for e in events] == [("A", True)]


def test_receiver_late_update_after_end_ignored() -> None:
    packets = _plan("3", 800, 0)
    receiver = DtmfReceiver()
    assert len(_feed(receiver, packets[3:])) == 1
    assert _feed(receiver, packets[:3], t0=1.0) == []


def test_receiver_timeout_when_end_lost() -> None:
    receiver = DtmfReceiver(timeout=0.5)
    packets = _plan("8", 160, 0)[:3]  # every end packet lost
    assert _feed(receiver, packets, t0=10.0) == []
    deadline = receiver.next_timeout()
    assert deadline == pytest.approx(10.04 + 0.5)
    assert receiver.poll(now=10.3) == []
    (event,) = receiver.poll(now=deadline)
    assert (event.digit, event.duration, event.end_received) == ("8", 1200, False)
    assert receiver.next_timeout() is None
    # A straggler of the timed-out event must not report it again.
    assert receiver.receive(_plan("8", 160, 0)[-1], now=11.0) == []


def test_receiver_new_event_closes_unfinished_one() -> None:
    receiver = DtmfReceiver()
    first = _plan("1", 0, 0)[:2]
    second = _plan("2", 4000, 10)
    events = _feed(receiver, first + second)
    assert [(e.digit, e.end_received) for e in events] == [("1", False), ("2", True)]


def test_receiver_repeated_same_digit_is_two_events() -> None:
    events = _feed(DtmfReceiver(), _plan("5", 0, 0) + _plan("5", 3200, 6))
    assert [(e.digit, e.timestamp) for e in events] == [("5", 0), ("5", 3200)]


def test_receiver_ignores_other_payload_types_and_non_dtmf_events() -> None:
    receiver = DtmfReceiver(payload_type=101)
    assert receiver.receive(RtpPacket(0, 1, 160, 9, payload=b"\xff" * 160), now=0.0) == []
    flash = RtpPacket(101, 2, 320, 9, payload=TelephoneEvent(16, True).serialize())
    assert receiver.receive(flash, now=0.0) == []
    with pytest.raises(DtmfParseError):
        receiver.receive(RtpPacket(101, 3, 480, 9, payload=b"\x01"), now=0.0)


def test_receiver_long_event_is_one_digit() -> None:
    packets = _plan("9", 2**32 - 1000, 0, duration=20.0)
    events = _feed(DtmfReceiver(), packets)
    assert [(e.digit, e.duration, e.end_received) for e in events] == [("9", 160000, True)]
    assert events[0].timestamp == 2**32 - 1000


def test_receiver_sequence_of_digits_with_shuffled_arrival() -> None:
    rng = random.Random(4733)
    digits = "0123456789*#ABCD"
    stream: list[RtpPacket] = []
    ts = seq = 0
    for d in digits:
        plan = _plan(d, ts, seq, duration=0.1)
        # Shuffle within each event (reordering), drop one random non-final packet.
        body = plan[:-1]
        body.pop(rng.randrange(len(body)))
        rng.shuffle(body)
        stream += body + [plan[-1]]
        ts += 8000
        seq += len(plan)
    events = _feed(DtmfReceiver(), stream)
    assert "".join(e.digit for e in events) == digits
