"""The fast path's RFC 6455 core alone: frames built byte by byte, no network."""

from __future__ import annotations

import os
import struct

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from voxgate.websocket._frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameReader,
    HandshakeError,
    WsProtocolError,
    accept_key,
    encode_close,
    encode_frame,
    handshake_response,
    parse_close,
    parse_request,
)


def client_frame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    n64: bool = False,
) -> bytes:
    """A client frame built by hand (so that broken ones can be built too)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    m = 0x80 if mask else 0
    if n64 or n > 65535:
        head = struct.pack("!BBQ", b0, m | 127, n)
    elif n > 125:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = bytes((b0, m | n))
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_a_masked_text_frame_is_unmasked() -> None:
    r = FrameReader(65536)
    assert r.feed(client_frame(OP_TEXT, b'{"event":"media"}')) == [(OP_TEXT, b'{"event":"media"}')]


def test_frames_split_anywhere_across_reads() -> None:
    data = b"".join(client_frame(OP_TEXT, f"message {i}".encode() * 20) for i in range(5))
    r = FrameReader(65536)
    got = []
    for i in range(len(data)):
        got += r.feed(data[i : i + 1])
    assert [p for _, p in got] == [f"message {i}".encode() * 20 for i in range(5)]
    assert r.buffered == 0


def test_lengths_7_16_and_64_bit() -> None:
    r = FrameReader(1 << 20)
    for n in (0, 125, 126, 65535, 65536, 200_000):
        payload = os.urandom(n)
        assert r.feed(client_frame(OP_BINARY, payload)) == [(OP_BINARY, payload)]
    # a short payload may legally use the 64-bit form
    assert r.feed(client_frame(OP_TEXT, b"hi", n64=True)) == [(OP_TEXT, b"hi")]


def test_64_bit_length_with_the_top_bit_set_is_a_protocol_error() -> None:
    frame = struct.pack("!BBQ", 0x81, 0xFF, 1 << 63) + b"\0\0\0\0"
    with pytest.raises(WsProtocolError) as info:
        FrameReader(65536).feed(frame)
    assert info.value.code == 1002


def test_oversized_message_is_refused_from_its_header() -> None:
    header_only = struct.pack("!BBQ", 0x81, 0xFF, 10_000_000) + b"\0\0\0\0"
    with pytest.raises(WsProtocolError) as info:
        FrameReader(65536).feed(header_only)  # no payload buffered to decide
    assert (info.value.code, info.value.reason) == (1009, "message over 65536 bytes")


def test_fragments_with_control_frames_between_them() -> None:
    r = FrameReader(65536)
    data = (
        client_frame(OP_TEXT, b'{"a":', fin=False)
        + client_frame(OP_PING, b"p1")
        + client_frame(0, b'"b"', fin=False)
        + client_frame(0, b"}", fin=True)
    )
    assert r.feed(data) == [(OP_PING, b"p1"), (OP_TEXT, b'{"a":"b"}')]


def test_fragmented_size_counts_the_whole_message() -> None:
    r = FrameReader(100)
    r.feed(client_frame(OP_TEXT, b"x" * 60, fin=False))
    with pytest.raises(WsProtocolError) as info:
        r.feed(client_frame(0, b"x" * 60))
    assert info.value.code == 1009


def test_utf8_is_checked_on_the_whole_message() -> None:
    snowman = "☃".encode()
    r = FrameReader(100)
    # a character split across fragments is fine
    data = client_frame(OP_TEXT, snowman[:1], fin=False) + client_frame(0, snowman[1:])
    assert r.feed(data) == [(OP_TEXT, snowman)]
    with pytest.raises(WsProtocolError) as info:
        FrameReader(100).feed(client_frame(OP_TEXT, b"ok \xff\xfe"))
    assert info.value.code == 1007
    # binary messages are not text
    assert FrameReader(100).feed(client_frame(OP_BINARY, b"\xff")) == [(OP_BINARY, b"\xff")]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (client_frame(OP_TEXT, b"x", mask=False), "masked"),
        (client_frame(OP_TEXT, b"x", rsv=4), "RSV"),
        (client_frame(0x3, b"x"), "opcode"),
        (client_frame(0xB, b"x"), "opcode"),
        (client_frame(OP_PING, b"x" * 126), "control"),
        (client_frame(OP_PING, b"x", fin=False), "control"),
        (client_frame(0, b"x"), "continuation"),
        (client_frame(OP_TEXT, b"x", fin=False) + client_frame(OP_TEXT, b"y"), "inside"),
    ],
)
def test_protocol_errors_are_1002(frame: bytes, reason: str) -> None:
    with pytest.raises(WsProtocolError) as info:
        FrameReader(65536).feed(frame)
    assert info.value.code == 1002 and reason in info.value.reason


def test_close_payloads() -> None:
    assert parse_close(b"") == (1005, "")
    assert parse_close(struct.pack("!H", 1000) + "bye ☃".encode()) == (1000, "bye ☃")
    assert parse_close(struct.pack("!H", 4321)) == (4321, "")
    for code in (999, 1004, 1005, 1006, 1015, 1100, 2999, 5000):
        with pytest.raises(WsProtocolError) as info:
            parse_close(struct.pack("!H", code))
        assert info.value.code == 1002
    with pytest.raises(WsProtocolError):
        parse_close(b"\x03")
    with pytest.raises(WsProtocolError) as info:
        parse_close(struct.pack("!H", 1000) + b"\xff")
    assert info.value.code == 1007


def _parse_server_frame(data: bytes) -> Frame:
    """Read our frame with websockets' own parser (as a client would)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
def test_server_frames_parse_with_websockets(n: int) -> None:
    payload = b"a" * n
    frame = _parse_server_frame(encode_frame(OP_TEXT, payload))
    assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload


def test_close_frame_reason_is_cut_to_fit_and_stays_utf8() -> None:
    frame = _parse_server_frame(encode_close(1008, "é" * 100))
    assert frame.opcode is Opcode.CLOSE and len(frame.data) <= 125
    code, reason = parse_close(frame.data)
    assert code == 1008 and set(reason) == {"é"}


def test_handshake() -> None:
    request = (
        b"GET /twilio/media?token=x HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    method, target, headers = parse_request(request)
    assert (method, target) == ("GET", b"/twilio/media?token=x")
    answer = handshake_response(method, headers)
    # RFC 6455 section 1.3's worked example
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert answer.startswith(b"HTTP/1.1 101 ") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer


@pytest.mark.parametrize(
    ("drop", "replace", "status"),
    [
        (b"Upgrade: WebSocket\r\n", b"", 400),
        (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8", 426),
        (b"dGhlIHNhbXBsZSBub25jZQ==", b"c2hvcnQ=", 400),
        (b"GET", b"POST", 405),
    ],
)
def test_bad_openings(drop: bytes, replace: bytes, status: int) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).replace(drop, replace)
    method, _, headers = parse_request(request)
    with pytest.raises(HandshakeError) as info:
        handshake_response(method, headers)
    assert info.value.status == status


def test_close_frame_is_a_close() -> None:
    assert FrameReader(10).feed(client_frame(OP_CLOSE, struct.pack("!H", 1000))) == [
        (OP_CLOSE, struct.pack("!H", 1000))
    ]
