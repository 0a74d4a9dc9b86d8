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
* in the call: re-INVITE/UPDATE (hold, unhold, new address, codec change), INFO DTMF
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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Literal

from voxgate.calls.manager import Draining
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.router import NoRoute
from voxgate.calls.session import CallSession, DtmfReceived, HoldChanged
from voxgate.config import SipTrunk
from voxgate.observability.metrics import count_rejection
from voxgate.rtp.dtmf import DTMF_DIGITS
from voxgate.sip.auth import authorize
from voxgate.sip.dialog import AckTimeout, Dialog, DialogState
from voxgate.sip.message import SipRequest, SipResponse, make_response
from voxgate.sip.offer_answer import MediaSession, NegotiatedMedia, NegotiationError
from voxgate.sip.requests import build_cancel, new_branch, new_tag
from voxgate.sip.sdp import SdpParseError, SessionDescription
from voxgate.sip.session_timer import (
    Agreement,
    RefreshDue,
    SessionExpired,
    SessionTimer,
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
    bye_reason,
    end_reason_for_status,
    parse_dtmf_info,
    refer_user,
    sipfrag_status,
)
from voxgate.sip.transaction import Transmit
from voxgate.sip.transport import Peer
from voxgate.sip.trunk import build_trunk_invite, build_user_invite
from voxgate.sip.uri import SipUri

if TYPE_CHECKING:
    from voxgate.sip.endpoint import SipEdge
    from voxgate.sip.media import NetworkReport, RtpSession

__all__ = [
    "ALLOW",
    "SUPPORTED",
    "SipCall",
    "SipControl",
    "bye_reason",
    "end_reason_for_status",
    "parse_dtmf_info",
]

log = logging.getLogger(__name__)

CallState = Literal["incoming", "dialing", "ringing", "answered", "ended"]


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


