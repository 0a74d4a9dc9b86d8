"""What SIP calls say and how they read it, as pure functions: our Allow and Supported
lists, end reasons for failure statuses, the Reason of our BYEs, INFO DTMF bodies, Refer-To
users, sipfrag status lines. Kept apart from :mod:`voxgate.sip.call` (the flow of one call)
so these rules are read, changed and tested on their own."""

from __future__ import annotations

from voxgate.rtp.dtmf import DTMF_DIGITS
from voxgate.sip.errors import SipParseError
from voxgate.sip.message import SipRequest, SipResponse
from voxgate.sip.uri import SipUri, parse_name_addr

__all__ = [
    "ALLOW",
    "SUPPORTED",
    "allows",
    "bye_reason",
    "end_reason_for_status",
    "parse_dtmf_info",
    "refer_user",
    "sipfrag_status",
]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE"
SUPPORTED = "timer"
"""Option tags we implement: session timers (RFC 4028). Not 100rel: an INVITE that requires
reliable provisional responses (RFC 3262) gets 420, since we never need to send SDP or
anything else in a 1xx (we answer at once or ring without early media)."""
_STATUS_REASONS = {
    408: "no_answer", 480: "no_answer", 486: "busy", 600: "busy", 487: "cancelled",
    603: "declined", 404: "not_found", 484: "not_found", 503: "unavailable",
    488: "incompatible_media", 606: "incompatible_media", 422: "session_interval_too_small",
}  # fmt: skip


def end_reason_for_status(status: int) -> str:
    """The session end reason for a final failure response to our INVITE."""
    return _STATUS_REASONS.get(status, f"failed_{status}")


_BYE_CAUSES = {
    "incompatible_media": "SIP;cause=488", "ack_without_answer": "SIP;cause=488",
    "ack_timeout": "SIP;cause=408", "session_expired": "SIP;cause=408",
    "media_timeout": "Q.850;cause=41",
}  # fmt: skip
"""Reason (RFC 3326) our BYE carries per end reason; anything else is a normal clearing
(Q.850 cause 16). Failures say which SIP error ended the call, so the far end's CDRs and
support staff see why."""


def bye_reason(end_reason: str | None) -> str:
    """The Reason header value for our BYE ending a session for ``end_reason``."""
    cause = _BYE_CAUSES.get(end_reason or "", "Q.850;cause=16")
    text = (end_reason or "normal").replace('"', "")
    return f'{cause};text="{text}"'


def parse_dtmf_info(content_type: str | None, body: bytes) -> tuple[str, int] | None:
    """Digit and duration (ms) of an INFO body (``application/dtmf-relay`` or ``/dtmf``)."""
    text = body.decode("utf-8", "replace")
    if content_type == "application/dtmf-relay":
        fields: dict[str, str] = {}
        for line in text.splitlines():
            name, _, value = line.partition("=")
            fields[name.strip().lower()] = value.strip()
        digit, duration = fields.get("signal", ""), fields.get("duration", "250")
    elif content_type == "application/dtmf":
        digit, duration = text.strip(), "250"
    else:
        return None
    digit = {"10": "*", "11": "#"}.get(digit, digit).upper()
    if len(digit) != 1 or digit not in DTMF_DIGITS:
        return None
    return digit, int(duration) if duration.isdigit() else 250


def refer_user(refer_to: str | None) -> str | None:
    """The user part of a Refer-To (``<sip:1000@host>`` -> ``1000``); None if unusable."""
    if not refer_to:
        return None
    try:
        uri = parse_name_addr(refer_to).uri
    except SipParseError:
        return None
    return uri.user if isinstance(uri, SipUri) and uri.user else None


def allows(message: SipRequest | SipResponse, method: str) -> bool:
    """Whether ``message``'s Allow lists ``method``."""
    return any(
        m.strip().upper() == method for v in message.headers.get_all("Allow") for m in v.split(",")
    )


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a ``message/sipfrag`` body (``SIP/2.0 200 OK``), if any."""
    first = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    parts = first.split()
    if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None
