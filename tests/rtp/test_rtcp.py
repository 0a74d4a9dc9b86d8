"""RTCP SR/RR/SDES/BYE and compound parsing, checked against hand-built bytes and aiortc."""

from __future__ import annotations

import struct

import pytest
from aiortc import rtp as aiortc_rtp

from voxgate.errors import ParseError
from voxgate.rtp.rtcp import (
    RTCP_PSFB,
    RTCP_RTPFB,
    SDES_CNAME,
    SDES_TOOL,
    ReportBlock,
    RtcpBye,
    RtcpParseError,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtcpUnknown,
    SdesChunk,
    parse_rtcp,
    serialize_rtcp,
)

BLOCK = ReportBlock(
    ssrc=0x11223344, fraction_lost=25, packets_lost=-3, highest_sequence=0x0001_0005,
    jitter=42, lsr=0xAABBCCDD, dlsr=65536,
)


def test_sender_report_wire_layout() -> None:
    sr = RtcpSenderReport(0x01020304, 0xE000_0000_8000_0000, 160, 7, 1120, (BLOCK,))
    data = sr.serialize()
    assert data[:4] == bytes((0x81, 200, 0, 12))  # V=2 RC=1, PT 200, length 13 words - 1
    assert len(data) == 52
    assert struct.unpack_from("!IQ", data, 4) == (0x01020304, 0xE000_0000_8000_0000)
    # Cumulative loss -3 is 24-bit two's complement right after the fraction byte.
    assert data[32:36] == bytes((25, 0xFF, 0xFF, 0xFD))
    assert parse_rtcp(data) == [sr]


def test_sender_report_read_by_aiortc() -> None:
    sr = RtcpSenderReport(1, (3_900_000_000 << 32) | 5, 160, 7, 1120, (BLOCK,))
    (theirs,) = aiortc_rtp.RtcpPacket.parse(sr.serialize())
    assert isinstance(theirs, aiortc_rtp.RtcpSrPacket)
    assert theirs.sender_info.ntp_timestamp == sr.ntp_timestamp
    assert theirs.sender_info.octet_count == 1120
    report = theirs.reports[0]
    assert (report.ssrc, report.fraction_lost, report.packets_lost) == (0x11223344, 25, -3)
    assert (report.highest_sequence, report.jitter, report.lsr, report.dlsr) == (
        0x0001_0005, 42, 0xAABBCCDD, 65536,
    )


def test_aiortc_compound_read_by_us() -> None:
    rr = aiortc_rtp.RtcpRrPacket(ssrc=99, reports=[
        aiortc_rtp.RtcpReceiverInfo(ssrc=5, fraction_lost=1, packets_lost=2,
                                    highest_sequence=3, jitter=4, lsr=5, dlsr=6)
    ])
    sdes = aiortc_rtp.RtcpSdesPacket(chunks=[
        aiortc_rtp.RtcpSourceInfo(ssrc=99, items=[(SDES_CNAME, b"alice@example")])
    ])
    bye = aiortc_rtp.RtcpByePacket(sources=[99])
    ours = parse_rtcp(bytes(rr) + bytes(sdes) + bytes(bye))
    assert ours == [
        RtcpReceiverReport(99, (ReportBlock(5, 1, 2, 3, 4, 5, 6),)),
        RtcpSourceDescription((SdesChunk(99, ((SDES_CNAME, b"alice@example"),)),)),
        RtcpBye((99,)),
    ]
    sdes_packet = ours[1]
    assert isinstance(sdes_packet, RtcpSourceDescription)
    assert sdes_packet.chunks[0].cname == "alice@example"


def test_sdes_padding_and_multiple_chunks() -> None:
    sdes = RtcpSourceDescription((
        SdesChunk(1, ((SDES_CNAME, b"abc"),)),  # 4 + 2 + 3 + END = 10 -> padded to 12
        SdesChunk(2, ((SDES_CNAME, b"x" * 2), (SDES_TOOL, b"voxgate"))),
        SdesChunk(3, ()),  # SSRC + END + 3 nulls
    ))
    data = sdes.serialize()
    assert len(data) % 4 == 0
    assert data[0] == 0x83 and data[1] == 202
    assert data[4:16] == b"\x00\x00\x00\x01\x01\x03abc\x00\x00\x00"
    assert parse_rtcp(data) == [sdes]
    assert sdes.chunks[2].cname is None


