"""Session Description Protocol (RFC 4566) parse/serialize, with typed accessors for the
attributes a voice gateway acts on: rtpmap, fmtp, ptime, maxptime, direction, rtcp (RFC 3605),
rtcp-mux (RFC 5761) and crypto (SDES-SRTP, RFC 4568).

Attributes are stored as an ordered list of ``(name, value)`` pairs and only *interpreted* by
the accessors, so unknown attributes survive a parse/serialize round trip untouched (a B2BUA
or a re-INVITE that echoes a description must not lose ``a=`` lines it does not understand).
The known ones are still validated at parse time, so a malformed ``a=rtpmap`` fails here with
:class:`SdpParseError` instead of later in the negotiation.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from voxgate.errors import ParseError

__all__ = [
    "DIRECTIONS",
    "Connection",
    "Crypto",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpParseError",
    "SessionDescription",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class SdpParseError(ParseError):
    """Text that is not a valid session description (RFC 4566)."""

    protocol = "sdp"


def _int(text: str, what: str, limit: int = 2**63) -> int:
    if not text.isdigit() or not text.isascii() or int(text) >= limit:
        raise SdpParseError(f"bad {what} {text!r}")
    return int(text)


@dataclass(slots=True)
class Origin:
    """``o=``: who created the session and which version of the description this is."""

    username: str
    session_id: str
    session_version: int
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """``c=``: the address media is sent to (``ttl``/``count`` only for multicast)."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"
    ttl: int | None = None
    count: int | None = None

    @property
    def is_null(self) -> bool:
        """``0.0.0.0``: the RFC 2543 way of putting a call on hold (still seen in the wild)."""
        return self.address in ("0.0.0.0", "::")

    def __str__(self) -> str:
        suffix = "".join(f"/{v}" for v in (self.ttl, self.count) if v is not None)
        return f"{self.nettype} {self.addrtype} {self.address}{suffix}"

    @classmethod
    def parse(cls, value: str) -> Connection:
        """Parse the value of a ``c=`` line."""
        parts = value.split(" ")
        if len(parts) != 3 or not all(parts):
            raise SdpParseError(f"bad c= line {value!r}")
        address, *extra = parts[2].split("/")
        numbers = [_int(x, "c= suffix", 2**32) for x in extra]
        if len(numbers) > 2:
            raise SdpParseError(f"bad c= line {value!r}")
        ttl = numbers[0] if numbers and parts[1] == "IP4" else None
        count = numbers[-1] if (len(numbers) == 2 or (numbers and parts[1] != "IP4")) else None
        return cls(address, parts[0], parts[1], ttl, count)


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]``."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        channels = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{channels}"

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        """Parse the value of an ``a=rtpmap`` attribute."""
        pt, _, rest = value.partition(" ")
        parts = rest.strip().split("/")
        if not 2 <= len(parts) <= 3 or not parts[0]:
            raise SdpParseError(f"bad rtpmap {value!r}")
        channels = _int(parts[2], "rtpmap channels", 256) if len(parts) == 3 else None
        return cls(_int(pt, "payload type", 128), parts[0], _int(parts[1], "clock rate", 2**32), channels)


@dataclass(frozen=True, slots=True)
class Crypto:
    """``a=crypto:<tag> <suite> <key-params> [<session-params>]`` (RFC 4568 section 9.1)."""

    tag: int
    suite: str
    key_params: str
    session_params: tuple[str, ...] = ()

    @property
    def key(self) -> bytes | None:
        """The master key and salt of the first ``inline:`` key, base64-decoded."""
        first = self.key_params.split(";")[0]
        if not first.startswith("inline:"):
            return None
        try:
            return base64.b64decode(first[7:].split("|")[0], validate=True)
        except (binascii.Error, ValueError):
            return None

    def __str__(self) -> str:
        return " ".join((str(self.tag), self.suite, self.key_params, *self.session_params))

    @classmethod
    def parse(cls, value: str) -> Crypto:
        """Parse the value of an ``a=crypto`` attribute."""
        parts = value.split()
        if len(parts) < 3:
            raise SdpParseError(f"bad crypto attribute {value!r}")
        return cls(_int(parts[0], "crypto tag", 10**9), parts[1], parts[2], tuple(parts[3:]))

    @classmethod
    def inline(cls, tag: int, suite: str, key: bytes) -> Crypto:
        """Build a crypto line carrying ``key`` (master key + salt) inline."""
        return cls(tag, suite, "inline:" + base64.b64encode(key).decode("ascii"))


