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

The concerns live in their own modules and :class:`SipEdge` combines them over one shared
state: ``edge_core`` (state, sends, the event pump), ``edge_admission`` (trust, rate limit,
digest, REGISTER), ``edge_outbound`` (trunk registration, dialling); the life cycle and the
dispatch of received requests stay here. The names other modules import from here
(``SipEdge``, ``SipEdgeOptions``, ``start_sip_edge``, ``NotRegistered``...) stay importable.
"""

from __future__ import annotations

import asyncio
import secrets

from voxgate.calls.manager import CallManager
from voxgate.config import Settings
from voxgate.observability.metrics import count_rejection
from voxgate.observability.observer import CallObserver
from voxgate.sip.call import ALLOW, SUPPORTED, SipCall
from voxgate.sip.edge_admission import InboundAdmission
from voxgate.sip.edge_options import SipEdgeOptions
from voxgate.sip.edge_outbound import OutboundSide
from voxgate.sip.errors import SipParseError
from voxgate.sip.front import WorkerLink
from voxgate.sip.message import SipRequest, SipResponse, make_response
from voxgate.sip.registrar import NotRegistered
from voxgate.sip.requests import call_id_affinity
from voxgate.sip.transport import Peer
from voxgate.sip.trunk import TrunkRegistration
from voxgate.sip.uri import SipUri

__all__ = ["NotRegistered", "SipEdge", "SipEdgeOptions", "WorkerLink", "start_sip_edge"]


class SipEdge(InboundAdmission, OutboundSide):
    """Terminates SIP for one node and hands every answered call to the ``CallManager``."""

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
