"""Builders for requests outside a dialog: INVITE, REGISTER, OPTIONS, CANCEL (RFC 3261
sections 8.1.1, 9.1, 10.2, 11), and the identifiers they need.

Identifiers come from :mod:`secrets` by default: branch and tag uniqueness is what the
transaction and dialog matching rests on, and guessable Call-IDs/tags make off-path BYE
injection easy. Every builder takes them as arguments too, so tests are deterministic.

In a multi-process edge the front routes every message by its Call-ID
(:mod:`voxgate.sip.dispatch`), responses included, so a worker must only put Call-IDs on its
new requests that route back to itself: :data:`call_id_affinity` (a context variable, so two
edges in one process, as in tests, each keep their own) makes :func:`new_call_id` draw until
the Call-ID hashes to the worker (N draws on average for N workers).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from contextvars import ContextVar

from voxgate.sip._syntax import EMPTY_PARAMS
from voxgate.sip.dispatch import owns_call_id
from voxgate.sip.headers import BRANCH_MAGIC_COOKIE, Headers, Via
from voxgate.sip.message import SipRequest
from voxgate.sip.uri import NameAddress, Uri, parse_name_addr, parse_uri

__all__ = [
    "build_cancel",
    "build_invite",
    "build_options",
    "build_register",
    "build_request",
    "call_id_affinity",
    "new_branch",
    "new_call_id",
    "new_tag",
]


def new_branch(token: str | None = None) -> str:
    """A Via branch with the RFC 3261 magic cookie (unique per transaction)."""
    return BRANCH_MAGIC_COOKIE + (token if token is not None else secrets.token_hex(8))


def new_tag(token: str | None = None) -> str:
    """A From/To tag (at least 32 bits of randomness, section 19.3)."""
    return token if token is not None else secrets.token_hex(6)


call_id_affinity: ContextVar[tuple[int, int] | None] = ContextVar("call_id_affinity", default=None)
"""``(worker index, worker count)`` of the edge worker making requests in this context, or
None (a single edge: any Call-ID). Set by ``SipEdge`` around its call tasks."""


def new_call_id(host: str | None = None, token: str | None = None) -> str:
    """A globally unique Call-ID, ``random@host`` when a host is given; under
    :data:`call_id_affinity` one that the front routes to this worker."""
    if token is not None:
        return f"{token}@{host}" if host else token
    affinity = call_id_affinity.get()
    while True:
        word = secrets.token_hex(12)
        call_id = f"{word}@{host}" if host else word
        if affinity is None or owns_call_id(call_id, *affinity):
            return call_id


def make_via(transport: str, sent_by: tuple[str, int | None], branch: str, *, rport: bool = True) -> Via:
    """Our Via: ``rport`` asks for symmetric response routing (RFC 3581), which NATs need."""
    params = EMPTY_PARAMS.replace("branch", branch)
    if rport:
        params = params.replace("rport", None)
    return Via(transport.upper(), sent_by[0], sent_by[1], params)


def _addr(value: NameAddress | str) -> NameAddress:
    return value if isinstance(value, NameAddress) else parse_name_addr(value)


def build_request(
    method: str,
    uri: Uri | str,
    *,
    from_: NameAddress | str,
    to: NameAddress | str,
    transport: str,
    sent_by: tuple[str, int | None],
    call_id: str | None = None,
    cseq: int = 1,
    from_tag: str | None = None,
    branch: str | None = None,
    contact: NameAddress | str | None = None,
    route: Iterable[NameAddress | str] = (),
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    max_forwards: int = 70,
) -> SipRequest:
    """A new out-of-dialog request with the mandatory headers of section 8.1.1.

    A From tag is always present (generated unless ``from_tag`` is given or ``from_`` has
    one); To never gets one here.
    """
    frm = _addr(from_)
    if frm.tag is None:
        frm = frm.with_tag(new_tag(from_tag))
    h = Headers()
    h.add("Via", str(make_via(transport, sent_by, new_branch() if branch is None else branch)))
    h.add("Max-Forwards", str(max_forwards))
    for r in route:
        h.add("Route", str(_addr(r)))
    h.add("From", str(frm))
    h.add("To", str(_addr(to)))
    h.add("Call-ID", call_id or new_call_id(sent_by[0]))
    h.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        h.add("Contact", str(_addr(contact)))
    for name, value in headers:
        h.add(name, value)
    if body and content_type:
        h.add("Content-Type", content_type)
    return SipRequest(method, parse_uri(uri) if isinstance(uri, str) else uri, h, body)


def build_invite(
    uri: Uri | str, *, contact: NameAddress | str, sdp: bytes = b"", **kwargs: object
) -> SipRequest:
    """An initial INVITE; ``sdp`` is the offer (empty for a late-offer INVITE)."""
    return build_request(
        "INVITE", uri, contact=contact, body=sdp,
        content_type="application/sdp" if sdp else None, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def build_register(
    registrar: Uri | str, *, aor: NameAddress | str, contact: NameAddress | str, expires: int = 3600,
    **kwargs: object,
) -> SipRequest:  # fmt: skip
    """A REGISTER binding ``contact`` to the address-of-record ``aor`` (section 10.2):
    To and From are both the AOR; ``expires=0`` removes the binding."""
    headers = [("Expires", str(expires)), *kwargs.pop("headers", ())]  # type: ignore[misc]
    return build_request(
        "REGISTER", registrar, from_=aor, to=aor, contact=contact, headers=headers, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def build_options(uri: Uri | str, **kwargs: object) -> SipRequest:
    """An OPTIONS (capability query, also the usual keep-alive ping towards trunks)."""
    return build_request("OPTIONS", uri, headers=[("Accept", "application/sdp")], **kwargs)  # type: ignore[arg-type]


def build_cancel(invite: SipRequest) -> SipRequest:
    """CANCEL for a pending INVITE (section 9.1): same Request-URI, Call-ID, To, From, CSeq
    number and the INVITE's top Via only (same branch, so it reaches the same server
    transaction), its Route set; method CANCEL."""
    src = invite.headers
    h = Headers()
    h.add("Via", src.get_all("Via")[0])
    h.add("Max-Forwards", src.get("Max-Forwards") or "70")
    for r in src.get_all("Route"):
        h.add("Route", r)
    for name in ("From", "To", "Call-ID"):
        h.add(name, src.get(name) or "")
    h.add("CSeq", f"{invite.cseq.number} CANCEL")
    return SipRequest("CANCEL", invite.uri, h)
