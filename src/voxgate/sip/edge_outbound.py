"""What the edge starts toward others: trunk registrations kept alive, and calls dialled out.

Trunk registration (REGISTER, digest retry, refresh before expiry) and outbound dialling
(a registered user of ours at its binding's flow, or a trunk) both pick a far end from
configuration or the registrar and send the first request themselves; nothing here
answers a request. Worker-link limits on dialling (registered users and TCP/TLS trunks
are worker 0's) are part of that choice and live with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from voxgate.config import SipTrunk
from voxgate.sip.call import SipCall
from voxgate.sip.edge_core import EdgeCore
from voxgate.sip.errors import SipParseError
from voxgate.sip.registrar import NotRegistered
from voxgate.sip.transport import Peer
from voxgate.sip.trunk import TrunkRegistration, check_user_part
from voxgate.sip.uri import SipUri, parse_uri

log = logging.getLogger("voxgate.sip.endpoint")  # the edge's one logger name, whatever module


class OutboundSide(EdgeCore):
    """Trunk registration keep-alive and outbound dialling (registered users or trunks)."""

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
        call = SipCall(self._edge, peer, direction="outbound", caller=caller or default_caller, callee=target)
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
