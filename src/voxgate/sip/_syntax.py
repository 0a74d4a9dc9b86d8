"""Lexical helpers shared by the SIP header, URI and auth parsers (RFC 3261 section 25.1).

Everything here works on ``str``: the message parser decodes the header block once (UTF-8, as
section 7.3.1 allows in quoted strings and display names), and the grammar's tokens, quoted
strings, ``<...>`` brackets and ``%HH`` escapes are handled in one place so the splitting of
comma lists and parameter lists is consistent everywhere. Splitting is the classic trap:
commas and semicolons inside ``"..."`` or ``<...>`` belong to the value, not to the list.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping

from voxgate.sip.errors import SipParseError

TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
"""RFC 3261 ``token`` characters."""

_HEX = frozenset(string.hexdigits)
WS = " \t"


def only(chars: Iterable[str]) -> Callable[[str], bool]:
    """A fast ``all(c in chars for c in text)``: one compiled character-class regex (the
    generator form dominated parse profiles)."""
    pattern = re.compile("[" + "".join(re.escape(c) for c in sorted(set(chars))) + "]*")
    match = pattern.fullmatch
    return lambda text: match(text) is not None


_token_match = re.compile("[" + "".join(re.escape(c) for c in sorted(TOKEN_CHARS)) + "]+").fullmatch


def is_token(text: str) -> bool:
    """Return whether ``text`` is a non-empty RFC 3261 token."""
    return _token_match(text) is not None


def split_outside(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` characters that are outside quoted strings and ``<...>``.

    The fast path (no quote and no bracket in the text) is a plain ``str.split``: that is the
    overwhelmingly common header. Raises :class:`SipParseError` on an unterminated quoted
    string or an unbalanced ``<``, because guessing where such a value ends would silently
    misroute the rest of the list.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    i = 0
    n = len(text)
    in_angle = False
    while i < n:
        c = text[i]
        if c == '"' and not in_angle:
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise SipParseError(f"unterminated quoted string in {text!r}")
        elif c == "<":
            if in_angle:
                raise SipParseError(f"nested '<' in {text!r}")
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_angle:
        raise SipParseError(f"unbalanced '<' in {text!r}")
    parts.append(text[start:])
    return parts


def split_commas(text: str) -> list[str]:
    """Split a comma-separated header value into its stripped, non-empty elements."""
    items = [p.strip(WS) for p in split_outside(text, ",")]
    return [p for p in items if p]


def quote(text: str) -> str:
    """Render ``text`` as an RFC 3261 quoted-string, escaping ``"`` and ``\\``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(text: str) -> str:
    """Return the content of a quoted-string, or ``text`` unchanged if it is not quoted."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" not in inner:
            return inner
        out: list[str] = []
        i = 0
        while i < len(inner):
            c = inner[i]
            if c == "\\" and i + 1 < len(inner):
                out.append(inner[i + 1])
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)
    return text


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes (as UTF-8, undecodable bytes kept via surrogateescape).

    A ``%`` not followed by two hex digits is a syntax error in URI components.
    """
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    encoded = text.encode("utf-8", "surrogateescape")
    while i < len(encoded):
        b = encoded[i]
        if b == 0x25:  # '%'
            pair = encoded[i + 1 : i + 3].decode("ascii", "replace")
            if len(pair) != 2 or not all(c in _HEX for c in pair):
                raise SipParseError(f"bad %-escape in {text!r}")
            raw.append(int(pair, 16))
            i += 3
        else:
            raw.append(b)
            i += 1
    return raw.decode("utf-8", "surrogateescape")


def escape(text: str, allowed: frozenset[str]) -> str:
    """Percent-encode every character of ``text`` that is not in ``allowed``."""
    if all(c in allowed for c in text):
        return text
    out: list[str] = []
    for c in text:
        if c in allowed:
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
    return "".join(out)


class Params(Mapping[str, "str | None"]):
    """An immutable, ordered parameter list with case-insensitive names.

    Values are kept exactly as they appeared (a quoted value keeps its quotes), so a message
    re-serializes faithfully; :meth:`unquoted` gives the value as text. ``None`` marks a flag
    parameter without ``=`` (``;lr``, ``;rport``). Immutable so parsed header objects can be
    shared and cached safely; :meth:`replace` and :meth:`remove` return new lists.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        self._items: tuple[tuple[str, str | None], ...] = tuple(items)

    def __getitem__(self, key: str) -> str | None:
        lk = key.lower()
        for name, value in self._items:
            if name.lower() == lk:
                return value
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        lk = key.lower()
        return any(name.lower() == lk for name, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Params({list(self._items)!r})"

    @property
    def pairs(self) -> tuple[tuple[str, str | None], ...]:
        """The ``(name, value)`` pairs in order."""
        return self._items

    def unquoted(self, key: str) -> str | None:
        """The value of ``key`` with surrounding quotes removed, ``None`` if absent or a flag."""
        value = self.get(key)
        return None if value is None else unquote(value)

    def replace(self, key: str, value: str | None) -> Params:
        """Return a copy with ``key`` set to ``value`` (in place of the first occurrence)."""
        lk = key.lower()
        out: list[tuple[str, str | None]] = []
        done = False
        for name, old in self._items:
            if name.lower() == lk:
                if not done:
                    out.append((name, value))
                    done = True
            else:
                out.append((name, old))
        if not done:
            out.append((key, value))
        return Params(out)

    def remove(self, key: str) -> Params:
        """Return a copy without ``key``."""
        lk = key.lower()
        return Params((n, v) for n, v in self._items if n.lower() != lk)

    def serialize(self, sep: str = ";") -> str:
        """Render as ``;name=value;flag`` (each parameter prefixed by ``sep``)."""
        return "".join(f"{sep}{n}" if v is None else f"{sep}{n}={v}" for n, v in self._items)


EMPTY_PARAMS = Params()


def parse_params(segments: Iterable[str], *, what: str = "parameter") -> Params:
    """Build :class:`Params` from ``name[=value]`` segments (LWS around ``=`` allowed)."""
    items: list[tuple[str, str | None]] = []
    for raw in segments:
        seg = raw.strip(WS)
        if not seg:
            raise SipParseError(f"empty {what}")
        name, eq, value = seg.partition("=")
        name = name.rstrip(WS)
        if not is_token(name):
            raise SipParseError(f"bad {what} name {name!r}")
        if eq:
            value = value.lstrip(WS)
            if not value:
                raise SipParseError(f"empty value for {what} {name!r}")
            if value[0] == '"':
                if len(value) < 2 or value[-1] != '"':
                    raise SipParseError(f"bad quoted {what} value {value!r}")
            elif any(c in WS or c in '"<>,' for c in value):
                raise SipParseError(f"bad {what} value {value!r}")
            items.append((name, value))
        else:
            items.append((name, None))
    return Params(items)