class SipCall:
    """Created by the edge for an inbound INVITE or an outbound dial."""

    def __init__(
        self, edge: SipEdge, peer: Peer, *, direction: Literal["inbound", "outbound"],
        caller: str, callee: str,
    ) -> None:  # fmt: skip
        self.edge = edge
        self.peer = peer
        self.direction = direction
        self.state: CallState = "incoming" if direction == "inbound" else "dialing"
        self.playout = PlayoutBuffer(edge.options.sample_rate)
        self.session = CallSession(
            edge="sip", sink=self.playout, control=SipControl(self),
            sample_rate=edge.options.sample_rate, caller=caller, callee=callee,
        )  # fmt: skip
        self.session.metadata["direction"] = direction
        self.session.metadata["sip_state"] = self.state
        self.media: RtpSession = edge.new_rtp(self.session, self.playout, self._media_timeout, self._report)
        self.offer_answer: MediaSession | None = None
        self.dialog: Dialog | None = None
        self.invite: SipRequest | None = None
        self.invite_key: tuple[str, ...] | None = None
        self.local_tag = new_tag()
        self.local_direction: Literal["sendrecv", "sendonly"] = "sendrecv"
        self.remote_hold = False
        self._remote_ended = False
        self._cancelled = asyncio.Event()
        self._finished = asyncio.Event()
        self._answered_event = asyncio.Event()
        self._dialog_timer: asyncio.TimerHandle | None = None
        self._reinvite_lock = asyncio.Lock()
        self._refer: asyncio.Future[int] | None = None
        self._answer_due: int | None = None
        self.session_timer = SessionTimer()
        self._session_timer_handle: asyncio.TimerHandle | None = None
        self._peer_allows_update = False
        """CSeq of the INVITE whose 2xx carried our offer: its ACK must bring the answer."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.final_status: int | None = None

    @property
    def call_id(self) -> str:
        return self.session.call_id

    def _set_state(self, state: CallState) -> None:
        self.state = state
        self.session.metadata["sip_state"] = state

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"sip-{self.call_id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_finished(self) -> None:
        await self._finished.wait()

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
        edge.add_dialog(self, dialog)
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
        edge.add_dialog(self, dialog)
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
                    self.edge.add_dialog(self, dialog)
                    self.edge.transmit(dialog.create_ack(invite.cseq.number), self.peer)
                    self._set_state("answered")
                    await self._finish()
                    return None
            self._finish_now()
            return None
        finally:
            ended.cancel()

    # -- answered -------------------------------------------------------------------------

    def _answered(self, negotiated: NegotiatedMedia | None) -> None:
        """The dialog is up; media starts now, or at the ACK for a delayed offer (None)."""
        self._set_state("answered")
        self._answered_event.set()
        if negotiated is not None:
            self._media_up(negotiated)
        self.spawn(self._watch_end(), "end")

    def _media_up(self, negotiated: NegotiatedMedia) -> None:
        self.media.apply(negotiated)
        self.remote_hold = negotiated.remote_hold
        observer = self.edge.observer
        if observer is not None:
            c = negotiated.codec
            observer.call_answered(self.call_id, codec=f"{c.name}/{c.clock_rate}")

    async def _watch_end(self) -> None:
        await self.session.wait_ended()
        await self._finish()

    async def _finish(self) -> None:
        """Tear down once: BYE if the far end has not, free media, forget the dialog."""
        if self._finished.is_set():
            return
        dialog = self.dialog
        if dialog is not None and dialog.state is not DialogState.TERMINATED and not self._remote_ended:
            try:
                bye = dialog.create_request("BYE", headers=[("Reason", bye_reason(self.session.end_reason))])
                response = await asyncio.wait_for(self.edge.request(bye, self.peer), 40.0)
                if response.status in (401, 407):
                    await self._authorized_retry(bye, response)
            except (TimeoutError, ValueError):
                pass
        self._finish_now()

    def _finish_now(self) -> None:
        if self._finished.is_set():
            return
        self._set_state("ended")
        if self._dialog_timer is not None:
            self._dialog_timer.cancel()
        if self._session_timer_handle is not None:
            self._session_timer_handle.cancel()
        self.session_timer.stop()
        self.media.close()
        self.edge.call_finished(self)
        self._finished.set()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    def _media_timeout(self) -> None:
        self.session.end("media_timeout")

    def _report(self, report: NetworkReport) -> None:
        observer = self.edge.observer
        if observer is not None:
            observer.network(
                self.call_id, "sip", packets=report.packets, loss_fraction=report.loss_fraction,
                jitter_s=report.jitter_s, jb_delay_ms=report.jb_delay_ms,
                underruns=report.underruns, concealed_ms=report.concealed_ms,
            )  # fmt: skip

    # -- dialog timers (2xx retransmission) -----------------------------------------------

    def _arm_dialog_timer(self) -> None:
        dialog = self.dialog
        if dialog is None or self._finished.is_set():
            return
        if self._dialog_timer is not None:
            self._dialog_timer.cancel()
            self._dialog_timer = None
        when = dialog.next_timer()
        if when is not None:
            self._dialog_timer = asyncio.get_running_loop().call_at(
                self.edge.loop_time(when), self._on_dialog_timer
            )

    def _on_dialog_timer(self) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        dialog.handle_timer(self.edge.now())
        for event in dialog.events():
            if isinstance(event, Transmit):
                self.edge.transmit(event.message, event.destination)
            elif isinstance(event, AckTimeout):
                self.session.end("ack_timeout")
        self._arm_dialog_timer()

    # -- session timer (RFC 4028) ---------------------------------------------------------

    def _start_session_timer(self, agreement: Agreement | None) -> None:
        """Apply what a 2xx agreed (None: the refresh dropped timers) and re-arm."""
        if agreement is None:
            self.session_timer.stop()
        else:
            self.session_timer.start(agreement, self.edge.now())
        self._arm_session_timer()

    def _arm_session_timer(self) -> None:
        if self._session_timer_handle is not None:
            self._session_timer_handle.cancel()
            self._session_timer_handle = None
        when = self.session_timer.next_timer()
        if when is not None and not self._finished.is_set():
            self._session_timer_handle = asyncio.get_running_loop().call_at(
                self.edge.loop_time(when), self._on_session_timer
            )

    def _on_session_timer(self) -> None:
        self._session_timer_handle = None
        for event in self.session_timer.handle_timer(self.edge.now()):
            if isinstance(event, RefreshDue):
                self.spawn(self._refresh_session(event.interval), "session-refresh")
            elif isinstance(event, SessionExpired):
                log.info("sip call %s: session expired (%s s without refresh)", self.call_id, event.interval)
                self.session.end("session_expired")
        self._arm_session_timer()

    def _timer_headers(self, interval: int | None = None) -> list[tuple[str, str]]:
        """Session-Expires for a re-INVITE/UPDATE of ours: keeps the agreed refresher (we
        send it, so ``uac`` is us), which makes it a refresh too (RFC 4028 section 7.4)."""
        agreement = self.session_timer.agreement
        headers = [("Supported", SUPPORTED)]
        if agreement is None and interval is None:
            return headers
        we = agreement.we_refresh if agreement is not None else True
        value = interval or (agreement.interval if agreement is not None else 0)
        headers += [
            ("Session-Expires", f"{value};refresher={'uac' if we else 'uas'}"),
            ("Min-SE", str(self.edge.options.session_timer.min_se)),
        ]
        return headers

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

    # -- in-dialog requests from the far end ----------------------------------------------

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

    def _reply(
        self, request: SipRequest, status: int, reason: str | None = None, *,
        headers: list[tuple[str, str]] | None = None, body: bytes = b"",
    ) -> SipResponse:  # fmt: skip
        response = make_response(request, status, reason, headers=headers or [], body=body)
        self.edge.respond(response)
        return response

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

    def _apply(self, negotiated: NegotiatedMedia) -> None:
        self.media.apply(negotiated)
        if negotiated.remote_hold != self.remote_hold:
            self.remote_hold = negotiated.remote_hold
            self.session.feed_event(HoldChanged(negotiated.remote_hold))

    def _on_info(self, request: SipRequest) -> None:
        parsed = parse_dtmf_info(request.content_type, request.body)
        if parsed is None and request.body:
            self._reply(request, 415, headers=[("Accept", "application/dtmf-relay, application/dtmf")])
            return
        self._reply(request, 200)
        if parsed is not None:
            self.session.feed_event(DtmfReceived(parsed[0], parsed[1]))

    def _on_refer(self, request: SipRequest) -> None:
        """A far end asks us to call someone (RFC 3515): only targets listed in config."""
        target = refer_user(request.headers.get("Refer-To"))
        if target is None or target not in self.edge.options.refer_targets:
            log.info("sip call %s: REFER to %r refused", self.call_id, request.headers.get("Refer-To"))
            count_rejection("sip_refer")
            self._reply(request, 403, "Transfer Target Not Allowed")
            return
        self._reply(request, 202)
        self.spawn(self._follow_refer(target), "refer-in")

    async def _follow_refer(self, target: str) -> None:
        """Dial ``target`` and report to the referrer: 100 at once, then the final status
        (200 once answered) with the implicit subscription terminated (RFC 3515 2.4.5)."""
        await self._notify_refer("SIP/2.0 100 Trying", "active;expires=60")
        status = 503
        try:
            call = self.edge.dial(target)
        except (LookupError, ValueError, RuntimeError) as exc:
            log.info("sip call %s: cannot follow REFER to %s: %s", self.call_id, target, exc)
        else:
            self.session.metadata["referred_call"] = call.call_id
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.wait_answered(), 64.0)
            status = 200 if call.state == "answered" else (call.final_status or 408)
            if status < 300 and call.state != "answered":
                status = 487
        reason = "OK" if status == 200 else "Failed"
        await self._notify_refer(f"SIP/2.0 {status} {reason}", "terminated;reason=noresource")

    async def _notify_refer(self, sipfrag: str, state: str) -> None:
        with contextlib.suppress(RuntimeError, ValueError):
            await self._send_in_dialog(
                "NOTIFY", body=f"{sipfrag}\r\n".encode(), content_type="message/sipfrag;version=2.0",
                headers=[("Event", "refer"), ("Subscription-State", state)],
            )  # fmt: skip

    async def wait_answered(self) -> None:
        """Until the call is answered or over (check :attr:`state`)."""
        answered = asyncio.ensure_future(self._answered_event.wait())
        finished = asyncio.ensure_future(self._finished.wait())
        try:
            await asyncio.wait({answered, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answered.cancel()
            finished.cancel()

    def _on_notify(self, request: SipRequest) -> None:
        event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if event != "refer" or self._refer is None:
            self._reply(request, 481 if event == "refer" else 489)
            return
        self._reply(request, 200)
        status = sipfrag_status(request.body)
        if status is not None and status >= 200 and not self._refer.done():
            self._refer.set_result(status)

    # -- our in-dialog requests -----------------------------------------------------------

    async def _send_in_dialog(
        self, method: str, *, body: bytes = b"", content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[SipRequest, SipResponse]:  # fmt: skip
        dialog = self.dialog
        if dialog is None or self.state != "answered":
            raise RuntimeError(f"cannot send {method}: call is {self.state}")
        request = dialog.create_request(method, body=body, content_type=content_type, headers=headers or [])
        response = await self.edge.request(request, self.peer)
        if response.status in (401, 407):
            request, response = await self._authorized_retry(request, response)
        dialog.receive_response(request, response)
        return request, response

    async def _authorized_retry(self, request: SipRequest, response: SipResponse) -> tuple[SipRequest, SipResponse]:
        trunk = self.edge.trunk_for(self.peer)
        if trunk is None or trunk.username is None or trunk.password is None or self.dialog is None:
            return request, response
        retry = authorize(request, response, username=trunk.username, password=trunk.password.get_secret_value())
        if retry is None:
            return request, response
        self.dialog.local_seq = retry.cseq.number
        return retry, await self.edge.request(retry, self.peer)

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

    async def transfer(self, target: str, timeout_s: float = 32.0) -> None:
        """Blind transfer (RFC 3515/5589): REFER, then BYE once the far end reports 2xx."""
        uri = target if target.startswith(("sip:", "sips:", "tel:")) else str(
            SipUri(self.edge.advertised_host if self.direction == "inbound" else self.peer.host, user=target)
        )
        loop = asyncio.get_running_loop()
        self._refer = loop.create_future()
        _, response = await self._send_in_dialog(
            "REFER", headers=[("Refer-To", f"<{uri}>"),
                              ("Referred-By", str(self.edge.contact_for(self.peer.transport)))],
        )  # fmt: skip
        if not response.success:
            self._refer = None
            raise RuntimeError(f"transfer refused: {response.status} {response.reason}")
        try:
            status = await asyncio.wait_for(self._refer, timeout_s)
        except TimeoutError:
            status = 200  # no NOTIFY: the far end took the call over, as blind transfer intends
        finally:
            self._refer = None
        if 200 <= status < 300:
            self.session.end("transferred")
            await self.wait_finished()
        else:
            raise RuntimeError(f"transfer target answered {status}")
