"""SIP, SIPS and tel URIs and the name-addr / addr-spec forms (RFC 3261 sections 19.1, 20.10,
25.1; RFC 3966 for tel).

URIs are frozen dataclasses so parsed values can be cached (``parse_uri`` and
``parse_name_addr`` are memoized: a dialog sees the same From/To/Contact text on every
message) and shared between messages without defensive copies.

What is normalized and what is kept raw, and why:

* the user and password are stored *unescaped* (``sip:%2B1555@h`` has user ``+1555``),
  because routing compares dialled numbers, and are re-escaped on output;
* URI parameters and headers are kept exactly as written (escapes included), because their
  comparison rules differ per parameter and they are mostly passed through;
* an IPv6 host keeps its brackets (``[2001:db8::1]``), the form used in URIs and Via.

Unknown schemes parse into :class:`AbsoluteUri` instead of failing: RFC 4475's "unksm" says a
request with an unknown Request-URI scheme is a well-formed message the application answers
with 416, not a parse error.
"""

from __future__ import annotations

import ipaddress
import re
import string
from dataclasses import dataclass, field, replace
from functools import lru_cache

from voxgate.sip._syntax import (
    EMPTY_PARAMS,
    WS,
    Params,
    escape,
    is_token,
    only,
    parse_params,
    quote,
    split_outside,
    unescape,
    unquote,
)
from voxgate.sip.errors import SipParseError

__all__ = [
    "AbsoluteUri",
    "NameAddress",
    "SipUri",
    "TelUri",
    "Uri",
    "parse_name_addr",
    "parse_uri",
]

_ALNUM = string.ascii_letters + string.digits
_UNRESERVED = frozenset(_ALNUM + "-_.!~*'()")
_USER_CHARS = _UNRESERVED | frozenset("&=+$,;?/")
_PASSWORD_CHARS = _UNRESERVED | frozenset("&=+$,")
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$%")
_HEADER_CHARS = _UNRESERVED | frozenset("[]/?:+$%")
_HOST_CHARS = frozenset(_ALNUM + "-.")
_SCHEME_CHARS = frozenset(_ALNUM + "+-.")
_TEL_CHARS = frozenset(string.digits + "+-.()*#ABCDabcdpw")
_is_user = only(_USER_CHARS | {"%"})
_is_password = only(_PASSWORD_CHARS | {"%"})
_is_header = only(_HEADER_CHARS)
_is_param = only(_PARAM_CHARS)
_is_host = only(_HOST_CHARS)
_is_scheme = only(_SCHEME_CHARS)
_is_tel = only(_TEL_CHARS)
_has_forbidden = re.compile("[" + re.escape(WS + '<>"\r\n') + "]").search


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI. ``host`` keeps IPv6 brackets; ``port`` is ``None`` if absent."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = EMPTY_PARAMS
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    @property
    def secure(self) -> bool:
        """Whether this is a ``sips:`` URI (TLS required hop by hop)."""
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, lowercased, if any."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def loose_route(self) -> bool:
        """Whether the URI has the ``lr`` parameter (a loose router, RFC 3261 section 16.12)."""
        return "lr" in self.params

    @property
    def host_address(self) -> str:
        """The host without IPv6 brackets, as a socket API wants it."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def with_params(self, **params: str | None) -> SipUri:
        """Return a copy with the given URI parameters set (``None`` = flag parameter)."""
        p = self.params
        for name, value in params.items():
            p = p.replace(name, value)
        return replace(self, params=p)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_CHARS))
            if self.password is not None:
                out += [":", escape(self.password, _PASSWORD_CHARS)]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(self.params.serialize())
        if self.headers:
            out += ["?", "&".join(f"{n}={v}" for n, v in self.headers)]
        return "".join(out)


@dataclass(frozen=True, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): a number (visual separators kept) and parameters."""

    number: str
    params: Params = EMPTY_PARAMS

    @property
    def global_number(self) -> bool:
        """Whether the number is in global (``+``-prefixed E.164) form."""
        return self.number.startswith("+")

    def __str__(self) -> str:
        return f"tel:{self.number}{self.params.serialize()}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other URI scheme, kept opaque (``mailto:``, ``urn:``, ``http:``, ...)."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


