"""Session timers (RFC 4028), sans-I/O: negotiation from headers and one timer per dialog.

A SIP dialog has no keep-alive of its own: when a far end crashes or a NAT binding drops
its BYE, a call can linger for ever (and a carrier keeps billing it). RFC 4028 makes one side
(the *refresher*) re-INVITE or UPDATE every half interval; the other side ends the session
with BYE when no refresh arrived shortly before the interval runs out.

This module decides, from headers only, what the session interval is and who refreshes
(:func:`negotiate_uas` for a request we answer, :func:`negotiate_uac` for the 2xx to ours),
and keeps the one deadline per dialog (:class:`SessionTimer`: ``next_timer()``,
``handle_timer(now)`` -> :class:`RefreshDue` / :class:`SessionExpired`). The call sends the
requests and BYEs; time is an argument.

Policy, and why:

* we always say ``Supported: timer`` and answer an INVITE that has no ``Session-Expires``
  with one of ours (section 9 lets the UAS insert it): then a dead far end is noticed even if
  it never asked for timers. The refresher is then ``uac`` only if the caller supports timers,
  else us;
* a requested interval below our ``Min-SE`` gets ``422`` with our ``Min-SE`` (section 9);
  a longer one is accepted as asked (the requester knows its NAT and proxies better);
* the side not refreshing sends BYE at ``interval - min(32, interval / 3)`` (section 10);
  as refresher we refresh at half the interval and give up at that same point when no
  refresh succeeded, since the far end is about to end the session anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voxgate.sip.message import SipRequest, SipResponse

__all__ = [
    "MIN_SE_FLOOR",
    "Agreement",
    "RefreshDue",
    "SessionExpired",
    "SessionExpires",
    "SessionTimer",
    "SessionTimerPolicy",
    "TooSmall",
    "min_se_of",
    "negotiate_uac",
    "negotiate_uas",
    "option_tags",
    "retry_with_interval",
]

MIN_SE_FLOOR = 90
"""The smallest Min-SE RFC 4028 section 4 allows on the wire (tests may configure less)."""

Refresher = Literal["uac", "uas"]


def option_tags(message: SipRequest | SipResponse, name: str) -> set[str]:
    """The option tags of every ``Supported``/``Require`` (``name``) header, lower-cased."""
    return {
        tag.strip().lower()
        for value in message.headers.get_all(name)
        for tag in value.split(",")
        if tag.strip()
    }


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A ``Session-Expires`` value: ``1800;refresher=uac``."""

    interval: int
    refresher: Refresher | None = None

    @classmethod
    def parse(cls, value: str) -> SessionExpires:
        """Parse a header value; ValueError when the delta-seconds are not a number."""
        head, *params = (p.strip() for p in value.split(";"))
        if not head.isdigit() or len(head) > 9:
            raise ValueError(f"bad Session-Expires {value!r}")
        refresher: Refresher | None = None
        for param in params:
            name, _, val = param.partition("=")
            if name.strip().lower() == "refresher":
                role = val.strip().lower()
                if role in ("uac", "uas"):
                    refresher = "uac" if role == "uac" else "uas"
        return cls(int(head), refresher)

    def __str__(self) -> str:
        return f"{self.interval};refresher={self.refresher}" if self.refresher else str(self.interval)


def _session_expires(message: SipRequest | SipResponse) -> SessionExpires | None:
    value = message.headers.get("Session-Expires")
    return SessionExpires.parse(value) if value is not None else None


def _min_se(message: SipRequest | SipResponse) -> int | None:
    value = (message.headers.get("Min-SE") or "").split(";", 1)[0].strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


@dataclass(frozen=True, slots=True)
class SessionTimerPolicy:
    """Our side of the negotiation. ``enabled=False`` never asks for nor inserts timers (a
    request that asks for them is still honoured: the far end relies on them)."""

    enabled: bool = True
    interval: int = 1800
    """What we ask for in our INVITEs and insert in our 2xx when the request had none."""
    min_se: int = MIN_SE_FLOOR
    """The shortest interval we accept (422 below it)."""

    def request_headers(self, interval: int | None = None) -> list[tuple[str, str]]:
        """Headers for an initial INVITE of ours (``interval`` after a 422)."""
        headers = [("Supported", "timer")]
        if self.enabled or interval is not None:
            asked = max(interval or self.interval, self.min_se)
            headers += [("Session-Expires", str(asked)), ("Min-SE", str(self.min_se))]
        return headers


