"""WhisperSTT on the shared test speech: word error rate per set, streaming, loop liveness."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soxr

from tests.providers.conftest import max_loop_gap
from voxgate.audio.frame import AudioFrame
from voxgate.audio.wav import read_wav
from voxgate.providers.base import Transcript
from voxgate.providers.stt.whisper import WhisperSTT

pytestmark = pytest.mark.models

AUDIO = Path("/work/shared/audio")
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _number(n % 100))


def normalize(text: str) -> str:
    """Test-side normalisation for WER only: case, punctuation, digits as words.

    Digit groups read as separate digits when three or more ("456" -> "four five six", as in
    the order-number utterance), else as a number ("3" -> "three").
    """
    text = text.lower().replace("p.m.", "pm").replace("a.m.", "am")

    def digits(m: re.Match[str]) -> str:
        s = m.group(0)
        return " ".join(_ONES[int(c)] for c in s) if len(s) >= 3 else _number(int(s))

    text = re.sub(r"\d+", digits, text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return " ".join(text.split())


def _wavs() -> list[tuple[str, str, int, Path]]:
    if not AUDIO.is_dir():
        pytest.skip(f"{AUDIO} not present")
    out = []
    for p in sorted(AUDIO.glob("*.wav")):
        utt, voice, rate = p.name.split(".")[:3]
        out.append((utt, voice, int(rate.rstrip("k")) * 1000, p))
    return out


def _to_16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    x = pcm.astype(np.float32) / 32768.0
    return x if rate == 16000 else soxr.resample(x, rate, 16000).astype(np.float32)


async def test_wer_per_set(whisper: WhisperSTT) -> None:
    import jiwer

    truth = {t["id"]: t["text"] for t in json.loads((AUDIO / "transcripts.json").read_text())}
    refs: dict[str, list[str]] = {}
    hyps: dict[str, list[str]] = {}
    wavs = _wavs()
    audio = []
    for _utt, _voice, rate, path in wavs:
        pcm, file_rate = read_wav(path)
        assert file_rate == rate
        audio.append(_to_16k(pcm, rate))
    # both executor workers busy: the decodes run two at a time
    results = await asyncio.gather(*(whisper.transcribe_async(a, words=False) for a in audio))
    for (utt, voice, rate, _path), t in zip(wavs, results, strict=True):
        key = f"{voice} {rate // 1000}k"
        refs.setdefault(key, []).append(normalize(truth[utt]))
        hyps.setdefault(key, []).append(normalize(t.text))
    wer = {k: float(jiwer.wer(refs[k], hyps[k])) for k in sorted(refs)}
    for k, v in wer.items():
        print(f"WER whisper {whisper.name} {k}: {v:.3f}")
    assert wer["piper 16k"] < 0.25 and wer["piper 8k"] < 0.25
    assert wer["espeak 16k"] < 0.5 and wer["espeak 8k"] < 0.5


async def _stream_file(whisper: WhisperSTT, path: Path) -> list[Transcript]:
    pcm, rate = read_wav(path)
    stream = whisper.stream()
    n = rate // 50
    out: list[Transcript] = []

    async def consume() -> None:
        async for t in stream:
            out.append(t)

    consumer = asyncio.create_task(consume())
    for i in range(0, len(pcm) - n + 1, n):
        stream.push_frame(AudioFrame(pcm[i : i + n].copy(), rate))
        await asyncio.sleep(0.01)  # 2x real time: fast, yet leaves time for partials
    stream.flush()
    await stream.aclose()
    await consumer
    return out


async def test_stream_8k_partials_then_final_with_words(whisper: WhisperSTT) -> None:
    out = await _stream_file(whisper, AUDIO / "book_appointment.piper.8k.wav")
    finals = [t for t in out if t.is_final]
    assert len(finals) == 1 and out[-1] is finals[0]
    assert any(not t.is_final for t in out), "expected at least one partial"
    final = finals[0]
    assert "appointment" in final.text.lower() and "tuesday" in final.text.lower()
    assert final.confidence is not None and 0.5 < final.confidence <= 1.0
    assert final.words and all(w.start <= w.end for w in final.words)
    assert final.end == pytest.approx(4.15, abs=0.1)


async def test_two_utterances_and_silence(whisper: WhisperSTT) -> None:
    stream = whisper.stream()
    pcm, rate = read_wav(AUDIO / "yes.piper.16k.wav")
    for i in range(0, len(pcm) - 319, 320):
        stream.push_frame(AudioFrame(pcm[i : i + 320].copy(), rate))
    stream.flush()
    for _ in range(25):
        stream.push_frame(AudioFrame.silence(16000))
    stream.flush()  # silence: still exactly one (empty) final
    await stream.aclose()
    finals = [t async for t in stream if t.is_final]
    assert [bool(t.text) for t in finals] == [True, False]
    assert "yes" in finals[0].text.lower()
    assert finals[1].start == pytest.approx(len(pcm) // 320 * 0.02, abs=0.02)


async def test_event_loop_keeps_ticking_while_decoding(whisper: WhisperSTT) -> None:
    pcm, rate = read_wav(AUDIO / "cancel.piper.16k.wav")
    audio = _to_16k(pcm, rate)
    work = asyncio.gather(*(whisper.transcribe_async(audio) for _ in range(2)))
    _, gap = await max_loop_gap(work)
    print(f"max event-loop gap while decoding: {gap * 1000:.1f} ms")
    assert gap < 0.1


async def _push(stream: object, pcm: np.ndarray, rate: int) -> None:
    n = rate // 50
    for i in range(0, len(pcm) - n + 1, n):
        stream.push_frame(AudioFrame(pcm[i : i + n].copy(), rate))  # type: ignore[attr-defined]
        await asyncio.sleep(0.005)


async def test_final_decoded_during_the_pause_before_the_flush(whisper: WhisperSTT) -> None:
    """Quiet audio after speech starts the final's decode; a flush after only quiet audio
    delivers that decode, with the same words as a decode at the flush."""
    pcm, rate = read_wav(AUDIO / "opening_hours.piper.16k.wav")
    used, dropped = whisper.early_finals_used, whisper.early_finals_dropped
    stream = whisper.stream()
    await _push(stream, pcm, rate)
    await _push(stream, np.zeros(rate // 4, np.int16), rate)  # 250 ms pause, then the flush
    stream.flush()
    await stream.aclose()
    finals = [t async for t in stream if t.is_final]
    assert whisper.early_finals_used == used + 1 and whisper.early_finals_dropped == dropped
    direct = await whisper.transcribe_async(_to_16k(pcm, rate))
    assert len(finals) == 1 and normalize(finals[0].text) == normalize(direct.text)
    assert "saturday" in finals[0].text.lower() and finals[0].words


async def test_early_final_dropped_when_the_caller_speaks_again(whisper: WhisperSTT) -> None:
    """Speech after a short pause makes the early decode stale: the final covers both parts."""
    first, rate = read_wav(AUDIO / "yes.piper.16k.wav")
    second, _ = read_wav(AUDIO / "transfer_human.piper.16k.wav")
    used, dropped = whisper.early_finals_used, whisper.early_finals_dropped
    stream = whisper.stream()
    await _push(stream, first, rate)
    await _push(stream, np.zeros(rate // 5, np.int16), rate)  # an early decode starts here
    await _push(stream, second, rate)
    stream.flush()
    await stream.aclose()
    finals = [t async for t in stream if t.is_final]
    assert whisper.early_finals_dropped >= dropped + 1 and whisper.early_finals_used <= used + 1
    text = normalize(finals[0].text)
    assert len(finals) == 1 and "yes" in text and "human" in text
