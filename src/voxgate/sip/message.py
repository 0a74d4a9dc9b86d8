"""SIP requests and responses: parse, serialize, build responses (RFC 3261 sections 7, 8.2.6,
18.3, 20).

``parse_message(data)`` handles one datagram; :class:`SipStreamParser` frames messages out of
a TCP/TLS byte stream by Content-Length. Both raise only :class:`SipParseError`.

The parser is deliberately split in two passes. The first pass only *frames* the message:
start line, header lines (unfolding LWS continuations, splitting comma lists), body by
Content-Length. The second pass *validates* what every SIP element needs (Via, From, To,
Call-ID, CSeq and their syntax). Keeping them apart is what lets a failed validation still
carry a partial request, so the edge can answer ``400 Bad Request`` with a reason phrase
instead of silently dropping the request and letting the client retransmit for 32 seconds.

Accessors (``call_id``, ``cseq``, ``from_``, ``vias``, ...) parse on access through small
memoized parsers, so a message that is only forwarded or matched by branch does not pay for
parsing its From/To/Contact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from voxgate.sip._syntax import WS, is_token, split_commas
from voxgate.sip.errors import SipParseError
from voxgate.sip.headers import (
    LIST_HEADERS,
    SINGLE_HEADERS,
    CSeq,
    Headers,
    Via,
    canonical_name,
    parse_cseq,
    parse_via,
)
from voxgate.sip.uri import NameAddress, SipUri, Uri, parse_name_addr, parse_uri

__all__ = [
    "REASON_PHRASES",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "SipStreamParser",
    "make_response",
    "parse_message",
]

SIP_VERSION = "SIP/2.0"

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip
"""Default reason phrases (RFC 3261 section 21 and common extensions)."""


class SipMessage:
    """What requests and responses share: headers, a body, and typed header accessors."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    # -- accessors -------------------------------------------------------------------------

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header", reason=f"Missing {name}")
        return value

    @property
    def call_id(self) -> str:
        """The Call-ID (raises :class:`SipParseError` if missing)."""
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        """The CSeq as ``CSeq(number, method)``."""
        return parse_cseq(self._required("CSeq"))

    @property
    def from_(self) -> NameAddress:
        """The From header (``from`` is a Python keyword)."""
        return _name_addr(self._required("From"), "From")

    @property
    def to(self) -> NameAddress:
        """The To header."""
        return _name_addr(self._required("To"), "To")

    @property
    def from_tag(self) -> str | None:
        """The From tag."""
        return self.from_.tag

    @property
    def to_tag(self) -> str | None:
        """The To tag (``None`` before a dialog exists)."""
        return self.to.tag

    @property
    def vias(self) -> list[Via]:
        """All Via entries, topmost first."""
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def via(self) -> Via:
        """The topmost Via (the one that identifies the transaction)."""
        return parse_via(self._required("Via"))

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, or ``None`` if absent (RFC 2543 peers omit it)."""
        value = self.headers.get("Max-Forwards")
        if value is None:
            return None
        value = value.strip(WS)
        if not value.isdigit() or not value.isascii() or int(value) > 255:
            raise SipParseError(f"bad Max-Forwards {value!r}", reason="Bad Max-Forwards")
        return int(value)

    @property
    def contacts(self) -> list[NameAddress]:
        """Contact entries (empty for none; a ``*`` wildcard yields nothing, see ``headers``)."""
        return [_name_addr(v, "Contact") for v in self.headers.get_all("Contact") if v != "*"]

    @property
    def contact(self) -> NameAddress | None:
        """The first Contact entry, if any."""
        contacts = self.contacts
        return contacts[0] if contacts else None

    @property
    def record_route(self) -> list[NameAddress]:
        """Record-Route entries in message order."""
        return [_name_addr(v, "Record-Route") for v in self.headers.get_all("Record-Route")]

    @property
    def route(self) -> list[NameAddress]:
        """Route entries in message order."""
        return [_name_addr(v, "Route") for v in self.headers.get_all("Route")]

    @property
    def content_type(self) -> str | None:
        """The Content-Type media type (lowercased, without parameters)."""
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip(WS).lower() if value else None

    # -- serialization ---------------------------------------------------------------------

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Wire form; Content-Length is always (re)computed from the body."""
        length = f"Content-Length: {len(self.body)}"
        lines = [self._start_line()]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
            elif length:
                lines.append(length)  # kept where the peer put it, stated once
                length = ""
        if length:
            lines.append(length)
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


