"""SIP header names, the ordered header multimap, and the Via and CSeq values.

Header names are case-insensitive and have compact forms (RFC 3261 section 7.3.3 plus the
letters later RFCs assigned). :class:`Headers` canonicalizes names once, when a header is
added, so lookups are a lowercase dict-free scan over a short list and serialization always
emits the long form (compact forms are legal on the wire but some middleboxes choke on them).

Headers that RFC 3261 section 7.3.1 allows to be combined with commas (Via, Contact, Route,
Allow, ...) are split into one entry per element when parsed, so ``get_all("Via")`` is the
same whether the peer sent one Via line with three values or three lines. Order is kept,
which is what matters for Via and Route. Other headers (Authorization, Date, ...) contain
commas that are not list separators and are left whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from voxgate.sip._syntax import EMPTY_PARAMS, Params, is_token, parse_params, split_outside
from voxgate.sip.errors import SipParseError
from voxgate.sip.uri import split_hostport

__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "CSeq",
    "Headers",
    "Via",
    "canonical_name",
    "parse_cseq",
    "parse_via",
]

BRANCH_MAGIC_COOKIE = "z9hG4bK"
"""RFC 3261 branch prefix: a branch starting with it is globally unique per transaction."""

_KNOWN = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
    "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization",
    "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Replaces", "Reply-To",
    "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server",
    "Service-Route", "Session-Expires", "Subject", "Subscription-State", "Supported",
    "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]  # fmt: skip
_CANONICAL = {name.lower(): name for name in _KNOWN}
_COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To", "s": "Subject",
    "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}  # fmt: skip
_CANONICAL.update(_COMPACT)

LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language",
        "Error-Info", "In-Reply-To", "P-Asserted-Identity", "P-Preferred-Identity", "Path",
        "Proxy-Require", "Reason", "Record-Route", "Reject-Contact", "Require", "Route",
        "Service-Route", "Supported", "Unsupported", "Via", "Warning",
    )
)  # fmt: skip
"""Lowercase names of headers whose comma-separated values are split into entries."""

SINGLE_HEADERS = frozenset(
    ("call-id", "content-length", "content-type", "cseq", "from", "max-forwards", "to")
)
"""Headers that may appear only once; a second one makes the message invalid (RFC 4475 multi01)."""


def canonical_name(name: str) -> str:
    """Return the long, conventionally capitalized form of a header name (unknown: as given)."""
    return _CANONICAL.get(name.lower(), name)


_KEYS: dict[str, str] = {}


def _key(name: str) -> str:
    """Lowercase canonical name, memoized: lookups by the same few names dominate."""
    key = _KEYS.get(name)
    if key is None:
        key = canonical_name(name).lower()
        if len(_KEYS) < 4096:  # bounded: header names come from the network
            _KEYS[name] = key
    return key


class Headers:
    """An ordered multimap of SIP headers with case-insensitive, compact-aware names.

    Repeated headers keep their order. Names are canonicalized on insertion, so
    ``h.get("v")``, ``h.get("VIA")`` and ``h.get("Via")`` are the same lookup.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = []
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a header (after any existing ones of the same name)."""
        canon = canonical_name(name)
        self._items.append((canon.lower(), canon, value))

    def add_canonical(self, canon: str, value: str) -> None:
        """:meth:`add` for a name already in canonical form (the parser's fast path)."""
        self._items.append((canon.lower(), canon, value))

    def repeated(self, names: frozenset[str]) -> str | None:
        """The canonical name of the first header among lowercase ``names`` that occurs more
        than once, else ``None`` (one pass, for single-instance header validation)."""
        seen: set[str] = set()
        for key, canon, _ in self._items:
            if key in names:
                if key in seen:
                    return canon
                seen.add(key)
        return None

    def prepend(self, name: str, value: str) -> None:
        """Insert a header before the first one of the same name, or at the top (a new Via)."""
        canon = canonical_name(name)
        key = canon.lower()
        for i, item in enumerate(self._items):
            if item[0] == key:
                self._items.insert(i, (key, canon, value))
                return
        self._items.insert(0, (key, canon, value))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` or ``default``."""
        key = _key(name)
        for item in self._items:
            if item[0] == key:
                return item[2]
        return default

    def get_all(self, name: str) -> list[str]:
        """All values of ``name`` in order."""
        key = _key(name)
        return [item[2] for item in self._items if item[0] == key]

    def count(self, name: str) -> int:
        """How many entries ``name`` has."""
        key = canonical_name(name).lower()
        return sum(1 for item in self._items if item[0] == key)

    def set(self, name: str, value: str) -> None:
        """Replace all ``name`` entries by one, at the position of the first (else appended)."""
        canon = canonical_name(name)
        key = canon.lower()
        out: list[tuple[str, str, str]] = []
        done = False
        for item in self._items:
            if item[0] == key:
                if not done:
                    out.append((key, canon, value))
                    done = True
            else:
                out.append(item)
        if not done:
            out.append((key, canon, value))
        self._items = out

    def remove(self, name: str) -> None:
        """Remove every ``name`` entry."""
        key = canonical_name(name).lower()
        self._items = [item for item in self._items if item[0] != key]

    def remove_first(self, name: str) -> str | None:
        """Remove and return the first ``name`` entry (a proxy popping its own Via or Route)."""
        key = canonical_name(name).lower()
        for i, item in enumerate(self._items):
            if item[0] == key:
                del self._items[i]
                return item[2]
        return None

    def copy(self) -> Headers:
        """A shallow copy (values are strings, so it is independent)."""
        h = Headers()
        h._items = list(self._items)
        return h

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(item[0] == key for item in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((item[1], item[2]) for item in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header: sequence number and method (RFC 3261 section 20.16)."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_CSEQ_RE = re.compile(r"[ \t]*([0-9]{1,10})[ \t]+([^ \t]+)[ \t]*\Z")


@lru_cache(maxsize=1024)
def parse_cseq(text: str) -> CSeq:
    """Parse a CSeq value; the number must fit in 31 bits (RFC 3261 section 8.1.1.5)."""
    m = _CSEQ_RE.match(text)
    if m is None or not is_token(m.group(2)):
        raise SipParseError(f"bad CSeq {text!r}", reason="Bad CSeq")
    number = int(m.group(1))
    if number >= 2**31:
        raise SipParseError(f"CSeq number out of range in {text!r}", reason="Bad CSeq")
    return CSeq(number, m.group(2))


_DEFAULT_PORTS = {"TLS": 5061, "WSS": 443, "WS": 80}


@dataclass(frozen=True, slots=True)
class Via:
    """One Via entry: ``SIP/2.0/UDP host:port;branch=...;rport;received=...``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = EMPTY_PARAMS

    @property
    def branch(self) -> str | None:
        """The branch parameter (transaction id when it starts with the magic cookie)."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The address a server saw the request come from (RFC 3261 section 18.2.1)."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The ``rport`` value filled in by a server (RFC 3581), ``None`` if absent or empty."""
        value = self.params.get("rport")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def rport_requested(self) -> bool:
        """Whether the client asked for symmetric response routing (RFC 3581)."""
        return "rport" in self.params

    @property
    def sent_by(self) -> tuple[str, int]:
        """``(host, port)`` with the transport's default port filled in (section 18)."""
        return self.host.lower(), self.port or _DEFAULT_PORTS.get(self.transport, 5060)

    @property
    def reliable(self) -> bool:
        """Whether the transport is reliable (no SIP-level retransmissions needed)."""
        return self.transport != "UDP"

    def with_param(self, name: str, value: str | None) -> Via:
        """Return a copy with ``name`` set (e.g. ``received`` or ``rport`` on arrival)."""
        return replace(self, params=self.params.replace(name, value))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{self.params.serialize()}"


_VIA_RE = re.compile(
    r"[ \t]*([^ \t/]+)[ \t]*/[ \t]*([^ \t/]+)[ \t]*/[ \t]*([^ \t;/]+)[ \t]+([^;]*?)[ \t]*(;.*)?\Z",
    re.S,
)


@lru_cache(maxsize=1024)
def parse_via(text: str) -> Via:
    """Parse one Via entry (LWS is allowed around ``/``, ``;`` and ``=``, RFC 4475 wsinv)."""
    m = _VIA_RE.match(text)
    if m is None:
        raise SipParseError(f"bad Via {text!r}", reason="Bad Via")
    name, version, transport, hostport, rest = m.groups()
    if name.upper() != "SIP" or version != "2.0" or not is_token(transport):
        raise SipParseError(f"bad Via protocol in {text!r}", reason="Bad Via")
    hostport = re.sub(r"[ \t]*:[ \t]*", ":", hostport)
    try:
        host, port = split_hostport(hostport, text)
        params = parse_params(split_outside(rest[1:], ";"), what="Via parameter") if rest else EMPTY_PARAMS
    except SipParseError as exc:
        raise SipParseError(str(exc), reason="Bad Via") from None
    for key in ("branch", "received", "maddr", "ttl"):
        if key in params and params[key] is None:
            raise SipParseError(f"Via {key} without value in {text!r}", reason="Bad Via")
    return Via(transport.upper(), host, port, params)
