"""voxgate.sip: a sans-I/O SIP stack (RFC 3261 and friends).

Pure code: bytes and times in, messages, events and timers out. No sockets, no asyncio, no
clock reads; the asyncio edge (``endpoint.py``) feeds it. The public surface is re-exported
here; the modules are small and each owns one concern:

* ``message`` / ``headers`` / ``uri``: the wire format;
* ``sdp`` / ``offer_answer``: session descriptions and RFC 3264 negotiation;
* ``auth``: HTTP digest (RFC 7616/8760) for both sides;
* ``transaction``: RFC 3261 section 17 state machines and the transaction layer;
* ``dialog`` / ``requests``: dialogs (section 12) and builders for initial requests.
"""

from voxgate.sip._syntax import Params
from voxgate.sip.errors import SipParseError
from voxgate.sip.headers import BRANCH_MAGIC_COOKIE, CSeq, Headers, Via, parse_cseq, parse_via
from voxgate.sip.message import (
    REASON_PHRASES,
    SipMessage,
    SipRequest,
    SipResponse,
    SipStreamParser,
    make_response,
    parse_message,
)
from voxgate.sip.uri import (
    AbsoluteUri,
    NameAddress,
    SipUri,
    TelUri,
    Uri,
    parse_name_addr,
    parse_uri,
)

__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "REASON_PHRASES",
    "AbsoluteUri",
    "CSeq",
    "Headers",
    "NameAddress",
    "Params",
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipStreamParser",
    "SipUri",
    "TelUri",
    "Uri",
    "Via",
    "make_response",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
]
