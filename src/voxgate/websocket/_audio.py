"""Wire audio for the stream edges: PCM16 frames <-> 20 ms chunks of the negotiated encoding.

Both edges and the bridge need the same three steps (resample to the wire rate, encode, cut
into 20 ms chunks), so they live here once. Chunks are 20 ms so that a ``clear`` can drop
everything not yet sent at frame granularity, and so Opus gets the frame sizes it needs.
"""

from __future__ import annotations

import numpy as np

from voxgate.audio.codecs import get_decoder, get_encoder
from voxgate.audio.frame import Pcm16
from voxgate.audio.g711 import ulaw_decode, ulaw_encode
from voxgate.audio.resample import StreamResampler

FRAME_MS = 20

_EMPTY: Pcm16 = np.zeros(0, dtype=np.int16)


class WireEncoder:
    """PCM16 at ``in_rate`` -> 20 ms chunks of ``encoding`` at ``wire_rate``."""

    def __init__(self, encoding: str, wire_rate: int, in_rate: int) -> None:
        self.encoding = encoding
        self.wire_rate = wire_rate
        self.frame_samples = wire_rate * FRAME_MS // 1000
        self._resampler = StreamResampler(in_rate, wire_rate)
        self._pending: Pcm16 = _EMPTY
        self._opus = get_encoder("opus", wire_rate) if encoding == "opus" else None

    def _encode(self, pcm: Pcm16) -> bytes:
        if self.encoding == "mulaw":
            return ulaw_encode(pcm)
        if self._opus is not None:
            return self._opus.encode(pcm)
        return pcm.astype("<i2", copy=False).tobytes()

    def encode(self, pcm: Pcm16) -> list[bytes]:
        """Whole 20 ms chunks; a remainder waits for more audio or :meth:`flush`."""
        n = self.frame_samples
        if pcm.shape[0] == n and not self._pending.shape[0] and self._resampler.passthrough:
            return [self._encode(pcm)]  # the common case: one 20 ms frame at the wire rate
        if not self._resampler.passthrough:
            pcm = self._resampler.process(pcm)
        if self._pending.shape[0]:
            pcm = np.concatenate((self._pending, pcm))
        whole = pcm.shape[0] - pcm.shape[0] % n
        self._pending = pcm[whole:]
        return [self._encode(pcm[i : i + n]) for i in range(0, whole, n)]

    @property
    def idle(self) -> bool:
        """Nothing buffered: a whole chunk written now would go out as it is, in order."""
        return bool(self._pending.shape[0] == 0)

    def flush(self) -> list[bytes]:
        """The remainder as one short chunk (padded to 20 ms for Opus, which needs it)."""
        rest = self._pending
        self._pending = _EMPTY
        if rest.shape[0] == 0:
            return []
        if self._opus is not None:
            rest = np.concatenate((rest, np.zeros(self.frame_samples - rest.shape[0], np.int16)))
        return [self._encode(rest)]

    def reset(self) -> None:
        """Drop buffered audio (barge-in): nothing written before must leak out later."""
        self._pending = _EMPTY
        self._resampler.reset()


class WireDecoder:
    """Chunks of ``encoding`` at ``wire_rate`` -> PCM16 at ``out_rate``."""

    def __init__(self, encoding: str, wire_rate: int, out_rate: int) -> None:
        self.encoding = encoding
        self._resampler = StreamResampler(wire_rate, out_rate)
        self._opus = get_decoder("opus", wire_rate) if encoding == "opus" else None

    def decode(self, data: bytes) -> Pcm16:
        """Decode one chunk; raises CodecError (a ParseError) for a corrupt Opus packet."""
        if self.encoding == "mulaw":
            pcm = ulaw_decode(data)
        elif self._opus is not None:
            pcm = self._opus.decode(data)
        else:
            pcm = np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)
        if self._resampler.passthrough:
            return pcm
        return self._resampler.process(pcm)
