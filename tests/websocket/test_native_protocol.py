"""The native v1 protocol core: handshake, negotiation, strict errors, fuzz."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.websocket.errors import StreamProtocolError
from voxgate.websocket.native_protocol import (
    Audio,
    AudioFormat,
    Clear,
    Dtmf,
    Hangup,
    Hello,
    Mark,
    MarkPlayed,
    NativeAppProtocol,
    NativeCallerProtocol,
    Ready,
    Stop,
    Transcript,
    Transfer,
)

PCM16K = AudioFormat("pcm16", 16000)


def pair() -> tuple[NativeCallerProtocol, NativeAppProtocol]:
    caller, app = NativeCallerProtocol(), NativeAppProtocol()
    hello = app.receive(
        caller.hello([AudioFormat("opus", 12000), PCM16K], caller="+1", callee="bot")
    )
    assert isinstance(hello, Hello) and hello.caller == "+1"
    assert caller.receive(app.ready("call_1")) == Ready(PCM16K, "call_1")
    return caller, app


def test_negotiation_picks_first_supported() -> None:
    app = NativeAppProtocol([AudioFormat("mulaw", 8000), PCM16K])
    caller = NativeCallerProtocol()
    app.receive(caller.hello([AudioFormat("pcm16", 48000), PCM16K, AudioFormat("mulaw", 8000)]))
    assert app.format == PCM16K
    with pytest.raises(StreamProtocolError) as info:
        NativeAppProtocol([PCM16K]).receive(caller.hello([AudioFormat("mulaw", 8000)]))
    assert info.value.close_code == 4415


def test_messages_both_ways() -> None:
    caller, app = pair()
    assert app.receive(b"\x00\x01" * 160, binary=True) == Audio(b"\x00\x01" * 160)
    assert app.receive(caller.dtmf("5")) == Dtmf("5")
    assert app.receive(caller.mark_played("m1", cleared=True)) == MarkPlayed("m1", True)
    assert caller.receive(b"\x00\x00", binary=True) == Audio(b"\x00\x00")
    assert caller.receive(app.mark("m2")) == Mark("m2")
    assert caller.receive(app.clear()) == Clear()
    assert caller.receive(app.transcript("caller", "hi", final=False)) == Transcript(
        "caller", "hi", False
    )
    assert caller.receive(app.transfer("sip:desk@example.com")) == Transfer("sip:desk@example.com")
    assert caller.receive(app.dtmf("12#")) == Dtmf("12#")
    assert caller.receive(app.hangup("done")) == Hangup("done")
    assert app.receive(caller.stop("bye")) == Stop("bye")


@pytest.mark.parametrize(
    ("message", "field", "code"),
    [
        ('{"type":"dtmf","digit":"1"}', "type", 1008),  # before hello
        ('{"type":"hello","version":2,"formats":[]}', "version", 1008),
        ('{"type":"hello","version":1,"formats":[]}', "formats", 1007),
        (
            '{"type":"hello","version":1,"formats":[{"encoding":"mulaw","sample_rate":16000}]}',
            "formats",
            4415,
        ),
        (
            '{"type":"hello","version":1,"formats":[{"encoding":"flac","sample_rate":8000}]}',
            "formats",
            4415,
        ),
        ('{"type":"hello","version":1}', "formats", 1007),
        ("{}", "type", 1007),
        ("nope", "$", 1007),
    ],
)
def test_handshake_errors(message: str, field: str, code: int) -> None:
    with pytest.raises(StreamProtocolError) as info:
        NativeAppProtocol().receive(message)
    assert (info.value.field, info.value.close_code) == (field, code)


def test_audio_rules() -> None:
    with pytest.raises(StreamProtocolError, match="handshake"):
        NativeAppProtocol().receive(b"\x00\x00", binary=True)
    _, app = pair()
    with pytest.raises(StreamProtocolError, match="odd"):
        app.receive(b"\x00\x00\x00", binary=True)
    with pytest.raises(StreamProtocolError, match="allowed"):
        app.receive(b"", binary=True)
    with pytest.raises(StreamProtocolError, match="unknown message type"):
        app.receive('{"type":"clear"}')  # clear is app -> caller only
    with pytest.raises(StreamProtocolError, match="digit"):
        app.receive('{"type":"dtmf","digit":"x"}')


_values = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_types = st.sampled_from(
    ["hello", "ready", "dtmf", "mark", "stop", "clear", "hangup", "transfer", "transcript", "zzz"]
)


@st.composite
def _messages(draw: st.DrawFn) -> tuple[str | bytes, bool]:
    if draw(st.booleans()):
        return draw(st.binary(max_size=64)), True
    if draw(st.booleans()):
        return draw(st.text(max_size=100)), False
    body = draw(
        st.dictionaries(st.text(max_size=10), _values | st.lists(_values, max_size=3), max_size=5)
    )
    body["type"] = draw(_types)
    if draw(st.booleans()):
        body["formats"] = draw(
            st.lists(
                st.dictionaries(
                    st.sampled_from(["encoding", "sample_rate"]),
                    st.sampled_from(["pcm16", "mulaw", "opus", 8000, 16000, 7]),
                    max_size=2,
                ),
                max_size=3,
            )
        )
        body["version"] = 1
    return json.dumps(body), False


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages(), min_size=1, max_size=6))
def test_fuzz_app_side(messages: list[tuple[str | bytes, bool]]) -> None:
    app = NativeAppProtocol()
    for data, binary in messages:
        try:
            app.receive(data, binary)
        except StreamProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages(), min_size=1, max_size=6))
def test_fuzz_caller_side(messages: list[tuple[str | bytes, bool]]) -> None:
    caller, app = NativeCallerProtocol(), NativeAppProtocol()
    app.receive(caller.hello([PCM16K]))
    caller.receive(app.ready("c"))
    for data, binary in messages:
        try:
            caller.receive(data, binary)
        except StreamProtocolError:
            pass
