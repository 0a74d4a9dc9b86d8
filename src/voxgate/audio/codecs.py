"""Codec registry: SDP encoding name -> encoder/decoder instance.

Edges negotiate a codec by its rtpmap name and then only need the :class:`Encoder` /
:class:`Decoder` protocols; this is the one place that maps names to classes (compare
aiortc's ``get_decoder``). Opus is imported lazily so a G.711-only process never loads PyAV.
Names are matched case-insensitively, as SDP encoding names are.
"""

from __future__ import annotations

from typing import Any

from voxgate.audio.codec import Decoder, Encoder
from voxgate.audio.g711 import PcmaDecoder, PcmaEncoder, PcmuDecoder, PcmuEncoder

CODEC_NAMES = ("PCMU", "PCMA", "opus")
"""Encoding names, spelled as in SDP rtpmap lines."""


def _check_g711_rate(name: str, sample_rate: int) -> None:
    if sample_rate != 8000:
        raise ValueError(f"{name} runs at 8000 Hz only, got sample_rate={sample_rate}")


def get_encoder(name: str, sample_rate: int | None = None, **options: Any) -> Encoder:
    """A new encoder for the codec ``name``.

    ``sample_rate`` is the PCM rate the caller will feed (default: the codec's natural rate,
    8000 for G.711, 48000 for Opus). ``options`` go to the Opus encoder (``bitrate``,
    ``fec``, ``packet_loss_pct``, ``dtx``); G.711 takes none.
    """
    key = name.lower()
    if key in ("pcmu", "pcma"):
        _check_g711_rate(name, sample_rate or 8000)
        if options:
            raise TypeError(f"{name} takes no options, got {sorted(options)}")
        return PcmuEncoder() if key == "pcmu" else PcmaEncoder()
    if key == "opus":
        from voxgate.audio.opus import OpusEncoder

        encoder: Encoder = OpusEncoder(sample_rate or 48000, **options)
        return encoder
    raise ValueError(f"unknown codec {name!r}; supported: {', '.join(CODEC_NAMES)}")


def get_decoder(name: str, sample_rate: int | None = None) -> Decoder:
    """A new decoder (one per stream: decoders keep concealment state)."""
    key = name.lower()
    if key in ("pcmu", "pcma"):
        _check_g711_rate(name, sample_rate or 8000)
        return PcmuDecoder() if key == "pcmu" else PcmaDecoder()
    if key == "opus":
        from voxgate.audio.opus import OpusDecoder

        decoder: Decoder = OpusDecoder(sample_rate or 48000)
        return decoder
    raise ValueError(f"unknown codec {name!r}; supported: {', '.join(CODEC_NAMES)}")
