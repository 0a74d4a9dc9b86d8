"""Decoders on arbitrary bytes raise only their documented error (or nothing).

An edge feeds decoders whatever arrives on the network: G.711 must accept every byte string
(every byte is a valid code) and Opus may raise only :class:`CodecError`, which the edge
counts and conceals; anything else would take down the call.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.audio import CodecError, get_decoder

payloads = st.binary(min_size=0, max_size=400)


@settings(max_examples=200, deadline=None)
@given(payloads)
def test_g711_decoders_accept_any_bytes(payload: bytes) -> None:
    for name in ("PCMU", "PCMA"):
        out = get_decoder(name).decode(payload)
        assert out.dtype == np.int16 and out.shape == (len(payload),)


_opus = get_decoder("opus", 16000)  # one stream hammered with garbage, as in real life


@settings(max_examples=400, deadline=None)
@given(payloads, st.booleans())
def test_opus_decoder_raises_only_codec_error(payload: bytes, conceal: bool) -> None:
    try:
        if conceal:
            out = _opus.conceal(320, payload)
            assert out.shape == (320,)
        else:
            out = _opus.decode(payload)
            assert out.dtype == np.int16 and out.shape[0] <= 16000 * 120 // 1000
    except CodecError as exc:
        assert exc.protocol == "opus"
