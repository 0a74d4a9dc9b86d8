"""The state every part of a SIP call shares, its lifecycle and its asyncio timers.

:class:`CallCore` is the base of :class:`~voxgate.sip.call.SipCall`: the attributes (dialog,
offer/answer, media, session timer), the answered/teardown path that runs once whichever side
ends the call, the asyncio glue for the sans-I/O timers (2xx retransmission of the dialog,
RFC 4028 session timer) and the plumbing for our own in-dialog requests and replies. The
concerns that build on it live beside it (``call_setup``: INVITE to answer, both directions;
``call_requests``: the far end's in-dialog requests; ``call_reoffer``: re-INVITE/UPDATE and
session refresh; ``call_refer``: REFER/NOTIFY both ways) so that each reads on its own while
they share one state; the boundary is "what every concern needs" versus "what one owns".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Literal, cast

from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallControl, CallSession, HoldChanged
from voxgate.sip.auth import authorize
from voxgate.sip.dialog import AckTimeout, Dialog, DialogState
from voxgate.sip.glare import OfferGuard
from voxgate.sip.message import SipRequest, SipResponse, make_response
from voxgate.sip.offer_answer import MediaSession, NegotiatedMedia
from voxgate.sip.requests import new_tag
from voxgate.sip.session_timer import (
    Agreement,
    RefreshDue,
    SessionExpired,
    SessionTimer,
)
from voxgate.sip.signalling import (
    SUPPORTED,
    bye_reason,
)
from voxgate.sip.transaction import Transmit
from voxgate.sip.transport import Peer

if TYPE_CHECKING:
    from voxgate.sip.call import SipCall
    from voxgate.sip.endpoint import SipEdge
    from voxgate.sip.media import NetworkReport, RtpSession

log = logging.getLogger("voxgate.sip.call")

CallState = Literal["incoming", "dialing", "ringing", "answered", "ended"]


class CallCore:
    """Shared state and lifecycle of one call; only ever built as a ``SipCall``."""

    def __init__(
        self, edge: SipEdge, peer: Peer, *, direction: Literal["inbound", "outbound"],
        caller: str, callee: str, control: CallControl,
    ) -> None:  # fmt: skip
        self.edge = edge
        self.peer = peer
        self.direction = direction
        self.state: CallState = "incoming" if direction == "inbound" else "dialing"
        self.playout = PlayoutBuffer(edge.options.sample_rate)
        self.session = CallSession(
            edge="sip", sink=self.playout, control=control,
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
        self.glare = OfferGuard(owns_call_id=direction == "outbound")
        """Glare rules for re-offers; we generated the Call-ID iff we sent the initial INVITE."""
        self._refer: asyncio.Future[int] | None = None
        self._answer_due: int | None = None
        """CSeq of the INVITE whose 2xx carried our offer: its ACK must bring the answer."""
        self.session_timer = SessionTimer()
        self._session_timer_handle: asyncio.TimerHandle | None = None
        self._peer_allows_update = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.final_status: int | None = None

    @property
    def call_id(self) -> str:
        return self.session.call_id

    @property
    def _call(self) -> SipCall:
        """This call as the edge registers it: ``CallCore`` is only ever built as a ``SipCall``
        (the concerns are its bases), and the edge's maps are typed by the whole call."""
        return cast("SipCall", self)

    def _set_state(self, state: CallState) -> None:
        self.state = state
        self.session.metadata["sip_state"] = state

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"sip-{self.call_id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_finished(self) -> None:
        await self._finished.wait()

    if TYPE_CHECKING:
        # Provided by the concerns SipCall combines (call_reoffer, call_refer): declared here
        # so the dispatch and the timer glue type-check against the one shared base.
        def _on_reoffer(self, request: SipRequest) -> None: ...

        def _on_refer(self, request: SipRequest) -> None: ...

        def _on_notify(self, request: SipRequest) -> None: ...

        async def _refresh_session(self, interval: int) -> None: ...

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
        self.edge.call_finished(self._call)
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

    def _apply(self, negotiated: NegotiatedMedia) -> None:
        self.media.apply(negotiated)
        if negotiated.remote_hold != self.remote_hold:
            self.remote_hold = negotiated.remote_hold
            self.session.feed_event(HoldChanged(negotiated.remote_hold))

    async def wait_answered(self) -> None:
        """Until the call is answered or over (check :attr:`state`)."""
        answered = asyncio.ensure_future(self._answered_event.wait())
        finished = asyncio.ensure_future(self._finished.wait())
        try:
            await asyncio.wait({answered, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answered.cancel()
            finished.cancel()

    # -- our in-dialog requests and replies -----------------------------------------------

    def _reply(
        self, request: SipRequest, status: int, reason: str | None = None, *,
        headers: list[tuple[str, str]] | None = None, body: bytes = b"",
    ) -> SipResponse:  # fmt: skip
        response = make_response(request, status, reason, headers=headers or [], body=body)
        self.edge.respond(response)
        return response

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
