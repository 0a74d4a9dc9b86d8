"""RFC 3261 section 17 transactions, as data-driven state machines.

Each of the four transaction kinds is a table, in the h11 manner: ``(state, input) ->
(next state, actions)``, plus which timers start when a state is entered and which keep
running. One small engine (:class:`Transaction`) executes any table, so the four machines
read like the RFC's figures 5-8 and cannot drift apart in how they handle timers or events.

Inputs are response classes (``1xx``, ``2xx``, ``3xx`` meaning 300-699), the responses the
TU sends (``send_1xx`` ...), a retransmitted ``request`` or an ``ack``, and timer names.
Actions are ``pass`` (hand a response to the TU), ``send`` (transmit the TU's response),
``ack`` (build and send the ACK for a non-2xx final, section 17.1.1.3), ``resend`` (retransmit
the request, or the last response on the server side) and ``timeout``.

Sans-I/O, aioquic style: feed with ``receive_response``/``receive_request``/``send_response``
and ``handle_timer(now)``, arm a single timer at ``next_timer()``, drain ``events()``:
:class:`Transmit` events are what to put on the wire, the rest are for the TU. On reliable
transports the retransmission timers are never started and the wait timers (D, I, J, K) are
zero, as the RFC specifies.

The client INVITE transaction terminates on a 2xx (RFC 3261, not the RFC 6026 Accepted
state): retransmitted 2xx then arrive at the :class:`~voxgate.sip.transaction_layer.TransactionLayer`
as stray responses, which it hands to the dialog layer, which re-sends the ACK.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voxgate.sip.headers import Headers
from voxgate.sip.message import SipMessage, SipRequest, SipResponse

__all__ = [
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "RequestReceived",
    "ResponseReceived",
    "State",
    "StrayResponse",
    "TimerValues",
    "Transaction",
    "TransactionEvent",
    "TransactionTerminated",
    "TransactionTimeout",
    "Transmit",
    "TransportFailure",
    "build_non2xx_ack",
]

Address = Any
"""Where a message goes or came from; opaque here (the edge uses ``(host, port)``)."""
TransactionKey = tuple[str, ...]


class State(enum.Enum):
    """Transaction states (RFC 3261 figures 5-8)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


@dataclass(frozen=True, slots=True)
class TimerValues:
    """T1 (RTT estimate), T2 (max retransmit interval), T4 (max message lifetime), and
    Timer D (INVITE client wait for response retransmissions, at least 32 s on UDP)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d: float = 32.0


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    """Put ``message`` on the wire to ``destination``."""

    message: SipMessage
    destination: Address


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU. ``key`` is ``None`` for an ACK to a 2xx (no transaction)."""

    key: TransactionKey | None
    request: SipRequest
    source: Address


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the TU, matched to the client transaction ``key``."""

    key: TransactionKey
    response: SipResponse


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no transaction: a retransmitted 2xx to INVITE goes to the dialog."""

    response: SipResponse
    source: Address


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B/F (no final response: act as if 408) or H (no ACK for our final response)."""

    key: TransactionKey
    timer: str
    request: SipRequest


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """The transport could not send for this transaction (section 17.1.4 / 17.2.4)."""

    key: TransactionKey
    request: SipRequest


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction is gone; its key may be reused."""

    key: TransactionKey


TransactionEvent = (
    Transmit
    | RequestReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimeout
    | TransportFailure
    | TransactionTerminated
)

# -- the tables --------------------------------------------------------------------------------

_S = State
Delay = Callable[[TimerValues, bool], float | None]
"""Initial delay of a timer given the timer values and whether the transport is reliable;
``None`` = not started, ``0`` = fires at once."""
Backoff = Callable[[float, TimerValues, State], float]


def _unreliable(value: Callable[[TimerValues], float]) -> Delay:
    return lambda t, reliable: None if reliable else value(t)


def _wait(value: Callable[[TimerValues], float]) -> Delay:
    return lambda t, reliable: 0.0 if reliable else value(t)


def _always(value: Callable[[TimerValues], float]) -> Delay:
    return lambda t, reliable: value(t)


