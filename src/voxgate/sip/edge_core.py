"""The SIP edge's shared state and its loop around the sans-I/O core.

:class:`EdgeCore` is the base of :class:`~voxgate.sip.endpoint.SipEdge`: the attributes
(transaction layer, transports, port pool, registrar, the call and dialog maps), the task
spawning, what a :class:`~voxgate.sip.call.SipCall` asks of its edge (clock, Via sent-by,
Contact, RTP sessions, dialog bookkeeping), sending in and out of transactions, and the
pump that turns the layer's events into sends, dispatched requests and completed client
requests. It is what every other concern of the edge (``edge_admission``,
``edge_outbound``, the receiving side in ``endpoint``) builds on, so it lives apart from
them; the policy lives in those modules.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from voxgate.calls.manager import CallManager
from voxgate.calls.session import CallSession
from voxgate.config import SipTrunk
from voxgate.observability.metrics import count_rejection
from voxgate.observability.observer import CallObserver
from voxgate.sip.auth import DigestChallenger, Password
from voxgate.sip.call import SipCall
from voxgate.sip.dispatch import port_slice
from voxgate.sip.edge_options import SipEdgeOptions
from voxgate.sip.errors import SipParseError
from voxgate.sip.front import WorkerLink
from voxgate.sip.media import MediaClock, NetworkReport, PortPool, RtpSession
from voxgate.sip.message import SipMessage, SipRequest, SipResponse, make_response
from voxgate.sip.ratelimit import SourceRateLimiter
from voxgate.sip.registrar import Registrar
from voxgate.sip.requests import call_id_affinity
from voxgate.sip.transaction import (
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TimerValues,
    TransactionTimeout,
    Transmit,
    TransportFailure,
)
from voxgate.sip.transaction_layer import TransactionLayer
from voxgate.sip.transport import Peer, SipTransports
from voxgate.sip.trunk import TrunkRegistration
from voxgate.sip.uri import NameAddress, SipUri

if TYPE_CHECKING:
    from voxgate.sip.endpoint import SipEdge

log = logging.getLogger("voxgate.sip.endpoint")  # the edge's one logger name, whatever module

class _Waiter:
    __slots__ = ("future", "on_provisional")

    def __init__(
        self, future: asyncio.Future[SipResponse], on_provisional: Callable[[SipResponse], None] | None
    ) -> None:
        self.future = future
        self.on_provisional = on_provisional


class EdgeCore:
    """The edge's state, its sends and its event pump; :class:`SipEdge` adds the concerns."""

    def __init__(
        self, options: SipEdgeOptions, manager: CallManager,
        observer: CallObserver | None = None, *, timers: TimerValues | None = None,
        link: WorkerLink | None = None,
    ) -> None:  # fmt: skip
        self.options = options
        self.link = link
        self._affinity = (link.index, link.count) if link is not None else None
        self.manager = manager
        self.observer = observer
        self.timers = timers or TimerValues()
        self.layer = TransactionLayer(self.timers)
        self.transports = SipTransports(
            self._deliver, host=options.host, on_failure=self._transport_failed,
            ssl_context=options.tls_context,
        )  # fmt: skip
        rtp_ports = options.rtp_ports
        if link is not None:
            rtp_ports = port_slice(*rtp_ports, link.index, link.count)
        self.pool = PortPool(*rtp_ports)
        self.media_clock = MediaClock(options.media.frame_ms / 1000, options.media.clock_slots)
        self.registrar = Registrar(*options.register_expires)
        self.challenger: DigestChallenger | None = None
        if options.users:
            users = options.users
            self.challenger = DigestChallenger(
                options.realm, secrets.token_bytes(32),
                lambda name, realm: Password(users[name]) if name in users else None,
                algorithms=options.digest_algorithms, lenient_uri=True,
            )  # fmt: skip
        self.calls: dict[str, SipCall] = {}
        self.registrations: dict[str, TrunkRegistration] = {}
        self.rejected = 0
        self._dialogs: dict[tuple[str, str], SipCall] = {}
        self._invites: dict[tuple[str, ...], SipCall] = {}
        self._seen_invites: dict[tuple[str, str, int], float] = {}
        """(Call-ID, From tag, CSeq) of recent INVITEs -> when they may be forgotten. Kept for
        64*T1 after the call ends: a retransmitted INVITE still queued in the socket after
        the caller's BYE would otherwise start a ghost call (found under sipp load). The CSeq
        lets a new INVITE of the same dialog attempt through (the retry after a 422)."""
        self._waiters: dict[tuple[str, ...], _Waiter] = {}
        self._limiter = SourceRateLimiter(options.rate_per_source)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._trunk_peers: dict[str, Peer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def _edge(self) -> SipEdge:
        """This edge as calls see it: ``EdgeCore`` is only ever built as a ``SipEdge`` (the
        concerns are its bases), and a ``SipCall`` is typed by the whole edge."""
        return cast("SipEdge", self)

    if TYPE_CHECKING:
        # Provided by SipEdge (endpoint, the receiving side): declared here so the transports'
        # callback and the pump's dispatch type-check against the one shared base.
        def _deliver(self, message: SipRequest | SipResponse | SipParseError, peer: Peer) -> None: ...

        def _on_request(self, key: tuple[str, ...] | None, request: SipRequest, source: Peer) -> None: ...

    # -- tasks ------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        if self._affinity is not None:
            coro = self._with_affinity(coro)
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _with_affinity(self, work: Awaitable[Any]) -> Any:
        """Run ``work`` with this worker's Call-ID affinity: every request a call makes
        (its INVITE, a REFER's new call) gets a Call-ID the front routes back here. Set in
        the task's own context copy, so it never leaks to the caller or another edge."""
        call_id_affinity.set(self._affinity)
        return await work

    # -- helpers for calls ----------------------------------------------------------------

    @property
    def advertised_host(self) -> str:
        return self.options.advertised_host

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def loop_time(self, when: float) -> float:
        return when  # the core's clock is the loop's clock

    def sent_by(self, transport: str) -> tuple[str, int]:
        """Our Via sent-by for ``transport``. When we do not listen on it (a TLS trunk from an
        edge without a certificate) another listening port stands in: responses and
        in-dialog requests come back over the connection we opened anyway."""
        listening = self.transports.transports
        name = transport if transport in listening else ("tcp" if "tcp" in listening else listening[0])
        return self.options.advertised_host, self.transports.port(name)

    def contact_for(self, transport: str) -> NameAddress:
        host, port = self.sent_by(transport)
        uri = SipUri(host, user=self.options.contact_user, port=port)
        if transport != "udp":
            uri = uri.with_params(transport=transport)
        return NameAddress(uri)

    def new_rtp(
        self, session: CallSession, playout: Any, on_timeout: Callable[[], None],
        on_report: Callable[[NetworkReport], None],
    ) -> RtpSession:  # fmt: skip
        return RtpSession(
            session, playout, pool=self.pool, host=self.options.host,
            options=self.options.media, on_timeout=on_timeout, on_report=on_report,
            clock=self.media_clock,
        )  # fmt: skip

    def count_sdp_rejection(self) -> None:
        count_rejection("sdp")

    def trunk_for(self, peer: Peer) -> SipTrunk | None:
        for trunk in self.options.trunks:
            if self._trunk_peers.get(trunk.name) == peer:
                return trunk
        return None

    def add_dialog(self, call: SipCall, dialog: Any) -> None:
        self._dialogs[(dialog.call_id, dialog.local_tag)] = call

    def call_finished(self, call: SipCall) -> None:
        self.calls.pop(call.call_id, None)
        if call.dialog is not None:
            self._dialogs.pop((call.dialog.call_id, call.dialog.local_tag), None)
        if call.invite_key is not None:
            self._invites.pop(call.invite_key, None)
        if call.invite is not None and call.direction == "inbound":
            key = (call.invite.call_id, call.invite.from_tag or "", call.invite.cseq.number)
            self._seen_invites[key] = self.now() + 64 * self.timers.t1

    # -- sending ----------------------------------------------------------------------------

    def transmit(self, message: SipMessage, peer: Peer) -> None:
        """Send outside any transaction (ACK for 2xx, 2xx retransmissions)."""
        self.transports.send(message.serialize(), peer)

    def respond(self, response: SipResponse) -> bool:
        """Send a response through its server transaction; False if it no longer exists."""
        try:
            self.layer.send_response(response, self.now())
        except (KeyError, ValueError) as exc:
            log.info("sip: cannot send %s: %r", response.status, exc)
            return False
        self._pump()
        return True

    def request(
        self, request: SipRequest, peer: Peer,
        on_provisional: Callable[[SipResponse], None] | None = None,
    ) -> asyncio.Future[SipResponse]:  # fmt: skip
        """Send ``request`` in a client transaction; the future gets the final response
        (a synthetic 408 on timeout, 503 on transport failure, as section 8.1.3.1 says)."""
        assert self._loop is not None
        future: asyncio.Future[SipResponse] = self._loop.create_future()
        txn = self.layer.send_request(request, peer, self.now(), reliable=peer.reliable)
        self._waiters[txn.key] = _Waiter(future, on_provisional)
        self._pump()
        return future

    # -- the core loop ----------------------------------------------------------------------

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while events := self.layer.events():
                for event in events:
                    try:
                        self._handle(event)
                    except Exception:
                        log.exception("sip: failed to handle %s", type(event).__name__)
        finally:
            self._pumping = False
        self._arm()

    def _handle(self, event: object) -> None:
        if isinstance(event, Transmit):
            self.transports.send(event.message.serialize(), event.destination)
        elif isinstance(event, RequestReceived):
            self._on_request(event.key, event.request, event.source)
        elif isinstance(event, ResponseReceived):
            waiter = self._waiters.get(event.key)
            if waiter is None:
                return
            if event.response.provisional:
                if waiter.on_provisional is not None:
                    waiter.on_provisional(event.response)
                return
            del self._waiters[event.key]
            if not waiter.future.done():
                waiter.future.set_result(event.response)
        elif isinstance(event, StrayResponse):
            call = self._dialogs.get((event.response.call_id, event.response.from_tag or ""))
            if call is not None and call.dialog is not None:
                ack = call.dialog.ack_for_retransmission(event.response)
                if ack is not None:
                    self.transmit(ack, call.peer)
        elif isinstance(event, TransactionTimeout | TransportFailure):
            waiter = self._waiters.pop(event.key, None)
            if waiter is not None and not waiter.future.done():
                status = 408 if isinstance(event, TransactionTimeout) else 503
                waiter.future.set_result(make_response(event.request, status))

    def _arm(self) -> None:
        when = self.layer.next_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None and self._loop is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.layer.handle_timer(self.now())
        self._pump()

    def _transport_failed(self, peer: Peer) -> None:
        for txn in list(self.layer.transactions()):
            if txn.peer == peer:
                self.layer.transport_error(txn.key, self.now())
        self._pump()

    async def _guard(self, call: SipCall, work: Awaitable[None]) -> None:
        """Run a call's flow; a bug in one call ends that call, never the edge."""
        try:
            await work
        except asyncio.CancelledError:
            call.session.end("shutdown")
            raise
        except Exception:
            log.exception("sip call %s failed", call.call_id)
            call.session.end("sip_error")
            if call.final_status is None and call.invite is not None and call.direction == "inbound":
                call._respond(500)  # noqa: SLF001
            call._finish_now()  # noqa: SLF001
