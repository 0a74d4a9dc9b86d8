"""Load the captured RTP fixtures written by ``fixtures/pcap_extract.py`` (sipp's pcaps)."""

from __future__ import annotations

import struct
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load(name: str) -> bytes:
    """One fixture file's raw bytes."""
    return (FIXTURES / name).read_bytes()


def load_datagrams(name: str) -> list[bytes]:
    """The datagrams of a ``*.rtps`` fixture (``!H length`` + bytes records), in order."""
    data = load(name)
    out = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("!H", data, pos)
        out.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return out
