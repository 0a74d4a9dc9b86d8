"""Opus encoder and decoder (RFC 6716, RTP payload per RFC 7587) on libopus.

Both keep the codec state of one stream (Opus predicts across frames), so create one object
per stream and direction. The RTP clock rate is always 48000 whatever rate the PCM runs at
(RFC 7587); the PCM rate may be 8, 12, 16, 24 or 48 kHz and libopus resamples internally.

Loss handling, the reason this is not plain PyAV (see :mod:`voxgate.audio._libopus`):
``conceal(n, next_payload)`` decodes the lost frame from the in-band FEC (LBRR) data that a
FEC-enabled sender puts in the *next* packet, and falls back to libopus's own packet loss
concealment when there is no next packet or it carries no FEC.
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np

from voxgate.audio import _libopus
from voxgate.audio.codec import CodecError
from voxgate.audio.frame import Pcm16

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
CLOCK_RATE = 48000
APPLICATIONS = {
    "voip": _libopus.OPUS_APPLICATION_VOIP,
    "audio": _libopus.OPUS_APPLICATION_AUDIO,
    "lowdelay": _libopus.OPUS_APPLICATION_RESTRICTED_LOWDELAY,
}

_I16_P = ctypes.POINTER(ctypes.c_int16)


def _error(what: str, code: int) -> CodecError:
    return CodecError(f"opus {what} failed: {_libopus.strerror(code)} ({code})", protocol="opus")


def _check_rate(sample_rate: int) -> None:
    if sample_rate not in OPUS_RATES:
        raise ValueError(f"Opus runs at {OPUS_RATES} Hz, got sample_rate={sample_rate}")


class OpusEncoder:
    """Encodes frames of PCM16 mono (2.5 to 60 ms; voxgate sends 20 ms) to Opus packets.

    ``fec`` turns on in-band FEC, which libopus only spends bits on when told to expect
    loss: ``packet_loss_pct`` (0-100) is that expectation and sets how much redundancy goes
    in. ``dtx`` lets the encoder stop sending during silence: :meth:`encode` then returns
    ``b""`` for frames that need not be transmitted (libopus signals them as packets of two
    bytes or less); the sender skips the packet and keeps advancing the RTP timestamp.
    """

    name = "opus"
    clock_rate = CLOCK_RATE

    def __init__(
        self,
        sample_rate: int = 48000,
        *,
        bitrate: int | None = 32000,
        fec: bool = False,
        packet_loss_pct: int = 0,
        dtx: bool = False,
        complexity: int | None = None,
        application: str = "voip",
    ) -> None:
        _check_rate(sample_rate)
        if application not in APPLICATIONS:
            raise ValueError(f"application must be one of {sorted(APPLICATIONS)}")
        if not 0 <= packet_loss_pct <= 100:
            raise ValueError(f"packet_loss_pct must be 0-100, got {packet_loss_pct}")
        self.sample_rate = sample_rate
        self.dtx = dtx
        lib = _libopus.lib()
        err = ctypes.c_int(0)
        state = lib.opus_encoder_create(sample_rate, 1, APPLICATIONS[application], err)
        if err.value != _libopus.OPUS_OK or not state:
            raise _error("encoder_create", err.value)
        self._state: int = state
        self._finalizer = weakref.finalize(self, lib.opus_encoder_destroy, ctypes.c_void_p(state))
        self._out = ctypes.create_string_buffer(_libopus.MAX_PACKET_BYTES)
        if bitrate is not None:
            self._ctl(_libopus.OPUS_SET_BITRATE, bitrate)
        if complexity is not None:
            self._ctl(_libopus.OPUS_SET_COMPLEXITY, complexity)
        self._ctl(_libopus.OPUS_SET_SIGNAL, _libopus.OPUS_SIGNAL_VOICE)
        self._ctl(_libopus.OPUS_SET_INBAND_FEC, int(fec))
        self._ctl(_libopus.OPUS_SET_PACKET_LOSS_PERC, packet_loss_pct)
        self._ctl(_libopus.OPUS_SET_DTX, int(dtx))
        lookahead = ctypes.c_int32(0)
        self._ctl_ptr(_libopus.OPUS_GET_LOOKAHEAD, lookahead)
        self.lookahead = int(lookahead.value)
        """Algorithmic delay in samples at ``sample_rate``: decoded audio lags input by this."""

    def _ctl(self, request: int, value: int) -> None:
        rc = _libopus.lib().opus_encoder_ctl(
            ctypes.c_void_p(self._state), ctypes.c_int(request), ctypes.c_int32(value)
        )
        if rc != _libopus.OPUS_OK:
            raise _error(f"encoder_ctl({request}, {value})", rc)

    def _ctl_ptr(self, request: int, out: ctypes.c_int32) -> None:
        rc = _libopus.lib().opus_encoder_ctl(
            ctypes.c_void_p(self._state), ctypes.c_int(request), ctypes.byref(out)
        )
        if rc != _libopus.OPUS_OK:
            raise _error(f"encoder_ctl({request})", rc)

    def encode(self, pcm: Pcm16) -> bytes:
        """One Opus packet for one frame; ``b""`` for a DTX frame that need not be sent."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError(f"Opus encodes 1-D int16 PCM, got {pcm.dtype} {pcm.shape}")
        samples = np.ascontiguousarray(pcm)
        n = _libopus.lib().opus_encode(
            self._state,
            samples.ctypes.data_as(_I16_P),
            samples.shape[0],
            self._out,
            _libopus.MAX_PACKET_BYTES,
        )
        if n < 0:
            raise _error(f"encode of {samples.shape[0]} samples at {self.sample_rate} Hz", n)
        if self.dtx and n <= 2:
            return b""
        return self._out.raw[:n]

    def reset(self) -> None:
        """Forget the stream history (e.g. before reusing the encoder for a new stream)."""
        rc = _libopus.lib().opus_encoder_ctl(
            ctypes.c_void_p(self._state), ctypes.c_int(_libopus.OPUS_RESET_STATE)
        )
        if rc != _libopus.OPUS_OK:
            raise _error("reset", rc)


