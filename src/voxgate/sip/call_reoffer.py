"""Re-offers in an established call: the far end's re-INVITE/UPDATE and our own re-INVITE.

Hold/unhold from the app, the far end's hold or codec change, and RFC 4028 session refresh
all are offer/answer exchanges inside the dialog; they share the rules on who may start one
(glare, RFC 3261 section 14) and how a refresh re-arms the session timer, so they live
together and apart from call setup.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Literal

from voxgate.sip.call_core import CallCore
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
        ms = self.offer_answer
        assert ms is not None and self.dialog is not None
        if self._reinvite_lock.locked():
            self._reply(request, 491)  # glare with our own re-INVITE (section 14.1)
            return
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
        answer is unusable (the call keeps its old media)."""
        ms = self.offer_answer
        if ms is None:
            raise RuntimeError("call has no media yet")
        async with self._reinvite_lock:
            previous = self.local_direction
            self.local_direction = direction
            offer = ms.create_offer(direction).serialize().encode()
            request, response = await self._send_in_dialog(
                "INVITE", body=offer, content_type="application/sdp", headers=headers
            )
            if not response.success:
                ms.negotiated = self.media.negotiated
                self.local_direction = previous
                return response
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
                await asyncio.sleep(2.1 + secrets.randbelow(190) / 100)
                continue
            log.info("sip call %s: session refresh answered %s", self.call_id, response.status)
            return