@dataclass(frozen=True, slots=True)
class Spec:
    """One transaction kind as data."""

    initial: State
    transitions: dict[tuple[State, str], tuple[State, tuple[str, ...]]]
    entry_timers: dict[State, tuple[tuple[str, Delay], ...]]
    alive: dict[State, frozenset[str]]
    backoff: dict[str, Backoff] = field(default_factory=dict)


_T1x64 = _always(lambda t: 64 * t.t1)

INVITE_CLIENT = Spec(
    initial=_S.CALLING,
    transitions={
        (_S.CALLING, "1xx"): (_S.PROCEEDING, ("pass",)),
        (_S.CALLING, "2xx"): (_S.TERMINATED, ("pass",)),
        (_S.CALLING, "3xx"): (_S.COMPLETED, ("ack", "pass")),
        (_S.PROCEEDING, "1xx"): (_S.PROCEEDING, ("pass",)),
        (_S.PROCEEDING, "2xx"): (_S.TERMINATED, ("pass",)),
        (_S.PROCEEDING, "3xx"): (_S.COMPLETED, ("ack", "pass")),
        (_S.COMPLETED, "3xx"): (_S.COMPLETED, ("ack",)),
        (_S.CALLING, "A"): (_S.CALLING, ("resend",)),
        (_S.CALLING, "B"): (_S.TERMINATED, ("timeout",)),
        (_S.COMPLETED, "D"): (_S.TERMINATED, ()),
    },
    entry_timers={
        _S.CALLING: (("A", _unreliable(lambda t: t.t1)), ("B", _T1x64)),
        _S.COMPLETED: (("D", _wait(lambda t: t.d)),),
    },
    alive={_S.CALLING: frozenset("AB"), _S.COMPLETED: frozenset("D")},
    backoff={"A": lambda interval, t, s: 2 * interval},
)

NON_INVITE_CLIENT = Spec(
    initial=_S.TRYING,
    transitions={
        (_S.TRYING, "1xx"): (_S.PROCEEDING, ("pass",)),
        (_S.TRYING, "2xx"): (_S.COMPLETED, ("pass",)),
        (_S.TRYING, "3xx"): (_S.COMPLETED, ("pass",)),
        (_S.PROCEEDING, "1xx"): (_S.PROCEEDING, ("pass",)),
        (_S.PROCEEDING, "2xx"): (_S.COMPLETED, ("pass",)),
        (_S.PROCEEDING, "3xx"): (_S.COMPLETED, ("pass",)),
        (_S.TRYING, "E"): (_S.TRYING, ("resend",)),
        (_S.PROCEEDING, "E"): (_S.PROCEEDING, ("resend",)),
        (_S.TRYING, "F"): (_S.TERMINATED, ("timeout",)),
        (_S.PROCEEDING, "F"): (_S.TERMINATED, ("timeout",)),
        (_S.COMPLETED, "K"): (_S.TERMINATED, ()),
    },
    entry_timers={
        _S.TRYING: (("E", _unreliable(lambda t: t.t1)), ("F", _T1x64)),
        _S.COMPLETED: (("K", _wait(lambda t: t.t4)),),
    },
    alive={_S.TRYING: frozenset("EF"), _S.PROCEEDING: frozenset("EF"), _S.COMPLETED: frozenset("K")},
    backoff={"E": lambda i, t, s: min(2 * i, t.t2) if s is _S.TRYING else t.t2},
)

