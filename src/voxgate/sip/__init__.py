"""voxgate.sip: a sans-I/O SIP stack (RFC 3261 and friends).

Pure code: bytes and times in, messages, events and timers out. No sockets, no asyncio, no
clock reads. The asyncio edge lives beside it and is imported explicitly, never from here:
``endpoint`` (``SipEdge``, ``start_sip_edge``; its concerns in ``edge_core``,
``edge_admission`` and ``edge_outbound``, its settings resolved in ``edge_options``),
``transport`` (UDP/TCP/TLS), ``call`` (one call's flow), ``media`` (RTP session; its pure half
is ``rtp_stream``), ``front`` (one public UDP port in front of N edge worker processes; its
pure half is ``dispatch``, datagram -> worker by Call-ID), and the pure ``registrar``, ``trunk``, ``ratelimit`` (per-source token
buckets), ``session_timer`` (RFC 4028) and ``signalling`` (what calls say: Allow/Supported,
end reasons, BYE Reason, sipfrag). The core's public surface is re-exported here; each module
owns one concern:

* ``message`` / ``headers`` / ``uri``: the wire format (RFC 3261 sections 7, 19, 20);
* ``sdp`` / ``offer_answer``: session descriptions (RFC 4566) and negotiation (RFC 3264);
* ``auth``: digest authentication for both sides (RFC 7616/8760);
* ``transaction`` / ``transaction_layer``: section 17 state machines and their manager;
* ``dialog`` / ``requests``: dialogs (section 12/13) and builders for initial requests.
"""

from voxgate.sip._syntax import Params
from voxgate.sip.auth import (
    AuthResult,
    DigestChallenge,
    DigestChallenger,
    DigestCredentials,
    Ha1,
    Password,
    authorize,
)
from voxgate.sip.dialog import (
    AckTimeout,
    Dialog,
    DialogId,
    DialogState,
    request_dialog_id,
    response_dialog_id,
)
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
from voxgate.sip.offer_answer import (
    OPUS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    MediaCapabilities,
    MediaSession,
    NegotiatedMedia,
    NegotiationError,
    SrtpParams,
    answer_offer,
    changed_fields,
)
from voxgate.sip.requests import (
    build_cancel,
    build_invite,
    build_options,
    build_register,
    build_request,
    new_branch,
    new_call_id,
    new_tag,
)
from voxgate.sip.sdp import (
    Connection,
    Crypto,
    MediaDescription,
    Origin,
    RtpMap,
    SdpParseError,
    SessionDescription,
)
from voxgate.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    State,
    StrayResponse,
    TimerValues,
    Transaction,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
    TransportFailure,
)
from voxgate.sip.transaction_layer import TransactionLayer
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
    "OPUS",
    "PCMA",
    "PCMU",
    "REASON_PHRASES",
    "TELEPHONE_EVENT",
    "AbsoluteUri",
    "AckTimeout",
    "AuthResult",
    "CSeq",
    "Codec",
    "Connection",
    "Crypto",
    "Dialog",
    "DialogId",
    "DialogState",
    "DigestChallenge",
    "DigestChallenger",
    "DigestCredentials",
    "Ha1",
    "Headers",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "MediaCapabilities",
    "MediaDescription",
    "MediaSession",
    "NameAddress",
    "NegotiatedMedia",
    "NegotiationError",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "Origin",
    "Params",
    "Password",
    "RequestReceived",
    "ResponseReceived",
    "RtpMap",
    "SdpParseError",
    "SessionDescription",
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipStreamParser",
    "SipUri",
    "SrtpParams",
    "State",
    "StrayResponse",
    "TelUri",
    "TimerValues",
    "Transaction",
    "TransactionEvent",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimeout",
    "Transmit",
    "TransportFailure",
    "Uri",
    "Via",
    "answer_offer",
    "authorize",
    "build_cancel",
    "build_invite",
    "build_options",
    "build_register",
    "build_request",
    "changed_fields",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "request_dialog_id",
    "response_dialog_id",
]
