"""Streaming resampling: frame by frame must equal one shot, with no clicks at borders."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from voxgate.audio.resample import StreamResampler


def _sine(rate: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _stream(pcm: np.ndarray, in_rate: int, out_rate: int) -> tuple[np.ndarray, list[int]]:
    """Resample 20 ms frames; returns the output and the output index of each frame border."""
    r = StreamResampler(in_rate, out_rate)
    n = in_rate // 50
    outs, borders, total = [], [], 0
    for i in range(0, pcm.shape[0], n):
        out = r.process(pcm[i : i + n])
        outs.append(out)
        total += out.shape[0]
        borders.append(total)
    outs.append(r.flush())
    return np.concatenate(outs), borders


def test_chain_8k_16k_48k_8k_frame_by_frame_matches_one_shot() -> None:
    src = _sine(8000)
    a, _ = _stream(src, 8000, 16000)
    b, _ = _stream(a, 16000, 48000)
    c, _ = _stream(b, 48000, 8000)
    one = soxr.resample(soxr.resample(soxr.resample(src, 8000, 16000), 16000, 48000), 48000, 8000)
    # Bookkeeping: each stage emits the expected number of samples within a few.
    assert abs(a.shape[0] - 16000) <= 3
    assert abs(b.shape[0] - 48000) <= 3
    assert abs(c.shape[0] - 8000) <= 3
    n = min(c.shape[0], one.shape[0])
    # Both are aligned (soxr compensates its delay); ignore the edges of the finite signal.
    diff = np.abs(c[100 : n - 100].astype(np.int32) - one[100 : n - 100].astype(np.int32))
    assert int(diff.max()) <= 16  # int16 rounding at three stages, on a peak of 8000
    # And the round trip is the sine itself.
    err = np.abs(c[100 : n - 100].astype(np.int32) - src[100 : n - 100].astype(np.int32))
    assert int(err.max()) < 200


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (16000, 8000), (48000, 8000)])
def test_no_spikes_at_frame_borders(in_rate: int, out_rate: int) -> None:
    out, borders = _stream(_sine(in_rate, 2.0, 300.0), in_rate, out_rate)
    d = np.abs(np.diff(out.astype(np.int32)))
    # The largest step of a clean 300 Hz sine of amplitude 8000 at out_rate, plus margin.
    max_step = 8000 * 2 * np.pi * 300 / out_rate * 1.1 + 4
    body = d[out_rate // 10 : -out_rate // 10]
    assert float(body.max()) <= max_step
    for b in borders:
        if out_rate // 10 < b < out.shape[0] - out_rate // 10:
            assert float(d[b - 1]) <= max_step


def test_identity_passthrough() -> None:
    r = StreamResampler(16000, 16000)
    frame = _sine(16000)[:320]
    assert r.passthrough
    assert r.process(frame) is frame
    assert r.flush().shape == (0,)


def test_output_total_tracks_input_over_many_frames() -> None:
    r = StreamResampler(16000, 8000, quality="LQ")
    total_in = total_out = 0
    frame = _sine(16000)[:320]
    for _ in range(500):
        total_out += r.process(frame).shape[0]
        total_in += 320
    total_out += r.flush().shape[0]
    assert abs(total_out - total_in // 2) <= 2


def test_rejects_non_int16() -> None:
    with pytest.raises(TypeError):
        StreamResampler(8000, 16000).process(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]
