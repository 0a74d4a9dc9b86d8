"""Re-offers in an established call: the far end's re-INVITE/UPDATE and our own re-INVITE.

Hold/unhold from the app, the far end's hold or codec change, and RFC 4028 session refresh
all are offer/answer exchanges inside the dialog; they share the rules on who may start one
(glare, RFC 3261 section 14) and how a refresh re-arms the session timer, so they live
together and apart from call setup. The glare rules themselves are pure and tested on a
virtual clock in :mod:`voxgate.sip.glare`; this module is their asyncio glue (it sleeps out the
back-off after a 491 and answers 491/500 from the guard's refusal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from voxgate.sip.call_core import CallCore
from voxgate.sip.glare import MAX_OFFER_ATTEMPTS, retry_delay
from voxgate.sip.message import SipRequest, SipResponse
from voxgate.sip.offer_answer import NegotiationError
from voxgate.sip.sdp import SdpParseError, SessionDescription
from voxgate.sip.session_timer import (
    TooSmall,
    min_se_of,
    negotiate_uac,
    negotiate_uas,
)
from voxgate.sip.signalling import (
    ALLOW,
    SUPPORTED,
)

log = logging.getLogger("voxgate.sip.call")


class Reoffers(CallCore):
    """Re-INVITE/UPDATE both ways and session refresh for ``SipCall``."""

    def _on_reoffer(self, request: SipRequest) -> None:
        """The far end's re-INVITE/UPDATE: refused while an offer/answer exchange is open
        (491 if ours, 500 + Retry-After if theirs: :class:`~voxgate.sip.glare.OfferGuard`),
        else answered at once."""
        refusal = self.glare.receive(
            request.method, request.cseq.number, has_offer=bool(request.body),
            awaiting_answer=self._answer_due is not None,
        )  # fmt: skip
        if refusal is not None:
            log.info("sip call %s: %s CSeq %s refused %s (glare)", self.call_id, request.method,
                     request.cseq.number, refusal.status)  # fmt: skip
            self._reply(request, refusal.status, headers=refusal.headers())
            return
        try:
            self._answer_reoffer(request)
        finally:
            if request.method == "INVITE":
                self.glare.answered(request.cseq.number)

    def _answer_reoffer(self, request: SipRequest) -> None:
        ms = self.offer_answer
        assert ms is not None and self.dialog is not None
        try:  # every re-INVITE/UPDATE is a session refresh (RFC 4028 section 9)
            timer = negotiate_uas(request, self.edge.options.session_timer)
        except ValueError:
            self._reply(request, 400, "Bad Session-Expires")
            return
        if isinstance(timer, TooSmall):
            self._reply(request, 422, headers=timer.headers())
            return
        timer_headers = [("Supported", SUPPORTED), *(timer.response_headers() if timer else [])]
        if not request.body and request.method == "UPDATE":
            self._reply(request, 200, headers=[("Contact", str(self.edge.contact_for(self.peer.transport))), *timer_headers])
            self._start_session_timer(timer)
            return
        if not request.body:
            # A re-INVITE without an offer (a session refresh, or a PBX asking for our
            # media again): our current offer goes in the 200, the answer in the ACK.
            offer = ms.create_offer(self.local_direction).serialize().encode()
            response = self._reply(
                request, 200, body=offer, headers=[
                    ("Contact", str(self.edge.contact_for(self.peer.transport))), ("Allow", ALLOW),
                    ("Content-Type", "application/sdp"), *timer_headers,
                ],
            )  # fmt: skip
            self._start_session_timer(timer)
            self._answer_due = request.cseq.number
            self.dialog.start_2xx_retransmission(response, self.peer, self.edge.now())
            self._arm_dialog_timer()
            return
        try:
            answer, negotiated = ms.receive_offer(
                SessionDescription.parse(request.body), self.local_direction
            )
        except (SdpParseError, NegotiationError):
            self.edge.count_sdp_rejection()
            self._reply(request, 488)
            return
        response = self._reply(
            request, 200, body=answer.serialize().encode(), headers=[
                ("Contact", str(self.edge.contact_for(self.peer.transport))), ("Allow", ALLOW),
                ("Content-Type", "application/sdp"), *timer_headers,
            ],
        )  # fmt: skip
        self._start_session_timer(timer)
        if request.method == "INVITE":
            self.dialog.start_2xx_retransmission(response, self.peer, self.edge.now())
            self._arm_dialog_timer()
        self._apply(negotiated)

    async def reinvite(self, direction: Literal["sendrecv", "sendonly"]) -> None:
        """Hold (``sendonly``) or unhold the far end with a re-INVITE (RFC 3264 8.4)."""
        response = await self._reinvite(direction, self._timer_headers())
        if not response.success:
            raise RuntimeError(f"re-INVITE refused: {response.status} {response.reason}")

    async def _reinvite(self, direction: Literal["sendrecv", "sendonly"], headers: list[tuple[str, str]]) -> SipResponse:
        """Send a re-INVITE with our offer for ``direction``; apply the answer and the
        session timer of a 2xx. Returns the final response; RuntimeError when the 2xx's
        answer is unusable (the call keeps its old media).

        A 491 (the far end re-offered at the same time) is not the final word: after the
        random back-off of RFC 3261 section 14.1 the same ``direction`` is offered again
        (up to :data:`~voxgate.sip.glare.MAX_OFFER_ATTEMPTS` tries), so a hold or unhold the
        app asked for is not lost to glare. During the back-off the far end's re-offer is
        answered with the direction still in force."""
        ms = self.offer_answer
        if ms is None:
            raise RuntimeError("call has no media yet")
        async with self._reinvite_lock:
            for attempt in range(1, MAX_OFFER_ATTEMPTS + 1):
                await self._until_offer_allowed()
                previous = self.local_direction
                self.local_direction = direction
                offer = ms.create_offer(direction).serialize().encode()
                self.glare.sending(self.edge.now(), awaiting_answer=self._answer_due is not None)
                try:
                    request, response = await self._send_in_dialog(
                        "INVITE", body=offer, content_type="application/sdp", headers=headers
                    )
                except BaseException:
                    self.glare.sent_failed()
                    raise
                retry_at = self.glare.response(response.status, self.edge.now())
                if not response.success:
                    ms.negotiated = self.media.negotiated
                    self.local_direction = previous
                    if retry_at is not None and attempt < MAX_OFFER_ATTEMPTS:
                        log.info("sip call %s: re-INVITE met glare (491), again in %.2f s",
                                 self.call_id, retry_at - self.edge.now())  # fmt: skip
                        continue
                    return response
                break
            assert self.dialog is not None
            self.edge.transmit(self.dialog.create_ack(request.cseq.number), self.peer)
            try:
                timer = negotiate_uac(response)
            except ValueError:
                timer = None
            if timer is not None or self.session_timer.agreement is not None:
                self._start_session_timer(timer)
            try:
                negotiated = ms.receive_answer(SessionDescription.parse(response.body))
            except (NegotiationError, SdpParseError) as exc:
                self.edge.count_sdp_rejection()
                raise RuntimeError(f"unusable answer to re-INVITE: {exc}") from exc
            self._apply(negotiated)
            return response

    async def _until_offer_allowed(self) -> None:
        """Sleep until the glare rules let our re-INVITE go: the back-off after a 491, or the
        ACK that brings the answer to an offer we put in a 2xx (their re-INVITE had none; the
        ACK timeout ends the call if it never comes). Their own re-INVITE is answered within
        ``_on_reoffer``, so it is never seen open across an await today. RuntimeError when the
        call ends meanwhile: the session's end counts, not only ``state`` (that turns "ended"
        only once our BYE is answered, and a retry must never follow our BYE into the dialog,
        RFC 3261 15.1.1), and the end wakes the back-off instead of being slept through."""
        while True:
            if self.state != "answered" or self.session.ended:
                state = "ended" if self.session.ended else self.state
                raise RuntimeError(f"cannot send INVITE: call is {state}")
            now = self.edge.now()
            at = self.glare.next_offer_at(now, awaiting_answer=self._answer_due is not None)
            if at == now:
                return
            await self._sleep_unless_ended(at - now if at is not None else 0.05)

    async def _sleep_unless_ended(self, delay: float) -> bool:
        """Sleep ``delay`` seconds or until the call's session ends; True if it ended. A
        glare back-off must not outlive the call, nor let a retry follow our BYE."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.session.wait_ended(), delay)
        return self.session.ended

    async def _refresh_session(self, interval: int) -> None:
        """As refresher: UPDATE when the far end allows it (no SDP to redo), else re-INVITE
        with our unchanged offer. 422 -> again with its Min-SE; 408/481 -> the dialog is gone
        at the far end (section 10), so the call ends; other failures leave the session to
        expire at the deadline, which ends it."""
        for _attempt in range(3):
            headers = self._timer_headers(interval)
            try:
                if self._peer_allows_update:
                    _, response = await self._send_in_dialog("UPDATE", headers=headers)
                    if response.success:
                        self._start_session_timer(negotiate_uac(response))
                else:
                    response = await self._reinvite(self.local_direction, headers)
            except (RuntimeError, ValueError) as exc:
                log.info("sip call %s: session refresh failed: %s", self.call_id, exc)
                return
            if response.success:
                return
            min_se = min_se_of(response) if response.status == 422 else None
            if min_se is not None:
                interval = max(interval, min_se)
                continue
            if response.status in (408, 481):
                self.session.end("session_refresh_failed")
                return
            if response.status == 491:  # glare: section 14.1's back-off, then once more
                if await self._sleep_unless_ended(retry_delay(self.glare.owns_call_id, self.glare.randbelow)):
                    return  # ended meanwhile: no UPDATE/re-INVITE after our BYE
                continue
            log.info("sip call %s: session refresh answered %s", self.call_id, response.status)
            return
