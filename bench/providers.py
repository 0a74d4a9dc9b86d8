"""Embedded providers benchmark: load times, STT speed/latency, LLM TTFT and tokens/s, TTS.

One command: ``.venv/bin/python bench/providers.py`` prints a table and replaces the section
"## Embedded providers (bench/providers.py)" of bench/RESULTS.md (``--no-write`` to skip).
Runs through the public provider APIs, on the event loop, as the agent pipeline would.
The machine is shared: the load average at start is recorded next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soxr

from voxgate.audio.frame import AudioFrame
from voxgate.audio.wav import read_wav
from voxgate.providers.base import ChatMessage, TextDelta, ToolCall, ToolSchema
from voxgate.providers.registry import load_embedded

AUDIO = Path("/work/shared/audio")
RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Embedded providers (bench/providers.py)"
SYSTEM = (
    "You are the receptionist of Bright Smile Dental, open Monday to Friday 9am to 5pm. "
    "Answer in one short sentence."
)
QUESTIONS = [
    "What are your opening hours?",
    "Can I book a cleaning next Tuesday?",
    "Do you take new patients?",
    "Where are you located?",
]
TOOLS = [
    ToolSchema(
        "book_appointment",
        "Book a dental appointment",
        {
            "type": "object",
            "properties": {
                "service": {"type": "string"},
                "day": {"type": "string"},
                "time": {"type": "string"},
            },
            "required": ["service", "day", "time"],
        },
    ),
    ToolSchema(
        "transfer_to_human",
        "Transfer the caller to a human receptionist",
        {"type": "object", "properties": {}},
    ),
]
TOOL_PROMPTS = [
    ("Book me a cleaning on Tuesday at 3 pm", "book_appointment"),
    ("I want a checkup on Friday at 10 am", "book_appointment"),
    ("Please transfer me to a human agent.", "transfer_to_human"),
    ("Let me talk to a real person", "transfer_to_human"),
]
TTS_TEXTS = [
    "Sure, I can help with that.",
    "Your cleaning is booked for Tuesday at three. Is there anything else I can do for you?",
    "We are open Monday to Friday, nine to five. On Saturdays we are closed, but you can leave a message.",
]


def _ms(x: float) -> str:
    return f"{x * 1000:.0f} ms"


def _load_audio(rate: int) -> list[tuple[np.ndarray, int]]:
    return [read_wav(p) for p in sorted(AUDIO.glob(f"*.{rate // 1000}k.wav"))]


async def bench_stt(stt: object, rows: list[tuple[str, str, str]]) -> None:
    from voxgate.providers.stt.whisper import WhisperSTT

    assert isinstance(stt, WhisperSTT)
    for rate in (8000, 16000):
        rtf, final = [], []
        for pcm, r in _load_audio(rate):
            x = pcm.astype(np.float32) / 32768.0
            t0 = time.perf_counter()
            await stt.transcribe_async(
                x if r == 16000 else soxr.resample(x, r, 16000).astype(np.float32), words=False
            )
            rtf.append((time.perf_counter() - t0) / (len(pcm) / r))
            # final latency through the stream API: frames pushed, then flush -> final
            stream = stt.stream()
            n = r // 50
            for i in range(0, len(pcm) - n + 1, n):
                stream.push_frame(AudioFrame(pcm[i : i + n].copy(), r))
            await asyncio.sleep(0.6)  # let the partial decode started by the push finish
            t0 = time.perf_counter()
            stream.flush()
            async for t in stream:
                if t.is_final:
                    final.append(time.perf_counter() - t0)
                    break
            await stream.aclose()
        rows.append(
            (
                f"STT {stt.name} {rate // 1000} kHz",
                "real-time factor (median, max)",
                f"{statistics.median(rtf):.3f}, {max(rtf):.3f}",
            )
        )
        rows.append(
            (
                f"STT {stt.name} {rate // 1000} kHz",
                "final after flush (median, max)",
                f"{_ms(statistics.median(final))}, {_ms(max(final))}",
            )
        )


def _wer_normalize(text: str) -> str:
    """Case, punctuation, digits as words (as tests/providers/stt/test_whisper.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.providers.stt.test_whisper import normalize

    return normalize(text)


def bench_stt_options(stt: object, rows: list[tuple[str, str, str]]) -> None:
    """Decode time and word error rate per decode option, every WAV at 8 and 16 kHz."""
    import json

    import jiwer

    from voxgate.providers.stt.whisper import WhisperSTT

    assert isinstance(stt, WhisperSTT)
    truth = {t["id"]: t["text"] for t in json.loads((AUDIO / "transcripts.json").read_text())}
    saved = stt.encoder_window
    for window, words in ((None, True), (None, False), (10.0, True), (10.0, False)):
        stt.encoder_window = window
        for rate in (8000, 16000):
            times: list[float] = []
            refs: dict[str, list[str]] = {}
            hyps: dict[str, list[str]] = {}
            for path in sorted(AUDIO.glob(f"*.{rate // 1000}k.wav")):
                uid, voice, _ = path.stem.split(".")
                pcm, r = read_wav(path)
                x = pcm.astype(np.float32) / 32768.0
                x = x if r == 16000 else soxr.resample(x, r, 16000).astype(np.float32)
                t0 = time.perf_counter()
                text = stt.transcribe(x, words=words).text
                times.append(time.perf_counter() - t0)
                refs.setdefault(voice, []).append(_wer_normalize(truth[uid]))
                hyps.setdefault(voice, []).append(_wer_normalize(text))
            wer = ", ".join(f"{v} {jiwer.wer(refs[v], hyps[v]):.3f}" for v in sorted(refs))
            label = f"{'30 s' if window is None else f'{window:.0f} s+'} window, words {'on' if words else 'off'}"
            rows.append(
                (
                    f"STT {stt.name} {rate // 1000} kHz",
                    f"decode, {label}: median/max; WER",
                    f"{_ms(statistics.median(times))} / {_ms(max(times))}; {wer}",
                )
            )
    stt.encoder_window = saved


async def bench_llm(llm: object, rows: list[tuple[str, str, str]]) -> None:
    from voxgate.providers.llm.llama import LlamaLLM

    assert isinstance(llm, LlamaLLM)
    ttft, rate = [], []
    for q in QUESTIONS:
        msgs = [ChatMessage("system", SYSTEM), ChatMessage("user", q)]
        t0 = time.perf_counter()
        first = None
        n = 0
        async for e in llm.chat(msgs):
            if isinstance(e, TextDelta):
                n += 1
                if first is None:
                    first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        assert first is not None
        ttft.append(first)
        if n > 1:
            rate.append((n - 1) / (total - first))
    rows.append(
        (
            f"LLM {llm.name}",
            "first token, cached system prompt (median, max)",
            f"{_ms(statistics.median(ttft))}, {_ms(max(ttft))}",
        )
    )
    rows.append((f"LLM {llm.name}", "tokens/s (median)", f"{statistics.median(rate):.0f}"))
    lat, right = [], 0
    retries = llm.grammar_retries
    for prompt, expected in TOOL_PROMPTS * 2:  # second round: tool prompt prefix cached
        msgs = [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)]
        t0 = time.perf_counter()
        calls = [e async for e in llm.chat(msgs, TOOLS) if isinstance(e, ToolCall)]
        lat.append(time.perf_counter() - t0)
        right += bool(calls) and calls[0].name == expected
    rows.append(
        (
            f"LLM {llm.name}",
            "tool decision latency (median, max)",
            f"{_ms(statistics.median(lat))}, {_ms(max(lat))}",
        )
    )
    rows.append(
        (
            f"LLM {llm.name}",
            "right tool picked / grammar redos",
            f"{right}/{len(lat)} / {llm.grammar_retries - retries}",
        )
    )


