"""ctypes binding to the few libopus calls voxgate needs.

Why not PyAV alone: FFmpeg's Opus decoders (``opus`` and ``libopus``, as PyAV 18 exposes
them) have no way to ask for packet loss concealment or in-band FEC. An empty packet means
end of stream to ``avcodec_send_packet``: it drains the decoder and every later packet fails
with EOFError. Concealment and FEC need ``opus_decode(..., decode_fec)`` on the same decoder
state that decodes the good packets, so the decoder has to be libopus itself; the encoder uses
the same binding so one code path sets bitrate, FEC, loss and DTX, and per-frame cost is one
foreign call instead of PyAV's frame and packet objects.

The library comes from PyAV's wheel (``site-packages/av.libs/libopus-<hash>.so.*``, located
without importing ``av``), so no new dependency; a system ``libopus`` is the fallback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
from pathlib import Path

OPUS_OK = 0
OPUS_APPLICATION_VOIP = 2048
OPUS_APPLICATION_AUDIO = 2049
OPUS_APPLICATION_RESTRICTED_LOWDELAY = 2051
OPUS_SIGNAL_VOICE = 3001

OPUS_SET_BITRATE = 4002
OPUS_SET_COMPLEXITY = 4010
OPUS_SET_INBAND_FEC = 4012
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_SET_DTX = 4016
OPUS_SET_SIGNAL = 4024
OPUS_GET_LOOKAHEAD = 4027
OPUS_RESET_STATE = 4028

MAX_PACKET_BYTES = 1500
"""Output buffer for one encoded frame: more than the 1275-byte Opus maximum per frame."""
MAX_FRAME_MS = 120
"""Longest duration one Opus packet can carry."""


def _candidates() -> list[str]:
    found: list[str] = []
    spec = importlib.util.find_spec("av")  # locates the package without importing it
    if spec is not None and spec.origin is not None:
        libs = Path(spec.origin).parent.parent / "av.libs"
        found += sorted(str(p) for p in libs.glob("libopus*.so*"))
    system = ctypes.util.find_library("opus")
    if system:
        found.append(system)
    return found


def _load() -> ctypes.CDLL:
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as exc:  # pragma: no cover - depends on the machine
            errors.append(f"{path}: {exc}")
    raise ImportError(
        "libopus not found: install PyAV (`pip install av`, its wheels bundle libopus) or the "
        "system library (Debian: libopus0)" + (f"; tried {errors}" if errors else "")
    )


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded libopus with argument types declared (loaded on first use)."""
    global _lib
    if _lib is None:
        so = _load()
        c_int, c_void_p, c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
        int_p = ctypes.POINTER(ctypes.c_int)
        i16_p = ctypes.POINTER(ctypes.c_int16)
        so.opus_encoder_create.argtypes = [ctypes.c_int32, c_int, c_int, int_p]
        so.opus_encoder_create.restype = c_void_p
        so.opus_encoder_destroy.argtypes = [c_void_p]
        so.opus_encoder_destroy.restype = None
        so.opus_encode.argtypes = [c_void_p, i16_p, c_int, c_char_p, ctypes.c_int32]
        so.opus_encode.restype = ctypes.c_int32
        so.opus_encoder_ctl.restype = c_int  # variadic: argtypes left open
        so.opus_decoder_create.argtypes = [ctypes.c_int32, c_int, int_p]
        so.opus_decoder_create.restype = c_void_p
        so.opus_decoder_destroy.argtypes = [c_void_p]
        so.opus_decoder_destroy.restype = None
        so.opus_decode.argtypes = [c_void_p, c_char_p, ctypes.c_int32, i16_p, c_int, c_int]
        so.opus_decode.restype = c_int
        so.opus_decoder_ctl.restype = c_int
        so.opus_strerror.argtypes = [c_int]
        so.opus_strerror.restype = c_char_p
        if hasattr(so, "opus_packet_has_lbrr"):  # libopus >= 1.5
            so.opus_packet_has_lbrr.argtypes = [c_char_p, ctypes.c_int32]
            so.opus_packet_has_lbrr.restype = c_int
        so.opus_get_version_string.argtypes = []
        so.opus_get_version_string.restype = c_char_p
        _lib = so
    return _lib


def strerror(code: int) -> str:
    message: bytes = lib().opus_strerror(code)
    return message.decode("ascii", "replace")


def has_lbrr(packet: bytes) -> bool | None:
    """Whether ``packet`` carries FEC (LBRR) data; ``None`` if this libopus cannot tell."""
    so = lib()
    if not hasattr(so, "opus_packet_has_lbrr"):
        return None
    return int(so.opus_packet_has_lbrr(packet, len(packet))) > 0


def version() -> str:
    """libopus version string, e.g. ``"libopus 1.5.2"``."""
    text: bytes = lib().opus_get_version_string()
    return text.decode("ascii", "replace")
