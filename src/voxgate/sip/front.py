"""The SIP front: one public UDP port, N edge worker processes behind it.

One Python process serves ~200 calls cleanly on one core (bench/RESULTS.md, SIP gateway);
the way to the second core is a second edge process. Phones and trunks know one address,
so a small stateless front owns the public UDP socket and hands each datagram to the worker
that holds its dialog, chosen by Call-ID hash (:mod:`voxgate.sip.dispatch`: REGISTER and
garbage to worker 0). The front never parses, never answers and never sends SIP itself:

* inbound: the front reads the public socket and writes ``source address + datagram`` to
  the worker's end of an ``AF_UNIX``/``SOCK_DGRAM`` socketpair (a connected pair is bounded
  by its 8 MiB send buffer, not by ``net.unix.max_dgram_qlen``; when a stalled worker's
  queue is full the datagram is dropped and counted, as UDP would);
* outbound: each worker sends on its own duplicate of the public socket's descriptor, so
  responses leave from the public port (RFC 3581 symmetric responses, NAT pinholes) and the
  front is not on the send path at all. A worker never *reads* the public socket (that
  would steal datagrams from the front);
* Via sent-by and Contact keep the public address and port, so in-dialog requests come back
  through the front and find their worker by Call-ID; a worker's own new requests carry
  Call-IDs that hash to itself (``requests.call_id_affinity``), so their responses do too;
* each worker binds its own RTP ports, a disjoint k-of-N slice of the configured range
  (``dispatch.port_slice``); media never passes the front;
* TCP and TLS: only worker 0 listens (and only it sends trunk REGISTERs and keeps the
  registrar), so calls over stream transports are all served by worker 0. Deliberately
  simple: a stream is one flow with one owner, and handing a connection's messages to
  several workers would need a stream-aware front. UDP is where the load is;
* per worker, not per node: ``sip.max_calls`` and the per-source INVITE rate limit (a
  flood spread over N workers meets N buckets), the digest nonce secret (a client that
  changes its Call-ID between a 401 and its retry may land on a worker that did not issue
  the nonce, which answers 403; clients keep the Call-ID, as RFC 3261 8.1.3.5 has them), and
  the registrar (worker 0: a
  ``dial`` to a registered user must run in worker 0).

API for the supervisor (``server.workers = N``), with ``voxgate.workers``' named
inherited sockets::

    sockets = open_front(settings, workers=N)       # in the supervisor, before any worker
    for name, sock in sockets.inherit_map().items():
        supervisor.inherit(name, sock)              # sip_public, sip_link0 .. sip_link<N-1>
    front = SipFront(sockets)                       # .dispatcher has the counts
    task = asyncio.create_task(run_front(sockets, front))   # in the supervisor's loop
    ...                                             # at shutdown, after the workers drained:
    task.cancel(); sockets.close()

and in worker k::

    link = link_from(k, N, inherited_socket)        # voxgate.workers.inherited_socket
    edge = await start_sip_edge(settings, manager, observer, link=link)

Without that supervisor: start worker k with ``sockets.pass_fds(k)`` inherited
(``subprocess`` ``pass_fds``) and hand it ``sockets.links[k]`` (four ints, picklable). The
supervisor keeps the worker ends open so a restarted worker gets the same link (datagrams
queued meanwhile are served late rather than lost); ``close_worker_ends`` is for callers
that never restart a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from voxgate.config import Settings
from voxgate.sip.dispatch import Dispatcher, encode_frame

__all__ = [
    "FrontSockets",
    "SipFront",
    "WorkerLink",
    "bind_front",
    "link_from",
    "open_front",
    "run_front",
]

PUBLIC_NAME = "sip_public"
LINK_NAME = "sip_link{}"

log = logging.getLogger(__name__)

LINK_BUFFER = 8 << 20
"""Socket buffer of each front -> worker link: a worker stalled for a GC pause or a burst of
call set-ups must not lose the INVITEs queued meanwhile (~3,600 1 KB datagrams)."""
PUBLIC_RCVBUF = 4 << 20
BATCH = 256
"""Datagrams read per wake-up before giving the loop back (the reader is level-triggered)."""
MAX_DATAGRAM = 65535
DROP_LOG_EVERY = 1000


@dataclass(frozen=True, slots=True)
class WorkerLink:
    """What edge worker ``index`` of ``count`` needs from the front: the descriptor of its
    end of the link (``inbox_fd``: datagrams in, with their source) and of the public UDP
    socket (``public_fd``: it sends there and only there). Plain ints, so it pickles into a
    spawned process; the descriptors must be inherited with the same numbers
    (``subprocess`` ``pass_fds`` does that, a fork too). The worker duplicates both, so the
    caller's descriptors stay the caller's to close."""

    index: int
    count: int
    inbox_fd: int
    public_fd: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"worker index {self.index} not in 0..{self.count - 1}")


@dataclass(slots=True)
class FrontSockets:
    """The bound public socket and one socketpair per worker, made before any worker starts
    (so the port is taken, and every worker inherits the same socket)."""

    public: socket.socket
    front_ends: list[socket.socket]
    worker_ends: list[socket.socket | None]
    links: list[WorkerLink] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.public.getsockname()[1])

    @property
    def workers(self) -> int:
        return len(self.front_ends)

    def pass_fds(self, index: int) -> tuple[int, int]:
        """The descriptors worker ``index`` must inherit: its link end and the public socket."""
        link = self.links[index]
        return link.inbox_fd, link.public_fd

    def inherit_map(self) -> dict[str, socket.socket]:
        """Every socket a worker may need, by name (``sip_public``, ``sip_link<k>``): for a
        supervisor that passes the same named sockets to every worker (each worker then uses
        only its own link, see :func:`link_from`)."""
        named: dict[str, socket.socket] = {PUBLIC_NAME: self.public}
        for index, end in enumerate(self.worker_ends):
            if end is None:
                raise RuntimeError("the worker ends were closed already")
            named[LINK_NAME.format(index)] = end
        return named

    def close_worker_ends(self) -> None:
        """Close the supervisor's copies of the workers' ends (after the workers have theirs),
        so a worker that exits is not kept alive on paper by our copy."""
        for i, end in enumerate(self.worker_ends):
            if end is not None:
                end.close()
                self.worker_ends[i] = None

    def close(self) -> None:
        self.close_worker_ends()
        for end in self.front_ends:
            end.close()
        self.public.close()


def link_from(index: int, count: int, lookup: Callable[[str], socket.socket | None]) -> WorkerLink:
    """Worker ``index``'s link from sockets found by name (``lookup``, e.g.
    ``voxgate.workers.inherited_socket``; the names of :meth:`FrontSockets.inherit_map`).
    The sockets are detached, so their descriptors stay open when the objects go away."""
    inbox, public = lookup(LINK_NAME.format(index)), lookup(PUBLIC_NAME)
    if inbox is None or public is None:
        raise RuntimeError(f"SIP worker {index}: the front's sockets were not inherited")
    return WorkerLink(index, count, inbox.detach(), public.detach())


def bind_front(host: str, port: int, workers: int) -> FrontSockets:
    """Bind the public UDP socket ``host:port`` (0: any free port) and make ``workers`` links."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    public = socket.socket(family, socket.SOCK_DGRAM)
    try:
        public.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PUBLIC_RCVBUF)
        public.bind((host, port))
        public.setblocking(False)
    except OSError:
        public.close()
        raise
    front_ends: list[socket.socket] = []
    worker_ends: list[socket.socket | None] = []
    links: list[WorkerLink] = []
    for index in range(workers):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LINK_BUFFER)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LINK_BUFFER)
        ours.setblocking(False)
        front_ends.append(ours)
        worker_ends.append(theirs)
        links.append(WorkerLink(index, workers, theirs.fileno(), public.fileno()))
    return FrontSockets(public, front_ends, worker_ends, links)