INVITE_SERVER = Spec(
    initial=_S.PROCEEDING,
    transitions={
        (_S.PROCEEDING, "request"): (_S.PROCEEDING, ("resend",)),
        (_S.PROCEEDING, "send_1xx"): (_S.PROCEEDING, ("send",)),
        (_S.PROCEEDING, "send_2xx"): (_S.TERMINATED, ("send",)),
        (_S.PROCEEDING, "send_3xx"): (_S.COMPLETED, ("send",)),
        (_S.COMPLETED, "request"): (_S.COMPLETED, ("resend",)),
        (_S.COMPLETED, "ack"): (_S.CONFIRMED, ()),
        (_S.COMPLETED, "G"): (_S.COMPLETED, ("resend",)),
        (_S.COMPLETED, "H"): (_S.TERMINATED, ("timeout",)),
        (_S.CONFIRMED, "request"): (_S.CONFIRMED, ()),
        (_S.CONFIRMED, "ack"): (_S.CONFIRMED, ()),
        (_S.CONFIRMED, "I"): (_S.TERMINATED, ()),
    },
    entry_timers={
        _S.COMPLETED: (("G", _unreliable(lambda t: t.t1)), ("H", _T1x64)),
        _S.CONFIRMED: (("I", _wait(lambda t: t.t4)),),
    },
    alive={_S.COMPLETED: frozenset("GH"), _S.CONFIRMED: frozenset("I")},
    backoff={"G": lambda i, t, s: min(2 * i, t.t2)},
)

NON_INVITE_SERVER = Spec(
    initial=_S.TRYING,
    transitions={
        (_S.TRYING, "request"): (_S.TRYING, ()),
        (_S.TRYING, "send_1xx"): (_S.PROCEEDING, ("send",)),
        (_S.TRYING, "send_2xx"): (_S.COMPLETED, ("send",)),
        (_S.TRYING, "send_3xx"): (_S.COMPLETED, ("send",)),
        (_S.PROCEEDING, "request"): (_S.PROCEEDING, ("resend",)),
        (_S.PROCEEDING, "send_1xx"): (_S.PROCEEDING, ("send",)),
        (_S.PROCEEDING, "send_2xx"): (_S.COMPLETED, ("send",)),
        (_S.PROCEEDING, "send_3xx"): (_S.COMPLETED, ("send",)),
        (_S.COMPLETED, "request"): (_S.COMPLETED, ("resend",)),
        (_S.COMPLETED, "J"): (_S.TERMINATED, ()),
    },
    entry_timers={_S.COMPLETED: (("J", _wait(lambda t: 64 * t.t1)),)},
    alive={_S.COMPLETED: frozenset("J")},
)


def _response_class(status: int) -> str:
    return "1xx" if status < 200 else "2xx" if status < 300 else "3xx"


