"""RTCP packets (RFC 3550 section 6): SR, RR, SDES, BYE and compound datagrams.

:func:`parse_rtcp` turns one datagram (a compound of RTCP packets) into a list of packet
objects. Packet types this layer does not interpret (APP 204, RTPFB 205, PSFB 206, XR 207, or
anything newer) come back as :class:`RtcpUnknown` with their body intact instead of failing
the whole compound: a browser's compound routinely carries feedback next to its RR, and losing
the RR because of a NACK we do not act on would blind the statistics.

The parser is deliberately lenient where RFC 3550 A.2's validity checks exist only to catch
misdirected traffic (first packet SR/RR, padding only on the last packet): reduced-size RTCP
(RFC 5506) breaks the first rule legitimately. It is strict about anything that would make a
field unreadable: version, lengths, counts and padding must agree with the bytes present.

Padding is stripped on parse and never emitted on serialize, so ``parse(serialize(p)) == p``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from voxgate.errors import ParseError

__all__ = [
    "RTCP_APP",
    "RTCP_BYE",
    "RTCP_PSFB",
    "RTCP_RR",
    "RTCP_RTPFB",
    "RTCP_SDES",
    "RTCP_SR",
    "RTCP_XR",
    "SDES_CNAME",
    "SDES_EMAIL",
    "SDES_LOC",
    "SDES_NAME",
    "SDES_NOTE",
    "SDES_PHONE",
    "SDES_PRIV",
    "SDES_TOOL",
    "ReportBlock",
    "RtcpBye",
    "RtcpPacket",
    "RtcpParseError",
    "RtcpReceiverReport",
    "RtcpSenderReport",
    "RtcpSourceDescription",
    "RtcpUnknown",
    "SdesChunk",
    "parse_rtcp",
    "serialize_rtcp",
]

RTCP_SR: Final = 200
RTCP_RR: Final = 201
RTCP_SDES: Final = 202
RTCP_BYE: Final = 203
RTCP_APP: Final = 204
RTCP_RTPFB: Final = 205
RTCP_PSFB: Final = 206
RTCP_XR: Final = 207

SDES_CNAME: Final = 1
SDES_NAME: Final = 2
SDES_EMAIL: Final = 3
SDES_PHONE: Final = 4
SDES_LOC: Final = 5
SDES_TOOL: Final = 6
SDES_NOTE: Final = 7
SDES_PRIV: Final = 8

_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP (64), RTP ts, packet count, octet count
_REPORT_BLOCK = struct.Struct("!IIIIII")  # SSRC, fraction|lost, ext seq, jitter, LSR, DLSR


class RtcpParseError(ParseError):
    """Bytes that are not a valid RTCP compound packet (RFC 3550 section 6)."""

    protocol = "rtcp"


def _pack_header(count: int, packet_type: int, body_length: int) -> bytes:
    """RTCP common header; ``body_length`` excludes the 4 header bytes and is a multiple of 4."""
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP count field {count} is not 0-31")
    return _HEADER.pack(0x80 | count, packet_type, body_length // 4)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 section 6.4.1).

    ``packets_lost`` is the signed 24-bit cumulative loss (duplicates can make it negative);
    ``lsr``/``dlsr`` are the middle 32 bits of the last SR's NTP time and the delay since it
    in 1/65536 s, from which the sender computes round-trip time.
    """

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError(f"fraction_lost {self.fraction_lost} is not 0-255")
        if not -0x800000 <= self.packets_lost <= 0x7FFFFF:
            raise ValueError(f"packets_lost {self.packets_lost} does not fit 24 signed bits")
        lost_word = (self.fraction_lost << 24) | (self.packets_lost & 0xFFFFFF)
        try:
            return _REPORT_BLOCK.pack(
                self.ssrc, lost_word, self.highest_sequence, self.jitter, self.lsr, self.dlsr
            )
        except struct.error as exc:
            raise ValueError(f"report block field out of range: {exc}") from None

    def __bytes__(self) -> bytes:
        return self.serialize()


def _parse_blocks(body: bytes, pos: int, count: int, kind: str) -> tuple[ReportBlock, ...]:
    if len(body) < pos + 24 * count:
        raise RtcpParseError(f"{kind} announces {count} report blocks but is too short")
    return tuple(ReportBlock.parse(body, pos + 24 * i) for i in range(count))


