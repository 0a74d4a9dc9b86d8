"""RTP reception and sending statistics for RTCP reports (RFC 3550 appendices A.1, A.3, A.8).

Sans-I/O: every method takes the arrival or current time as a float of seconds on any
monotonic-or-wall clock the caller likes, as long as one clock is used consistently per
object. Only the NTP helpers care that a time is Unix wall-clock time, because SR timestamps
go on the wire.

The algorithms follow the RFC's reference C code closely because the numbers they produce
are read by the peer's implementation of the same code; deviating would make loss and jitter
mean different things at the two ends. The one deliberate difference is documented on
:meth:`ReceiverStats.update` (jitter starts on the second packet, not against a zero transit).
"""

from __future__ import annotations

from voxgate.rtp.rtcp import ReportBlock, RtcpSenderReport

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "NTP_UNIX_OFFSET",
    "ReceiverStats",
    "SenderStats",
    "ntp_from_unix",
    "ntp_middle32",
    "round_trip_time",
    "unix_from_ntp",
]

MAX_DROPOUT = 3000
"""A forward sequence jump below this is taken as loss, above it as a possible restart."""
MAX_MISORDER = 100
"""A backward sequence jump up to this is taken as a late (reordered or duplicate) packet."""
MIN_SEQUENTIAL = 2
"""Consecutive packets a new source must send before it is believed (probation)."""
RTP_SEQ_MOD = 1 << 16

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)."""


def ntp_from_unix(unix_seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) for a Unix time, as carried in an SR."""
    return int(round((unix_seconds + NTP_UNIX_OFFSET) * (1 << 32))) & 0xFFFF_FFFF_FFFF_FFFF


def unix_from_ntp(ntp: int) -> float:
    """Unix time of a 64-bit NTP timestamp (ignores the 2036 era rollover)."""
    return ntp / (1 << 32) - NTP_UNIX_OFFSET


def ntp_middle32(ntp: int) -> int:
    """Middle 32 bits of an NTP timestamp: the LSR field echoed in report blocks."""
    return (ntp >> 16) & 0xFFFF_FFFF


def round_trip_time(arrival_unix: float, block: ReportBlock) -> float | None:
    """Round-trip time in seconds from a report block about our stream (RFC 3550 6.4.1).

    ``arrival_unix`` is when the RR/SR carrying ``block`` arrived, on the same wall clock
    whose NTP time went into our SR. ``A - LSR - DLSR`` is computed in the 16.16 middle-32
    units modulo 2**32, so it survives the wrap of those fields. Returns None when the peer
    has not received an SR from us yet (LSR 0). A negative result (rounding of 1/65536 s
    units on a short path, or a peer's bad DLSR) is clamped to 0.0.
    """
    if block.lsr == 0:
        return None
    arrival = ntp_middle32(ntp_from_unix(arrival_unix))
    rtt = (arrival - block.lsr - block.dlsr) & 0xFFFF_FFFF
    if rtt >= 1 << 31:
        return 0.0
    return rtt / 65536