def build_non2xx_ack(request: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a non-2xx final response to ``request`` (RFC 3261 section 17.1.1.3):
    same Request-URI, Call-ID, From, CSeq number and top Via (same branch: it is part of
    the INVITE transaction), the response's To (with its tag), the request's Route set."""
    src = request.headers
    h = Headers()
    h.add("Via", src.get_all("Via")[0])
    for name in ("Max-Forwards", "From"):
        value = src.get(name)
        if value is not None:
            h.add(name, value)
    h.add("To", response.headers.get("To") or src.get("To") or "")
    h.add("Call-ID", src.get("Call-ID") or "")
    h.add("CSeq", f"{request.cseq.number} ACK")
    for route in src.get_all("Route"):
        h.add("Route", route)
    return SipRequest("ACK", request.uri, h)


# -- the engine --------------------------------------------------------------------------------


class Transaction:
    """Runs one :class:`Spec`. Use the four concrete subclasses."""

    spec: Spec
    client: bool

    def __init__(
        self,
        key: TransactionKey,
        request: SipRequest,
        peer: Address,
        now: float,
        *,
        reliable: bool = False,
        timers: TimerValues | None = None,
    ) -> None:
        self.key = key
        self.request = request
        self.peer = peer
        self.reliable = reliable
        self.timers = timers or TimerValues()
        self.state = self.spec.initial
        self.last_response: SipResponse | None = None
        self.ack: SipRequest | None = None
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._events: list[TransactionEvent] = []
        self._enter(self.spec.initial, now)

    # -- public API ---------------------------------------------------------------------------

    @property
    def terminated(self) -> bool:
        """Whether the transaction has ended."""
        return self.state is State.TERMINATED

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` should next be called, ``None`` if no timer is armed."""
        return min(self._deadlines.values()) if self._deadlines else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, earliest first (each re-arms from its own deadline,
        so a late call still produces the RFC's schedule)."""
        while self._deadlines:
            name, when = min(self._deadlines.items(), key=lambda kv: kv[1])
            if when > now:
                return
            del self._deadlines[name]
            self._input(name, None, when)

    def transport_error(self, now: float) -> None:
        """Report that sending failed: inform the TU and terminate."""
        if not self.terminated:
            self._events.append(TransportFailure(self.key, self.request))
            self._enter(State.TERMINATED, now)

    def events(self) -> list[TransactionEvent]:
        """Drain pending events (transmissions first-in first-out, in order of occurrence)."""
        out, self._events = self._events, []
        return out

    # -- engine -------------------------------------------------------------------------------

    def _input(self, name: str, message: SipMessage | None, now: float) -> bool:
        entry = self.spec.transitions.get((self.state, name))
        if entry is None:
            return False
        new_state, actions = entry
        for action in actions:
            self._act(action, message, name)
        if new_state is not self.state:
            self._enter(new_state, now)
        elif name in self.spec.backoff:
            interval = self.spec.backoff[name](self._intervals[name], self.timers, self.state)
            self._arm(name, interval, now)
        return True

    def _act(self, action: str, message: SipMessage | None, name: str) -> None:
        if action == "pass":
            assert isinstance(message, SipResponse)
            self._events.append(ResponseReceived(self.key, message))
        elif action == "send":
            assert isinstance(message, SipResponse)
            self.last_response = message
            self._events.append(Transmit(message, self.peer))
        elif action == "resend":
            again = self.request if self.client else self.last_response
            if again is not None:
                self._events.append(Transmit(again, self.peer))
        elif action == "ack":
            assert isinstance(message, SipResponse)
            if self.ack is None:
                self.ack = build_non2xx_ack(self.request, message)
            self._events.append(Transmit(self.ack, self.peer))
        elif action == "timeout":
            self._events.append(TransactionTimeout(self.key, name, self.request))

    def _arm(self, name: str, delay: float, now: float) -> None:
        self._intervals[name] = delay
        self._deadlines[name] = now + delay

    def _enter(self, state: State, now: float) -> None:
        self.state = state
        alive = self.spec.alive.get(state, frozenset())
        for name in list(self._deadlines):
            if name not in alive:
                del self._deadlines[name]
        if state is State.TERMINATED:
            self._events.append(TransactionTerminated(self.key))
            return
        immediate = []
        for name, delay_of in self.spec.entry_timers.get(state, ()):
            delay = delay_of(self.timers, self.reliable)
            if delay == 0:
                immediate.append(name)
            elif delay is not None:
                self._arm(name, delay, now)
        for name in immediate:
            self._input(name, None, now)


class ClientTransaction(Transaction):
    """Sends its request on creation; feed it responses."""

    client = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._events.insert(0, Transmit(self.request, self.peer))

    def receive_response(self, response: SipResponse, now: float) -> bool:
        """Feed a matching response; returns whether the state machine consumed it."""
        return self._input(_response_class(response.status), response, now)


class ServerTransaction(Transaction):
    """Created for a received request; the TU answers with :meth:`send_response`."""

    client = False

    def receive_request(self, request: SipRequest, now: float) -> bool:
        """Feed a retransmission of the request (or the ACK, for INVITE)."""
        return self._input("ack" if request.method == "ACK" else "request", request, now)

    def send_response(self, response: SipResponse, now: float) -> None:
        """Send the TU's response; raises ``ValueError`` if the state does not allow it."""
        if not self._input("send_" + _response_class(response.status), response, now):
            raise ValueError(f"cannot send {response.status} in state {self.state.value}")


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 section 17.1.1 (figure 5): timers A, B, D."""

    spec = INVITE_CLIENT


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 section 17.1.2 (figure 6): timers E, F, K."""

    spec = NON_INVITE_CLIENT


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 section 17.2.1 (figure 7): timers G, H, I; ACK absorbed for non-2xx."""

    spec = INVITE_SERVER


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 section 17.2.2 (figure 8): timer J."""

    spec = NON_INVITE_SERVER