async def bench_tts(tts: object, rows: list[tuple[str, str, str]]) -> None:
    from voxgate.providers.tts.piper import PiperTTS

    assert isinstance(tts, PiperTTS)
    ttfc, rtf = [], []
    for text in TTS_TEXTS:
        t0 = time.perf_counter()
        first = None
        samples = 0
        async for chunk in tts.synthesize(text):
            first = first if first is not None else time.perf_counter() - t0
            samples += chunk.pcm.shape[0]
        assert first is not None
        ttfc.append(first)
        rtf.append((time.perf_counter() - t0) / (samples / tts.sample_rate))
    rows.append(
        (
            f"TTS {tts.name}",
            "first chunk (median, max)",
            f"{_ms(statistics.median(ttfc))}, {_ms(max(ttfc))}",
        )
    )
    rows.append((f"TTS {tts.name}", "real-time factor (median)", f"{statistics.median(rtf):.3f}"))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}; load average at start {load:.1f}"


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# voxgate benchmark results\n"
    start = old.find(HEADING)
    if start >= 0:
        nxt = old.find("\n## ", start + len(HEADING))
        old = old[:start].rstrip("\n") + ("\n\n" + old[nxt + 1 :] if nxt >= 0 else "\n")
    RESULTS.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


async def main_async(write: bool, stt_only: bool = False) -> int:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    lines: list[str] = []
    models = load_embedded(lines.append)
    for line in lines:
        print(line)
    rows: list[tuple[str, str, str]] = [
        ("load", name + " (incl. warm-up)", f"{secs:.2f} s")
        for name, secs in models.load_seconds.items()
    ]
    assert models.stt and models.llm and models.tts
    await bench_stt(models.stt, rows)
    bench_stt_options(models.stt, rows)
    if not stt_only:
        await bench_llm(models.llm, rows)
        await bench_tts(models.tts, rows)
    table = ["| component | measure | value |", "|---|---|---:|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    body = "\n".join(table)
    print(body)
    if write:
        write_section(
            f"{HEADING}\n\nRun: `.venv/bin/python bench/providers.py` on {when}; {where}. "
            "Shared machine: other workers' jobs change these figures by up to ~2x. STT over "
            f"every WAV of the shared test audio per rate (Piper + eSpeak voices); final = "
            "flush() to final through the stream API (one decode with word timings); LLM with "
            "the receptionist system prompt cached; tool decisions over 4 prompts x 2 rounds.\n\n"
            + body
        )
        print(f"section written to {RESULTS}")
    models.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument("--stt-only", action="store_true", help="only the STT rows (implies --no-write)")
    args = parser.parse_args()
    return asyncio.run(main_async(not (args.no_write or args.stt_only), args.stt_only))


if __name__ == "__main__":
    sys.exit(main())
