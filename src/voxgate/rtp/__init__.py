"""voxgate.rtp: sans-I/O RTP/RTCP wire layer (bytes and timestamps in, packets and events out).

Nothing here reads a clock, opens a socket or needs an event loop; callers pass arrival times
in, so every behaviour is testable with plain bytes. Each module is one protocol concern:
``packet`` (RTP, RFC 3550 5.1), ``rtcp`` (RFC 3550 6), ``stats`` (RFC 3550 A.1/A.3/A.8),
``dtmf`` (RFC 4733).
"""

from voxgate.rtp.dtmf import (
    DTMF_DIGITS,
    DtmfEvent,
    DtmfParseError,
    DtmfReceiver,
    DtmfSender,
    ScheduledPacket,
    TelephoneEvent,
    digit_to_event,
    event_to_digit,
)
from voxgate.rtp.jitterbuffer import JitterBuffer, JitterKind, JitterResult, JitterStats
from voxgate.rtp.packet import (
    RTP_HEADER_SIZE,
    RTP_VERSION,
    RtpExtension,
    RtpPacket,
    RtpParseError,
    is_rtcp,
)
from voxgate.rtp.receiver import AudioReceiverStats, RtpAudioReceiver
from voxgate.rtp.rtcp import (
    ReportBlock,
    RtcpBye,
    RtcpPacket,
    RtcpParseError,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtcpUnknown,
    SdesChunk,
    parse_rtcp,
    serialize_rtcp,
)
from voxgate.rtp.stats import (
    ReceiverStats,
    SenderStats,
    ntp_from_unix,
    ntp_middle32,
    round_trip_time,
    unix_from_ntp,
)

__all__ = [
    "AudioReceiverStats",
    "JitterBuffer",
    "JitterKind",
    "JitterResult",
    "JitterStats",
    "RtpAudioReceiver",
    "DTMF_DIGITS",
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "DtmfEvent",
    "DtmfParseError",
    "DtmfReceiver",
    "DtmfSender",
    "ReceiverStats",
    "ReportBlock",
    "RtcpBye",
    "RtcpPacket",
    "RtcpParseError",
    "RtcpReceiverReport",
    "RtcpSenderReport",
    "RtcpSourceDescription",
    "RtcpUnknown",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "ScheduledPacket",
    "SdesChunk",
    "SenderStats",
    "TelephoneEvent",
    "digit_to_event",
    "event_to_digit",
    "is_rtcp",
    "ntp_from_unix",
    "ntp_middle32",
    "parse_rtcp",
    "round_trip_time",
    "serialize_rtcp",
    "unix_from_ntp",
]
