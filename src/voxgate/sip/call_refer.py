"""REFER both ways (RFC 3515): our blind transfer and the far end asking us to dial.

Our transfer sends REFER and waits for the NOTIFY that reports the outcome; an inbound REFER
is a toll-fraud vector, so it is refused unless its target is listed, and an allowed one is
dialled and reported back in NOTIFYs. Both directions speak the same ``message/sipfrag``
NOTIFYs, which is why they share a module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from voxgate.observability.metrics import count_rejection
from voxgate.sip.call_core import CallCore
from voxgate.sip.message import SipRequest
from voxgate.sip.signalling import (
    refer_user,
    sipfrag_status,
)
from voxgate.sip.uri import SipUri

log = logging.getLogger("voxgate.sip.call")


class Transfers(CallCore):
    """REFER/NOTIFY both ways for ``SipCall``."""

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

    def _on_notify(self, request: SipRequest) -> None:
        event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if event != "refer" or self._refer is None:
            self._reply(request, 481 if event == "refer" else 489)
            return
        self._reply(request, 200)
        status = sipfrag_status(request.body)
        if status is not None and status >= 200 and not self._refer.done():
            self._refer.set_result(status)

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