def test_bye_with_reason() -> None:
    bye = RtcpBye((0xCAFEBABE, 2), "call ended")
    data = bye.serialize()
    assert data[0] == 0x82 and data[1] == 203
    assert data[12] == len("call ended")
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == [bye]


def test_unknown_types_are_kept_opaque_in_compound() -> None:
    rr = RtcpReceiverReport(7)
    nack = RtcpUnknown(RTCP_RTPFB, 1, struct.pack("!IIHH", 7, 8, 100, 0))
    pli = RtcpUnknown(RTCP_PSFB, 1, struct.pack("!II", 7, 8))
    app = RtcpUnknown(204, 3, struct.pack("!I", 7) + b"name" + b"data")
    data = serialize_rtcp([rr, nack, pli, app])
    assert parse_rtcp(data) == [rr, nack, pli, app]


def test_padding_on_last_packet_is_stripped() -> None:
    rr = RtcpReceiverReport(7).serialize()
    padded = bytes((rr[0] | 0x20, rr[1])) + struct.pack("!H", 2) + rr[4:] + b"\x00\x00\x00\x04"
    assert parse_rtcp(padded) == [RtcpReceiverReport(7)]


def test_sr_profile_extension_kept() -> None:
    sr = RtcpSenderReport(1, 2, 3, 4, 5, (), b"EXT!")
    assert parse_rtcp(sr.serialize()) == [sr]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\xc8\x00",
        b"\x40\xc9\x00\x01\x00\x00\x00\x01",  # version 1
        b"\x80\xc9\x00\x02\x00\x00\x00\x01",  # length overruns
        b"\x80\xc9\x00\x01\x00\x00\x00\x01\x80",  # trailing garbage shorter than a header
        b"\x81\xc9\x00\x01\x00\x00\x00\x01",  # RR announces a block that is absent
        b"\x80\xc8\x00\x01\x00\x00\x00\x01",  # SR without sender info
        b"\x80\xc9\x00\x00",  # RR without SSRC
        b"\x81\xca\x00\x01\x00\x00\x00\x01",  # SDES chunk without END
        b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09ab\x00",  # SDES item overruns
        b"\x81\xca\x00\x00",  # SDES chunk without SSRC
        b"\x82\xcb\x00\x01\x00\x00\x00\x01",  # BYE announces 2 sources, has 1
        b"\x81\xcb\x00\x02\x00\x00\x00\x01\x09abc",  # BYE reason overruns
        b"\xa0\xc9\x00\x01\x00\x00\x00\x00",  # padding count 0
        b"\xa0\xc9\x00\x01\x00\x00\x00\x09",  # padding larger than the body
    ],
)
def test_malformed_raises_rtcp_parse_error(data: bytes) -> None:
    with pytest.raises(RtcpParseError) as info:
        parse_rtcp(data)
    assert isinstance(info.value, ParseError)
    assert info.value.protocol == "rtcp"


def test_serialize_rejects_unrepresentable_values() -> None:
    with pytest.raises(ValueError):
        ReportBlock(1, 256, 0, 0, 0).serialize()
    with pytest.raises(ValueError):
        ReportBlock(1, 0, 1 << 23, 0, 0).serialize()
    with pytest.raises(ValueError):
        RtcpReceiverReport(1, (BLOCK,) * 32).serialize()
    with pytest.raises(ValueError):
        RtcpBye((1,), "x" * 256).serialize()
    with pytest.raises(ValueError):
        SdesChunk(1, ((SDES_CNAME, b"x" * 256),)).serialize()
    with pytest.raises(ValueError):
        RtcpUnknown(205, 1, b"abc").serialize()