def open_front(settings: Settings, workers: int) -> FrontSockets:
    """:func:`bind_front` on ``sip.host:sip.port``; ValueError when ``sip.transports`` has no
    UDP (the front only fronts UDP; stream transports stay in worker 0)."""
    sip = settings.sip
    if "udp" not in sip.transports:
        raise ValueError("the SIP front needs 'udp' in sip.transports")
    return bind_front(sip.host, sip.port, workers)


class SipFront:
    """Reads the public socket and forwards each datagram to its worker; counts in
    :attr:`dispatcher` (per worker, garbage, keep-alives, dropped when a link was full)."""

    def __init__(self, sockets: FrontSockets) -> None:
        self.sockets = sockets
        self.dispatcher = Dispatcher(sockets.workers)
        self.receive_errors = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sockets.public.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sockets.public.fileno())
            self._loop = None

    def _readable(self) -> None:
        public, ends, route = self.sockets.public, self.sockets.front_ends, self.dispatcher.route
        for _ in range(BATCH):
            try:
                data, addr = public.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP errors surface here on Linux; nothing to forward
                self.receive_errors += 1
                log.debug("sip front: receive error %s", exc)
                continue
            index = route(data)
            if index is None:
                continue
            try:
                ends[index].send(encode_frame(data, str(addr[0]), int(addr[1])))
            except OSError as exc:  # full (stalled worker) or gone: lost like a UDP datagram
                self._dropped(index, exc)

    def _dropped(self, index: int, exc: OSError) -> None:
        """Count a datagram worker ``index``'s link refused, and say so at WARNING on the
        first and every :data:`DROP_LOG_EVERY` th: lost SIP for a stalled or restarting
        worker is an operator's problem, and the counts live in this (supervisor) process,
        which no ``/metrics`` shows."""
        dropped = self.dispatcher.dropped
        dropped[index] += 1
        if dropped[index] % DROP_LOG_EVERY == 1:
            log.warning("sip front: worker %d is not taking datagrams (%s); %d dropped so far",
                        index, exc, dropped[index])  # fmt: skip


async def run_front(sockets: FrontSockets, front: SipFront | None = None) -> None:
    """Forward datagrams until cancelled (pass ``front`` to read its counts meanwhile)."""
    front = front or SipFront(sockets)
    front.start()
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        with contextlib.suppress(Exception):
            front.close()
