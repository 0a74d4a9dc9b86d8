"""Streaming resampling: exact per-frame output (no bursts), no clicks at borders, clean
passband and stopband, bounded delay, and frame by frame equal to one shot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from voxgate.audio.resample import StreamResampler

RATIOS = [
    (8000, 16000),
    (16000, 8000),
    (48000, 16000),
    (16000, 48000),
    (8000, 48000),
    (48000, 8000),
    (24000, 16000),
    (22050, 8000),
    (8000, 22050),
    (44100, 16000),
]


def _sine(rate: int, seconds: float = 1.0, freq: float = 440.0, amp: float = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _stream(
    pcm: np.ndarray, in_rate: int, out_rate: int, frame: int | None = None
) -> tuple[np.ndarray, list[int]]:
    """Resample in frames (20 ms unless given); the output and each frame's output length."""
    r = StreamResampler(in_rate, out_rate)
    n = frame or in_rate // 50
    outs = [r.process(pcm[i : i + n]) for i in range(0, pcm.shape[0], n)]
    lengths = [o.shape[0] for o in outs]
    outs.append(r.flush())
    return np.concatenate(outs), lengths


def _one_shot(pcm: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    r = StreamResampler(in_rate, out_rate)
    return np.concatenate([r.process(pcm), r.flush()])


def _level_db(y: np.ndarray, freq: float, rate: int, ref: float) -> float:
    """Level of ``freq`` in the middle half of ``y`` relative to amplitude ``ref`` (Hann DFT)."""
    y = y[y.shape[0] // 4 : -y.shape[0] // 4].astype(np.float64)
    w = np.hanning(y.shape[0])
    t = np.arange(y.shape[0]) / rate
    amp = np.abs(np.sum(y * w * np.exp(-2j * np.pi * freq * t))) * 2 / w.sum()
    return float(20 * np.log10(max(amp, 1e-9) / ref))


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
def test_every_20ms_frame_gives_exactly_20ms_from_the_first(in_rate: int, out_rate: int) -> None:
    # What soxr could not do: its HQ stream gave [0, 0, 0, 0, 0, 1660, 0, ...] at 8k->16k.
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(in_rate) * 3000).astype(np.int16)
    _, lengths = _stream(pcm, in_rate, out_rate)
    assert lengths == [out_rate // 50] * 50


def test_22050_to_8000_in_10ms_frames_varies_but_never_stalls() -> None:
    # 220 samples of 22.05 kHz is not a whole number of 8 kHz samples: lengths alternate, the
    # running total stays within a sample of the exact ratio, and no call returns nothing.
    r = StreamResampler(22050, 8000)
    total_in = total_out = 0
    lengths = set()
    for _ in range(300):
        n = r.process(np.zeros(220, np.int16)).shape[0]
        total_in += 220
        total_out += n
        lengths.add(n)
        assert abs(total_out - total_in * 8000 / 22050) <= 1
    assert lengths == {79, 80}


def test_chain_8k_16k_48k_8k_frame_by_frame_matches_one_shot() -> None:
    src = _sine(8000)
    a, _ = _stream(src, 8000, 16000)
    b, _ = _stream(a, 16000, 48000)
    c, _ = _stream(b, 48000, 8000)
    one = _one_shot(_one_shot(_one_shot(src, 8000, 16000), 16000, 48000), 48000, 8000)
    assert c.shape == one.shape
    # Same arithmetic in different batch sizes: at most float rounding, one LSB per stage.
    assert int(np.abs(c.astype(np.int32) - one).max()) <= 3
    # And the round trip is the sine itself, delayed: fit a 440 Hz sine, check the residual.
    body = c[400:-400].astype(np.float64)
    t = np.arange(400, 400 + body.shape[0]) / 8000
    basis = np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 440 * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, body, rcond=None)
    assert abs(math.hypot(*coef) - 8000) < 40
    assert float(np.abs(body - basis @ coef).max()) < 50


@pytest.mark.parametrize(
    ("in_rate", "out_rate"), [(8000, 16000), (16000, 8000), (48000, 8000), (22050, 8000)]
)
def test_no_spikes_at_frame_borders(in_rate: int, out_rate: int) -> None:
    out, lengths = _stream(_sine(in_rate, 2.0, 300.0), in_rate, out_rate)
    d = np.abs(np.diff(out.astype(np.int32)))
    # The largest step of a clean 300 Hz sine of amplitude 8000 at out_rate, plus margin.
    max_step = 8000 * 2 * np.pi * 300 / out_rate * 1.1 + 4
    body = d[out_rate // 10 : -out_rate // 10]
    assert float(body.max()) <= max_step
    for b in np.cumsum(lengths):
        if out_rate // 10 < b < out.shape[0] - out_rate // 10:
            assert float(d[b - 1]) <= max_step


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
def test_1khz_passes_within_half_a_db(in_rate: int, out_rate: int) -> None:
    out, _ = _stream(_sine(in_rate, 0.5, 1000.0, 10000), in_rate, out_rate)
    assert abs(_level_db(out, 1000.0, out_rate, 10000)) <= 0.5


def test_6khz_tone_does_not_alias_into_8khz() -> None:
    # 6 kHz folds to 2 kHz at 8 kHz; soxr "QQ" passed it at full level.
    out, _ = _stream(_sine(48000, 0.5, 6000.0, 10000), 48000, 8000)
    assert _level_db(out, 2000.0, 8000, 10000) <= -50


def test_upsampling_image_of_3_9khz_is_suppressed() -> None:
    # Zero-stuffing 8k->16k mirrors 3.9 kHz to 4.1 kHz; the stopband starts at 4 kHz.
    out, _ = _stream(_sine(8000, 0.5, 3900.0, 10000), 8000, 16000)
    assert _level_db(out, 4100.0, 16000, 10000) <= -50


def test_default_stopband_is_60db_across_the_alias_band() -> None:
    for freq in np.arange(4000.0, 8000.0, 97.0):
        out, _ = _stream(_sine(16000, 0.25, freq, 10000), 16000, 8000)
        assert _level_db(out, 8000.0 - freq, 8000, 10000) <= -60, freq


@pytest.mark.parametrize(("in_rate", "out_rate"), RATIOS)
def test_impulse_delay_is_at_most_2ms(in_rate: int, out_rate: int) -> None:
    # A property of the filter (where the impulse response peaks), not a wall-clock timing.
    pcm = np.zeros(in_rate // 10, np.int16)
    at = in_rate // 50
    pcm[at] = 30000
    out, lengths = _stream(pcm, in_rate, out_rate)
    delay = int(np.argmax(np.abs(out))) / out_rate - at / in_rate
    assert 0 <= delay <= 0.002 + 1 / out_rate
    assert lengths[0] == out_rate // 50  # and output starts with the first frame


def test_flush_returns_the_filter_tail_only() -> None:
    r = StreamResampler(16000, 8000, quality="LQ")
    total_in = total_out = 0
    frame = _sine(16000)[:320]
    for _ in range(500):
        total_out += r.process(frame).shape[0]
        total_in += 320
    assert total_out == total_in // 2
    tail = r.flush()
    assert 0 < tail.shape[0] <= 8000 * 0.002 + 1  # LQ's delay is 1.5 ms
    assert r.flush().shape == (0,)  # nothing fed since: no tail


def test_reset_starts_a_fresh_stream() -> None:
    src = _sine(8000)[:800]
    r = StreamResampler(8000, 16000)
    r.process(_sine(8000, 0.1, 1234.0))
    r.reset()
    assert np.array_equal(r.process(src), StreamResampler(8000, 16000).process(src))


def test_full_scale_square_clips_instead_of_wrapping() -> None:
    square = np.where(_sine(8000, 0.2, 500.0) >= 0, 32767, -32768).astype(np.int16)
    out, _ = _stream(square, 8000, 16000)
    assert int(out.max()) == 32767 and int(out.min()) == -32768  # overshoot was clipped
    assert int(np.abs(np.diff(out.astype(np.int32))).max()) < 40000  # a wrap jumps ~65536


def test_identity_passthrough() -> None:
    r = StreamResampler(16000, 16000)
    frame = _sine(16000)[:320]
    assert r.passthrough
    assert r.process(frame) is frame
    assert r.flush().shape == (0,)


def test_soxr_stays_available_for_offline_use() -> None:
    r = StreamResampler(8000, 16000, quality="soxr-hq")
    src = _sine(8000)
    out = np.concatenate([r.process(src[i : i + 160]) for i in range(0, 8000, 160)] + [r.flush()])
    assert abs(out.shape[0] - 16000) <= 3


def test_rejects_non_int16_and_unknown_quality() -> None:
    with pytest.raises(TypeError):
        StreamResampler(8000, 16000).process(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StreamResampler(8000, 16000, quality="best")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    ratio=st.sampled_from(RATIOS),
    quality=st.sampled_from(["QQ", "HQ", "VHQ"]),
    chunks=st.lists(
        arrays(np.int16, st.integers(0, 2000), elements=st.integers(-32768, 32767)),
        max_size=8,
    ),
)
def test_any_chunking_keeps_totals_and_matches_one_shot(
    ratio: tuple[int, int], quality: str, chunks: list[np.ndarray]
) -> None:
    in_rate, out_rate = ratio
    r = StreamResampler(in_rate, out_rate, quality)  # type: ignore[arg-type]
    g = math.gcd(in_rate, out_rate)
    total_in, outs = 0, []
    for c in chunks:
        outs.append(r.process(c))
        total_in += c.shape[0]
        # Exactly the samples due so far: ceil(in * L / M), within 1 of the rounded ratio.
        assert sum(o.shape[0] for o in outs) == -(-total_in * (out_rate // g) // (in_rate // g))
    outs.append(r.flush())
    whole = np.concatenate([*chunks, np.zeros(0, np.int16)])
    one = StreamResampler(in_rate, out_rate, quality)  # type: ignore[arg-type]
    expected = np.concatenate([one.process(whole), one.flush()])
    got = np.concatenate(outs)
    assert got.shape == expected.shape
    assert got.dtype == np.int16
    if got.shape[0]:
        assert int(np.abs(got.astype(np.int32) - expected).max()) <= 1
