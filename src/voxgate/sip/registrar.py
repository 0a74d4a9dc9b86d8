"""A small registrar for our own users (RFC 3261 section 10.3), sans-I/O.

Desk phones and softphones of ours REGISTER so we know where to reach them. The edge
authenticates the REGISTER first (digest, always: a binding redirects a user's calls, so it
must never be created on an IP allow-list alone) and hands the request here with the
authenticated username. Bindings live in memory with their expiry; time is an argument.

Kept to what a single-node registrar needs: the ``*`` wildcard removal, per-contact
``expires`` over the ``Expires`` header, 423 with ``Min-Expires`` for too short intervals,
clamping of too long ones, and Call-ID/CSeq ordering so a delayed retransmission cannot
resurrect a binding the phone has since removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxgate.sip.message import SipRequest, SipResponse, make_response
from voxgate.sip.uri import NameAddress, SipUri

__all__ = ["Binding", "NotRegistered", "Registrar"]

DEFAULT_EXPIRES = 3600


class NotRegistered(LookupError):
    """A call to one of our users who has no live binding (never registered, or expired)."""


@dataclass(slots=True)
class Binding:
    """One contact of a user: where to send that user's calls until ``expires_at``."""

    user: str
    contact: NameAddress
    expires_at: float
    call_id: str
    cseq: int
    source: Any = None
    """The flow the REGISTER came over (the edge's ``Peer``): reachable behind NAT."""


def _expires_of(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


class Registrar:
    """Bindings per user. :meth:`register` answers an authenticated REGISTER."""

    def __init__(self, min_expires: int = 60, max_expires: int = 3600) -> None:
        self.min_expires = min_expires
        self.max_expires = max_expires
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._last_cseq: dict[tuple[str, str], tuple[int, float]] = {}
        """(user, Call-ID) -> (highest CSeq, when): survives the removal of a binding, so a
        late copy of an older REGISTER cannot bring it back (section 10.3 step 7)."""

    def register(
        self, request: SipRequest, username: str, now: float, *, source: Any = None,
        to_tag: str | None = None,
    ) -> SipResponse:  # fmt: skip
        """Apply a REGISTER from the authenticated ``username``; returns the response."""
        to_uri = request.to.uri
        if not isinstance(to_uri, SipUri) or to_uri.user != username:
            return make_response(request, 403, "Not Your Address-Of-Record", to_tag=to_tag)
        header_expires = _expires_of(request.headers.get("Expires"))
        raw = request.headers.get_all("Contact")
        bindings = self._bindings.setdefault(username, {})
        self._expire_user(username, now)
        call_id, cseq = request.call_id, request.cseq.number
        seen = self._last_cseq.get((username, call_id))
        if seen is not None and cseq <= seen[0]:
            return self._ok(request, username, now, to_tag)  # stale: change nothing
        if any(v.strip() == "*" for v in raw):
            if header_expires != 0 or len(raw) != 1:
                return make_response(request, 400, "Bad Wildcard Contact", to_tag=to_tag)
            self._last_cseq[(username, call_id)] = (cseq, now)
            for b in list(bindings.values()):
                if b.call_id != call_id or cseq > b.cseq:
                    del bindings[str(b.contact.uri)]
            return self._ok(request, username, now, to_tag)
        contacts = request.contacts
        for contact in contacts:
            expires = _expires_of(contact.params.get("expires"))
            if expires is None:
                expires = header_expires if header_expires is not None else DEFAULT_EXPIRES
            if 0 < expires < self.min_expires:
                return make_response(
                    request, 423, to_tag=to_tag, headers=[("Min-Expires", str(self.min_expires))]
                )
        self._last_cseq[(username, call_id)] = (cseq, now)
        for contact in contacts:
            expires = _expires_of(contact.params.get("expires"))
            if expires is None:
                expires = header_expires if header_expires is not None else DEFAULT_EXPIRES
            expires = min(expires, self.max_expires)
            key = str(contact.uri)
            if expires == 0:
                bindings.pop(key, None)
                continue
            bare = NameAddress(contact.uri, contact.display_name)
            bindings[key] = Binding(username, bare, now + expires, call_id, cseq, source)
        return self._ok(request, username, now, to_tag)

    def _ok(self, request: SipRequest, username: str, now: float, to_tag: str | None) -> SipResponse:
        headers = [
            ("Contact", f"{b.contact};expires={max(0, int(b.expires_at - now))}")
            for b in self.lookup(username, now)
        ]
        return make_response(request, 200, to_tag=to_tag, headers=headers)

    def lookup(self, username: str, now: float) -> list[Binding]:
        """The user's live bindings, most recently refreshed first."""
        self._expire_user(username, now)
        found = list(self._bindings.get(username, {}).values())
        return sorted(found, key=lambda b: b.expires_at, reverse=True)

    def _expire_user(self, username: str, now: float) -> None:
        bindings = self._bindings.get(username)
        if not bindings:
            return
        for key in [k for k, b in bindings.items() if b.expires_at <= now]:
            del bindings[key]

    def expire(self, now: float) -> None:
        """Drop every expired binding (call now and then to bound memory)."""
        horizon = now - 2 * self.max_expires
        for key in [k for k, (_, at) in self._last_cseq.items() if at < horizon]:
            del self._last_cseq[key]
        for user in list(self._bindings):
            self._expire_user(user, now)
            if not self._bindings[user]:
                del self._bindings[user]
