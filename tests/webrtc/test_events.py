"""EventChannel buffering and the edge-agnostic publish() hook; ICE address policy."""

from __future__ import annotations

import math

import pytest

from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession, UnsupportedControl
from voxgate.webrtc._ice import IcePolicy
from voxgate.webrtc._peer import answer_codec
from voxgate.webrtc.events import EventChannel, attach, channel_for, publish


def session() -> CallSession:
    return CallSession("local", PlayoutBuffer(16000), UnsupportedControl("local"), 16000)


def test_events_before_open_are_flushed_in_order() -> None:
    ch = EventChannel()
    assert ch.publish({"type": "a", "n": 1}) and ch.publish({"type": "b"})
    sent: list[str] = []
    ch.open(sent.append)
    ch.publish({"type": "c"})
    assert sent == ['{"type":"a","n":1}', '{"type":"b"}', '{"type":"c"}']


def test_pending_events_are_bounded() -> None:
    ch = EventChannel(max_pending=2)
    for i in range(5):
        ch.publish({"type": "x", "i": i})
    sent: list[str] = []
    ch.open(sent.append)
    assert sent == ['{"type":"x","i":3}', '{"type":"x","i":4}'] and ch.dropped == 3


def test_bad_events() -> None:
    ch = EventChannel()
    with pytest.raises(ValueError):
        ch.publish({"text": "no type"})
    assert ch.publish({"type": "turn", "latency_ms": math.nan}) is False


def test_failing_transport_closes_channel_without_raising() -> None:
    def broken(text: str) -> None:
        raise ConnectionError("gone")

    ch = EventChannel()
    ch.open(broken)
    assert ch.publish({"type": "x"}) is False
    assert ch.publish({"type": "x"}) is False and not ch.is_open


def test_publish_is_a_noop_without_a_channel() -> None:
    s = session()
    assert publish(s, {"type": "transcript", "text": "hi"}) is False
    ch = EventChannel()
    attach(s, ch)
    assert channel_for(s) is ch and publish(s, {"type": "transcript", "text": "hi"})
    assert ch.published == 1


def test_ice_policy_adds_loopback_and_can_pin_addresses() -> None:
    assert IcePolicy().choose(["192.0.2.2"]) == ["192.0.2.2", "127.0.0.1"]
    assert IcePolicy(loopback=False).choose(["192.0.2.2"]) == ["192.0.2.2"]
    assert IcePolicy(addresses=("127.0.0.1",)).choose(["192.0.2.2", "fd00::2"]) == ["127.0.0.1"]
    assert IcePolicy().configuration().iceServers == []
    assert IcePolicy(stun_server="stun:127.0.0.1:3478").configuration().iceServers[0].urls == (
        "stun:127.0.0.1:3478"
    )


def test_answer_codec_reads_first_payload_type() -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0 111\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
    assert answer_codec(sdp) == "PCMU/8000"
    assert answer_codec("v=0\r\n") is None
