"""One SIP call: the flow from INVITE to BYE around a ``CallSession`` and its RTP.

The protocol state lives in the sans-I/O pieces (transactions in the edge's
``TransactionLayer``, the :class:`~voxgate.sip.dialog.Dialog`, offer/answer in a
:class:`~voxgate.sip.offer_answer.MediaSession`); a :class:`SipCall` sequences them for one
call and maps them to what the core sees:

* inbound: INVITE -> 100 (transaction layer) -> 180 -> route and start the app -> 200 with
  the SDP answer -> ACK (2xx retransmitted until then) -> media; CANCEL before the answer ->
  487; BYE either way. An INVITE without SDP (delayed offer, RFC 3261 13.2.1: Cisco CUBE and
  many PBXs send them) gets our offer in the 200 and must bring the answer in the ACK; an ACK
  without one, or with one we cannot use, ends the call with BYE (``ack_without_answer``,
  ``incompatible_media``). A re-INVITE without SDP is handled the same way;
* outbound: INVITE through a trunk (401/407 answered once each) -> 2xx -> ACK -> media ->
  app; 486/480/408/503... end the session with a reason instead of starting the app;
* in the call: re-INVITE/UPDATE (hold, unhold, new address, codec change; glare answered
  491, our own re-INVITE retried after a 491 per RFC 3261 14.1), INFO DTMF
  (``application/dtmf-relay``), OPTIONS, NOTIFY for our REFER. An inbound REFER asks *us*
  to place a call, at our cost: a toll-fraud vector, so it is refused (403) unless its
  Refer-To user is listed in ``sip.refer_targets``; an allowed one is accepted (202) and
  dialled like any outbound call (registered user or trunk, app by route), its progress
  reported to the referrer in NOTIFYs (RFC 3515 ``message/sipfrag``);
* control from the app or the API: hang up (BYE, or CANCEL while ringing out), blind
  transfer (REFER, then BYE once the NOTIFY reports success), hold/unhold (re-INVITE
  ``sendonly``/``sendrecv``), DTMF (RFC 4733 in the RTP stream).

Whichever side ends the call, teardown runs once, in :meth:`SipCall._finish`: the session
end reason is the first one recorded, BYE goes out only if the far end did not send it.

The concerns live in their own modules and :class:`SipCall` combines them over one shared
state (``call_core``): ``call_setup``, ``call_requests``, ``call_reoffer``, ``call_refer``.
The names other modules import from here (``SipCall``, ``ALLOW``, ``end_reason_for_status``...)
stay importable from this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from voxgate.rtp.dtmf import DTMF_DIGITS
from voxgate.sip.call_core import CallCore, CallState
from voxgate.sip.call_refer import Transfers
from voxgate.sip.call_reoffer import Reoffers
from voxgate.sip.call_requests import InDialogRequests
from voxgate.sip.call_setup import CallSetup
from voxgate.sip.signalling import (
    ALLOW,
    SUPPORTED,
    bye_reason,
    end_reason_for_status,
    parse_dtmf_info,
)
from voxgate.sip.transport import Peer

if TYPE_CHECKING:
    from voxgate.sip.endpoint import SipEdge

__all__ = [
    "ALLOW",
    "SUPPORTED",
    "CallCore",
    "CallState",
    "SipCall",
    "SipControl",
    "bye_reason",
    "end_reason_for_status",
    "parse_dtmf_info",
]


class SipControl:
    """``CallControl`` for SIP calls (what the agent and the REST API can do)."""

    def __init__(self, call: SipCall) -> None:
        self._call = call

    async def hangup(self, reason: str = "agent_hangup") -> None:
        self._call.session.end(reason)
        await self._call.wait_finished()

    async def transfer(self, target: str) -> None:
        await self._call.transfer(target)

    async def hold(self) -> None:
        await self._call.reinvite("sendonly")

    async def unhold(self) -> None:
        await self._call.reinvite("sendrecv")

    async def send_dtmf(self, digits: str) -> None:
        for digit in digits:
            if digit.upper() not in DTMF_DIGITS:
                raise ValueError(f"{digit!r} is not a DTMF digit")
        await self._call.media.send_dtmf(digits.upper())


class SipCall(CallSetup, InDialogRequests, Reoffers, Transfers):
    """Created by the edge for an inbound INVITE or an outbound dial."""

    def __init__(
        self, edge: SipEdge, peer: Peer, *, direction: Literal["inbound", "outbound"],
        caller: str, callee: str,
    ) -> None:  # fmt: skip
        super().__init__(
            edge, peer, direction=direction, caller=caller, callee=callee, control=SipControl(self)
        )
