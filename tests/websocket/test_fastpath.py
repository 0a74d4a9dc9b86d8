"""The /twilio/media fast path over real sockets: a websockets client, and raw frames for
what no correct client would send. The server is uvicorn with ``media_ws_protocol``, as
``voxgate serve`` runs it, routing to the built-in ``echo`` app."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.websocket.helpers import TOKEN, make_app, media_msg, serve, start_msg
from tests.websocket.test_frames import client_frame
from voxgate.calls.echo import EchoApp
from voxgate.calls.router import RouteRule
from voxgate.observability.metrics import PARSER_REJECTIONS
from voxgate.websocket.fastpath import FAST_STREAMS

ECHO = [RouteRule(app="echo", name="echo")]


def app_and_manager():  # type: ignore[no-untyped-def]
    return make_app({"echo": EchoApp()}, ECHO)


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code, ws.close_reason


async def test_echo_runs_on_the_fast_path() -> None:
    app, manager = app_and_manager()
    before = FAST_STREAMS._value.get()
    async with (
        serve(app) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):
        await ws.send(start_msg())
        payload = bytes(range(160))
        await ws.send(media_msg(2, 1, payload))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert FAST_STREAMS._value.get() == before + 1
        assert reply == {
            "event": "media",
            "streamSid": "MZ1",
            "media": {"payload": base64.b64encode(payload).decode()},
        }
        session = next(iter(manager.calls.values()))
        assert session.route == "echo" and session.received_frames == 1
        await ws.send('{"event":"stop","sequenceNumber":"3","streamSid":"MZ1"}')
        assert await closed_with(ws) == (1000, "caller_hangup")
    assert FAST_STREAMS._value.get() == before
    assert not manager.calls


async def test_fragments_with_a_ping_between_them_are_one_message() -> None:
    app, _ = app_and_manager()
    async with (
        serve(app) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):
        await ws.send(start_msg())
        text = media_msg(2, 1, b"\x10" * 160)
        pongs: list[float] = []

        async def parts() -> AsyncIterator[str]:
            yield text[:50]
            pongs.append(await asyncio.wait_for(await ws.ping(b"mid"), 5))
            yield text[50:120]
            yield text[120:]

        await ws.send(parts())
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert base64.b64decode(reply["media"]["payload"]) == b"\x10" * 160
        assert len(pongs) == 1  # the server answered the ping mid-message


async def test_64_bit_length_message_is_read() -> None:
    """A valid media message over 65535 bytes (JSON allows trailing whitespace)."""
    app, _ = make_app({"echo": EchoApp()}, ECHO, max_message_bytes=200_000)
    async with (
        serve(app) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):
        await ws.send(start_msg())
        await ws.send(media_msg(2, 1, b"\x20" * 160) + " " * 70_000)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert base64.b64decode(reply["media"]["payload"]) == b"\x20" * 160


async def test_client_close_is_answered_and_ends_the_call() -> None:
    app, manager = app_and_manager()
    async with serve(app) as port:
        ws = await connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}")
        await ws.send(start_msg())
        await ws.send(media_msg(2, 1, b"\x30" * 160))
        await asyncio.wait_for(ws.recv(), 5)
        session = next(iter(manager.calls.values()))
        await ws.close(4100, "app done")
        assert ws.close_code == 4100  # the server echoed the client's code
        await asyncio.wait_for(session.wait_ended(), 5)
        assert session.end_reason == "caller_disconnected"


async def test_other_websocket_paths_and_http_still_go_through_asgi() -> None:
    app, _ = app_and_manager()
    async with serve(app) as port:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
        assert r.status_code == 200
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(f"ws://127.0.0.1:{port}/v1/stream"):
                pass
        assert info.value.response.status_code == 403  # the native edge's own check


async def test_token_is_still_required() -> None:
    app, _ = app_and_manager()
    async with (
        serve(app) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media") as ws,
    ):
        await ws.send(start_msg())
        assert await closed_with(ws) == (1008, "unauthorized")


# --- raw frames: what the websockets client will not send -------------------------------


async def raw_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /twilio/media?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    return reader, writer


async def raw_close_code(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Skip server frames until its close frame; return its code and reason."""
    while True:
        b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(n)
        if b0 & 0x0F == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(0x1, b'{"event":"connected"}', mask=False), 1002),
        (client_frame(0x1, b"\xff\xfe not utf-8"), 1007),
        (client_frame(0x1, b"x", rsv=2), 1002),
        (client_frame(0x9, b"p" * 126), 1002),
        (client_frame(0x0, b"orphan continuation"), 1002),
        (struct.pack("!BBQ", 0x81, 0xFF, 1 << 63) + b"\0\0\0\0", 1002),
        (struct.pack("!BBQ", 0x81, 0xFF, 1 << 40) + b"\0\0\0\0", 1009),
        (client_frame(0x8, struct.pack("!H", 1005)), 1002),
    ],
    ids=[
        "unmasked",
        "bad-utf8",
        "rsv",
        "big-ping",
        "orphan-cont",
        "len-top-bit",
        "huge",
        "close-1005",
    ],
)
async def test_frame_violations_close_with_their_code(frame: bytes, code: int) -> None:
    app, _ = app_and_manager()
    before = PARSER_REJECTIONS.labels(protocol="websocket")._value.get()
    async with serve(app) as port:
        reader, writer = await raw_open(port)
        writer.write(frame)
        got, _ = await raw_close_code(reader)
        assert got == code
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and the TCP connection ends
        writer.close()
    assert PARSER_REJECTIONS.labels(protocol="websocket")._value.get() == before + 1


async def test_ping_is_answered_with_its_payload() -> None:
    app, _ = app_and_manager()
    async with serve(app) as port:
        reader, writer = await raw_open(port)
        writer.write(client_frame(0x9, b"are you there"))
        b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
        assert (b0, b1 & 0x80) == (0x8A, 0)  # a final pong, unmasked
        assert await reader.readexactly(b1) == b"are you there"
        writer.write(client_frame(0x8, struct.pack("!H", 1000)))
        assert await raw_close_code(reader) == (1000, "")
        writer.close()


async def test_bad_opening_gets_an_http_error() -> None:
    app, _ = app_and_manager()
    async with serve(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /twilio/media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 8\r\n\r\n"
        )
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 426 ") and b"Sec-WebSocket-Version: 13" in answer


async def test_keepalive_ping_unanswered_closes_1011() -> None:
    app, manager = app_and_manager()
    async with serve(app, ws_ping_interval=0.2, ws_ping_timeout=0.2) as port:
        reader, writer = await raw_open(port)
        writer.write(client_frame(0x1, start_msg().encode()))
        # a peer that reads but never answers pings
        assert await raw_close_code(reader) == (1011, "keepalive ping timeout")
        writer.close()
    assert not manager.calls


async def test_keepalive_ping_answered_keeps_the_stream() -> None:
    app, manager = app_and_manager()
    async with (
        serve(app, ws_ping_interval=0.1, ws_ping_timeout=0.2) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):
        await ws.send(start_msg())
        await asyncio.sleep(0.6)  # several pings, answered by the client library
        await ws.send(media_msg(2, 1, b"\x40" * 160))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["event"] == "media"
        assert len(manager.calls) == 1
