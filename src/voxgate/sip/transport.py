"""The asyncio transports of the SIP edge: UDP, TCP and TLS (RFC 3261 section 18).

This is the only SIP module that touches sockets. It turns bytes into parsed messages (or
the :class:`~voxgate.sip.errors.SipParseError` a malformed one raised, so the edge can answer
400 when the request is salvageable) and sends bytes to a :class:`Peer`. Everything else is
the sans-I/O core's business.

A :class:`Peer` names a *flow*: transport, remote address and port. On TCP/TLS the flow is
the connection, so responses and in-dialog requests for a call go back over the connection
its INVITE came in on (what a phone behind NAT can receive, RFC 5626's idea without its
machinery); a send to a stream peer we have no connection for opens one. Sends never raise:
a failure is logged and reported through ``on_failure`` so the transaction layer can fail the
transaction instead of the edge crashing mid-loop.

Worker-link mode (a multi-process edge, see :mod:`voxgate.sip.front`): UDP is not bound
here; datagrams arrive from the front over the worker's link with their source address
restored, and sends go out on a duplicate of the front's public socket, so to the rest of
the edge (rport, received, latching, Contact, Via) it is the same UDP transport on the
public port.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from voxgate.sip.dispatch import decode_frame
from voxgate.sip.errors import SipParseError
from voxgate.sip.front import WorkerLink
from voxgate.sip.message import SipRequest, SipResponse, SipStreamParser, parse_message

__all__ = ["Delivery", "Peer", "SipTransports"]

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
MAX_CONNECTIONS = 4096
"""Stream connections kept at once; beyond this new ones are refused (fd exhaustion guard)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """A flow to a remote SIP entity: ``("udp", "203.0.113.5", 5060)``."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """Stream transports need no SIP-level retransmission (section 17.1.1.2)."""
        return self.transport != "udp"

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


Delivery = Callable[[SipRequest | SipResponse | SipParseError, Peer], None]
"""Called with each parsed message, or the parse error of a malformed one, and its flow."""


def _receive_datagram(owner: SipTransports, data: bytes, host: str, port: int) -> None:
    if not data.strip(b"\r\n"):
        return  # RFC 5626 CRLF keep-alive (or an empty datagram): nothing to answer
    try:
        message: SipRequest | SipResponse | SipParseError = parse_message(data)
    except SipParseError as exc:
        message = exc
    owner.deliver(message, Peer("udp", host, port))


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransports) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Selector loops hand a Transport that is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        _receive_datagram(self.owner, data, str(addr[0]), int(addr[1]))

    def sendto(self, data: bytes, addr: tuple[str, int]) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.sendto(data, addr)
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _LinkedUdp:
    """UDP of an edge worker behind the front: receives from its link, sends on the public
    socket. Both descriptors are duplicated, so closing this never closes the caller's.

    A send the kernel refuses (socket buffer full) is dropped and counted rather than
    queued: SIP over UDP retransmits, and a late copy is worth less than the next one."""

    READ_BATCH = 64

    def __init__(self, owner: SipTransports, link: WorkerLink) -> None:
        self.owner = owner
        self.inbox = socket.socket(fileno=os.dup(link.inbox_fd))
        self.public = socket.socket(fileno=os.dup(link.public_fd))
        self.inbox.setblocking(False)
        self.public.setblocking(False)  # the flag is shared with the front's copy: it wants it too
        self.port = int(self.public.getsockname()[1])
        self.send_errors = 0
        self.bad_frames = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.inbox.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(self.READ_BATCH):
            try:
                frame = self.inbox.recv(MAX_DATAGRAM + 300)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("sip: worker link receive failed: %s", exc)
                return
            try:
                data, host, port = decode_frame(frame)
            except (ValueError, UnicodeDecodeError):
                self.bad_frames += 1  # only our own front writes here: a bug, not an attack
                log.warning("sip: malformed frame on the worker link (%d bytes)", len(frame))
                continue
            _receive_datagram(self.owner, data, host, port)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> bool:
        try:
            self.public.sendto(data, addr)
        except OSError as exc:
            self.send_errors += 1
            log.debug("sip: udp send to %s failed: %s", addr, exc)
        return True  # like asyncio's transport: a refused UDP send is loss, not a flow failure

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.inbox.fileno())
            self._loop = None
        self.inbox.close()
        self.public.close()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: the transaction timers decide.
        log.debug("sip udp error: %s", exc)


class _Stream(asyncio.Protocol):
    def __init__(self, owner: SipTransports, transport_name: str) -> None:
        self.owner = owner
        self.name = transport_name
        self.parser = SipStreamParser()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer(self.name, str(host), int(port))
        if len(self.owner.connections) >= MAX_CONNECTIONS:
            transport.close()
            return
        self.owner.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        self.parser.feed(data)
        while True:
            try:
                message = self.parser.next_message()
            except SipParseError as exc:
                self.owner.deliver(exc, self.peer)
                if self.parser.broken:
                    assert self.transport is not None
                    self.transport.close()
                    return
                continue
            if message is None:
                return
            self.owner.deliver(message, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.owner.connections.get(self.peer) is self:
            del self.owner.connections[self.peer]

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class SipTransports:
    """The listening sockets and stream connections of one SIP edge."""

    def __init__(
        self,
        deliver: Delivery,
        *,
        host: str,
        on_failure: Callable[[Peer], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.deliver = deliver
        self.host = host
        self.on_failure = on_failure
        self.ssl_context = ssl_context
        self.client_ssl_context: ssl.SSLContext | None = None
        """For TLS connections we open (to trunks); default: system CAs, hostname checked."""
        self.connections: dict[Peer, _Stream] = {}
        self._udp: _Udp | _LinkedUdp | None = None
        self._servers: dict[str, asyncio.Server] = {}
        self._ports: dict[str, int] = {}
        self._pending: dict[Peer, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, ports: dict[str, int], link: WorkerLink | None = None) -> None:
        """Listen on ``{"udp": 5060, "tcp": 5060, "tls": 5061}`` (port 0 = any free port);
        with ``link``, UDP is the front's public socket (its port, not ``ports["udp"]``)."""
        loop = asyncio.get_running_loop()
        for name, port in ports.items():
            if name == "udp" and link is not None:
                linked = _LinkedUdp(self, link)
                linked.start()
                self._udp = linked
                self._ports[name] = linked.port
            elif name == "udp":
                transport, proto = await loop.create_datagram_endpoint(
                    lambda: _Udp(self), local_addr=(self.host, port)
                )
                self._udp = proto
                self._ports[name] = int(transport.get_extra_info("sockname")[1])
            elif name in ("tcp", "tls"):
                if name == "tls" and self.ssl_context is None:
                    raise ValueError("TLS transport needs sip.tls_cert and sip.tls_key")
                server = await loop.create_server(
                    lambda n=name: _Stream(self, n),
                    host=self.host,
                    port=port,
                    ssl=self.ssl_context if name == "tls" else None,
                    reuse_address=True,
                )
                self._servers[name] = server
                self._ports[name] = int(server.sockets[0].getsockname()[1])
            else:
                raise ValueError(f"unknown SIP transport {name!r}")

    def port(self, transport: str) -> int:
        """The bound port of ``transport`` (KeyError if it is not listening)."""
        return self._ports[transport]

    @property
    def transports(self) -> list[str]:
        return list(self._ports)

    def send(self, data: bytes, peer: Peer) -> None:
        """Put ``data`` on the flow ``peer``; opens a stream connection when there is none."""
        if peer.transport == "udp":
            if self._udp is None or not self._udp.sendto(data, (peer.host, peer.port)):
                self._fail(peer)
            return
        conn = self.connections.get(peer)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.send(data)
            return
        queued = self._pending.get(peer)
        if queued is not None:
            queued.append(data)
            return
        self._pending[peer] = [data]
        task = asyncio.get_running_loop().create_task(self._connect(peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            ssl_ctx: ssl.SSLContext | None = None
            if peer.transport == "tls":
                ssl_ctx = self.client_ssl_context or ssl.create_default_context()
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Stream(self, peer.transport), peer.host, peer.port, ssl=ssl_ctx
                ),
                timeout=5.0,
            )
        except (OSError, TimeoutError) as exc:
            log.info("sip: cannot connect to %s: %s", peer, exc)
            self._pending.pop(peer, None)
            self._fail(peer)
            return
        assert isinstance(proto, _Stream) and proto.peer is not None
        # Our outgoing connection's remote end is the peer we were asked for.
        for data in self._pending.pop(peer, []):
            proto.send(data)
        if proto.peer != peer:
            self.connections[peer] = proto

    def _fail(self, peer: Peer) -> None:
        if self.on_failure is not None:
            self.on_failure(peer)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        for server in self._servers.values():
            server.close()
        for server in self._servers.values():
            await server.wait_closed()
        if self._udp is not None:
            self._udp.close()
        self._servers.clear()
        self.connections.clear()
