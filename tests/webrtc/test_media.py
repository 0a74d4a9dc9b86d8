"""Inbound conversion and the playout track, without a network."""

from __future__ import annotations

import fractions

import av
import numpy as np

from voxgate.calls.playout import PlayoutBuffer
from voxgate.webrtc._media import InboundConverter, PlayoutTrack

from .apps import tone


def opus_like_frame(pts: int, hz: float = 300.0) -> av.AudioFrame:
    """What aiortc's Opus decoder hands over: 20 ms of 48 kHz interleaved stereo s16."""
    t = (pts + np.arange(960)) / 48000
    mono = (10000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(
        np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = 48000
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 48000)
    return frame


def test_stereo_48k_becomes_mono_16k_20ms_frames() -> None:
    conv = InboundConverter(16000)
    out = [f for i in range(50) for f in conv.convert(opus_like_frame(960 * i), now=float(i))]
    assert len(out) >= 48  # the resampler holds back a few samples at most
    assert all(f.sample_rate == 16000 and f.num_samples == 320 for f in out)
    assert [f.sequence for f in out] == list(range(len(out)))
    # A 300 Hz tone survives: level kept (no stereo sum overflow), frequency kept.
    body = np.concatenate([f.samples for f in out[5:]]).astype(np.float64)
    assert 6000 < np.sqrt(np.mean(body**2)) < 8000
    spectrum = np.abs(np.fft.rfft(body))
    assert abs(np.argmax(spectrum) * 16000 / len(body) - 300) < 5


def test_pcmu_rate_8k_mono_is_upsampled() -> None:
    conv = InboundConverter(16000)
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, 160), dtype=np.int16), format="s16", layout="mono"
    )
    frame.sample_rate = 8000
    frame.pts = 0
    out = [f for _ in range(10) for f in conv.convert(frame, 0.0)]
    assert out and all(f.num_samples == 320 for f in out)


async def test_playout_track_plays_then_silence_reports_marks_and_speaking() -> None:
    buffer = PlayoutBuffer(16000)
    marks: list[str] = []
    speaking: list[bool] = []
    track = PlayoutTrack(buffer, marks.extend, speaking.append, hangover_ms=40)
    buffer.write(tone(16000, 40))
    buffer.mark("end-of-greeting")
    frames = [await track.recv() for _ in range(5)]
    assert [f.samples for f in frames] == [320] * 5
    assert [f.pts for f in frames] == [0, 320, 640, 960, 1280]
    assert all(f.sample_rate == 16000 and f.layout.name == "mono" for f in frames)
    loud = [float(np.abs(f.to_ndarray()).max()) for f in frames]
    assert loud[0] > 5000 and loud[1] > 5000 and loud[2] == loud[3] == 0
    assert marks == ["end-of-greeting"]
    assert speaking == [True, False]
    assert track.first_audio_at is not None and track.frames_sent == 5
    track.stop()


async def test_opus_calls_get_packets_encoded_in_the_loop() -> None:
    from voxgate.audio.opus import OpusDecoder

    buffer = PlayoutBuffer(16000)
    track = PlayoutTrack(buffer, lambda marks: None)
    track.encode_opus()
    buffer.write(tone(16000, 200))
    packets = [await track.recv() for _ in range(10)]
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [p.pts for p in packets][:3] == [0, 320, 640]
    assert packets[0].time_base == fractions.Fraction(1, 16000)  # aiortc rescales to 48 kHz
    decoder = OpusDecoder(16000)
    pcm = np.concatenate([decoder.decode(bytes(p)) for p in packets]).astype(np.float64)
    assert np.sqrt(np.mean(pcm[1600:] ** 2)) > 3000  # the tone survives the round trip
    track.stop()