@dataclass(frozen=True, slots=True)
class RtcpSenderReport:
    """SR (PT 200). ``ntp_timestamp`` is the full 64-bit NTP time (32.32 fixed point).

    ``extension`` holds profile-specific bytes after the report blocks (RFC 3550 6.4.1).
    """

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def _parse(cls, count: int, body: bytes) -> RtcpSenderReport:
        if len(body) < 24:
            raise RtcpParseError("SR is shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body, 0)
        reports = _parse_blocks(body, 24, count, "SR")
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, bytes(body[24 + 24 * count :]))

    def serialize(self) -> bytes:
        try:
            info = _SENDER_INFO.pack(
                self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count,
                self.octet_count,
            )
        except struct.error as exc:
            raise ValueError(f"SR field out of range: {exc}") from None
        body = info + b"".join(r.serialize() for r in self.reports) + self.extension
        if len(body) % 4:
            raise ValueError("SR profile extension must be a multiple of 4 bytes")
        return _pack_header(len(self.reports), RTCP_SR, len(body)) + body

    def __bytes__(self) -> bytes:
        return self.serialize()


@dataclass(frozen=True, slots=True)
class RtcpReceiverReport:
    """RR (PT 201): reception reports from a participant that is not sending."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def _parse(cls, count: int, body: bytes) -> RtcpReceiverReport:
        if len(body) < 4:
            raise RtcpParseError("RR is shorter than its SSRC")
        (ssrc,) = _SSRC.unpack_from(body, 0)
        reports = _parse_blocks(body, 4, count, "RR")
        return cls(ssrc, reports, bytes(body[4 + 24 * count :]))

    def serialize(self) -> bytes:
        try:
            head = _SSRC.pack(self.ssrc)
        except struct.error as exc:
            raise ValueError(f"RR SSRC out of range: {exc}") from None
        body = head + b"".join(r.serialize() for r in self.reports) + self.extension
        if len(body) % 4:
            raise ValueError("RR profile extension must be a multiple of 4 bytes")
        return _pack_header(len(self.reports), RTCP_RR, len(body)) + body

    def __bytes__(self) -> bytes:
        return self.serialize()


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk: a source and its items as ``(item type, value bytes)`` pairs.

    Values stay bytes: RFC 3550 says UTF-8 text, but PRIV items carry a binary prefix and a
    peer's malformed text must not make the whole compound unreadable.
    """

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @property
    def cname(self) -> str | None:
        """The CNAME item decoded as UTF-8 (malformed bytes replaced), or None if absent."""
        for item_type, value in self.items:
            if item_type == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None

    def serialize(self) -> bytes:
        parts = [_SSRC.pack(self.ssrc)]
        for item_type, value in self.items:
            if not 1 <= item_type <= 255:
                raise ValueError(f"SDES item type {item_type} is not 1-255")
            if len(value) > 255:
                raise ValueError(f"SDES item of {len(value)} bytes exceeds 255")
            parts.append(bytes((item_type, len(value))) + value)
        data = b"".join(parts) + b"\x00"  # END item; the chunk ends with at least one null
        return _pad4(data)


@dataclass(frozen=True, slots=True)
class RtcpSourceDescription:
    """SDES (PT 202): CNAME and friends for one or more sources."""

    chunks: tuple[SdesChunk, ...] = ()

    @classmethod
    def _parse(cls, count: int, body: bytes) -> RtcpSourceDescription:
        chunks = []
        pos = 0
        n = len(body)
        for _ in range(count):
            if n < pos + 4:
                raise RtcpParseError("SDES chunk is truncated before its SSRC")
            (ssrc,) = _SSRC.unpack_from(body, pos)
            pos += 4
            items = []
            while True:
                if pos >= n:
                    raise RtcpParseError("SDES chunk has no END item")
                item_type = body[pos]
                if item_type == 0:
                    pos += 1
                    pos += -pos % 4  # END, then null octets to the next 32-bit boundary
                    break
                if n < pos + 2 or n < pos + 2 + body[pos + 1]:
                    raise RtcpParseError("SDES item overruns the packet")
                length = body[pos + 1]
                items.append((item_type, bytes(body[pos + 2 : pos + 2 + length])))
                pos += 2 + length
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))

    def serialize(self) -> bytes:
        body = b"".join(c.serialize() for c in self.chunks)
        return _pack_header(len(self.chunks), RTCP_SDES, len(body)) + body

    def __bytes__(self) -> bytes:
        return self.serialize()