class ReceiverStats:
    """Statistics about one received source (SSRC), producing its RTCP report block.

    Sequence validation (A.1) rejects packets from a source until ``MIN_SEQUENTIAL`` have
    arrived in order, tolerates reordering up to ``MAX_MISORDER`` and loss up to
    ``MAX_DROPOUT``, and resynchronises when a source restarts with a new sequence (two
    consecutive packets after a big jump). Loss (A.3) and jitter (A.8) follow from there.
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_jitter",
        "_max_seq",
        "_probation",
        "_received",
        "_received_prior",
        "_started",
        "_transit",
        "clock_rate",
        "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._base_seq = 0
        self._max_seq = 0
        self._bad_seq = RTP_SEQ_MOD + 1  # a value no 16-bit sequence number can equal
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._probation = MIN_SEQUENTIAL
        self._transit: float | None = None
        self._jitter = 0.0
        self._started = False

    def _init_seq(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = RTP_SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def _update_seq(self, seq: int) -> bool:
        """RFC 3550 A.1 ``update_seq``: True if the packet counts as received."""
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self._max_seq = (seq - 1) & 0xFFFF
            self._probation = MIN_SEQUENTIAL
        udelta = (seq - self._max_seq) & 0xFFFF
        if self._probation:
            if seq == (self._max_seq + 1) & 0xFFFF:
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    self._received += 1
                    return True
            else:
                self._probation = MIN_SEQUENTIAL - 1
                self._max_seq = seq
            return False
        if udelta < MAX_DROPOUT:  # in order, with a permissible gap (0 = duplicate of max)
            if seq < self._max_seq:
                self._cycles += RTP_SEQ_MOD
            self._max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:  # a very large jump
            if seq == self._bad_seq:
                # Two sequential packets after the jump: the source restarted. Resync,
                # counting this packet as the first of the new sequence.
                self._init_seq(seq)
            else:
                self._bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered packet, counted as received
        self._received += 1
        return True

    def update(self, packet_seq: int, rtp_timestamp: int, arrival_time_seconds: float) -> bool:
        """Account for one arriving packet; return whether it passed sequence validation.

        Rejected packets (probation, or a big jump not yet confirmed) should not be played
        out. Jitter (A.8) is updated for accepted packets only, from the difference in
        relative transit time, in RTP timestamp units; the first accepted packet only sets
        the reference transit (the RFC code compares it against an uninitialised zero).
        """
        if not self._update_seq(packet_seq):
            return False
        transit = arrival_time_seconds * self.clock_rate - rtp_timestamp
        previous = self._transit
        self._transit = transit
        if previous is not None:
            # Differences are taken modulo 2**32 so an RTP timestamp wrap is not a spike.
            d = (transit - previous + (1 << 31)) % (1 << 32) - (1 << 31)
            self._jitter += (abs(d) - self._jitter) / 16
        return True

    @property
    def received(self) -> int:
        """Packets accepted since the sequence was (re)initialised, duplicates included."""
        return self._received

    @property
    def extended_max_seq(self) -> int:
        """Highest sequence number seen, extended with the count of 16-bit wraps."""
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        """Packets expected from the first validated sequence number to the highest seen."""
        if self._received == 0 and self._probation:
            return 0
        return self.extended_max_seq - self._base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received; negative when duplicates outnumber losses (A.3)."""
        return self.expected - self._received

    @property
    def jitter(self) -> float:
        """Interarrival jitter estimate in RTP timestamp units (A.8)."""
        return self._jitter

    def report_block(
        self,
        now: float,
        last_sr_ntp_middle32: int = 0,
        last_sr_arrival: float | None = None,
    ) -> ReportBlock:
        """Build the report block about this source and start a new reporting interval.

        ``last_sr_ntp_middle32`` is :func:`ntp_middle32` of the last SR received from the
        source and ``last_sr_arrival`` when it arrived (same clock as ``now``); pass
        neither if no SR has arrived, which reports LSR = DLSR = 0 as the RFC requires.
        """
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min((lost_interval << 8) // expected_interval, 255)
        lost = max(-0x800000, min(self.cumulative_lost, 0x7FFFFF))  # clamp to 24 signed bits
        if last_sr_arrival is None:
            lsr = dlsr = 0
        else:
            lsr = last_sr_ntp_middle32 & 0xFFFF_FFFF
            dlsr = min(max(int((now - last_sr_arrival) * 65536), 0), 0xFFFF_FFFF)
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self.extended_max_seq & 0xFFFF_FFFF,
            jitter=min(int(self._jitter), 0xFFFF_FFFF),
            lsr=lsr,
            dlsr=dlsr,
        )


class SenderStats:
    """Counts for the sender info of our SRs (RFC 3550 6.4.1).

    The SR's RTP timestamp must correspond to the same instant as its NTP timestamp, not to
    the last packet sent, so it is extrapolated from the last packet at ``clock_rate``.
    """

    __slots__ = ("_last_rtp_timestamp", "_last_send_time", "clock_rate", "octet_count",
                 "packet_count", "ssrc")

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.packet_count = 0
        self.octet_count = 0
        self._last_rtp_timestamp: int | None = None
        self._last_send_time = 0.0

    def on_packet_sent(self, payload_size: int, rtp_timestamp: int, now: float) -> None:
        """Count one sent RTP packet; ``payload_size`` excludes header and padding."""
        self.packet_count = (self.packet_count + 1) & 0xFFFF_FFFF
        self.octet_count = (self.octet_count + payload_size) & 0xFFFF_FFFF
        self._last_rtp_timestamp = rtp_timestamp
        self._last_send_time = now

    @property
    def has_sent(self) -> bool:
        """Whether any packet was sent (a participant that has not sends RR, not SR)."""
        return self._last_rtp_timestamp is not None

    def sender_report(
        self,
        now_unix: float,
        reports: tuple[ReportBlock, ...] = (),
        now: float | None = None,
    ) -> RtcpSenderReport:
        """Build an SR for ``now_unix`` (wall clock, goes on the wire as NTP time).

        ``now`` is the same instant on the clock passed to :meth:`on_packet_sent`, if that
        is not the wall clock (e.g. a monotonic loop time); it defaults to ``now_unix``.
        """
        rtp_timestamp = 0
        if self._last_rtp_timestamp is not None:
            elapsed = (now_unix if now is None else now) - self._last_send_time
            rtp_timestamp = (
                self._last_rtp_timestamp + int(round(elapsed * self.clock_rate))
            ) & 0xFFFF_FFFF
        return RtcpSenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp_from_unix(now_unix),
            rtp_timestamp=rtp_timestamp,
            packet_count=self.packet_count,
            octet_count=self.octet_count,
            reports=reports,
        )
