"""RtpPacket parse/serialize against RFC 3550 section 5.1, by hand-built bytes."""

from __future__ import annotations

import struct

import pytest

from voxgate.errors import ParseError
from voxgate.rtp import RtpExtension, RtpPacket, RtpParseError, is_rtcp


def _header(b0: int = 0x80, b1: int = 0, seq: int = 1, ts: int = 2, ssrc: int = 3) -> bytes:
    return struct.pack("!BBHII", b0, b1, seq, ts, ssrc)


def test_parse_simple_pcmu() -> None:
    data = _header(0x80, 0x80 | 0, 1000, 160_000, 0xDEADBEEF) + b"\xff" * 160
    p = RtpPacket.parse(data)
    assert p == RtpPacket(0, 1000, 160_000, 0xDEADBEEF, True, (), None, b"\xff" * 160, 0)
    assert bytes(p) == data
    assert p.serialize() == data


def test_parse_csrc_extension_padding() -> None:
    data = (
        _header(0x80 | 0x20 | 0x10 | 2, 101, 7, 8, 9)
        + struct.pack("!II", 0x11, 0x22)
        + struct.pack("!HH", 0xBEDE, 1)
        + b"\x10\xaa\x00\x00"
        + b"payload"
        + b"\x00\x00\x03"
    )
    p = RtpPacket.parse(data)
    assert p.payload_type == 101
    assert p.marker is False
    assert p.csrc == (0x11, 0x22)
    assert p.extension == RtpExtension(0xBEDE, b"\x10\xaa\x00\x00")
    assert p.extension == (0xBEDE, b"\x10\xaa\x00\x00")
    assert p.payload == b"payload"
    assert p.padding_size == 3
    assert bytes(p) == data


def test_empty_extension_and_empty_payload() -> None:
    data = _header(0x90) + struct.pack("!HH", 0x1000, 0)
    p = RtpPacket.parse(data)
    assert p.extension == RtpExtension(0x1000, b"")
    assert p.payload == b""
    assert bytes(p) == data


def test_header_only_is_valid() -> None:
    assert RtpPacket.parse(_header()).payload == b""


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        _header()[:11],
        _header(0x40),  # version 1
        _header(0x00),  # version 0
        _header(0xC0),  # version 3
        _header(0x81),  # 1 CSRC announced, none present
        _header(0x8F) + b"\x00" * 56,  # 15 CSRCs announced, 14 present
        _header(0x90) + b"\xbe\xde",  # extension header truncated
        _header(0x90) + struct.pack("!HH", 0xBEDE, 2) + b"\x00" * 7,  # extension body short
        _header(0xA0) + b"ab\x00",  # padding count 0
        _header(0xA0) + b"ab\x04",  # padding count larger than payload area
        _header(0xA0),  # padding bit, no room for a count
        _header(0xB0) + struct.pack("!HH", 1, 0) + b"\x02",  # padding overlaps the extension
    ],
)
def test_malformed_raises_rtp_parse_error(data: bytes) -> None:
    with pytest.raises(RtpParseError) as info:
        RtpPacket.parse(data)
    assert isinstance(info.value, ParseError)
    assert info.value.protocol == "rtp"


def test_padding_equal_to_whole_payload_area() -> None:
    p = RtpPacket.parse(_header(0xA0) + b"\x00\x00\x03")
    assert p.payload == b""
    assert p.padding_size == 3


def test_serialize_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        RtpPacket(0, 70_000, 0, 0).serialize()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 2**32, 0).serialize()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))).serialize()
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, extension=RtpExtension(1, b"abc")).serialize()
    with pytest.raises(ValueError):
        RtpPacket(128, 0, 0, 0, csrc=(1,)).serialize()


def test_repr_does_not_dump_payload() -> None:
    text = repr(RtpPacket(0, 1, 2, 3, payload=b"x" * 1000))
    assert "1000 bytes" in text
    assert "xxxx" not in text


@pytest.mark.parametrize(
    ("second_byte", "expected"),
    [(0, False), (0x80, False), (191, False), (192, True), (200, True), (201, True),
     (223, True), (224, False), (255, False)],
)
def test_is_rtcp(second_byte: int, expected: bool) -> None:
    assert is_rtcp(bytes((0x80, second_byte)) + b"\x00" * 10) is expected


def test_is_rtcp_short() -> None:
    assert is_rtcp(b"") is False
    assert is_rtcp(b"\x80") is False


@pytest.mark.parametrize("pt", [128, 255, -1])
def test_serialize_rejects_payload_type_that_would_alias_marker(pt: int) -> None:
    with pytest.raises(ValueError):
        RtpPacket(pt, 0, 0, 0).serialize()