class OpusDecoder:
    """Decodes Opus packets to PCM16 mono at ``sample_rate``, concealing lost packets."""

    name = "opus"
    clock_rate = CLOCK_RATE

    def __init__(self, sample_rate: int = 48000) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        lib = _libopus.lib()
        err = ctypes.c_int(0)
        state = lib.opus_decoder_create(sample_rate, 1, err)
        if err.value != _libopus.OPUS_OK or not state:
            raise _error("decoder_create", err.value)
        self._state: int = state
        self._finalizer = weakref.finalize(self, lib.opus_decoder_destroy, ctypes.c_void_p(state))
        self._max_samples = sample_rate * _libopus.MAX_FRAME_MS // 1000
        self._buf = np.zeros(self._max_samples, dtype=np.int16)
        self._buf_p = self._buf.ctypes.data_as(_I16_P)
        self._granule = sample_rate // 400  # 2.5 ms: the unit libopus conceals in
        self.fec_recovered = 0
        """Lost frames rebuilt from FEC data (the rest were concealed by PLC). With a
        libopus older than 1.5 this counts FEC attempts, which may have fallen back to PLC."""

    def _decode(self, payload: bytes | None, frame_size: int, fec: bool) -> int:
        return int(
            _libopus.lib().opus_decode(
                self._state,
                payload,
                0 if payload is None else len(payload),
                self._buf_p,
                frame_size,
                int(fec),
            )
        )

    def decode(self, payload: bytes) -> Pcm16:
        """PCM16 for one packet; raises :class:`CodecError` for a malformed packet."""
        if not payload:
            # libopus would treat a zero-length packet as a loss and conceal it silently;
            # RFC 6716 requires at least the TOC byte, so this is a malformed payload.
            raise CodecError("empty Opus payload", protocol="opus")
        n = self._decode(payload, self._max_samples, False)
        if n < 0:
            raise _error(f"decode of a {len(payload)}-byte packet", n)
        return self._buf[:n].copy()

    def conceal(self, num_samples: int, next_payload: bytes | None = None) -> Pcm16:
        """Samples for one lost packet: from FEC in ``next_payload`` if it has any, else PLC.

        ``num_samples`` must be a multiple of 2.5 ms (libopus conceals in those units).
        Pass the next packet to :meth:`decode` afterwards as usual: FEC decoding reads only
        its redundant copy of the lost frame and does not consume it.
        """
        if num_samples <= 0:
            return np.zeros(0, dtype=np.int16)
        if num_samples % self._granule or num_samples > self._max_samples:
            raise ValueError(
                f"Opus conceals multiples of 2.5 ms up to {_libopus.MAX_FRAME_MS} ms "
                f"({self._granule} samples at {self.sample_rate} Hz), got {num_samples}"
            )
        if next_payload and _libopus.has_lbrr(next_payload) is not False:
            n = self._decode(next_payload, num_samples, True)
            if n == num_samples:
                self.fec_recovered += 1
                return self._buf[:n].copy()
            # A malformed next packet: its own decode() will report it; conceal instead.
        n = self._decode(None, num_samples, False)
        if n < 0:
            raise _error("concealment", n)
        return self._buf[:n].copy()

    def reset(self) -> None:
        rc = _libopus.lib().opus_decoder_ctl(
            ctypes.c_void_p(self._state), ctypes.c_int(_libopus.OPUS_RESET_STATE)
        )
        if rc != _libopus.OPUS_OK:
            raise _error("reset", rc)
