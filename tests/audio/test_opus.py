"""Opus through libopus: round trips, FEC versus PLC, DTX, bad payloads."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio.conftest import best_lag_corr, speech
from voxgate.audio import CodecError, get_decoder, get_encoder
from voxgate.audio.opus import OpusDecoder, OpusEncoder

RATES = [8000, 16000, 48000]


def _frames(pcm: np.ndarray, rate: int) -> list[np.ndarray]:
    n = rate // 50
    return [pcm[i * n : (i + 1) * n] for i in range(pcm.shape[0] // n)]


@pytest.mark.parametrize("rate", RATES)
def test_speech_round_trip_correlates_after_codec_delay(rate: int) -> None:
    pcm = speech(rate=rate)
    enc, dec = OpusEncoder(rate, bitrate=24000), OpusDecoder(rate)
    frames = _frames(pcm, rate)
    out = np.concatenate([dec.decode(enc.encode(f)) for f in frames])
    assert out.shape[0] == len(frames) * (rate // 50)
    ref = np.concatenate(frames)
    lag, corr = best_lag_corr(out, ref, 2 * enc.lookahead)
    # The delay is the encoder's lookahead (within a few samples of libopus's resampler).
    assert abs(lag - enc.lookahead) <= max(8, rate // 1000)
    assert corr > 0.9


def test_sine_round_trip_level_is_preserved() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    pcm = np.rint(6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    enc, dec = OpusEncoder(rate, bitrate=32000), OpusDecoder(rate)
    out = np.concatenate([dec.decode(enc.encode(f)) for f in _frames(pcm, rate)])
    steady_in = float(np.sqrt(np.mean(pcm[4000:].astype(float) ** 2)))
    steady_out = float(np.sqrt(np.mean(out[4000:].astype(float) ** 2)))
    assert 0.8 < steady_out / steady_in < 1.2


def test_registry_makes_opus_at_48k_clock() -> None:
    enc = get_encoder("OPUS", 16000, bitrate=20000, fec=True, packet_loss_pct=10)
    dec = get_decoder("opus", 16000)
    assert (enc.name, enc.clock_rate, enc.sample_rate) == ("opus", 48000, 16000)
    assert (dec.name, dec.clock_rate, dec.sample_rate) == ("opus", 48000, 16000)
    assert dec.decode(enc.encode(np.zeros(320, dtype=np.int16))).shape == (320,)


@pytest.mark.parametrize("rate", RATES)
def test_fec_recovers_a_lost_packet_better_than_plc(rate: int) -> None:
    pcm = speech(rate=rate)
    enc = OpusEncoder(rate, bitrate=24000, fec=True, packet_loss_pct=20)
    packets = [enc.encode(f) for f in _frames(pcm, rate)]
    reference = OpusDecoder(rate)
    clean = [reference.decode(p) for p in packets]
    n = rate // 50
    plc_corr, fec_corr = [], []
    for lost in range(10, len(packets) - 1, 7):
        target = clean[lost].astype(np.float64)
        if float(np.sqrt(np.mean(target**2))) < 300:  # skip pauses: nothing to compare
            continue
        plc_dec, fec_dec = OpusDecoder(rate), OpusDecoder(rate)
        for p in packets[:lost]:
            plc_dec.decode(p)
            fec_dec.decode(p)
        plc = plc_dec.conceal(n)
        fec = fec_dec.conceal(n, packets[lost + 1])
        assert fec_dec.fec_recovered == 1
        # Decoding then continues normally with the next packet.
        assert fec_dec.decode(packets[lost + 1]).shape == (n,)
        plc_corr.append(float(np.corrcoef(plc, target)[0, 1]))
        fec_corr.append(float(np.corrcoef(fec, target)[0, 1]))
    assert len(fec_corr) >= 5
    assert np.mean(fec_corr) > 0.85
    assert np.mean(fec_corr) > np.mean(plc_corr) + 0.2


def test_conceal_without_fec_data_falls_back_to_plc() -> None:
    rate = 16000
    enc = OpusEncoder(rate, fec=False)
    dec = OpusDecoder(rate)
    pcm = speech(rate=rate)
    packets = [enc.encode(f) for f in _frames(pcm, rate)[:20]]
    for p in packets[:10]:
        dec.decode(p)
    out = dec.conceal(320, packets[11])
    assert out.shape == (320,)
    assert dec.fec_recovered == 0
    assert dec.conceal(320).shape == (320,)  # no next packet: plain PLC


def test_conceal_rejects_sizes_libopus_cannot_conceal() -> None:
    dec = OpusDecoder(16000)
    with pytest.raises(ValueError, match="2.5 ms"):
        dec.conceal(321)


def test_dtx_skips_silence() -> None:
    rate = 16000
    pcm = speech(rate=rate)
    silence = np.zeros(rate * 2, dtype=np.int16)
    with_dtx = OpusEncoder(rate, dtx=True)
    without = OpusEncoder(rate, dtx=False)
    for f in _frames(pcm, rate):  # speech first, so DTX has to detect the change
        with_dtx.encode(f)
    dtx_sizes = [len(with_dtx.encode(f)) for f in _frames(silence, rate)]
    plain_sizes = [len(without.encode(f)) for f in _frames(silence, rate)]
    # After a short hangover DTX stops sending (b"") except rare comfort-noise updates.
    skipped = sum(1 for s in dtx_sizes[20:] if s == 0)
    assert skipped >= 0.8 * len(dtx_sizes[20:])
    assert sum(dtx_sizes) < sum(plain_sizes) / 2
    assert all(s > 0 for s in plain_sizes)


def test_speech_is_never_dtx_skipped() -> None:
    rate = 16000
    enc = OpusEncoder(rate, dtx=True)
    frames = _frames(speech(rate=rate), rate)
    sizes = [len(enc.encode(f)) for f in frames]
    loud = [
        s
        for f, s in zip(frames, sizes, strict=True)
        if np.sqrt(np.mean(f.astype(float) ** 2)) > 1000
    ]
    assert loud and all(s > 2 for s in loud)


@pytest.mark.parametrize("payload", [b"", b"\xff", b"\x03", b"\x0b\xff\xff\xff\xff\xff"])
def test_bad_payload_raises_codec_error(payload: bytes) -> None:
    dec = OpusDecoder(16000)
    with pytest.raises(CodecError) as info:
        dec.decode(payload)
    assert info.value.protocol == "opus"
    assert isinstance(info.value, ValueError)
    # The decoder stays usable after a bad packet.
    enc = OpusEncoder(16000)
    assert dec.decode(enc.encode(np.zeros(320, dtype=np.int16))).shape == (320,)


def test_encoder_rejects_bad_frames() -> None:
    enc = OpusEncoder(16000)
    with pytest.raises(CodecError, match="encode of 100 samples"):
        enc.encode(np.zeros(100, dtype=np.int16))
    with pytest.raises(TypeError):
        enc.encode(np.zeros(320, dtype=np.float32))  # type: ignore[arg-type]


def test_rejects_unsupported_rate() -> None:
    with pytest.raises(ValueError, match="Opus runs at"):
        OpusEncoder(44100)
    with pytest.raises(ValueError, match="Opus runs at"):
        OpusDecoder(22050)


def test_streams_keep_separate_state() -> None:
    """Two decoders fed the same packets give the same output; interleaving two streams
    through separate objects does not mix them."""
    rate = 16000
    frames = _frames(speech(rate=rate), rate)[:30]
    enc_a, enc_b = OpusEncoder(rate), OpusEncoder(rate)
    dec_a, dec_b = OpusDecoder(rate), OpusDecoder(rate)
    silent = np.zeros(320, dtype=np.int16)
    out_a = []
    for f in frames:
        out_a.append(dec_a.decode(enc_a.encode(f)))
        dec_b.decode(enc_b.encode(silent))
    solo_enc, solo_dec = OpusEncoder(rate), OpusDecoder(rate)
    solo = [solo_dec.decode(solo_enc.encode(f)) for f in frames]
    assert all(np.array_equal(a, s) for a, s in zip(out_a, solo, strict=True))
