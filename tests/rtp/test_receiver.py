"""RtpAudioReceiver: exactly one frame per pull, decoded, concealed or silent, at out_rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxgate.audio import AudioFrame, PcmuDecoder, PcmuEncoder, get_decoder
from voxgate.audio.frame import Pcm16
from voxgate.rtp.impairment import Impairment, SentPacket, impair, talk_stream, ticks
from voxgate.rtp.packet import RtpPacket
from voxgate.rtp.receiver import RtpAudioReceiver

TICK = 0.020


def tone(num_frames: int, rate: int = 8000, freq: float = 440.0, samples: int = 160) -> Pcm16:
    t = np.arange(num_frames * samples) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def pcmu_payloads(pcm: Pcm16, samples: int = 160) -> list[bytes]:
    enc = PcmuEncoder()
    return [enc.encode(pcm[i : i + samples]) for i in range(0, pcm.shape[0], samples)]


def run(
    rx: RtpAudioReceiver,
    sent: list[SentPacket],
    payloads: list[bytes],
    imp: Impairment,
    num_ticks: int,
    payload_type: int = 0,
) -> list[AudioFrame]:
    frames = []
    for now, batch in ticks(impair(sent, imp), 0.0, num_ticks):
        for a in batch:
            rx.push(a.packet.to_rtp(payloads[a.packet.frame], payload_type).serialize(), a.time)
        frames.append(rx.pull(now))
    return frames


class FakeDecoder:
    """Records what the receiver asks of a codec; decodes a payload to its first byte."""

    name = "PCMU"
    clock_rate = 8000
    sample_rate = 8000

    def __init__(self) -> None:
        self.decoded: list[bytes] = []
        self.concealed: list[tuple[int, bytes | None]] = []

    def decode(self, payload: bytes) -> Pcm16:
        self.decoded.append(payload)
        return np.full(160, payload[0], dtype=np.int16)

    def conceal(self, num_samples: int, next_payload: bytes | None = None) -> Pcm16:
        self.concealed.append((num_samples, next_payload))
        return np.full(num_samples, -1, dtype=np.int16)


def test_clean_stream_decodes_bit_exactly_at_8k() -> None:
    pcm = tone(150)
    payloads = pcmu_payloads(pcm)
    sent = talk_stream(150)
    rx = RtpAudioReceiver(get_decoder("PCMU"), 8000)
    frames = run(rx, sent, payloads, Impairment(jitter_ms=0.0), 160)
    assert len(frames) == 160
    assert all(f.num_samples == 160 and f.sample_rate == 8000 for f in frames)
    assert [f.sequence for f in frames] == list(range(160))
    # Silence until the first packet is due, then the packets' audio frame by frame.
    first = next(i for i, f in enumerate(frames) if f.samples.any())
    out = np.concatenate([f.samples for f in frames[first:]])
    expected = PcmuDecoder().decode(b"".join(payloads))
    assert np.array_equal(out[: expected.shape[0]], expected)
    played = frames[first]
    assert played.stamps is not None
    assert set(played.stamps) == {"rtp_arrival", "jitter_out"}
    assert played.stamps["jitter_out"] - played.stamps["rtp_arrival"] >= 0.020


def test_resamples_to_16k_in_whole_frames() -> None:
    pcm = tone(100)
    sent = talk_stream(100)
    rx = RtpAudioReceiver(get_decoder("PCMU"), 16000)
    frames = run(rx, sent, pcmu_payloads(pcm), Impairment(jitter_ms=30.0, seed=3), 130)
    assert all(f.num_samples == 320 and f.sample_rate == 16000 for f in frames)
    out = np.concatenate([f.samples for f in frames]).astype(np.float64)
    loud = out[np.abs(out) > 0]
    # A 440 Hz tone keeps its level through decode + resample (G.711 + cubic within 1 dB).
    assert np.sqrt(np.mean(loud**2)) == pytest.approx(8000 / np.sqrt(2), rel=0.12)
    spectrum = np.abs(np.fft.rfft(out[-16000:]))
    assert abs(int(np.argmax(spectrum)) * 16000 / 16000 - 440) < 5


@pytest.mark.parametrize("loss", [0.05, 0.10, 0.20])
def test_every_pull_is_one_frame_under_loss_and_jitter(loss: float) -> None:
    sent = talk_stream(500)
    rx = RtpAudioReceiver(get_decoder("PCMU"), 16000)
    imp = Impairment(loss=loss, burst=2.0, jitter_ms=60.0, seed=int(loss * 100))
    frames = run(rx, sent, pcmu_payloads(tone(500)), imp, 540)
    assert len(frames) == 540
    assert all(f.num_samples == 320 for f in frames)
    s = rx.stats
    assert s.frames == 540
    assert s.jitter.lost > 0
    assert s.jitter.concealed_ms > 0


def test_loss_is_concealed_with_the_next_payload() -> None:
    dec = FakeDecoder()
    sent = talk_stream(50)
    payloads = [bytes([i + 1]) * 160 for i in range(50)]
    arrivals = [a for a in impair(sent, Impairment()) if a.packet.frame != 20]
    rx = RtpAudioReceiver(dec, 8000)
    frames = []
    for now, batch in ticks(arrivals, 0.0, 60):
        for a in batch:
            rx.push(a.packet.to_rtp(payloads[a.packet.frame]), a.time)
        frames.append(rx.pull(now))
    assert dec.concealed[0] == (160, payloads[21])
    values = [int(f.samples[0]) for f in frames if f.samples.any()]
    assert values[18:23] == [19, 20, -1, 22, 23]


def test_long_loss_fades_to_silence() -> None:
    dec = FakeDecoder()
    sent = talk_stream(100)
    arrivals = [a for a in impair(sent, Impairment()) if not 30 <= a.packet.frame < 60]
    rx = RtpAudioReceiver(dec, 8000, max_conceal_ms=40.0)
    frames = []
    for now, batch in ticks(arrivals, 0.0, 100):  # stop before the stream's own end
        for a in batch:
            rx.push(a.packet.to_rtp(b"\x05" * 160), a.time)
        frames.append(rx.pull(now))
    kinds = [int(f.samples[0]) for f in frames]
    first_gap = kinds.index(-1)
    # 40 ms of PLC, then digital silence until audio returns, then audio.
    assert kinds[first_gap : first_gap + 3] == [-1, -1, 0]
    assert kinds.count(-1) == 2
    assert kinds[-1] == 5
    assert rx.stats.jitter.lost == 30


def test_telephone_events_go_to_the_callback_not_to_concealment() -> None:
    dec = FakeDecoder()
    events: list[int] = []
    sent = talk_stream(100)
    rx = RtpAudioReceiver({0: dec}, 8000, on_other=lambda p, t: events.append(p.sequence_number))
    frames = []
    for now, batch in ticks(impair(sent, Impairment()), 0.0, 100):
        for a in batch:
            pt = 101 if 40 <= a.packet.frame < 50 else 0
            payload = b"\x01\x0a\x00\xa0" if pt == 101 else b"\x07" * 160
            rx.push(a.packet.to_rtp(payload, pt), a.time)
        frames.append(rx.pull(now))
    assert len(events) == 10
    assert dec.concealed == []
    assert rx.stats.other_packets == 10
    assert rx.stats.jitter.lost == 0
    assert sum(1 for f in frames if f.samples[0] == 7) >= 85


def test_malformed_datagrams_are_counted_and_ignored() -> None:
    rx = RtpAudioReceiver(get_decoder("PCMU"), 8000)
    rx.push(b"\x80\x00\x00", 0.0)
    rx.push(b"\x40" + bytes(20), 0.0)
    assert rx.stats.malformed == 2
    assert rx.pull(0.02).num_samples == 160


def test_30ms_packets_come_out_as_20ms_frames() -> None:
    pcm = tone(100, samples=240)
    sent = talk_stream(100, ptime_ms=30.0)
    payloads = pcmu_payloads(pcm, samples=240)
    rx = RtpAudioReceiver(get_decoder("PCMU"), 8000)
    frames = run(rx, sent, payloads, Impairment(jitter_ms=10.0, seed=1), 175)
    assert all(f.num_samples == 160 for f in frames)
    out = np.concatenate([f.samples for f in frames])
    nonzero = int(np.count_nonzero(out))
    # 3 s of tone in, 3 s out (give or take the frames time-scaling adjusted).
    assert abs(nonzero - pcm.shape[0]) <= 3 * 240


def test_single_decoder_without_static_payload_type_needs_one() -> None:
    dec = FakeDecoder()
    dec.name = "L16"
    with pytest.raises(ValueError, match="payload_type"):
        RtpAudioReceiver(dec, 8000)
    assert RtpAudioReceiver(dec, 8000, payload_type=96).clock_rate == 8000


def test_opus_loss_uses_in_band_fec() -> None:
    opus = pytest.importorskip("voxgate.audio.opus")
    from voxgate.audio.wav import read_wav

    enc = opus.OpusEncoder(16000, fec=True, packet_loss_pct=20, bitrate=24000)
    dec = opus.OpusDecoder(16000)
    # Speech: libopus spends no FEC bits on a steady tone.
    speech = Path("/work/shared/audio/book_appointment.piper.16k.wav")
    if not speech.exists():
        pytest.skip("test speech not present")
    pcm, _ = read_wav(speech)
    pcm = pcm[: 100 * 320]
    payloads = [enc.encode(pcm[i : i + 320]) for i in range(0, pcm.shape[0], 320)]
    sent = talk_stream(100, clock_rate=48000)
    arrivals = [a for a in impair(sent, Impairment()) if a.packet.frame not in (40, 70)]
    rx = RtpAudioReceiver({111: dec}, 16000)
    for now, batch in ticks(arrivals, 0.0, 110):
        for a in batch:
            rx.push(a.packet.to_rtp(payloads[a.packet.frame], 111), a.time)
        assert rx.pull(now).num_samples == 320
    assert rx.stats.jitter.lost == 2
    assert dec.fec_recovered == 2


def test_parsed_packets_are_accepted_too() -> None:
    rx = RtpAudioReceiver(get_decoder("PCMA"), 8000)
    rx.push(RtpPacket(8, 1, 0, 1, payload=b"\xd5" * 160), 0.0)
    frames = [rx.pull(0.02 * k) for k in range(1, 6)]
    assert rx.stats.jitter.played == 1
    assert sum(f.num_samples for f in frames) == 800
