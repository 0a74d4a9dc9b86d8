"""Setting a SIP call up: an inbound INVITE to its answer, an outbound dial to its 2xx.

Everything before the dialog exists lives here (provisional and final responses to the
initial INVITE, CANCEL both ways, digest and RFC 4028 422 retries of our INVITE). It is the
largest single concern of a call and the one with the most failure exits, each mapped to a
session end reason; once the dialog is up, :mod:`voxgate.sip.call_core` takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from voxgate.calls.manager import Draining
from voxgate.calls.router import NoRoute
from voxgate.config import SipTrunk
from voxgate.observability.metrics import count_rejection
from voxgate.sip.auth import authorize
from voxgate.sip.call_core import CallCore
from voxgate.sip.dialog import Dialog
from voxgate.sip.message import SipRequest, SipResponse, make_response
from voxgate.sip.offer_answer import MediaSession, NegotiatedMedia, NegotiationError
from voxgate.sip.requests import build_cancel, new_branch
from voxgate.sip.sdp import SdpParseError, SessionDescription
from voxgate.sip.session_timer import (
    TooSmall,
    min_se_of,
    negotiate_uac,
    negotiate_uas,
    retry_with_interval,
)
from voxgate.sip.signalling import (
    ALLOW,
    SUPPORTED,
    allows,
    end_reason_for_status,
)
from voxgate.sip.trunk import build_trunk_invite, build_user_invite
from voxgate.sip.uri import SipUri

log = logging.getLogger("voxgate.sip.call")


class CallSetup(CallCore):
    """INVITE to answer (inbound) and dial to 2xx (outbound) for ``SipCall``."""

    # -- inbound --------------------------------------------------------------------------

    async def run_inbound(self, invite: SipRequest, key: tuple[str, ...]) -> None:
        """Answer ``invite`` (already authenticated), then run until the call ends."""
        self.invite, self.invite_key = invite, key
        edge = self.edge
        if invite.contact is None:  # section 8.1.1.8: no dialog (and no BYE) without it
            count_rejection("sip")
            self._reject(400, "Missing Contact")
            return
        try:
            offer = SessionDescription.parse(invite.body) if invite.body else None
        except SdpParseError:
            edge.count_sdp_rejection()
            self._reject(400, "Bad SDP")
            return
        try:
            timer = negotiate_uas(invite, edge.options.session_timer)
        except ValueError:
            self._reject(400, "Bad Session-Expires")
            return
        if isinstance(timer, TooSmall):
            self._reject(422, headers=timer.headers())
            return
        self._peer_allows_update = allows(invite, "UPDATE")
        try:
            port = await self.media.open()
        except OSError:
            self._reject(503, "No Media Ports")
            return
        ms = MediaSession(edge.options.caps, edge.advertised_host, port)
        self.offer_answer = ms
        negotiated: NegotiatedMedia | None = None
        if offer is None:
            # Delayed offer (RFC 3261 13.2.1, RFC 3264): our offer goes in the 200, the
            # answer must come back in the ACK (see on_ack).
            description = ms.create_offer(self.local_direction)
        else:
            try:
                description, negotiated = ms.receive_offer(offer)
            except NegotiationError:
                edge.count_sdp_rejection()
                self._reject(488)
                return
        try:
            edge.manager.router.rule_for("sip", self.session.callee)
        except NoRoute:
            self._reject(404)
            return
        self._respond(180)
        self._set_state("ringing")
        delay = edge.options.answer_delay_s
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cancelled.wait(), delay)
        if self._cancelled.is_set():
            return
        if self.session.ended:  # hung up by the API while ringing
            self._reject(480)
            return
        try:
            await edge.manager.start(self.session)
        except NoRoute:
            self._reject(404)
            return
        except Draining:
            self._reject(503, headers=[("Retry-After", "30")])
            return
        ok = self._respond(
            200, body=description.serialize().encode(), content_type="application/sdp",
            headers=timer.response_headers() if timer is not None else None,
        )  # fmt: skip
        assert ok is not None
        dialog = Dialog.uas(
            invite, ok, transport=self.peer.transport, sent_by=edge.sent_by(self.peer.transport),
            timers=edge.timers,
        )  # fmt: skip
        self.dialog = dialog
        edge.add_dialog(self._call, dialog)
        dialog.start_2xx_retransmission(ok, self.peer, edge.now())
        self._arm_dialog_timer()
        if negotiated is None:
            self._answer_due = invite.cseq.number
        if timer is not None:
            self._start_session_timer(timer)
        self._answered(negotiated)

    def _respond(
        self, status: int, reason: str | None = None, *, body: bytes = b"",
        content_type: str | None = None, headers: list[tuple[str, str]] | None = None,
    ) -> SipResponse | None:  # fmt: skip
        """Answer the initial INVITE; returns the response, or None if it could not be sent."""
        assert self.invite is not None
        extra = list(headers or [])
        if status < 300 and status != 100:
            extra += [
                ("Contact", str(self.edge.contact_for(self.peer.transport))), ("Allow", ALLOW),
                ("Supported", SUPPORTED),
            ]  # fmt: skip
        if content_type:
            extra.append(("Content-Type", content_type))
        response = make_response(
            self.invite, status, reason, to_tag=self.local_tag, headers=extra, body=body
        )
        if status >= 200:
            self.final_status = status
        if not self.edge.respond(response):
            return None
        return response

    def _reject(self, status: int, reason: str | None = None, *, headers: list[tuple[str, str]] | None = None) -> None:
        self._respond(status, reason, headers=headers)
        self.session.end(end_reason_for_status(status) if status != 404 else "no_route")
        self._finish_now()

    def cancel(self) -> bool:
        """A CANCEL matched our pending INVITE: 487 it (False if already answered)."""
        if self.state not in ("incoming", "ringing") or self.final_status is not None:
            return False
        self._cancelled.set()
        self._respond(487)
        self.session.end("caller_cancel")
        self._finish_now()
        return True

    # -- outbound -------------------------------------------------------------------------

    async def run_outbound(self, trunk: SipTrunk | None, target: str, request_uri: SipUri | None = None) -> None:
        """Dial ``target`` through ``trunk``, or our registered user ``target`` at its binding
        ``request_uri`` when ``trunk`` is None (``self.peer`` is then the flow its REGISTER
        came over); start the app when answered."""
        edge = self.edge
        try:
            port = await self.media.open()
        except OSError:
            self.session.end("no_media_ports")
            self._finish_now()
            return
        ms = MediaSession(edge.options.caps, edge.advertised_host, port)
        self.offer_answer = ms
        transport = self.peer.transport
        sdp = ms.create_offer().serialize().encode()
        contact, sent_by = edge.contact_for(transport), edge.sent_by(transport)
        if trunk is not None:
            invite = build_trunk_invite(
                trunk, target, contact=contact, sdp=sdp, transport=transport, sent_by=sent_by
            )
        else:
            assert request_uri is not None
            invite = build_user_invite(
                request_uri, user=target, caller=self.session.caller,
                domain=edge.advertised_host, contact=contact, sdp=sdp, transport=transport,
                sent_by=sent_by,
            )  # fmt: skip
        for name, value in edge.options.session_timer.request_headers():
            invite.headers.add(name, value)
        self.local_tag = invite.from_tag or self.local_tag
        response: SipResponse | None = None
        for _attempt in range(3):
            self.invite = invite
            response = await self._invite_out(invite)
            if response is None:
                return  # cancelled by our side while ringing
            min_se = min_se_of(response) if response.status == 422 else None
            if min_se is not None and _attempt < 2:  # RFC 4028 7.1: ask again, longer
                invite = retry_with_interval(invite, min_se, new_branch())
                continue
            if response.status in (401, 407) and trunk and trunk.username and trunk.password:
                retry = authorize(
                    invite, response, username=trunk.username,
                    password=trunk.password.get_secret_value(),
                )  # fmt: skip
                if retry is not None and _attempt < 2:
                    invite = retry
                    continue
            break
        assert response is not None
        self.final_status = response.status
        if not response.success:
            self.session.end(end_reason_for_status(response.status))
            self._finish_now()
            return
        dialog = Dialog.uac(invite, response, timers=edge.timers)
        self.dialog = dialog
        edge.add_dialog(self._call, dialog)
        edge.transmit(dialog.create_ack(invite.cseq.number), self.peer)
        try:
            negotiated = ms.receive_answer(SessionDescription.parse(response.body))
        except (NegotiationError, SdpParseError):
            edge.count_sdp_rejection()
            self.session.end("incompatible_media")
            await self._finish()
            return
        self._peer_allows_update = allows(response, "UPDATE")
        try:
            timer = negotiate_uac(response)
        except ValueError:
            timer = None  # an unreadable Session-Expires: no timer rather than no call
        if timer is not None:
            self._start_session_timer(timer)
        if self.session.ended:  # hung up while the 200 was on its way
            await self._finish()
            return
        try:
            await edge.manager.start(self.session)
        except (NoRoute, Draining) as exc:
            self.session.end("no_route" if isinstance(exc, NoRoute) else "shutdown")
            await self._finish()
            return
        self._answered(negotiated)

    async def _invite_out(self, invite: SipRequest) -> SipResponse | None:
        """Send the INVITE; CANCEL it if the session ends while it is pending."""

        def provisional(response: SipResponse) -> None:
            if response.status >= 180 and self.state == "dialing":
                self._set_state("ringing")

        pending = self.edge.request(invite, self.peer, on_provisional=provisional)
        ended: asyncio.Future[str] = asyncio.ensure_future(self.session.wait_ended())
        try:
            waiting: set[asyncio.Future[Any]] = {pending, ended}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if pending in done:
                return pending.result()
            # Our side hung up while ringing: CANCEL (section 9.1) and wait for the 487.
            await self.edge.request(build_cancel(invite), self.peer)
            with contextlib.suppress(TimeoutError):
                response = await asyncio.wait_for(pending, 32.0)
                if response.success:  # answered anyway (CANCEL crossed the 200): ACK + BYE
                    dialog = Dialog.uac(invite, response, timers=self.edge.timers)
                    self.dialog = dialog
                    self.edge.add_dialog(self._call, dialog)
                    self.edge.transmit(dialog.create_ack(invite.cseq.number), self.peer)
                    self._set_state("answered")
                    await self._finish()
                    return None
            self._finish_now()
            return None
        finally:
            ended.cancel()
