"""RFC 6455 server side, sans-I/O: the opening handshake and the frame layer.

Used by the media fast path (:mod:`voxgate.websocket.fastpath`), which terminates
``/twilio/media`` sockets without ASGI. No sockets and no clocks here: bytes in, messages
or a :class:`WsProtocolError` (close code + reason) out, and bytes to write back, so every
rule is tested without a network (compare h11 and websockets' own sans-I/O core).

What a server must enforce (RFC 6455 section 5) and this module does:

- client frames must be masked (1002); RSV bits must be 0 since no extension is negotiated
  (1002); unknown opcodes are 1002;
- control frames (close, ping, pong) are at most 125 bytes and never fragmented (1002), and
  may arrive between the fragments of a data message (they are delivered at once);
- a continuation without a started message, or a new data frame inside a fragmented one,
  is 1002;
- the 64-bit length must have its top bit clear (1002); a message over ``max_size`` is
  1009, decided from the header so an oversized payload is never buffered;
- text must be UTF-8 (1007), checked on the whole message; a close frame's code must be
  one a peer may send and its reason UTF-8 (1002/1007).

Text messages are delivered as ``bytes`` already checked to be UTF-8: the Twilio fast parse
matches bytes directly, and ``bytes.isascii()`` (a few ns for 300 bytes) proves most of them
valid without decoding.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from websockets.speedups import apply_mask

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")
_CLOSE = struct.Struct("!H")


class WsProtocolError(Exception):
    """The peer broke RFC 6455 (or a size limit): close with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class HandshakeError(Exception):
    """The upgrade request is not a valid WebSocket opening: answer ``status`` over HTTP."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- the opening handshake -------------------------------------------------------------


def parse_request(data: bytes) -> tuple[str, bytes, list[tuple[bytes, bytes]]]:
    """``(method, target, headers)`` of an HTTP/1.1 request head; header names lowercased."""
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        raise HandshakeError(400, "incomplete request head")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise HandshakeError(400, "bad request line")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise HandshakeError(400, "bad header line")
        headers.append((name.lower(), value.strip()))
    return parts[0].decode("latin-1"), parts[1], headers


def _tokens(headers: list[tuple[bytes, bytes]], name: bytes) -> set[bytes]:
    out: set[bytes] = set()
    for key, value in headers:
        if key == name:
            out.update(t.strip().lower() for t in value.split(b","))
    return out


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def handshake_response(method: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The ``101 Switching Protocols`` answer, or HandshakeError for an invalid opening.

    No subprotocol and no extension is selected (a server may decline both; Twilio asks for
    neither), so every frame arrives with RSV bits clear and uncompressed.
    """
    if method != "GET":
        raise HandshakeError(405, "WebSocket opening must be GET")
    if b"websocket" not in _tokens(headers, b"upgrade"):
        raise HandshakeError(400, "missing Upgrade: websocket")
    if b"upgrade" not in _tokens(headers, b"connection"):
        raise HandshakeError(400, "missing Connection: Upgrade")
    versions = [v for k, v in headers if k == b"sec-websocket-version"]
    if versions != [b"13"]:
        raise HandshakeError(426, "unsupported Sec-WebSocket-Version (13 only)")
    keys = [v for k, v in headers if k == b"sec-websocket-key"]
    try:
        ok = len(keys) == 1 and len(base64.b64decode(keys[0], validate=True)) == 16
    except ValueError:
        ok = False
    if not ok:
        raise HandshakeError(400, "invalid Sec-WebSocket-Key")
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(keys[0]) + b"\r\n\r\n"
    )


