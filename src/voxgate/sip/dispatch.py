"""Sans-I/O dispatch for a multi-process SIP edge: which worker gets a datagram.

A node with N edge workers (one event loop per core) keeps one public SIP port: the front
(:mod:`voxgate.sip.front`) reads every datagram and hands it to one worker. Everything that
belongs to a dialog must reach the worker that holds it, and the only thing every message of
a dialog shares, requests and responses alike, is the Call-ID. So the worker is a stable
hash of the Call-ID value (CRC-32, identical in every process; Python's ``hash`` is salted
per process) modulo N. The worker that *sends* a new request must choose a Call-ID that
hashes to itself (:func:`owns_call_id`; ``requests.new_call_id`` does it under
``call_id_affinity``), so the responses come back to it.

What has no dialog affinity goes to worker 0:

* REGISTER (the registrar's bindings live in one place, so a later ``dial`` of a
  registered user and the trunk REGISTER refreshes, sent only by worker 0, see one state);
* anything without a usable Call-ID (garbage, truncated or binary datagrams, STUN): exactly
  one worker parses it and answers 400 or drops it, as a single edge does.

Pure CRLF datagrams (RFC 5626 keep-alive pings) are dropped here: a single edge drops them
too, so no worker needs to wake up for them.

The scan is deliberately not a parse: the header block is lower-cased once and one compiled
regular expression finds the first ``Call-ID``/``i`` header line (names are
case-insensitive, whitespace around the colon allowed, RFC 3261 section 7.3.1); folded
continuation lines are joined. Parsing is the worker's job; a message whose Call-ID we find
but which is otherwise broken goes to that Call-ID's worker, which answers it once.

Between the front and a worker each datagram travels with its source address
(:func:`encode_frame` / :func:`decode_frame`): ``port (2 bytes) | host length (1) | host |
datagram``, so rport/received, latching and symmetric responses work unchanged.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

__all__ = [
    "Dispatcher",
    "call_id_of",
    "decode_frame",
    "encode_frame",
    "owns_call_id",
    "port_slice",
    "worker_for",
    "worker_for_call_id",
]

_CALL_ID = re.compile(rb"\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)")
_FRAME = struct.Struct("!HB")


def call_id_of(datagram: bytes) -> bytes | None:
    """The first Call-ID header's value (stripped, case kept), or None when there is none.

    Only the header block is searched, found as the parser finds it (up to the first blank
    line, ``message._split_head``), so a body that happens to contain ``\\ni:`` (SDP's
    ``i=`` line uses ``=``, but a multipart body might) never counts. The whole block, however
    long: the parser takes header blocks up to 64 KiB, and a Call-ID this scan missed or cut
    short (it once stopped at 8 KiB) sent that one message to another worker than the rest
    of its dialog. Leading CRLFs are skipped first, as the parser does (7.5): a keep-alive
    coalesced before a message must not read as an empty header block."""
    if datagram[:1] in (b"\r", b"\n"):
        datagram = datagram.lstrip(b"\r\n")
    end = datagram.find(b"\r\n\r\n")
    if end < 0:
        end = datagram.find(b"\n\n")
    block = datagram if end < 0 else datagram[:end]
    match = _CALL_ID.search(block.lower())
    if match is None:
        return None
    start, stop = match.span(1)
    value = block[start:stop]
    # Folding (section 7.3.1): a line starting with SP/HT continues the header.
    while True:
        nl = block.find(b"\n", stop)
        if nl < 0 or nl + 1 >= len(block) or block[nl + 1] not in b" \t":
            break
        nxt = block.find(b"\n", nl + 1)
        line_end = len(block) if nxt < 0 else nxt
        value += b" " + block[nl + 1 : line_end].strip()
        stop = line_end
    value = value.strip()
    return value or None


def worker_for_call_id(call_id: bytes | str, workers: int) -> int:
    """The worker for ``call_id`` among ``workers`` (stable across processes and runs)."""
    if workers <= 1:
        return 0
    raw = call_id.encode("utf-8", "surrogateescape") if isinstance(call_id, str) else call_id
    return zlib.crc32(raw.strip()) % workers


def owns_call_id(call_id: str, index: int, workers: int) -> bool:
    """True when ``call_id`` is routed to worker ``index`` (what a sender checks)."""
    return worker_for_call_id(call_id, workers) == index


def _is_register(datagram: bytes) -> bool:
    if datagram[:1] in (b"\r", b"\n"):  # CRLFs before the start line are ignored (7.5)
        datagram = datagram.lstrip(b"\r\n")
    return datagram[:9].upper() == b"REGISTER "


def worker_for(datagram: bytes, workers: int) -> int | None:
    """The worker for one received datagram, or None for a keep-alive (drop it).

    REGISTER and anything without a Call-ID go to worker 0; everything else, responses
    included, to its Call-ID's worker."""
    if not datagram.strip(b"\r\n"):
        return None
    if workers <= 1 or _is_register(datagram):
        return 0
    call_id = call_id_of(datagram)
    return 0 if call_id is None else worker_for_call_id(call_id, workers)