@dataclass(frozen=True, slots=True)
class RtcpBye:
    """BYE (PT 203): sources leaving, with an optional reason text."""

    sources: tuple[int, ...] = ()
    reason: str | None = None

    @classmethod
    def _parse(cls, count: int, body: bytes) -> RtcpBye:
        end = 4 * count
        if len(body) < end:
            raise RtcpParseError(f"BYE announces {count} sources but is too short")
        sources = struct.unpack_from(f"!{count}I", body, 0)
        reason = None
        if len(body) > end:
            length = body[end]
            if len(body) < end + 1 + length:
                raise RtcpParseError("BYE reason overruns the packet")
            reason = bytes(body[end + 1 : end + 1 + length]).decode("utf-8", "replace")
        return cls(sources, reason)

    def serialize(self) -> bytes:
        try:
            body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        except struct.error as exc:
            raise ValueError(f"BYE SSRC out of range: {exc}") from None
        if self.reason is not None:
            text = self.reason.encode("utf-8")
            if len(text) > 255:
                raise ValueError(f"BYE reason of {len(text)} bytes exceeds 255")
            body = _pad4(body + bytes((len(text),)) + text)
        return _pack_header(len(self.sources), RTCP_BYE, len(body)) + body

    def __bytes__(self) -> bytes:
        return self.serialize()


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """A packet type this layer does not interpret (APP, RTPFB, PSFB, XR, ...), kept opaque.

    ``count`` is the 5-bit field after the version (a count or a feedback message type),
    ``body`` the bytes after the 4-byte common header with any padding removed.
    """

    packet_type: int
    count: int
    body: bytes = field(default=b"")

    def serialize(self) -> bytes:
        if len(self.body) % 4:
            raise ValueError("RTCP packet body must be a multiple of 4 bytes")
        if not 0 <= self.packet_type <= 255:
            raise ValueError(f"RTCP packet type {self.packet_type} is not 0-255")
        return _pack_header(self.count, self.packet_type, len(self.body)) + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


RtcpPacket: TypeAlias = (
    RtcpSenderReport | RtcpReceiverReport | RtcpSourceDescription | RtcpBye | RtcpUnknown
)

_PARSERS: dict[int, Callable[[int, bytes], RtcpPacket]] = {
    RTCP_SR: RtcpSenderReport._parse,
    RTCP_RR: RtcpReceiverReport._parse,
    RTCP_SDES: RtcpSourceDescription._parse,
    RTCP_BYE: RtcpBye._parse,
}


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram; raise :class:`RtcpParseError` (only) if malformed."""
    packets: list[RtcpPacket] = []
    pos = 0
    n = len(data)
    if n < 4:
        raise RtcpParseError(f"RTCP datagram of {n} bytes is shorter than a header")
    while pos < n:
        if n < pos + 4:
            raise RtcpParseError(f"{n - pos} trailing bytes after the last RTCP packet")
        b0, packet_type, words = _HEADER.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise RtcpParseError(f"RTCP version {b0 >> 6} is not 2")
        end = pos + 4 + 4 * words
        if end > n:
            raise RtcpParseError(f"RTCP packet type {packet_type} overruns the datagram")
        body = data[pos + 4 : end]
        if b0 & 0x20:
            padding = data[end - 1]
            if padding == 0 or padding > len(body):
                raise RtcpParseError(f"RTCP padding count {padding} is invalid")
            body = body[: len(body) - padding]
        count = b0 & 0x1F
        parser = _PARSERS.get(packet_type)
        packets.append(
            parser(count, body) if parser else RtcpUnknown(packet_type, count, bytes(body))
        )
        pos = end
    return packets


def serialize_rtcp(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """Concatenate packets into one compound datagram (RFC 3550 section 6.1)."""
    return b"".join(p.serialize() for p in packets)
