"""The Twilio protocol core alone: messages as Twilio sends them, strict errors, fuzz."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.websocket.helpers import media_msg, start_msg
from voxgate.errors import ParseError
from voxgate.websocket.errors import StreamProtocolError
from voxgate.websocket.twilio_protocol import (
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioClientProtocol,
    TwilioServerProtocol,
)

CONNECTED = '{"event":"connected","protocol":"Call","version":"1.0.0"}'


def started() -> TwilioServerProtocol:
    p = TwilioServerProtocol()
    p.receive(CONNECTED)
    p.receive(start_msg(FirstName="Jane"))
    return p


def test_twilio_sequence_as_sent_by_twilio() -> None:
    p = TwilioServerProtocol()
    assert p.receive(CONNECTED) == Connected("Call", "1.0.0")
    start = p.receive(start_msg(FirstName="Jane"))
    assert isinstance(start, Start)
    assert (start.stream_sid, start.call_sid, start.tracks) == ("MZ1", "CA1", ("inbound",))
    assert start.custom_parameters == {"FirstName": "Jane"}
    media = p.receive(media_msg(2, 1, b"\x7f" * 160))
    assert media == Media(b"\x7f" * 160, "inbound", 1, 20)
    dtmf = '{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"3","dtmf":{"track":"inbound_track","digit":"#"}}'
    assert p.receive(dtmf) == Dtmf("#", "inbound_track")
    mark = '{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"clause-1"}}'
    assert p.receive(mark) == Mark("clause-1")
    stop = '{"event":"stop","sequenceNumber":"5","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}'
    assert p.receive(stop) == Stop("AC1", "CA1")
    assert p.sequence_gaps == 0


def test_outbound_messages_are_twilio_shaped() -> None:
    p = started()
    assert json.loads(p.media(b"\x00\x01")) == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": "AAE="},
    }
    assert json.loads(p.mark("m")) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "m"}}
    assert json.loads(p.clear()) == {"event": "clear", "streamSid": "MZ1"}


def test_client_and_server_roundtrip() -> None:
    server = TwilioServerProtocol()
    client = TwilioClientProtocol(Start('MZ"x', "CA2", "AC2", ("inbound",), {"From": "+1"}))
    server.receive(client.connected())
    assert server.receive(client.start_message()) == client.start
    assert server.receive(client.media(b"abc", 40)) == Media(b"abc", "inbound", 1, 40)
    assert server.receive(client.dtmf("3")) == Dtmf("3")
    assert server.receive(client.mark("x")) == Mark("x")
    assert isinstance(server.receive(client.stop()), Stop)
    assert client.receive(server.media(b"zz")) == Media(b"zz", "outbound")
    assert client.receive(server.mark("n")) == Mark("n")
    assert client.receive(server.clear()) == Clear()


@pytest.mark.parametrize(
    ("message", "field", "code"),
    [
        ("not json", "$", 1007),
        ("[1,2]", "$", 1007),
        ('{"event":"bogus"}', "event", 1008),
        ('{"event":5}', "event", 1007),
        (media_msg(2, 1, b"x"), "event", 1008),  # media before start
        ('{"event":"start","start":{}}', "start.mediaFormat", 1007),
    ],
)
def test_errors_name_the_field(message: str, field: str, code: int) -> None:
    with pytest.raises(StreamProtocolError) as info:
        TwilioServerProtocol().receive(message)
    assert info.value.field == field and info.value.close_code == code
    assert info.value.protocol == "websocket" and isinstance(info.value, ParseError)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m["media"].update(payload="!!notbase64"), "media.payload"),
        (lambda m: m["media"].update(payload="QUJD="), "media.payload"),  # bad padding
        (lambda m: m["media"].pop("payload"), "media.payload"),
        (lambda m: m["media"].update(track="sideways"), "media.track"),
        (lambda m: m["media"].update(chunk="-1"), "media.chunk"),
        (lambda m: m.update(sequenceNumber="1"), "sequenceNumber"),  # not increasing
        (lambda m: m.update(streamSid="MZ-other"), "streamSid"),
        (lambda m: m["media"].update(payload="A" * 20000), "media.payload"),
    ],
)
def test_bad_media(mutate: object, field: str) -> None:
    p = started()
    msg = json.loads(media_msg(2, 1, b"\x00" * 160))
    mutate(msg)  # type: ignore[operator]
    with pytest.raises(StreamProtocolError) as info:
        p.receive(json.dumps(msg))
    assert info.value.field == field


def test_start_validation() -> None:
    for mutate, field in [
        (lambda s: s["mediaFormat"].update(encoding="audio/l16"), "start.mediaFormat.encoding"),
        (lambda s: s["mediaFormat"].update(sampleRate=16000), "start.mediaFormat.sampleRate"),
        (lambda s: s["mediaFormat"].update(channels=2), "start.mediaFormat.channels"),
        (lambda s: s.update(tracks=[]), "start.tracks"),
        (lambda s: s.update(streamSid=""), "start.streamSid"),
        (lambda s: s.pop("callSid"), "start.callSid"),
        (lambda s: s.update(customParameters={"a": 1}), "start.customParameters.a"),
    ]:
        msg = json.loads(start_msg())
        mutate(msg["start"])
        with pytest.raises(StreamProtocolError) as info:
            TwilioServerProtocol().receive(json.dumps(msg))
        assert info.value.field == field


def test_order_rules() -> None:
    p = started()
    with pytest.raises(StreamProtocolError, match="not allowed"):
        p.receive(start_msg())  # second start
    p.receive('{"event":"stop","streamSid":"MZ1"}')
    with pytest.raises(StreamProtocolError, match="stopped"):
        p.receive(media_msg(9, 1, b"x"))


def test_media_without_optional_fields() -> None:
    p = started()
    assert p.receive('{"event":"media","media":{"payload":"AAE="}}') == Media(b"\x00\x01")


def test_sequence_gaps_are_counted() -> None:
    p = started()
    p.receive(media_msg(2, 1, b"x"))
    p.receive(media_msg(5, 2, b"x"))
    assert p.sequence_gaps == 2


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_events = st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "clear", "x"])


@st.composite
def _messages(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.text(max_size=200))
    body = draw(st.dictionaries(st.text(max_size=12), _json, max_size=5))
    if kind == 2:
        body["event"] = draw(_events)
        body[draw(st.sampled_from(["start", "media", "dtmf", "mark", "stop"]))] = draw(_json)
    return json.dumps(body)


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages(), min_size=1, max_size=6))
def test_fuzz_server_raises_only_the_documented_error(messages: list[str]) -> None:
    p = TwilioServerProtocol()
    for message in [CONNECTED, start_msg(), *messages]:
        try:
            p.receive(message)
        except StreamProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(_messages())
def test_fuzz_client_raises_only_the_documented_error(message: str) -> None:
    client = TwilioClientProtocol(Start("MZ1", "CA1", "AC1", ("inbound",)))
    try:
        client.receive(message)
    except StreamProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes(data: bytes) -> None:
    try:
        started().receive(data)
    except StreamProtocolError:
        pass
