"""PlayoutBuffer: exact framing, marks reached when their audio is played, clear drops all."""

from __future__ import annotations

import numpy as np

from voxgate.audio.frame import AudioFrame
from voxgate.calls.playout import PlayoutBuffer


def frame(n: int, value: int = 1, rate: int = 8000) -> AudioFrame:
    return AudioFrame(np.full(n, value, dtype=np.int16), rate)


def test_frames_are_exact_and_padded_at_end() -> None:
    buf = PlayoutBuffer(8000)
    buf.write(frame(100, 1))
    buf.write(frame(250, 2))
    out = []
    while True:
        pcm, _ = buf.pull()
        if pcm is None:
            break
        assert len(pcm) == 160
        out.append(pcm)
    joined = np.concatenate(out)
    assert len(out) == 3
    assert (joined[:100] == 1).all() and (joined[100:350] == 2).all() and (joined[350:] == 0).all()


def test_marks_fire_after_their_audio() -> None:
    buf = PlayoutBuffer(8000)
    buf.write(frame(320))
    buf.mark("a")
    buf.write(frame(160))
    buf.mark("b")
    assert buf.pull()[1] == []
    assert buf.pull()[1] == ["a"]
    assert buf.pull()[1] == ["b"]
    assert buf.pull() == (None, [])


def test_mark_with_nothing_queued_fires_on_next_pull() -> None:
    buf = PlayoutBuffer(16000)
    buf.mark("now")
    assert buf.pull() == (None, ["now"])


def test_clear_drops_audio_and_marks() -> None:
    buf = PlayoutBuffer(8000)
    buf.write(frame(1600))
    buf.mark("never")
    buf.pull()
    buf.clear()
    assert not buf.is_playing and buf.cleared_samples == 1440
    assert buf.pull() == (None, [])
    buf.write(frame(160))
    buf.mark("after")
    assert buf.pull()[1] == ["after"]


def test_wrong_rate_rejected() -> None:
    buf = PlayoutBuffer(8000)
    try:
        buf.write(frame(160, rate=16000))
    except ValueError as exc:
        assert "8000" in str(exc)
    else:
        raise AssertionError("expected ValueError")