def _name_addr(text: str, header: str) -> NameAddress:
    try:
        return parse_name_addr(text)
    except SipParseError as exc:
        raise SipParseError(f"bad {header}: {exc}", reason=f"Bad {header}") from None


class SipRequest(SipMessage):
    """A SIP request. ``uri`` is the parsed Request-URI."""

    __slots__ = ("method", "uri")

    def __init__(
        self, method: str, uri: Uri, headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def copy(self) -> SipRequest:
        """An independent copy (headers copied, URI and body are immutable)."""
        return SipRequest(self.method, self.uri, self.headers.copy(), self.body)

    def __repr__(self) -> str:
        return f"<SipRequest {self.method} {self.uri}>"


class SipResponse(SipMessage):
    """A SIP response."""

    __slots__ = ("reason", "status")

    def __init__(
        self, status: int, reason: str = "", headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason

    @property
    def provisional(self) -> bool:
        """1xx."""
        return self.status < 200

    @property
    def success(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def copy(self) -> SipResponse:
        """An independent copy."""
        return SipResponse(self.status, self.reason, self.headers.copy(), self.body)

    def __repr__(self) -> str:
        return f"<SipResponse {self.status} {self.reason}>"


# -- parsing -------------------------------------------------------------------------------

_LINE_SPLIT = re.compile(r"\r?\n")
_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)[ \t]*\r?$", re.I | re.M)
MAX_HEADER_BYTES = 65536
"""Header block size over which a stream is considered broken (no legitimate peer sends it)."""
MAX_BODY_BYTES = 1 << 20
"""Largest Content-Length a stream accepts; more would let a peer make us buffer without bound."""


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")
    if end >= 0:
        return data[:end], data[end + 2 :]
    raise SipParseError("no empty line after the headers")


def _start(line: str) -> tuple[SipMessage, SipParseError | None]:
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != SIP_VERSION:
            raise SipParseError(f"unsupported version in {line!r}")
        if len(code) != 3 or not code.isdigit() or not code.isascii() or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code in {line!r}")
        return SipResponse(int(code), reason), None
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(f"bad request line {line!r}", reason="Bad Request Line")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError(f"bad method in {line!r}", reason="Bad Request Line")
    uri = parse_uri(uri_text)  # raises with the default 400
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 3261 section 19.1.5: headers are not allowed in a Request-URI (RFC 4475 escruri).
        raise SipParseError(f"headers in Request-URI {uri_text!r}", reason="Bad Request-URI")
    request = SipRequest(method, uri)
    if version.upper() != SIP_VERSION:
        # Reported after the headers are read, so the partial request can answer 505.
        error = SipParseError(
            f"unsupported version in {line!r}", status=505, reason="Version Not Supported"
        )
        return request, error
    return request, None


def _fill_headers(msg: SipMessage, lines: list[str]) -> SipParseError | None:
    """Add header lines to ``msg``; return the first problem instead of raising, so the
    remaining headers are still collected for a partial request."""
    error: SipParseError | None = None
    unfolded: list[str] = []
    for line in lines:
        if line and line[0] in WS and unfolded:
            unfolded[-1] += " " + line.strip(WS)
        elif line:
            unfolded.append(line)
    headers = msg.headers
    for line in unfolded:
        name, colon, value = line.partition(":")
        name = name.rstrip(WS)
        if not colon or not is_token(name):
            error = error or SipParseError(f"bad header line {line!r}", reason="Bad Header")
            continue
        canon = canonical_name(name)
        value = value.strip(WS)
        if canon.lower() in LIST_HEADERS:
            try:
                for item in split_commas(value):
                    headers.add_canonical(canon, item)
            except SipParseError as exc:
                error = error or SipParseError(str(exc), reason=f"Bad {canon}")
        else:
            headers.add_canonical(canon, value)
    return error


def _validate(msg: SipMessage) -> None:
    headers = msg.headers
    repeated = headers.repeated(SINGLE_HEADERS)
    if repeated is not None:
        raise SipParseError(f"more than one {repeated} header", reason=f"Multiple {repeated}")
    if not msg.vias:
        raise SipParseError("missing Via header", reason="Missing Via")
    if not msg.call_id:
        raise SipParseError("empty Call-ID", reason="Bad Call-ID")
    msg.from_  # noqa: B018 - parse for validation
    msg.to  # noqa: B018
    cseq = msg.cseq
    msg.max_forwards  # noqa: B018
    msg.contacts  # noqa: B018
    if isinstance(msg, SipRequest) and cseq.method != msg.method:
        raise SipParseError(
            f"CSeq method {cseq.method} does not match {msg.method}", reason="CSeq Method Mismatch"
        )


def _content_length(headers: Headers) -> int | None:
    value = headers.get("Content-Length")
    if value is None:
        return None
    if not value.isdigit() or not value.isascii() or len(value) > 10:
        raise SipParseError(f"bad Content-Length {value!r}", reason="Bad Content-Length")
    return int(value)


def _salvageable(msg: SipMessage) -> SipRequest | None:
    if not isinstance(msg, SipRequest):
        return None
    try:
        return msg if msg.vias else None
    except SipParseError:
        return None


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one SIP message from a datagram (or one framed stream message).

    Leading CRLFs (keep-alives) are ignored. If Content-Length is present it decides the body:
    a shorter body is an error, extra bytes are discarded (RFC 3261 section 18.3: a datagram
    may carry trailing junk). Without Content-Length the body is the rest of the datagram.
    """
    head, body = _split_head(data)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header block is not UTF-8") from None
    lines = _LINE_SPLIT.split(text)
    msg, error = _start(lines[0])
    error = _fill_headers(msg, lines[1:]) or error
    try:
        if error is not None:
            raise error
        _validate(msg)
        length = _content_length(msg.headers)
        if length is not None:
            if length > len(body):
                raise SipParseError(
                    f"Content-Length {length} exceeds the {len(body)} body bytes",
                    reason="Bad Content-Length",
                )
            body = body[:length]
    except SipParseError as exc:
        exc.partial = _salvageable(msg)
        raise
    msg.body = body
    assert isinstance(msg, SipRequest | SipResponse)
    return msg


class SipStreamParser:
    """Frames SIP messages out of a reliable byte stream (TCP, TLS, RFC 3261 section 18.3).

    Feed bytes with :meth:`feed`, then call :meth:`next_message` until it returns ``None``.
    Content-Length is mandatory on streams; a message without it, or a header block over
    :data:`MAX_HEADER_BYTES`, makes the stream unrecoverable: :meth:`next_message` raises and
    :attr:`broken` becomes true (close the connection). A message that is framed correctly
    but invalid raises once and is consumed, so the caller can answer 400 and carry on.
    CRLF keep-alives between messages (RFC 5626 section 3.5.1) are skipped; :attr:`keepalives`
    counts the CRLFs skipped (a ping is two), so the edge can decide to answer pongs.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.broken = False
        self.keepalives = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_message(self) -> SipRequest | SipResponse | None:
        """Return the next complete message, ``None`` if more bytes are needed."""
        if self.broken:
            raise SipParseError("stream is broken")
        buf = self._buffer
        skip = 0
        while buf.startswith(b"\r\n", skip):
            skip += 2
        if skip:
            self.keepalives += skip // 2
            del buf[:skip]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                self.broken = True
                raise SipParseError("header block too large")
            return None
        match = _CONTENT_LENGTH_RE.search(buf, 0, end + 2)
        if match is None:
            self.broken = True
            raise SipParseError("missing Content-Length on a stream transport")
        length = int(match.group(1))
        if length > MAX_BODY_BYTES:
            self.broken = True
            raise SipParseError(f"Content-Length {length} over the {MAX_BODY_BYTES} byte limit")
        total = end + 4 + length
        if len(buf) < total:
            return None
        data = bytes(buf[:total])
        del buf[:total]
        return parse_message(data)


def _untagged(to: str) -> bool:
    try:
        return parse_name_addr(to).tag is None
    except SipParseError:
        return False  # a 400 for a broken To cannot tag it; send it back as it came


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """Build a response to ``request`` as RFC 3261 section 8.2.6.2 prescribes.

    Via entries (all, in order), From, To, Call-ID and CSeq are copied; ``to_tag`` is added to
    To unless To already has a tag or the status is 100 (a 100 never creates a dialog).
    A 100 also echoes Timestamp (section 8.2.6.1). Extra ``headers`` are appended.
    """
    h = Headers()
    src = request.headers
    for value in src.get_all("Via"):
        h.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        found = src.get(name)
        if found is None:
            continue
        if name == "To" and to_tag is not None and status != 100 and _untagged(found):
            found = f"{found};tag={to_tag}"
        h.add(name, found)
    if status == 100 and "Timestamp" in src:
        h.add("Timestamp", src.get("Timestamp") or "")
    for name, value in headers:
        h.add(name, value)
    return SipResponse(status, reason or REASON_PHRASES.get(status, ""), h, body)
