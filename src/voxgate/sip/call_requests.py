"""The far end's in-dialog requests: ACK, and the dispatch of BYE/INFO/OPTIONS/... by method.

Re-offers (INVITE/UPDATE) go to :mod:`voxgate.sip.call_reoffer`, REFER/NOTIFY to
:mod:`voxgate.sip.call_refer`; what stays here is small and stateless per request: the ACK
that may carry the answer to an offer we put in a 2xx, BYE, INFO DTMF, OPTIONS, and 501 for
anything else. Kept apart so the dispatch table reads in one place.
"""

from __future__ import annotations

import logging

from voxgate.calls.session import DtmfReceived
from voxgate.sip.call_core import CallCore
from voxgate.sip.message import SipRequest
from voxgate.sip.offer_answer import NegotiationError
from voxgate.sip.sdp import SdpParseError, SessionDescription
from voxgate.sip.signalling import (
    ALLOW,
    SUPPORTED,
    parse_dtmf_info,
)

log = logging.getLogger("voxgate.sip.call")


class InDialogRequests(CallCore):
    """ACK and in-dialog request dispatch for ``SipCall``."""

    def on_ack(self, ack: SipRequest) -> None:
        if self.dialog is None:
            return
        self.dialog.receive_request(ack, self.edge.now())
        self._arm_dialog_timer()
        if self._answer_due is not None and ack.cseq.number == self._answer_due:
            self._answer_due = None
            self._take_answer(ack)

    def _take_answer(self, ack: SipRequest) -> None:
        """The ACK to a 2xx that carried our offer must carry the answer (RFC 3261 13.2.1,
        RFC 3264 section 5): without one, or with one we cannot use, the session cannot
        exist, so it ends with BYE and the reason is recorded."""
        ms = self.offer_answer
        assert ms is not None
        if not ack.body:
            self.edge.count_sdp_rejection()
            log.info("sip call %s: ACK without the SDP answer to our offer", self.call_id)
            self.session.end("ack_without_answer")
            return
        try:
            negotiated = ms.receive_answer(SessionDescription.parse(ack.body))
        except (SdpParseError, NegotiationError) as exc:
            self.edge.count_sdp_rejection()
            log.info("sip call %s: unusable answer in ACK: %s", self.call_id, exc)
            self.session.end("incompatible_media")
            return
        if self.media.negotiated is None:
            self._media_up(negotiated)
        else:
            self._apply(negotiated)

    def on_request(self, request: SipRequest) -> None:
        """An in-dialog request (not ACK); the edge created its server transaction."""
        dialog = self.dialog
        assert dialog is not None
        error = dialog.receive_request(request, self.edge.now())
        if error is not None:
            self.edge.respond(error)
            return
        method = request.method
        if method == "BYE":
            self._remote_ended = True
            self._reply(request, 200)
            self.session.end("caller_hangup" if self.direction == "inbound" else "remote_hangup")
        elif method in ("INVITE", "UPDATE"):
            self._on_reoffer(request)
        elif method == "INFO":
            self._on_info(request)
        elif method == "NOTIFY":
            self._on_notify(request)
        elif method == "REFER":
            self._on_refer(request)
        elif method == "OPTIONS":
            self._reply(request, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", SUPPORTED)])
        else:
            self._reply(request, 501, headers=[("Allow", ALLOW)])

    def _on_info(self, request: SipRequest) -> None:
        parsed = parse_dtmf_info(request.content_type, request.body)
        if parsed is None and request.body:
            self._reply(request, 415, headers=[("Accept", "application/dtmf-relay, application/dtmf")])
            return
        self._reply(request, 200)
        if parsed is not None:
            self.session.feed_event(DtmfReceived(parsed[0], parsed[1]))
