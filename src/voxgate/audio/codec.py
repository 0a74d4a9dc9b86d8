"""The codec interface every RTP payload format implements.

Small on purpose (compare aiortc's ``codecs/base.py``): an encoder turns one frame of PCM16
into one payload, a decoder turns one payload back and can conceal a missing one. The jitter
buffer's receiver asks ``conceal`` for the samples of a lost packet and passes the next
payload when it already has it, so codecs with in-band FEC (Opus) can recover it.
"""

from __future__ import annotations

from typing import Protocol

from voxgate.audio.frame import Pcm16
from voxgate.errors import ParseError


class Encoder(Protocol):
    name: str
    """Encoding name as in SDP rtpmap, e.g. ``"PCMU"``, ``"opus"``."""
    clock_rate: int
    """RTP timestamp clock rate (48000 for Opus whatever the audio rate)."""
    sample_rate: int
    """Rate of the PCM16 the encoder takes."""

    def encode(self, pcm: Pcm16) -> bytes: ...


class Decoder(Protocol):
    name: str
    clock_rate: int
    sample_rate: int
    """Rate of the PCM16 the decoder returns."""

    def decode(self, payload: bytes) -> Pcm16: ...

    def conceal(self, num_samples: int, next_payload: bytes | None = None) -> Pcm16:
        """Samples standing in for one lost packet of ``num_samples`` (at ``sample_rate``)."""
        ...


class CodecError(ParseError):
    """A payload the decoder cannot decode (or a frame the encoder cannot take).

    A subclass of :class:`~voxgate.errors.ParseError` so an edge catches one type for every
    malformed input, drops the packet (the jitter buffer then conceals it) and counts the
    rejection under ``protocol``, which names the codec (``"opus"``, ...).
    """

    protocol = "codec"
