"""voxgate.rtp: sans-I/O RTP/RTCP wire layer (bytes and timestamps in, packets and events out).

Nothing here reads a clock, opens a socket or needs an event loop; callers pass arrival times
in, so every behaviour is testable with plain bytes.
"""

from voxgate.rtp.packet import (
    RTP_HEADER_SIZE,
    RTP_VERSION,
    RtpExtension,
    RtpPacket,
    RtpParseError,
    is_rtcp,
)

__all__ = [
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "is_rtcp",
]
