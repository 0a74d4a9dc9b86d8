"""The one error type the SIP parsers raise, and what an edge needs to answer it.

RFC 3261 section 16.3 / 8.2 ask a UAS to answer a malformed request with ``400 Bad Request``
(or ``505`` for an unknown version) whenever it can, so the error carries the status and a
short reason phrase, plus a *partial* request when the request line and the Via headers were
salvageable. With that the edge calls ``make_response(err.partial, err.status, err.reason)``
and keeps serving; without it (a broken response, garbage bytes) the edge drops the datagram.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxgate.errors import ParseError

if TYPE_CHECKING:
    from voxgate.sip.message import SipRequest

__all__ = ["SipParseError"]


class SipParseError(ParseError):
    """Bytes or text that are not a valid SIP message, URI or header value.

    ``status`` is the response code a UAS should answer with (400, or 505 for an unsupported
    SIP version, 416 is left to the application). ``reason`` is a short reason phrase for that
    response. ``partial`` holds the request as far as it was understood (request line and all
    headers that could be split) when that is enough to build a response: it has a method, a
    Request-URI and at least one parseable Via. It is ``None`` otherwise.
    """

    protocol = "sip"

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        reason: str = "Bad Request",
        partial: SipRequest | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.partial = partial
