"""RTP parse/serialize cost: voxgate.rtp.RtpPacket vs aiortc.rtp.RtpPacket, same process.

Run: ``.venv/bin/python bench/rtp_parse.py [--quick]``. Prints a markdown table of
microseconds per packet (best of several repeats, so background load inflates both sides
rather than the ratio) and the machine it ran on.

Cases:
* ``PCMU 160``: the typical packet, 12-byte header + 160 bytes of G.711 (20 ms at 8 kHz).
* ``CSRC+ext``: 2 CSRCs and a one-byte-header extension (RFC 8285) carrying audio level
  (id 1) and a 3-byte abs-send-time-like element (id 3), + 160-byte payload. aiortc is given
  a header-extension map with audio level on id 1 so that its serialize actually writes an
  extension (it re-encodes from parsed fields; we copy the raw bytes).
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aiortc import rtp as aiortc_rtp  # noqa: E402
from aiortc.rtcrtpparameters import (  # noqa: E402
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)

from voxgate.rtp import RtpExtension, RtpPacket  # noqa: E402

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def machine() -> str:
    """``nproc`` and the CPU model, as the results file records them."""
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"nproc={os.cpu_count()}, {model}, Python {platform.python_version()}"


def per_op_us(stmt: str, namespace: dict[str, object], number: int, repeat: int) -> float:
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    quick = "--quick" in sys.argv
    number, repeat = (20_000, 3) if quick else (200_000, 7)

    payload = bytes(range(160))
    simple = RtpPacket(0, 1234, 160_000, 0x1234_5678, True, payload=payload)
    ext_data = b"\x10\x85\x32\x01\x02\x03\x00\x00"  # id1 len1 audio level, id3 len3, padding
    rich = RtpPacket(
        111, 1234, 160_000, 0x1234_5678, False, (0xAAAA_AAAA, 0xBBBB_BBBB),
        RtpExtension(0xBEDE, ext_data), payload,
    )

    ext_map = aiortc_rtp.HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL_URI)]
        )
    )
    rows = []
    for name, ours_packet in (("PCMU 160", simple), ("CSRC+ext", rich)):
        data = ours_packet.serialize()
        theirs_packet = aiortc_rtp.RtpPacket.parse(data, ext_map)
        # Both implementations must agree on the bytes before their speed means anything.
        assert RtpPacket.parse(data) == ours_packet
        assert theirs_packet.payload == ours_packet.payload
        assert theirs_packet.csrc == list(ours_packet.csrc)
        ns: dict[str, object] = {
            "ours": RtpPacket.parse, "theirs": aiortc_rtp.RtpPacket.parse, "data": data,
            "ext_map": ext_map, "op": ours_packet, "tp": theirs_packet,
        }
        parse_ours = per_op_us("ours(data)", ns, number, repeat)
        parse_theirs = per_op_us("theirs(data, ext_map)", ns, number, repeat)
        ser_ours = per_op_us("op.serialize()", ns, number, repeat)
        ser_theirs = per_op_us("tp.serialize(ext_map)", ns, number, repeat)
        rows.append((f"parse {name} ({len(data)} B)", parse_ours, parse_theirs))
        rows.append((f"serialize {name} ({len(data)} B)", ser_ours, ser_theirs))

    print(f"date: {datetime.date.today().isoformat()}")
    print(f"machine: {machine()}")
    print(f"loops: {number} x best of {repeat}")
    print()
    print("| operation | voxgate µs/pkt | aiortc µs/pkt | speed-up (aiortc / voxgate) |")
    print("|---|---:|---:|---:|")
    for label, ours_us, theirs_us in rows:
        print(f"| {label} | {ours_us:.3f} | {theirs_us:.3f} | {theirs_us / ours_us:.2f}x |")


if __name__ == "__main__":
    main()