def _check_host(host: str, text: str) -> None:
    if not host:
        raise SipParseError(f"missing host in {text!r}")
    if host[0] == "[":
        if host[-1] != "]":
            raise SipParseError(f"bad IPv6 reference in {text!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError(f"bad IPv6 address in {text!r}") from None
    elif not _is_host(host) or host[0] in "-." or ".." in host:
        raise SipParseError(f"bad host {host!r} in {text!r}")


def split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 in brackets) and validate both parts."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {text!r}")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"junk after IPv6 reference in {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_raw = hostport.partition(":")
        port_text = port_text_raw if colon else None
    _check_host(host, text)
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
            raise SipParseError(f"bad port in {text!r}")
        port = int(port_text)
        if port > 65535:
            raise SipParseError(f"port out of range in {text!r}")
    return host, port


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    at = rest.rfind("@")
    user: str | None = None
    password: str | None = None
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        u, colon, pw = userinfo.partition(":")
        if not u or not _is_user(u):
            raise SipParseError(f"bad user part in {text!r}")
        user = unescape(u)
        if colon:
            if not _is_password(pw):
                raise SipParseError(f"bad password in {text!r}")
            password = unescape(pw)
    rest, qmark, header_text = rest.partition("?")
    headers: tuple[tuple[str, str], ...] = ()
    if qmark:
        pairs = []
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq or not _is_header(name + value):
                raise SipParseError(f"bad URI header {item!r} in {text!r}")
            pairs.append((name, value))
        headers = tuple(pairs)
    hostport, *param_segs = rest.split(";")
    host, port = split_hostport(hostport, text)
    items: list[tuple[str, str | None]] = []
    for seg in param_segs:
        name, eq, value = seg.partition("=")
        if not name or not _is_param(name + value) or (eq and not value):
            raise SipParseError(f"bad URI parameter {seg!r} in {text!r}")
        items.append((name, value if eq else None))
    return SipUri(host, user, password, port, Params(items), headers, scheme)


@lru_cache(maxsize=4096)
def parse_uri(text: str) -> Uri:
    """Parse a URI (no surrounding ``<>``); raise :class:`SipParseError` if malformed."""
    if not text or _has_forbidden(text):
        raise SipParseError(f"bad URI {text!r}")
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isalpha() or not rest:
        raise SipParseError(f"bad URI {text!r}")
    if not _is_scheme(scheme):
        raise SipParseError(f"bad URI scheme in {text!r}")
    lower = scheme.lower()
    if lower in ("sip", "sips"):
        return _parse_sip(lower, rest, text)
    if lower == "tel":
        number, *segs = rest.split(";")
        if not number or not _is_tel(number):
            raise SipParseError(f"bad tel number in {text!r}")
        return TelUri(number, parse_params(segs, what="tel parameter"))
    if not rest.isprintable():
        raise SipParseError(f"bad URI {text!r}")
    return AbsoluteUri(lower, rest)


@dataclass(frozen=True, slots=True)
class NameAddress:
    """A name-addr or addr-spec with header parameters: From, To, Contact, Route, ...

    ``params`` are the *header* parameters (``tag``, ``expires``, ``q``, ``lr`` on a Route
    belongs to the URI instead when inside ``<>``). Serialized always in the bracketed form,
    which is valid wherever either form is.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = field(default=EMPTY_PARAMS)

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (dialog identification, RFC 3261 section 19.3)."""
        return self.params.unquoted("tag")

    def with_tag(self, tag: str) -> NameAddress:
        """Return a copy carrying ``tag``."""
        return replace(self, params=self.params.replace("tag", tag))

    def __str__(self) -> str:
        name = f"{quote(self.display_name)} " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{self.params.serialize()}"


def _display_tokens(text: str, whole: str) -> str | None:
    words = text.split()
    if not words:
        return None
    for word in words:
        if not is_token(word):
            raise SipParseError(f"bad display name {text!r} in {whole!r}")
    return " ".join(words)


@lru_cache(maxsize=4096)
def parse_name_addr(text: str) -> NameAddress:
    """Parse ``["Display"] <uri>;params`` or ``uri;params`` (RFC 3261 section 20.10)."""
    value = text.strip(WS)
    display: str | None = None
    if value.startswith('"'):
        i = 1
        while i < len(value) and value[i] != '"':
            i += 2 if value[i] == "\\" else 1
        if i >= len(value):
            raise SipParseError(f"unterminated display name in {text!r}")
        display = unquote(value[: i + 1])
        value = value[i + 1 :].lstrip(WS)
        if not value.startswith("<"):
            raise SipParseError(f"quoted display name without <uri> in {text!r}")
    lt = value.find("<")
    if lt >= 0:
        if display is None:
            display = _display_tokens(value[:lt], text)
        gt = value.find(">", lt)
        if gt < 0:
            raise SipParseError(f"unbalanced '<' in {text!r}")
        uri = parse_uri(value[lt + 1 : gt])
        rest = value[gt + 1 :].strip(WS)
    else:
        uri_text, semi, tail = value.partition(";")
        if any(c in "?," for c in uri_text):
            raise SipParseError(f"addr-spec with '?' or ',' must be in <> in {text!r}")
        uri = parse_uri(uri_text.strip(WS))
        rest = semi + tail
    params = EMPTY_PARAMS
    if rest:
        if not rest.startswith(";"):
            raise SipParseError(f"junk after address in {text!r}")
        params = parse_params(split_outside(rest[1:], ";"), what="header parameter")
    return NameAddress(uri, display, params)
