"""PitchConcealer history: kept as references to the frames played, joined only on a loss."""

from __future__ import annotations

import numpy as np

from voxgate.audio.plc import PitchConcealer


def test_concealment_continues_a_period_fed_in_uneven_chunks() -> None:
    # A 160 Hz waveform (period 50 samples at 8 kHz) arrives in chunks of mixed sizes, as
    # after a codec change or from a PCM edge; the loss must continue it in phase.
    period = (6000 * np.sin(2 * np.pi * np.arange(50) / 50)).astype(np.int16)
    signal = np.tile(period, 40)
    plc = PitchConcealer(8000)
    pos = 0
    for size in (80, 240, 7, 160, 33, 160, 300):
        plc.good(signal[pos : pos + size])
        pos += size
    out = plc.conceal(80)  # the first 10 ms of a loss play at full level
    expected = np.tile(period, 4)[pos % 50 : pos % 50 + 80]
    assert np.abs(out.astype(np.int32) - expected).max() <= 1


def test_concealment_right_after_the_start_uses_what_there_is() -> None:
    # Less audio than the history window: the missing past counts as silence.
    period = (6000 * np.sin(2 * np.pi * np.arange(50) / 50)).astype(np.int16)
    plc = PitchConcealer(8000)
    plc.good(np.tile(period, 3))  # 150 samples of a 390-sample history
    out = plc.conceal(50)
    assert np.abs(out.astype(np.int32) - period).max() <= 1
