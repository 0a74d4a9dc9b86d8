"""The one error the stream protocol parsers raise, and the close codes the edges send.

Every bad input a WebSocket peer can send (non-JSON, unknown event, missing or mistyped
field, wrong order, bad base64, oversized frame) ends up as a :class:`StreamProtocolError`
naming the offending field, so an edge catches one type, closes *that* stream with the
matching close code and reason, counts it under ``count_rejection("websocket")`` and
leaves every other call alone.

Close codes (also documented in ``docs/websocket-protocol.md``):

====== ==================================================================================
code   meaning
====== ==================================================================================
1000   normal end: ``stop``/``hangup`` received or the call ended on our side
1003   a binary frame on the text-only Twilio protocol
1007   malformed message: not JSON, not an object, missing/mistyped field, bad base64
1008   policy: unknown event, wrong order (media before start), bad token after accept
1009   a frame over the size limit
1011   internal error in the app that handled the call
1013   node draining, try another node
4004   no route for this call
4008   the peer does not read: its send queue passed the limit (or a send stalled)
4029   the peer sends audio faster than real time beyond the allowed burst, for too long
4415   no audio format offered in ``hello`` is supported (native protocol)
====== ==================================================================================
"""

from __future__ import annotations

from voxgate.errors import ParseError

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_NO_ROUTE = 4004
CLOSE_SLOW_CONSUMER = 4008
CLOSE_TOO_FAST = 4029
CLOSE_NO_FORMAT = 4415


class StreamProtocolError(ParseError):
    """A message that breaks the Twilio Media Streams or native voxgate stream protocol.

    ``field`` is the dotted path of the offending field (``"start.mediaFormat.encoding"``,
    ``"event"``, ``"$"`` for the message as a whole); ``close_code`` is the WebSocket close
    code an edge should answer with.
    """

    protocol = "websocket"

    def __init__(self, message: str, *, field: str = "$", close_code: int = CLOSE_INVALID_DATA):
        super().__init__(f"{field}: {message}" if field != "$" else message)
        self.field = field
        self.close_code = close_code

    @property
    def reason(self) -> str:
        """A close reason that fits the 123-byte limit of a WebSocket close frame."""
        text = str(self)
        raw = text.encode()
        if len(raw) <= 120:
            return text
        return raw[:117].decode(errors="ignore") + "..."