@dataclass(frozen=True, slots=True)
class Agreement:
    """The negotiated session interval and whether *we* refresh."""

    interval: int
    refresher: Refresher
    """As written in the 2xx of the transaction that agreed it."""
    we_refresh: bool

    def response_headers(self) -> list[tuple[str, str]]:
        """``Session-Expires`` (and ``Require: timer`` when the UAC refreshes, section 9)."""
        headers = [("Session-Expires", f"{self.interval};refresher={self.refresher}")]
        if self.refresher == "uac":
            headers.append(("Require", "timer"))
        return headers


@dataclass(frozen=True, slots=True)
class TooSmall:
    """The request's interval is under our Min-SE: answer 422 with ``Min-SE: min_se``."""

    min_se: int

    def headers(self) -> list[tuple[str, str]]:
        return [("Min-SE", str(self.min_se))]


def negotiate_uas(request: SipRequest, policy: SessionTimerPolicy) -> Agreement | TooSmall | None:
    """What to put in our 2xx to ``request`` (an INVITE or UPDATE), per section 9.

    None: no session timer for this dialog (disabled, and not asked for). ValueError for an
    unparseable ``Session-Expires`` (the edge answers 400)."""
    asked = _session_expires(request)
    supports = "timer" in option_tags(request, "Supported") | option_tags(request, "Require")
    floor = max(policy.min_se, _min_se(request) or 0)
    refresher: Refresher
    if asked is None:
        if not policy.enabled:
            return None
        interval, refresher = max(policy.interval, floor), ("uac" if supports else "uas")
    else:
        if asked.interval < policy.min_se:
            return TooSmall(policy.min_se)
        interval = asked.interval
        refresher = asked.refresher or ("uac" if supports else "uas")
        if not supports:
            refresher = "uas"  # a proxy added the header: the UAC cannot refresh
    return Agreement(interval, refresher, we_refresh=refresher == "uas")


def negotiate_uac(response: SipResponse) -> Agreement | None:
    """The timer a 2xx to our INVITE/UPDATE agreed (section 7.2); None when it has none."""
    agreed = _session_expires(response)
    if agreed is None:
        return None
    refresher = agreed.refresher or "uac"
    return Agreement(agreed.interval, refresher, we_refresh=refresher == "uac")


def min_se_of(response: SipResponse) -> int | None:
    """The ``Min-SE`` a 422 asks for."""
    return _min_se(response)


def retry_with_interval(request: SipRequest, interval: int, branch: str) -> SipRequest:
    """The request to send again after a 422 (section 7.1): the same, with ``Session-Expires``
    and ``Min-SE`` raised to ``interval``, CSeq + 1 and a new Via ``branch``."""
    out = request.copy()
    out.headers.set("Session-Expires", str(interval))
    out.headers.set("Min-SE", str(interval))
    cseq = request.cseq
    out.headers.set("CSeq", f"{cseq.number + 1} {cseq.method}")
    via = request.via.with_param("branch", branch)
    out.headers.remove_first("Via")
    out.headers.prepend("Via", str(via))
    return out


@dataclass(frozen=True, slots=True)
class RefreshDue:
    """We are the refresher and half the interval has passed: send re-INVITE or UPDATE."""

    interval: int


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """No (successful) refresh in time: end the session with BYE."""

    interval: int


TimerEvent = RefreshDue | SessionExpired


class SessionTimer:
    """The deadlines of one dialog's session timer. :meth:`start` on every agreement (the
    initial 2xx and each successful refresh), :meth:`stop` when a refresh drops timers."""

    def __init__(self) -> None:
        self.agreement: Agreement | None = None
        self.refresh_at: float | None = None
        self.expires_at: float | None = None
        self.refreshes = 0
        """Agreements after the first (successful refreshes either way)."""

    @staticmethod
    def expiry_margin(interval: int) -> float:
        """How long before the interval ends the non-refresher sends BYE (section 10)."""
        return min(32.0, interval / 3)

    def start(self, agreement: Agreement, now: float) -> None:
        if self.agreement is not None:
            self.refreshes += 1
        self.agreement = agreement
        interval = agreement.interval
        self.refresh_at = now + interval / 2 if agreement.we_refresh else None
        self.expires_at = now + interval - self.expiry_margin(interval)

    def stop(self) -> None:
        self.agreement = None
        self.refresh_at = self.expires_at = None

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` should run next."""
        times = [t for t in (self.refresh_at, self.expires_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[TimerEvent]:
        """Due events: a refresh once per agreement, then expiry (which stops the timer)."""
        agreement = self.agreement
        if agreement is None:
            return []
        events: list[TimerEvent] = []
        if self.refresh_at is not None and self.refresh_at <= now:
            self.refresh_at = None
            events.append(RefreshDue(agreement.interval))
        if self.expires_at is not None and self.expires_at <= now:
            self.stop()
            events.append(SessionExpired(agreement.interval))
        return events
