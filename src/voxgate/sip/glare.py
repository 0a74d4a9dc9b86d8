"""Who may start an offer/answer exchange in a dialog now: glare (RFC 3261 14.1/14.2, RFC 3311 5.2).

Both ends of a call can re-offer at once (our agent puts the caller on hold while their PBX
refreshes the session or moves the media). SIP resolves it without a lock across the
network: the side that receives a re-INVITE while its own is in flight answers 491, and the
UAC that gets 491 waits a random time before it tries again, longer for the side that
generated the Call-ID so the two retries do not collide again (section 14.1). A second
re-INVITE before the first one has its final response gets 500 with Retry-After (section
14.2); RFC 3311 applies the same two rules to an UPDATE that carries an offer.

Pure: methods, CSeqs, statuses and times in, decisions out; the caller's asyncio glue
(:mod:`voxgate.sip.call_reoffer`) sleeps until :meth:`OfferGuard.next_offer_at`. Randomness is
an argument too, so tests pick the draw.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_OFFER_ATTEMPTS", "OfferGuard", "Refusal", "retry_delay"]

MAX_OFFER_ATTEMPTS = 5
"""Our re-INVITE is sent at most this often when each try meets glare: the RFC sets no limit,
but a far end that answers 491 every time is broken, and the caller should hear so."""


def retry_delay(owns_call_id: bool, randbelow: Callable[[int], int] = secrets.randbelow) -> float:
    """Seconds to wait after a 491 (section 14.1, in units of 10 ms): 2.1-4 s for the UA that
    generated the dialog's Call-ID, 0-2 s for the other, so the other one's retry goes first."""
    if owns_call_id:
        return (210 + randbelow(191)) / 100
    return randbelow(201) / 100


@dataclass(frozen=True)
class Refusal:
    """The response to send instead of processing a re-offer."""

    status: int
    """491 (glare with our own pending offer) or 500 (their previous offer is still open)."""
    retry_after: int | None = None
    """Seconds for Retry-After (the 500 must carry one, 0-10 s: section 14.2)."""

    def headers(self) -> list[tuple[str, str]]:
        return [] if self.retry_after is None else [("Retry-After", str(self.retry_after))]


@dataclass
class OfferGuard:
    """The glare state of one dialog: our INVITE in flight, their INVITE unanswered, our
    back-off after a 491.

    ``owns_call_id`` is True when we sent the dialog's initial INVITE (we generated its
    Call-ID): it picks the back-off range of :func:`retry_delay`.
    """

    owns_call_id: bool
    randbelow: Callable[[int], int] = field(default=secrets.randbelow, repr=False)
    _ours_in_flight: bool = False
    _theirs_open: int | None = None
    """CSeq of their INVITE we have not yet sent a final response to."""
    _retry_at: float | None = None

    # -- the far end's re-offers ------------------------------------------------------------

    def receive(
        self, method: str, cseq: int, *, has_offer: bool, awaiting_answer: bool = False
    ) -> Refusal | None:
        """Check the far end's in-dialog INVITE or UPDATE before processing it.

        ``awaiting_answer``: a 2xx of ours carried an offer whose answer is due in the ACK
        (delayed offer); that offer is outstanding just like one in our own INVITE. Returns
        the refusal to send, or None: go ahead, and for an INVITE call :meth:`answered` once
        its final response is out.
        """
        if method == "INVITE":
            if self._theirs_open is not None and self._theirs_open < cseq:
                return Refusal(500, retry_after=self.randbelow(11))
            if self._ours_in_flight or awaiting_answer:
                return Refusal(491)
            self._theirs_open = cseq
            return None
        if method == "UPDATE" and has_offer:
            if self._ours_in_flight or awaiting_answer:
                return Refusal(491)
            if self._theirs_open is not None:
                return Refusal(500, retry_after=self.randbelow(11))
        return None

    def answered(self, cseq: int) -> None:
        """Our final response to their INVITE ``cseq`` went out."""
        if self._theirs_open == cseq:
            self._theirs_open = None

    # -- our re-INVITEs ---------------------------------------------------------------------

    def next_offer_at(self, now: float, *, awaiting_answer: bool = False) -> float | None:
        """When our next re-INVITE may go out: ``now`` if it may now, the end of the back-off
        after a 491, or None while their INVITE is unanswered or our offer in a 2xx still
        waits for the ACK with its answer (``awaiting_answer``): section 14.1 allows one
        INVITE transaction at a time in either direction, and a second offer of ours would
        leave the ACK's answer matched against the wrong one."""
        if self._theirs_open is not None or awaiting_answer:
            return None
        if self._retry_at is not None and self._retry_at > now:
            return self._retry_at
        return now

    def sending(self, now: float, *, awaiting_answer: bool = False) -> None:
        """Our re-INVITE goes out now; raises RuntimeError if it may not (a caller bug)."""
        if self._ours_in_flight or self.next_offer_at(now, awaiting_answer=awaiting_answer) != now:
            raise RuntimeError("a re-INVITE may not start now (glare rules, RFC 3261 14.1)")
        self._ours_in_flight = True
        self._retry_at = None

    def sent_failed(self) -> None:
        """Our re-INVITE got no response at all (transport error, call gone)."""
        self._ours_in_flight = False

    def response(self, status: int, now: float) -> float | None:
        """The final response to our re-INVITE arrived. Returns when to try again (491:
        ``now`` + :func:`retry_delay`), else None."""
        self._ours_in_flight = False
        if status != 491:
            return None
        self._retry_at = now + retry_delay(self.owns_call_id, self.randbelow)
        return self._retry_at