Attribute = tuple[str, str | None]


class _Attributes:
    """Typed views over an ``attributes`` list; shared by session and media level."""

    attributes: list[Attribute]

    def get_attribute(self, name: str) -> str | None:
        """The value of the first ``a=name`` (``""`` for a flag attribute), or ``None``."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def get_attributes(self, name: str) -> list[str]:
        """The values of every ``a=name`` in order."""
        return ["" if v is None else v for k, v in self.attributes if k == name]

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """Replace every ``a=name`` by a single one (appended if absent)."""
        for i, (key, _) in enumerate(self.attributes):
            if key == name:
                self.attributes[i] = (name, value)
                self.attributes[i + 1 :] = [a for a in self.attributes[i + 1 :] if a[0] != name]
                return
        self.attributes.append((name, value))

    @property
    def direction(self) -> str | None:
        """``sendrecv``/``sendonly``/``recvonly``/``inactive`` if stated at this level."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    @direction.setter
    def direction(self, value: str | None) -> None:
        self.attributes = [a for a in self.attributes if a[0] not in DIRECTIONS]
        if value is not None:
            if value not in DIRECTIONS:
                raise ValueError(f"unknown direction {value!r}")
            self.attributes.append((value, None))


@dataclass(slots=True)
class MediaDescription(_Attributes):
    """One ``m=`` section and the lines under it."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    info: str | None = None
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """``a=rtpmap`` entries by payload type."""
        out: dict[int, RtpMap] = {}
        for value in self.get_attributes("rtpmap"):
            rtpmap = RtpMap.parse(value)
            out[rtpmap.payload_type] = rtpmap
        return out

    def fmtp(self, payload_type: int) -> str | None:
        """The ``a=fmtp`` parameters for ``payload_type``."""
        prefix = f"{payload_type} "
        for value in self.get_attributes("fmtp"):
            if value.startswith(prefix):
                return value[len(prefix) :].strip()
        return None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds (fractions are rounded down)."""
        value = self.get_attribute("ptime")
        return None if value is None else int(_float(value, "ptime"))

    @property
    def maxptime(self) -> int | None:
        """``a=maxptime`` in milliseconds."""
        value = self.get_attribute("maxptime")
        return None if value is None else int(_float(value, "maxptime"))

    @property
    def rtcp(self) -> tuple[int, Connection | None] | None:
        """``a=rtcp`` (RFC 3605): explicit RTCP port and optional address."""
        value = self.get_attribute("rtcp")
        if value is None:
            return None
        port, _, rest = value.partition(" ")
        return _int(port, "rtcp port", 65536), (Connection.parse(rest) if rest else None)

    @property
    def rtcp_mux(self) -> bool:
        """Whether ``a=rtcp-mux`` is present (RFC 5761)."""
        return self.get_attribute("rtcp-mux") is not None

    @property
    def crypto(self) -> list[Crypto]:
        """``a=crypto`` lines in preference order."""
        return [Crypto.parse(v) for v in self.get_attributes("crypto")]

    def __str__(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [f"m={' '.join((self.media, port, self.proto, *self.formats))}"]
        if self.info is not None:
            lines.append(f"i={self.info}")
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"b={t}:{v}" for t, v in self.bandwidths]
        if self.key is not None:
            lines.append(f"k={self.key}")
        lines += [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes]
        return "\r\n".join(lines) + "\r\n"


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SdpParseError(f"bad {what} {text!r}") from None
    if not 0 < value < 100000:
        raise SdpParseError(f"bad {what} {text!r}")
    return value


