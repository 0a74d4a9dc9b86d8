"""Who may send us requests: source trust, per-source rate limit, digest, REGISTER.

Inbound requests are admitted here before any call or binding exists: an INVITE from
``sip.allowed_sources`` (or a trunk's ``allowed_ips``) passes; anything else must answer a
digest challenge with a configured user's or trunk's credentials, and is rate limited per
source *before* any digest work so a flood is dropped unanswered (neither served nor
reflected). REGISTER always needs digest and then goes to the registrar. Kept apart from
the dispatch in ``endpoint`` because it is the edge's security boundary: one place to read
for "can this source make us do work".
"""

from __future__ import annotations

import ipaddress
import logging
import secrets

from voxgate.observability.metrics import count_rejection
from voxgate.sip.edge_core import EdgeCore
from voxgate.sip.message import SipRequest, make_response
from voxgate.sip.transaction_layer import server_key
from voxgate.sip.transport import Peer

log = logging.getLogger("voxgate.sip.endpoint")  # the edge's one logger name, whatever module


class InboundAdmission(EdgeCore):
    """Admission of inbound requests (trust, rate limit, digest) and the REGISTER handler."""

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

    def _on_register(self, request: SipRequest, source: Peer) -> None:
        username = self._authenticate(request, source, always=True)
        if username is None:
            return
        response = self.registrar.register(
            request, username, self.now(), source=source, to_tag=secrets.token_hex(6)
        )
        self.respond(response)
