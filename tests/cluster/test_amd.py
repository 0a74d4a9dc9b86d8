"""Answering-machine detection on synthetic audio, the shared speech WAVs and generated beeps.

Audio time is the only clock: decisions are checked by the audio time they report, never by
how long the test took.
"""

from __future__ import annotations

import glob

import numpy as np
import numpy.typing as npt
import pytest

from voxgate.audio.wav import read_wav
from voxgate.cluster.amd import AmdDetector, MessageCue, Verdict

AUDIO = "/work/shared/audio"
WAVS = sorted(glob.glob(f"{AUDIO}/*.wav"))
SHORT = ("yes", "opening_hours", "transfer_human")  # under 2.5 s of speech: a "hello?"
LONG = ("book_appointment", "cancel", "order_status", "interrupt_long")  # a greeting


def silence(seconds: float, rate: int, noise_dbfs: float = -62.0) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(7)
    amp = 32768 * 10 ** (noise_dbfs / 20)
    return (rng.standard_normal(int(seconds * rate)) * amp).astype(np.int16)


def tone(seconds: float, rate: int, hz: float = 1000.0, dbfs: float = -12.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 32768 * 10 ** (dbfs / 20) * np.sqrt(2)).astype(np.int16)


def voiced(seconds: float, rate: int, f0: float = 130.0) -> npt.NDArray[np.int16]:
    """A buzzy vowel-like sound: many harmonics with a wobbling pitch, like speech."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 20))
    return (wave / np.max(np.abs(wave)) * 8000).astype(np.int16)


def wav(name: str, rate: int, engine: str = "piper") -> npt.NDArray[np.int16]:
    pcm, sr = read_wav(f"{AUDIO}/{name}.{engine}.{rate // 1000}k.wav")
    assert sr == rate
    return pcm


def run(chunks: list[npt.NDArray[np.int16]], rate: int, chunk_ms: int = 20) -> AmdDetector:
    """Feed in edge-sized pieces (20 ms), as a call delivers it."""
    det = AmdDetector()
    audio = np.concatenate(chunks)
    step = rate * chunk_ms // 1000
    for i in range(0, len(audio), step):
        if det.feed(audio[i : i + step], rate) is not None:
            break
    return det


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("engine", ["piper", "espeak"])
@pytest.mark.parametrize("name", SHORT)
def test_short_answer_then_silence_is_human(name: str, engine: str, rate: int) -> None:
    det = run([silence(0.4, rate), wav(name, rate, engine), silence(2.0, rate)], rate)
    assert det.result is not None and det.result.verdict is Verdict.HUMAN
    assert det.result.reason == "short_greeting"


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("engine", ["piper", "espeak"])
@pytest.mark.parametrize("name", LONG)
def test_long_greeting_is_machine_within_three_seconds(name: str, engine: str, rate: int) -> None:
    det = run([wav(name, rate, engine), silence(1.0, rate), tone(0.5, rate)], rate)
    assert det.result is not None and det.result.verdict is Verdict.MACHINE
    assert det.result.reason == "long_greeting"
    assert 2.5 <= det.result.decided_at_s <= 3.0


def test_pauses_between_phrases_do_not_split_a_greeting() -> None:
    rate = 8000
    phrase = voiced(1.4, rate)
    det = run([phrase, silence(0.4, rate), phrase, silence(2, rate)], rate)
    assert det.result is not None and det.result.verdict is Verdict.MACHINE


def test_synthetic_hello_is_human_and_decided_after_the_silence() -> None:
    rate = 8000
    det = run([silence(0.3, rate), voiced(0.5, rate), silence(2.0, rate)], rate)
    assert det.result is not None and det.result.verdict is Verdict.HUMAN
    assert det.result.decided_at_s == pytest.approx(0.3 + 0.5 + 0.8, abs=0.06)


@pytest.mark.parametrize("hz", [950.0, 1000.0, 1100.0])
def test_a_beep_alone_is_machine(hz: float) -> None:
    rate = 8000
    det = run([silence(0.5, rate), tone(0.4, rate, hz), silence(1, rate)], rate)
    assert det.result is not None
    assert (det.result.verdict, det.result.reason) == (Verdict.MACHINE, "beep")
    assert det.result.decided_at_s < 0.5 + 0.2


def test_a_low_tone_or_a_click_is_not_a_beep() -> None:
    rate = 8000
    det = run([tone(0.5, rate, 300.0), silence(0.05, rate), tone(0.06, rate), silence(4, rate)], rate)
    assert det.result is not None and det.result.reason != "beep"


def test_silence_and_line_noise_are_unknown() -> None:
    det = run([silence(6, 8000, noise_dbfs=-55)], 8000)
    assert det.result is not None
    assert (det.result.verdict, det.result.reason) == (Verdict.UNKNOWN, "silence")


@pytest.mark.parametrize("path", WAVS, ids=lambda p: p.rsplit("/", 1)[-1])
def test_speech_never_looks_like_a_beep(path: str) -> None:
    pcm, rate = read_wav(path)
    cue = MessageCue(silence_s=10.0, max_wait_s=60.0)
    assert cue.feed(pcm, rate) is None
    det = AmdDetector()
    det.feed(pcm, rate)
    assert det.result is None or det.result.reason != "beep"


def test_message_cue_waits_for_the_end_of_the_beep() -> None:
    rate = 8000
    greeting_rest = wav("cancel", rate)[rate * 2 :]  # the part after the decision
    cue = MessageCue()
    audio = np.concatenate([greeting_rest, silence(0.5, rate), tone(0.6, rate), silence(2, rate)])
    at = None
    step = rate // 50
    for i in range(0, len(audio), step):
        if cue.feed(audio[i : i + step], rate) is not None:
            at = (i + step) / rate
            break
    assert cue.cue == "beep"
    beep_end = (len(greeting_rest) + 0.5 * rate + 0.6 * rate) / rate
    assert at is not None and beep_end <= at <= beep_end + 0.1


def test_message_cue_without_a_beep_speaks_after_the_greeting_falls_silent() -> None:
    rate = 16000
    cue = MessageCue(silence_s=1.5)
    assert cue.feed(np.concatenate([wav("cancel", rate)[rate:], silence(3, rate)]), rate) == "silence"


def test_message_cue_gives_up_waiting() -> None:
    cue = MessageCue(max_wait_s=2.0)
    assert cue.feed(voiced(3.0, 8000), 8000) == "timeout"
