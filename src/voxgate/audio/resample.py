"""Streaming sample-rate conversion between the rates of edges, codecs and models.

A call resamples frame by frame (8 kHz phone audio to 16 kHz for STT, 22.05/24 kHz TTS to
8 kHz for the phone), so the converter must keep its filter state across frames: resampling
each 20 ms frame on its own restarts the filter every frame and clicks at every border.
:class:`StreamResampler` wraps soxr's ``ResampleStream`` (one per stream and direction).

Latency, measured here with soxr 1.1 on 20 ms int16 frames: libsoxr filters in blocks, so
at "LQ" and above output arrives in bursts (8k->16k "HQ": nothing for the first five frames,
then 1,660 samples every fifth frame), i.e. up to ~100 ms of added, bursty latency. "QQ"
(cubic) streams smoothly but has no anti-alias filter (a 6 kHz tone resampled 48k->8k comes
out at full level). Callers that need constant 20 ms output should put a FIFO after this.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

from voxgate.audio.frame import Pcm16

Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]


class StreamResampler:
    """Converts a stream of PCM16 chunks from ``in_rate`` to ``out_rate``, keeping state.

    ``process`` returns whatever output the filter has ready (possibly empty, see the module
    notes on latency); ``flush`` returns the rest at the end of the stream. Over a whole
    stream the output length is ``round(len(input) * out_rate / in_rate)`` within a sample
    or two. Equal rates pass frames through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: Quality = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = quality
        self._stream: soxr.ResampleStream | None = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
        )

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    def process(self, pcm: Pcm16) -> Pcm16:
        """Resample one chunk; the output may be shorter or longer than its share."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError(f"StreamResampler takes 1-D int16 PCM, got {pcm.dtype} {pcm.shape}")
        if self._stream is None:
            return pcm
        out: Pcm16 = self._stream.resample_chunk(pcm)
        return out

    def flush(self) -> Pcm16:
        """The samples still inside the filter; call once at the end of the stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        out: Pcm16 = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self.reset()
        return out

    def reset(self) -> None:
        """Start a new stream (drops any buffered samples)."""
        if self._stream is not None:
            self._stream.clear()
