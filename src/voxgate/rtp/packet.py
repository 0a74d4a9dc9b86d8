"""RTP packets (RFC 3550 section 5.1): parse and serialize, nothing else.

This module is on the per-packet hot path of every call (50 packets/s per direction per call
at 20 ms ptime), so :meth:`RtpPacket.parse` is written for speed first:

* one precompiled ``struct.Struct`` reads the fixed 12-byte header in a single call;
* the common packet (version 2, no padding, no extension, no CSRC: first byte ``0x80``) takes a
  fast path that allocates nothing beyond the result and its payload slice;
* a too-short buffer is detected by ``unpack_from`` raising, not by a separate length check
  (``try`` is free in CPython 3.11 when nothing is raised).

Header extensions are kept raw as ``(profile, data)``: interpreting RFC 8285 one-/two-byte
elements needs the SDP ``extmap`` negotiated for the session, which belongs to a layer above.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from voxgate.errors import ParseError

__all__ = [
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "is_rtcp",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
"""Size of the fixed RTP header, before CSRCs and the header extension."""

_HEADER = struct.Struct("!BBHII")
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
pack_header = _pack_header
"""``pack_header(0x80, marker | pt, seq, ts, ssrc)``: the fixed 12-byte header (no CSRC,
extension or padding), for senders that build audio packets straight to bytes."""
_new = object.__new__
# NamedTuple's generated __new__ is a Python function; calling tuple.__new__ directly builds
# the same object in about half the time.
_new_tuple = tuple.__new__
_EXT_HEADER = struct.Struct("!HH")
# One precompiled struct per possible CSRC count (CC is 4 bits), so no format string is built
# per packet.
_CSRC = tuple(struct.Struct(f"!{n}I") for n in range(16))


class RtpParseError(ParseError):
    """Bytes that are not a valid RTP packet (RFC 3550 section 5.1)."""

    protocol = "rtp"


class RtpExtension(NamedTuple):
    """An RTP header extension kept raw (RFC 3550 section 5.3.1).

    ``data`` is a whole number of 32-bit words, as the wire length field counts words.
    A tuple, so callers may also compare it with or unpack it as ``(profile, data)``.
    """

    profile: int
    data: bytes


def is_rtcp(data: bytes) -> bool:
    """Tell RTCP from RTP on a multiplexed port (RFC 5761 section 4).

    With rtcp-mux the second byte of RTCP (its packet type, 192-223 for the types in use)
    falls where RTP has marker + payload type; RTP payload types 64-95 are excluded from
    use precisely so that this byte range is unambiguous.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet.

    ``padding_size`` counts every padding octet including the final count octet (0 for no
    padding). On serialize the padding octets are zeros, so the output is deterministic.
    Not frozen: a frozen dataclass's ``__init__`` goes through ``object.__setattr__`` and is
    measurably slower on the hot path; treat instances as values all the same.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    payload: bytes = b""
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raise :class:`RtpParseError` (only) if it is malformed."""
        try:
            b0, b1, seq, ts, ssrc = _unpack_header(data)
        except struct.error:
            raise RtpParseError(
                f"RTP packet of {len(data)} bytes is shorter than the {RTP_HEADER_SIZE}-byte header"
            ) from None
        if b0 == 0x80:  # version 2, no padding, no extension, no CSRC: nearly every packet
            # Filling the slots directly skips the generated __init__'s argument binding,
            # about 10% of the whole parse; the fields set are exactly the dataclass fields.
            packet = _new(cls)
            packet.payload_type = b1 & 0x7F
            packet.sequence_number = seq
            packet.timestamp = ts
            packet.ssrc = ssrc
            packet.marker = b1 > 0x7F
            packet.csrc = ()
            packet.extension = None
            packet.payload = data[12:]
            packet.padding_size = 0
            return packet
        return cls._parse_general(data, b0, b1, seq, ts, ssrc)

    @classmethod
    def _parse_general(
        cls, data: bytes, b0: int, b1: int, seq: int, ts: int, ssrc: int
    ) -> RtpPacket:
        """Slow path: CSRCs, header extension and/or padding present (or a bad version).

        Slices of ``data`` are taken as they are (no ``bytes()`` copy): for ``bytes`` input,
        the documented type, a slice already is an independent ``bytes`` object.
        """
        if b0 >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTP version {b0 >> 6} is not {RTP_VERSION}")
        n = len(data)
        cc = b0 & 0x0F
        pos = RTP_HEADER_SIZE + 4 * cc
        if n < pos:
            raise RtpParseError(f"RTP packet of {n} bytes is too short for {cc} CSRCs")
        csrc: tuple[int, ...] = _CSRC[cc].unpack_from(data, RTP_HEADER_SIZE) if cc else ()

        extension = None
        if b0 & 0x10:
            if n < pos + 4:
                raise RtpParseError("RTP header extension header is truncated")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            end = pos + 4 * words
            if n < end:
                raise RtpParseError(
                    f"RTP header extension of {4 * words} bytes overruns the {n}-byte packet"
                )
            extension = _new_tuple(RtpExtension, (profile, data[pos:end]))
            pos = end

        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or padding > n - pos:
                raise RtpParseError(
                    f"RTP padding count {padding} is invalid for {n - pos} bytes after the header"
                )
            payload = data[pos : n - padding]
        else:
            payload = data[pos:]
        return cls(b1 & 0x7F, seq, ts, ssrc, b1 > 0x7F, csrc, extension, payload, padding)

    def serialize(self) -> bytes:
        """Encode to wire bytes; raise ``ValueError`` if a field does not fit its wire width."""
        csrc = self.csrc
        extension = self.extension
        padding = self.padding_size
        pt = self.payload_type
        if pt >> 7:  # catches negatives too; 128-255 would otherwise alias the marker bit
            raise ValueError(f"RTP payload type {pt} is not 0-127")
        try:
            if not csrc and extension is None and not padding:  # fast path, as in parse
                return (
                    _pack_header(
                        0x80,
                        (0x80 if self.marker else 0) | pt,
                        self.sequence_number,
                        self.timestamp,
                        self.ssrc,
                    )
                    + self.payload
                )
            return self._serialize_general()
        except struct.error as exc:
            raise ValueError(f"RTP field out of range: {exc}") from None

    def _serialize_general(self) -> bytes:
        cc = len(self.csrc)
        if cc > 15:
            raise ValueError(f"RTP packet can carry at most 15 CSRCs, not {cc}")
        padding = self.padding_size
        if not 0 <= padding <= 255:
            raise ValueError(f"RTP padding size {padding} is not 0-255")
        b0 = 0x80 | cc | (0x20 if padding else 0) | (0x10 if self.extension is not None else 0)
        parts = [
            _pack_header(
                b0,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            )
        ]
        if cc:
            parts.append(_CSRC[cc].pack(*self.csrc))
        if self.extension is not None:
            profile, ext_data = self.extension
            if len(ext_data) % 4:
                raise ValueError(
                    f"RTP header extension is {len(ext_data)} bytes, not a multiple of 4"
                )
            parts.append(_EXT_HEADER.pack(profile, len(ext_data) // 4))
            parts.append(ext_data)
        parts.append(self.payload)
        if padding:
            parts.append(bytes(padding - 1) + bytes((padding,)))
        return b"".join(parts)

    def __bytes__(self) -> bytes:
        return self.serialize()

    def __repr__(self) -> str:
        # The default dataclass repr would dump the whole payload; logs want the header.
        return (
            f"RtpPacket(pt={self.payload_type}, seq={self.sequence_number}, "
            f"ts={self.timestamp}, ssrc={self.ssrc:#010x}, marker={self.marker}, "
            f"csrc={self.csrc}, extension={self.extension}, "
            f"payload=<{len(self.payload)} bytes>, padding_size={self.padding_size})"
        )
