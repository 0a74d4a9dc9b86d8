"""Error types shared by every layer.

Each wire-format parser raises exactly one documented subclass of :class:`ParseError` on bad
input and nothing else, so an edge can catch one type, answer with a protocol error, count the
rejection under ``protocol`` and keep every other call alive.
"""

from __future__ import annotations


class VoxgateError(Exception):
    """Base of every error voxgate raises on purpose."""


class ParseError(VoxgateError, ValueError):
    """Bytes or text that do not form a valid message of some protocol.

    ``protocol`` names the parser (``"rtp"``, ``"rtcp"``, ``"sip"``, ``"sdp"``, ...) and is the
    label under which edges count rejections in metrics.
    """

    protocol: str = "unknown"

    def __init__(self, message: str, *, protocol: str | None = None) -> None:
        super().__init__(message)
        if protocol is not None:
            self.protocol = protocol


class ConfigError(VoxgateError):
    """A configuration value that is missing, malformed or out of range."""
