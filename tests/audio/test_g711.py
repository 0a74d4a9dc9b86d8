"""G.711 against a reference written in this file from the recommendation's tables.

The reference is deliberately a different algorithm from the module's: scalar Python that
looks the magnitude up in the list of decision values of G.711 Tables 1 (A-law) and 2
(mu-law), scaled to 16-bit samples, and decodes to the middle of the decision interval. The
module computes bit fields over numpy arrays. Agreement on every input means both read the
spec the same way. Negative samples are encoded by their magnitude (sign-magnitude, as the
tables are written); -32768 clips.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest

from voxgate.audio import (
    AudioFrame,
    PcmaDecoder,
    PcmaEncoder,
    PcmuDecoder,
    PcmuEncoder,
    alaw_decode,
    alaw_encode,
    get_decoder,
    get_encoder,
    ulaw_decode,
    ulaw_encode,
)


def _ulaw_intervals() -> list[tuple[int, int, int]]:
    """(lower decision value, upper decision value, 7-bit segment|step) in 16-bit units.

    Table 2 (14-bit scale, x4 for 16-bit): segment s holds 16 steps of 2**(s+1) starting at
    32 * 2**s - 33, so the first interval of segment 0 is the half-width [0, 1); everything at
    or above 8159 (32636 in 16-bit units) is the top code.
    """
    out = []
    for seg in range(8):
        base = 32 * 2**seg - 33
        width = 2 ** (seg + 1)
        for step in range(16):
            lo = max(0, base + step * width)
            out.append((4 * lo, 4 * (base + (step + 1) * width), seg * 16 + step))
    return out


def _alaw_intervals() -> list[tuple[int, int, int]]:
    """Table 1 (12-bit magnitude scale, x8 for 16-bit): segments 0 and 1 both have steps of
    2 (16 in 16-bit units); segment s >= 1 spans [2**(s+4), 2**(s+5)) in steps of 2**s."""
    out = []
    for seg in range(8):
        lo_seg = 0 if seg == 0 else 2 ** (seg + 4)
        width = 2 if seg == 0 else 2**seg
        for step in range(16):
            lo = lo_seg + step * width
            out.append((8 * lo, 8 * (lo + width), seg * 16 + step))
    return out


_ULAW = _ulaw_intervals()
_ALAW = _alaw_intervals()
_ULAW_LOWS = [lo for lo, _, _ in _ULAW]
_ALAW_LOWS = [lo for lo, _, _ in _ALAW]


def ref_ulaw_encode(x: int) -> int:
    magnitude = -x if x < 0 else x
    i = bisect.bisect_right(_ULAW_LOWS, magnitude) - 1
    lo, hi, bits = _ULAW[i]
    if magnitude >= hi:  # above the last decision value: overload, top code
        bits = 0x7F
    sign = 0x80 if x < 0 else 0x00
    return ~(sign | bits) & 0xFF  # mu-law transmits the complement


def ref_ulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    lo, hi, _ = _ULAW[code & 0x7F]
    # Reconstruction value: the middle of the decision interval, except code 0, whose
    # interval [0, 1) decodes to 0 per Table 2.
    value = 0 if (code & 0x7F) == 0 else (lo + hi) // 2
    return -value if code & 0x80 else value


def ref_alaw_encode(x: int) -> int:
    magnitude = -x if x < 0 else x
    i = bisect.bisect_right(_ALAW_LOWS, magnitude) - 1
    lo, hi, bits = _ALAW[i]
    if magnitude >= hi:
        bits = 0x7F
    sign = 0x00 if x < 0 else 0x80  # A-law: sign bit 1 for positive
    return (sign | bits) ^ 0x55  # even bits inverted


def ref_alaw_decode(code: int) -> int:
    code ^= 0x55
    lo, hi, _ = _ALAW[code & 0x7F]
    value = (lo + hi) // 2
    return value if code & 0x80 else -value


ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_ulaw_decode_all_256_codes_match_spec() -> None:
    expected = [ref_ulaw_decode(c) for c in range(256)]
    assert ulaw_decode(ALL_CODES).tolist() == expected


def test_alaw_decode_all_256_codes_match_spec() -> None:
    expected = [ref_alaw_decode(c) for c in range(256)]
    assert alaw_decode(ALL_CODES).tolist() == expected


def test_ulaw_encode_all_65536_inputs_match_spec() -> None:
    expected = bytes(ref_ulaw_encode(int(x)) for x in ALL_SAMPLES)
    assert ulaw_encode(ALL_SAMPLES) == expected


def test_alaw_encode_all_65536_inputs_match_spec() -> None:
    expected = bytes(ref_alaw_encode(int(x)) for x in ALL_SAMPLES)
    assert alaw_encode(ALL_SAMPLES) == expected


def test_spec_anchor_values() -> None:
    """A few values quoted directly from G.711 / RFC 3551 to pin the reference itself."""
    zero = np.zeros(1, dtype=np.int16)
    assert ulaw_encode(zero) == b"\xff"  # mu-law silence
    assert alaw_encode(zero) == b"\xd5"  # A-law silence
    assert ulaw_decode(b"\x80").tolist() == [32124]  # mu-law positive peak
    assert ulaw_decode(b"\x00").tolist() == [-32124]
    assert alaw_decode(b"\xaa").tolist() == [32256]  # A-law positive peak
    assert alaw_decode(b"\x2a").tolist() == [-32256]


def test_decoders_agree_with_audioop_when_available() -> None:
    """peers.md: every decoder checked (audioop, FFmpeg, sox) agrees bit-exactly."""
    audioop = pytest.importorskip("audioop", reason="audioop was removed in Python 3.13")
    assert ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize("encode", [ulaw_encode, alaw_encode])
def test_encoding_is_sign_symmetric(encode: object) -> None:
    assert callable(encode)
    x = np.arange(1, 32768, dtype=np.int16)
    pos = np.frombuffer(encode(x), dtype=np.uint8)
    neg = np.frombuffer(encode(-x), dtype=np.uint8)
    assert np.array_equal(pos ^ 0x80, neg)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_round_trip_error_within_half_a_step(encode: object, decode: object) -> None:
    assert callable(encode) and callable(decode)
    x = ALL_SAMPLES[(ALL_SAMPLES > -32000) & (ALL_SAMPLES < 32000)]
    y = decode(encode(x)).astype(np.int32)
    err = np.abs(y - x.astype(np.int32))
    # Largest step is 1024 (segment 7): error at most half a step, or the zero-code quirk.
    assert int(err.max()) <= 512
    # Relative error stays logarithmic (~3 %) away from the small-signal segments.
    big = np.abs(x.astype(np.int32)) > 1024
    assert float(np.max(err[big] / np.abs(x[big].astype(np.int32)))) < 0.035


def test_encode_rejects_non_int16() -> None:
    with pytest.raises(TypeError, match="int16"):
        ulaw_encode(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]


def _sine(freq: float, n: int, rate: int = 8000, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(n) / rate
    return np.rint(amp * np.sin(2 * math.pi * freq * t)).astype(np.int16)


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_registry_codecs_round_trip_a_frame(name: str) -> None:
    enc = get_encoder(name, 8000)
    dec = get_decoder(name.lower())
    assert (enc.name, enc.clock_rate, enc.sample_rate) == (name, 8000, 8000)
    assert (dec.name, dec.clock_rate, dec.sample_rate) == (name, 8000, 8000)
    frame = AudioFrame(_sine(440, 160), 8000)
    payload = enc.encode(frame.samples)
    assert len(payload) == 160
    out = dec.decode(payload)
    assert out.dtype == np.int16 and out.shape == (160,)
    assert float(np.corrcoef(out, frame.samples)[0, 1]) > 0.999


def test_registry_rejects_unknown_name_and_wrong_rate() -> None:
    with pytest.raises(ValueError, match="unknown codec"):
        get_encoder("G729")
    with pytest.raises(ValueError, match="8000"):
        get_decoder("PCMU", 16000)


@pytest.mark.parametrize(
    ("enc_cls", "dec_cls"), [(PcmuEncoder, PcmuDecoder), (PcmaEncoder, PcmaDecoder)]
)
def test_conceal_continues_the_waveform_then_fades_to_silence(
    enc_cls: type[PcmuEncoder], dec_cls: type[PcmuDecoder]
) -> None:
    enc, dec = enc_cls(), dec_cls()
    signal = _sine(200, 8000)  # 40-sample pitch period
    for i in range(10):
        dec.decode(enc.encode(signal[i * 160 : (i + 1) * 160]))
    first = dec.conceal(160)
    # The first lost frame continues the sine in phase (it is not silence or a restart).
    expected = signal[1600:1760].astype(np.float64)
    assert float(np.corrcoef(first[:80], expected[:80])[0, 1]) > 0.95
    lost = [first] + [dec.conceal(160) for _ in range(3)]
    energies = [float(np.sqrt(np.mean(f.astype(np.float64) ** 2))) for f in lost]
    assert energies[0] > energies[1] > energies[2]
    # 60 ms of loss reached: silence from there on.
    assert not np.any(lost[3])
    # A good packet resets the concealment: a new loss repeats the new signal at full level.
    dec.decode(enc.encode(signal[2400:2560]))
    again = dec.conceal(80)
    assert float(np.sqrt(np.mean(again.astype(np.float64) ** 2))) > 0.5 * energies[0]


def test_conceal_after_silence_is_silence() -> None:
    dec = PcmuDecoder()
    assert not np.any(dec.conceal(160))
    dec.decode(ulaw_encode(np.zeros(160, dtype=np.int16)))
    assert not np.any(dec.conceal(160))


def test_recovery_is_cross_faded_without_a_jump() -> None:
    enc, dec = PcmuEncoder(), PcmuDecoder()
    signal = _sine(250, 8000)
    for i in range(5):
        dec.decode(enc.encode(signal[i * 160 : (i + 1) * 160]))
    concealed = dec.conceal(160)
    # Resume with a packet whose first sample is far from where the concealment left off.
    shifted = np.roll(signal[960:1120], 16)
    resumed = dec.decode(enc.encode(shifted))
    jump = abs(int(resumed[0]) - int(concealed[-1]))
    max_step = int(np.max(np.abs(np.diff(signal.astype(np.int32)))))
    assert jump <= 2 * max_step