@dataclass(slots=True)
class Dispatcher:
    """:func:`worker_for` with the counts an operator needs: datagrams per worker, how many
    had no Call-ID (went to worker 0 as garbage), keep-alives dropped, and datagrams a
    worker's link could not take (its queue was full: the worker is stalled)."""

    workers: int
    dispatched: list[int] = field(default_factory=list)
    garbage: int = 0
    keepalives: int = 0
    registers: int = 0
    dropped: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, not {self.workers}")
        self.dispatched = [0] * self.workers
        self.dropped = [0] * self.workers

    def route(self, datagram: bytes) -> int | None:
        """The worker index for ``datagram`` (None: a keep-alive, dropped and counted)."""
        if not datagram.strip(b"\r\n"):
            self.keepalives += 1
            return None
        if _is_register(datagram):
            self.registers += 1
            index = 0
        else:
            call_id = call_id_of(datagram)
            if call_id is None:
                self.garbage += 1
                index = 0
            else:
                index = worker_for_call_id(call_id, self.workers)
        self.dispatched[index] += 1
        return index

    def snapshot(self) -> dict[str, object]:
        """The counts as plain data (for a stats endpoint or a log line)."""
        return {
            "workers": self.workers, "dispatched": list(self.dispatched), "garbage": self.garbage,
            "keepalives": self.keepalives, "registers": self.registers, "dropped": list(self.dropped),
        }  # fmt: skip


def encode_frame(datagram: bytes, host: str, port: int) -> bytes:
    """``datagram`` with its source address, for the front -> worker link."""
    raw = host.encode("ascii")
    if len(raw) > 255 or not 0 <= port <= 65535:
        raise ValueError(f"bad source address {host!r}:{port}")
    return _FRAME.pack(port, len(raw)) + raw + datagram


def decode_frame(frame: bytes) -> tuple[bytes, str, int]:
    """``(datagram, host, port)`` from :func:`encode_frame`'s output; ValueError if short."""
    if len(frame) < _FRAME.size:
        raise ValueError("frame shorter than its header")
    port, size = _FRAME.unpack_from(frame)
    start = _FRAME.size + size
    if len(frame) < start:
        raise ValueError("frame shorter than its address")
    return frame[start:], frame[_FRAME.size : start].decode("ascii"), port


def port_slice(low: int, high: int, index: int, workers: int) -> tuple[int, int]:
    """Worker ``index``'s share ``(low, high)`` of the RTP range ``low..high``: N disjoint
    slices, each starting on an even port (RTP even, RTCP the odd one above), so two workers
    never bind the same port pair and a late packet of one worker's call never reaches
    another's."""
    if not 0 <= index < workers:
        raise ValueError(f"worker {index} of {workers}")
    if workers == 1:
        return low, high
    first = low + (low & 1)
    pairs = (high - first) // 2
    if pairs < workers:
        raise ValueError(f"RTP range {low}..{high} has {pairs} port pairs for {workers} workers")
    share = pairs // workers
    start = first + 2 * share * index
    end = start + 2 * share if index < workers - 1 else high
    return start, end
