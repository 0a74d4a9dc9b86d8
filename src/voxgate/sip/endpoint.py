"""The SIP edge: the asyncio glue between sockets, the sans-I/O SIP core and the calls.

Shaped like aioquic's ``asyncio/protocol.py``: a message arrives, it is fed to the
:class:`~voxgate.sip.transaction_layer.TransactionLayer` with ``now=loop.time()``, the
layer's events are processed (transmit, dispatch a request, complete a client request),
and the one layer timer is re-armed at ``next_timer()``. All protocol decisions are in the
core; this module decides *policy*:

* who may call in: INVITEs from ``sip.allowed_sources`` or a trunk's ``allowed_ips`` pass;
  anything else must answer a digest challenge with a configured user's or trunk's
  credentials (401, then 403 on wrong credentials; 403 at once when nobody is configured).
  REGISTER always needs digest. Untrusted sources are rate limited before any digest work,
  and the excess is dropped without an answer, so a flood is neither served nor reflected;
* bad input: a malformed request whose request line and Via survived gets 400 (505 for a
  wrong version), anything else is dropped; both are counted with
  ``count_rejection("sip")``. A message never affects another call: errors are contained per
  message and per call task;
* rport (RFC 3581) and ``received``: the top Via of every request gets the address it came
  from, and responses go back to that address and port (symmetric response routing), which
  is also where in-dialog requests of the call go (see ``transport.Peer``);
* worker-link mode (``link=``, a multi-process edge behind :mod:`voxgate.sip.front`): this
  edge is worker k of N. It takes UDP from the front and sends from the public port, binds
  RTP ports only in its k-of-N slice of the range, makes Call-IDs that route back to itself,
  and leaves TCP/TLS listening, trunk REGISTERs and the registrar's traffic to worker 0
  (REGISTERs are routed there).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from voxgate.calls.manager import CallManager
from voxgate.calls.session import CallSession
from voxgate.config import Settings, SipTrunk
from voxgate.observability.metrics import count_rejection
from voxgate.observability.observer import CallObserver
from voxgate.sip.auth import DigestChallenger, Password
from voxgate.sip.call import ALLOW, SUPPORTED, SipCall
from voxgate.sip.dispatch import port_slice
from voxgate.sip.edge_options import SipEdgeOptions
from voxgate.sip.errors import SipParseError
from voxgate.sip.front import WorkerLink
from voxgate.sip.media import MediaClock, NetworkReport, PortPool, RtpSession
from voxgate.sip.message import SipMessage, SipRequest, SipResponse, make_response
from voxgate.sip.ratelimit import SourceRateLimiter
from voxgate.sip.registrar import NotRegistered, Registrar
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
from voxgate.sip.transaction_layer import TransactionLayer, server_key
from voxgate.sip.transport import Peer, SipTransports
from voxgate.sip.trunk import TrunkRegistration, check_user_part
from voxgate.sip.uri import NameAddress, SipUri, parse_uri

__all__ = ["SipEdge", "SipEdgeOptions", "WorkerLink", "start_sip_edge"]

log = logging.getLogger(__name__)

class _Waiter:
    __slots__ = ("future", "on_provisional")

    def __init__(
        self, future: asyncio.Future[SipResponse], on_provisional: Callable[[SipResponse], None] | None
    ) -> None:
        self.future = future
        self.on_provisional = on_provisional


class SipEdge:
    """Terminates SIP for one node and hands every answered call to the ``CallManager``."""

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

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ports = dict(self.options.ports)
        link = self.link
        if link is not None and link.index > 0:  # stream transports live in worker 0 only
            ports = {name: port for name, port in ports.items() if name == "udp"}
        await self.transports.start(ports, link=link)
        for trunk in self.options.trunks:
            infos = await self._loop.getaddrinfo(trunk.host, trunk.port)
            self._trunk_peers[trunk.name] = Peer(trunk.transport, str(infos[0][4][0]), trunk.port)
            if trunk.registration and (link is None or link.index == 0):
                transport = trunk.transport
                token = call_id_affinity.set(self._affinity)  # the REGISTER's Call-ID is made here
                try:
                    reg = TrunkRegistration(
                        trunk, contact=self.contact_for(transport), transport=transport,
                        sent_by=self.sent_by(transport),
                    )  # fmt: skip
                finally:
                    call_id_affinity.reset(token)
                self.registrations[trunk.name] = reg
                self._spawn(self._keep_registered(reg), f"sip-register-{trunk.name}")

    async def close(self) -> None:
        """Hang up every call (BYE), unregister from trunks, close the sockets."""
        calls = list(self.calls.values())
        for call in calls:
            call.session.end("shutdown")
        if calls:
            await asyncio.wait([asyncio.ensure_future(c.wait_finished()) for c in calls], timeout=5.0)
        for reg in self.registrations.values():
            if reg.registered:
                peer = self._trunk_peers[reg.trunk.name]
                request = reg.request(expires=0)
                try:
                    response = await asyncio.wait_for(self.request(request, peer), 3.0)
                    if response.status in (401, 407) and (retry := reg.challenge(request, response)):
                        await asyncio.wait_for(self.request(retry, peer), 3.0)
                except TimeoutError:
                    pass
        for task in list(self._tasks):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        await self.transports.close()

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

    # -- receiving --------------------------------------------------------------------------

    def _deliver(self, message: SipRequest | SipResponse | SipParseError, peer: Peer) -> None:
        if isinstance(message, SipParseError):
            self.rejected += 1
            count_rejection("sip")
            partial = message.partial
            if partial is not None and partial.method != "ACK":
                try:
                    bad = make_response(partial, message.status, message.reason)
                    self.transports.send(bad.serialize(), peer)
                except SipParseError:
                    pass
            return
        try:
            if isinstance(message, SipRequest):
                message = self._stamp_via(message, peer)
            self.layer.receive(message, peer, self.now(), reliable=peer.reliable)
        except SipParseError as exc:
            self.rejected += 1
            count_rejection("sip")
            if isinstance(message, SipRequest) and message.method != "ACK":
                self.transports.send(make_response(message, 400, exc.reason).serialize(), peer)
            return
        self._pump()

    @staticmethod
    def _stamp_via(request: SipRequest, peer: Peer) -> SipRequest:
        """Section 18.2.1 ``received`` and RFC 3581 ``rport`` on the top Via."""
        via = request.via
        changed = via
        if via.host != peer.host:
            changed = changed.with_param("received", peer.host)
        if via.rport_requested:
            changed = changed.with_param("rport", str(peer.port)).with_param("received", peer.host)
        if changed is not via:
            request.headers.remove_first("Via")
            request.headers.prepend("Via", str(changed))
        return request

    def _on_request(self, key: tuple[str, ...] | None, request: SipRequest, source: Peer) -> None:
        method = request.method
        to_tag = request.to_tag
        if method == "ACK":
            call = self._dialogs.get((request.call_id, to_tag or ""))
            if call is not None:
                call.on_ack(request)
            return
        assert key is not None
        if to_tag:
            call = self._dialogs.get((request.call_id, to_tag))
            if call is None:
                self.respond(make_response(request, 481))
            else:
                call.on_request(request)
            return
        if method == "INVITE":
            self._on_invite(key, request, source)
        elif method == "CANCEL":
            txn = self.layer.invite_for_cancel(request)
            call = self._invites.get(txn.key) if txn is not None else None
            if call is None:
                self.respond(make_response(request, 481))
                return
            self.respond(make_response(request, 200))
            call.cancel()
        elif method == "REGISTER":
            self._on_register(request, source)
        elif method == "OPTIONS":
            self.respond(make_response(
                request, 200, to_tag=secrets.token_hex(6),
                headers=[("Allow", ALLOW + ", REGISTER"), ("Accept", "application/sdp"),
                         ("Supported", SUPPORTED)],
            ))  # fmt: skip
        elif method in ("BYE", "INFO", "NOTIFY", "UPDATE", "PRACK", "REFER"):
            self.respond(make_response(request, 481))
        else:
            self.respond(make_response(request, 405, headers=[("Allow", ALLOW + ", REGISTER")]))

    def _trusted(self, source: Peer) -> bool:
        try:
            address = ipaddress.ip_address(source.host)
        except ValueError:
            return False
        return any(address in net for net in self.options.allowed)

    def _rate_ok(self, source: Peer) -> bool:
        return self._limiter.allow(source.host, self.now())

    def _authenticate(self, request: SipRequest, source: Peer, *, always: bool) -> str | None:
        """The authenticated username ("" for a trusted source), or None when answered."""
        if not always and self._trusted(source):
            return ""
        if not self._rate_ok(source):
            count_rejection("sip")
            self._drop(request)
            return None
        challenger = self.challenger
        if challenger is None:
            self.respond(make_response(request, 403))
            return None
        result = challenger.verify(request, self.now())
        if result.ok:
            assert result.username is not None
            return result.username
        if result.stale or not request.headers.get("Authorization"):
            self.respond(challenger.challenge_response(request, self.now(), stale=result.stale))
        else:
            log.info("sip: %s from %s failed digest: %s (%s)", request.method, source, result.reason, request.headers.get("Authorization"))
            self.respond(make_response(request, 403))
        return None

    def _drop(self, request: SipRequest) -> None:
        """Answer nothing but end the server transaction quietly (no retransmission)."""
        txn = self.layer.get(server_key(request))
        if txn is not None:
            self.layer.transport_error(txn.key, self.now())

    def _on_invite(self, key: tuple[str, ...], request: SipRequest, source: Peer) -> None:
        seen = (request.call_id, request.from_tag or "", request.cseq.number)
        if seen in self._seen_invites:
            return  # a retransmission after its transaction ended (the call runs or ran)
        self._forget_old_invites()
        if self._authenticate(request, source, always=False) is None:
            return
        # Only what SUPPORTED lists passes: 100rel (RFC 3262) gets 420 on purpose, see call.py.
        required = [r.strip() for v in request.headers.get_all("Require") for r in v.split(",") if r.strip()]
        unsupported = [r for r in required if r.lower() not in SUPPORTED.split(", ")]
        if unsupported:
            self.respond(make_response(request, 420, headers=[("Unsupported", ", ".join(unsupported))]))
            return
        if len(self.calls) >= self.options.max_calls or self.manager.draining:
            self.respond(make_response(request, 503, headers=[("Retry-After", "10")]))
            return
        uri = request.uri
        callee = (uri.user or "") if isinstance(uri, SipUri) else str(uri)
        caller_uri = request.from_.uri
        caller = (caller_uri.user or caller_uri.host) if isinstance(caller_uri, SipUri) else str(caller_uri)
        call = SipCall(self, source, direction="inbound", caller=caller, callee=callee)
        self.calls[call.call_id] = call
        self._invites[key] = call
        self._seen_invites[seen] = float("inf")  # until the call ends
        self._spawn(self._guard(call, call.run_inbound(request, key)), f"sip-in-{call.call_id}")

    def _forget_old_invites(self) -> None:
        now = self.now()
        if len(self._seen_invites) > 2 * len(self.calls) + 256:
            for key in [k for k, until in self._seen_invites.items() if until < now]:
                del self._seen_invites[key]

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

    def _on_register(self, request: SipRequest, source: Peer) -> None:
        username = self._authenticate(request, source, always=True)
        if username is None:
            return
        response = self.registrar.register(
            request, username, self.now(), source=source, to_tag=secrets.token_hex(6)
        )
        self.respond(response)

    # -- trunks -----------------------------------------------------------------------------

    async def _keep_registered(self, reg: TrunkRegistration) -> None:
        peer = self._trunk_peers[reg.trunk.name]
        while True:
            delay = reg.next_at - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            request = reg.request()
            response = await self.request(request, peer)
            if response.status in (401, 407):
                retry = reg.challenge(request, response)
                if retry is not None:
                    request, response = retry, await self.request(retry, peer)
            reg.on_response(request, response, self.now())
            if response.success:
                log.info("sip: registered with trunk %s", reg.trunk.name)
            else:
                log.warning("sip: trunk %s REGISTER failed: %s", reg.trunk.name, response.status)

    def trunk(self, name: str | None) -> SipTrunk:
        """The named trunk (the first one when ``name`` is None); KeyError if none."""
        for trunk in self.options.trunks:
            if name is None or trunk.name == name:
                return trunk
        raise KeyError(name or "no trunk configured")

    def local_user(self, target: str) -> str | None:
        """The user of ours ``target`` names (``alice``, or ``sip:alice@<our host>``), if any.

        Only configured users can hold bindings (REGISTER always needs their digest), so a
        name that is not configured is never a local user and goes to a trunk."""
        user: str | None = target
        if target.startswith(("sip:", "sips:")):
            try:
                uri = parse_uri(target)
            except SipParseError:
                return None
            ours = {self.options.advertised_host, self.options.host, self.options.realm}
            user = uri.user if isinstance(uri, SipUri) and uri.host in ours else None
        return user if user is not None and user in self.options.users else None

    def registered_contact(self, user: str) -> tuple[SipUri, Peer]:
        """Where to call ``user``: its most recently refreshed live binding's Contact (the
        Request-URI) and the flow its REGISTER came over (where the INVITE goes, so a phone
        behind NAT is reached); :class:`NotRegistered` when it has no live binding."""
        for binding in self.registrar.lookup(user, self.now()):
            uri, source = binding.contact.uri, binding.source
            if isinstance(uri, SipUri) and isinstance(source, Peer):
                return uri, source
        raise NotRegistered(f"user {user!r} is not registered")

    def dial(
        self, target: str, *, trunk: str | None = None, caller: str | None = None,
        app: str | None = None,
    ) -> SipCall:  # fmt: skip
        """Place a call to ``target``; returns at once (the call rings on).

        Without ``trunk``, a ``target`` naming one of our users (see :meth:`local_user`) is
        called at its registrar binding, over the flow its REGISTER came in on (reachable
        behind NAT); :class:`NotRegistered` if it has no live binding. Anything else goes
        through ``trunk`` (default the first). The app is started by the ``CallManager``
        when the far end answers: ``app`` when given (``session.requested_app``), else the
        route for the callee. ``metadata["sip_state"]`` tells dialing/ringing/answered/ended.
        """
        if len(self.calls) >= self.options.max_calls:
            raise RuntimeError("SIP edge is at max_calls")
        user = self.local_user(target) if trunk is None else None
        chosen: SipTrunk | None = None
        request_uri: SipUri | None = None
        worker = self.link.index if self.link is not None else 0
        if user is not None:
            if worker > 0:  # the registrar's bindings live in worker 0 alone (sip.front)
                raise RuntimeError(
                    f"registered users are dialled by SIP worker 0, which holds the registrar; "
                    f"this request reached worker {worker}: retry it"
                )
            if caller is not None:
                check_user_part(caller, "caller id")  # it becomes our From user
            request_uri, peer = self.registered_contact(user)
            target, default_caller = user, self.options.contact_user
        else:
            chosen = self.trunk(trunk)
            peer = self._trunk_peers[chosen.name]
            if worker > 0 and peer.reliable:  # TCP/TLS listen in worker 0 only: the trunk's
                # in-dialog requests would reach worker 0 and be refused 481
                raise RuntimeError(
                    f"trunk {chosen.name!r} uses {peer.transport}, served by SIP worker 0 "
                    f"only; this request reached worker {worker}: retry it"
                )
            default_caller = chosen.from_user or chosen.username or "voxgate"
        call = SipCall(self, peer, direction="outbound", caller=caller or default_caller, callee=target)
        if chosen is not None:
            call.session.metadata["trunk"] = chosen.name
        else:
            call.session.metadata["registered_user"] = target
        call.session.requested_app = app
        self.calls[call.call_id] = call
        self._spawn(self._guard(call, self._ringing(call, call.run_outbound(chosen, target, request_uri))),
                    f"sip-out-{call.call_id}")  # fmt: skip
        return call

    async def _ringing(self, call: SipCall, work: Awaitable[None]) -> None:
        """Tell the manager the call rings (cluster-wide control can CANCEL it) until
        it is answered or over."""
        await self.manager.ring(call.session)
        try:
            await work
        finally:
            await self.manager.ring_done(call.session)

    @property
    def uri(self) -> str:
        """``sip:agent@host:port`` for the banner."""
        transport = "udp" if "udp" in self.transports.transports else self.transports.transports[0]
        host, port = self.sent_by(transport)
        return f"sip:agent@{host}:{port}"


async def start_sip_edge(
    settings: Settings, manager: CallManager, observer: CallObserver | None = None,
    *, link: WorkerLink | None = None,
) -> SipEdge:  # fmt: skip
    """Start the SIP edge described by ``settings.sip``/``settings.media``; ``await
    edge.close()`` at shutdown. ``link``: run as worker ``link.index`` behind the front
    (:mod:`voxgate.sip.front`)."""
    edge = SipEdge(SipEdgeOptions.from_settings(settings), manager, observer, link=link)
    await edge.start()
    return edge