def http_error(status: int, reason: str) -> bytes:
    """A minimal HTTP error answer to a failed opening (the connection then closes)."""
    titles = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
              426: "Upgrade Required"}  # fmt: skip
    body = reason.encode()
    extra = b"Sec-WebSocket-Version: 13\r\n" if status == 426 else b""
    return (
        f"HTTP/1.1 {status} {titles.get(status, 'Error')}\r\n".encode()
        + extra
        + b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


# --- frames out ------------------------------------------------------------------------


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return _H16.pack(0x80 | opcode, 126, n) + payload
    return _H64.pack(0x80 | opcode, 127, n) + payload


def encode_close(code: int, reason: str) -> bytes:
    raw = reason.encode()[:123]
    return encode_frame(OP_CLOSE, _CLOSE.pack(code) + raw.decode(errors="ignore").encode())


def _close_code_ok(code: int) -> bool:
    # RFC 6455 7.4: 1004-1006 and 1015 are never sent on the wire; 1016-2999 are reserved.
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code <= 4999


def parse_close(payload: bytes) -> tuple[int, str]:
    """``(code, reason)`` of a close frame; 1005 when it carries no code."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise WsProtocolError(1002, "close frame with a 1-byte payload")
    (code,) = _CLOSE.unpack_from(payload)
    if not _close_code_ok(code):
        raise WsProtocolError(1002, f"invalid close code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise WsProtocolError(1007, "close reason is not UTF-8") from None
    return code, reason


# --- frames in -------------------------------------------------------------------------


class FrameReader:
    """Client frames in, whole messages out: ``(opcode, payload)`` with control frames
    delivered as they come (also between fragments). Raises WsProtocolError."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._frag_op = 0
        self._frag: list[bytes] = []
        self._frag_len = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf: bytes | bytearray = data
        if self._buf:  # a frame split across reads: append (amortised O(1)), no re-copy
            self._buf += data
            buf = self._buf
        out: list[tuple[int, bytes]] = []
        pos = 0
        end = len(buf)
        max_size = self.max_size
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if not b1 & 0x80:
                raise WsProtocolError(1002, "client frames must be masked")
            if b0 & 0x70:
                raise WsProtocolError(1002, "RSV bits set without a negotiated extension")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            n = b1 & 0x7F
            if opcode >= OP_CLOSE:
                if opcode > OP_PONG:
                    raise WsProtocolError(1002, f"unknown opcode {opcode}")
                if n > 125 or not fin:
                    raise WsProtocolError(1002, "control frames must be final and <= 125 bytes")
            elif opcode > OP_BINARY:
                raise WsProtocolError(1002, f"unknown opcode {opcode}")
            head = pos + 2
            if n == 126:
                if end - pos < 4:
                    break
                n = (buf[head] << 8) | buf[head + 1]
                head += 2
            elif n == 127:
                if end - pos < 10:
                    break
                (n,) = struct.unpack_from("!Q", buf, head)
                if n >> 63:
                    raise WsProtocolError(1002, "64-bit length with the top bit set")
                head += 8
            if opcode < OP_CLOSE and n + self._frag_len > max_size:
                raise WsProtocolError(1009, f"message over {max_size} bytes")
            stop = head + 4 + n
            if stop > end:
                break
            payload = apply_mask(buf[head + 4 : stop], buf[head : head + 4])  # C, websockets
            pos = stop
            if opcode >= OP_CLOSE:
                out.append((opcode, payload))
            elif opcode == OP_CONT:
                if not self._frag_op:
                    raise WsProtocolError(1002, "continuation frame without a message")
                self._frag.append(payload)
                self._frag_len += n
                if fin:
                    message = b"".join(self._frag)
                    op = self._frag_op
                    self._frag_op, self._frag, self._frag_len = 0, [], 0
                    out.append((op, _checked(op, message)))
            elif self._frag_op:
                raise WsProtocolError(1002, "new message inside a fragmented one")
            elif fin:
                out.append((opcode, _checked(opcode, payload)))
            else:
                self._frag_op = opcode
                self._frag = [payload]
                self._frag_len = n
        if pos >= end:
            self._buf = bytearray()
        elif buf is not self._buf:
            self._buf = bytearray(buf[pos:])
        elif pos:
            del self._buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held (bounded by the size limit + a header)."""
        return len(self._buf) + self._frag_len


def _checked(opcode: int, payload: bytes) -> bytes:
    if opcode == OP_TEXT and not payload.isascii():
        try:
            payload.decode()
        except UnicodeDecodeError:
            raise WsProtocolError(1007, "text message is not valid UTF-8") from None
    return payload