@dataclass(slots=True)
class SessionDescription(_Attributes):
    """A whole session description: session-level lines and the media sections."""

    origin: Origin
    session_name: str = "-"
    version: int = 0
    info: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    timing: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])
    repeats: list[str] = field(default_factory=list)
    zone: str | None = None
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The connection that applies to ``media`` (media level overrides session level)."""
        return media.connection or self.connection

    def direction_for(self, media: MediaDescription) -> str:
        """The direction that applies to ``media`` (default ``sendrecv``, RFC 3264 section 5.1)."""
        return media.direction or self.direction or "sendrecv"

    def serialize(self) -> str:
        """The description as text with CRLF line ends."""
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.info is not None:
            lines.append(f"i={self.info}")
        if self.uri is not None:
            lines.append(f"u={self.uri}")
        lines += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"b={t}:{v}" for t, v in self.bandwidths]
        lines += [f"t={start} {stop}" for start, stop in self.timing]
        lines += [f"r={r}" for r in self.repeats]
        if self.zone is not None:
            lines.append(f"z={self.zone}")
        if self.key is not None:
            lines.append(f"k={self.key}")
        lines += [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes]
        return "\r\n".join(lines) + "\r\n" + "".join(str(m) for m in self.media)

    def __bytes__(self) -> bytes:
        return self.serialize().encode("utf-8")

    def __str__(self) -> str:
        return self.serialize()

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse a description; raise :class:`SdpParseError` (and nothing else) if invalid.

        Lenient where peers commonly are sloppy (bare LF line ends, a missing ``t=``, unknown
        line types, which are ignored as RFC 4566 section 5 asks), strict where a wrong guess
        would misroute media (``c=``, ``m=``, the known attributes).
        """
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise SdpParseError("description is not UTF-8") from None
        lines = [line.rstrip("\r") for line in data.split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        if not lines or lines[0] != "v=0":
            raise SdpParseError("description must start with v=0")
        session = cls(Origin("-", "0", 0, "0.0.0.0"), "", timing=[])
        seen = set()
        for line in lines[1:]:
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpParseError(f"bad line {line!r}")
            kind, value = line[0], line[2:]
            seen.add(kind)
            if kind == "m":
                session.media.append(_parse_m(value))
                continue
            target: MediaDescription | SessionDescription = (
                session.media[-1] if session.media else session
            )
            if kind == "a":
                attr, colon, attr_value = value.partition(":")
                if not attr:
                    raise SdpParseError(f"bad a= line {value!r}")
                target.attributes.append((attr, attr_value if colon else None))
            elif kind == "c":
                target.connection = Connection.parse(value)
            elif kind == "b":
                bwtype, colon, bw = value.partition(":")
                if not colon or not bwtype:
                    raise SdpParseError(f"bad b= line {value!r}")
                target.bandwidths.append((bwtype, _int(bw, "bandwidth")))
            elif kind == "i":
                target.info = value
            elif kind == "k":
                target.key = value
            elif kind == "o":
                session.origin = _parse_o(value)
            elif kind == "s":
                session.session_name = value
            elif kind == "t":
                start, _, stop = value.partition(" ")
                session.timing.append((_int(start, "start time"), _int(stop, "stop time")))
            elif kind == "u":
                session.uri = value
            elif kind == "e":
                session.emails.append(value)
            elif kind == "p":
                session.phones.append(value)
            elif kind == "r":
                session.repeats.append(value)
            elif kind == "z":
                session.zone = value
            # other letters: ignored (RFC 4566 section 5)
        if "o" not in seen or "s" not in seen:
            raise SdpParseError("description lacks o= or s=")
        if not session.timing:
            session.timing.append((0, 0))
        for m in session.media:  # validate the attributes we act on
            m.rtpmaps, m.ptime, m.maxptime, m.rtcp, m.crypto  # noqa: B018
            for value in m.get_attributes("fmtp"):
                _int(value.partition(" ")[0], "fmtp payload type", 128)
        return session


def _parse_o(value: str) -> Origin:
    parts = value.split(" ")
    if len(parts) != 6 or not all(parts):
        raise SdpParseError(f"bad o= line {value!r}")
    return Origin(parts[0], parts[1], _int(parts[2], "session version"), parts[5], parts[3], parts[4])


def _parse_m(value: str) -> MediaDescription:
    parts = value.split(" ")
    if len(parts) < 3 or not all(parts):
        raise SdpParseError(f"bad m= line {value!r}")
    port_text, slash, count = parts[1].partition("/")
    port = _int(port_text, "media port", 65536)
    port_count = _int(count, "port count", 65536) if slash else None
    return MediaDescription(parts[0], port, parts[2], parts[3:], port_count)
