"""Voice-to-voice latency of the agent pipeline, split by stage, on every test utterance.

Run: ``.venv/bin/python bench/voice_latency.py`` (``--quick``: one voice at 8 kHz only;
``--write-results``: replace this benchmark's section in bench/RESULTS.md).

For every utterance in /work/shared/audio a fresh call (``LocalCall``, real time, no
greeting) plays the WAV as the caller and hangs up at the agent's first audio. Voice to
voice is measured from the *true* end of speech (last voiced sample of the WAV as it was fed)
to the first agent audio leaving the pipeline (written to the sink), and split into:

- endpointing: true end of speech -> end of turn decided (VAD hangover + silence threshold);
- STT: end of turn -> final transcript (0 when the final arrived during the silence);
- LLM first token (after the final; 0 when an early-intent speculation had it already);
- LLM first clause: first token -> a phrase worth speaking (the chunker's wait);
- TTS first chunk: first clause -> first audio;
- pipeline overhead: the rest (queueing, scheduling, resampling, event-loop delays).

Two runs: the embedded models (Whisper tiny.en, Qwen 0.5B, Piper) and zero-latency fakes
(scripted STT, instant LLM and TTS) with the same Silero VAD, which isolates the pipeline's
own overhead. A third part measures barge-in: sink cleared after the barge-in decision, and
after the VAD onset with the default policy (which waits for 300 ms + words or 1 s on
purpose) and with an eager policy (interrupt on the first speech frame).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from voxgate.agent.config import AgentSettings, InterruptionSettings  # noqa: E402
from voxgate.agent.local import (  # noqa: E402
    HangUp,
    LocalCall,
    Say,
    Silence,
    WaitForAgent,
    WaitForAgentSpeech,
)
from voxgate.agent.pipeline import AgentPipeline, AgentProviders  # noqa: E402
from voxgate.audio.vad import SileroVad  # noqa: E402
from voxgate.audio.wav import read_wav  # noqa: E402
from voxgate.providers.llm.fake import FakeLLM  # noqa: E402
from voxgate.providers.stt.fake import FakeSTT  # noqa: E402
from voxgate.providers.tts.fake import FakeTTS  # noqa: E402

AUDIO = Path("/work/shared/audio")
STAGES = ("endpointing", "stt", "llm_ttft", "llm_first_clause", "tts_first_chunk", "overhead")
HEADER = "## Voice latency (bench/voice_latency.py)"


@dataclass
class Sample:
    utterance: str
    stages: dict[str, float]
    v2v: float
    speculative: bool
    user_text: str = ""
    agent_text: str = ""
    timeline: dict[str, float] = field(default_factory=dict)
    """Every stamped moment of the turn, in seconds after the true end of speech."""


@dataclass
class Run:
    name: str
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


FRAME_COSTS: list[float] = []


def _instrument_frame_handler() -> None:
    """Time the synchronous per-frame handler (resample + VAD + policies + STT push)."""
    original = AgentPipeline._on_frame

    def timed(self: AgentPipeline, frame: object) -> None:
        t = time.perf_counter()
        original(self, frame)  # type: ignore[arg-type]
        FRAME_COSTS.append(time.perf_counter() - t)

    AgentPipeline._on_frame = timed  # type: ignore[method-assign]


def utterances(quick: bool) -> list[tuple[str, Path, str]]:
    texts = {t["id"]: t["text"] for t in json.loads((AUDIO / "transcripts.json").read_text())}
    out = []
    for path in sorted(AUDIO.glob("*.wav")):
        uid, voice, rate = path.stem.split(".")
        if quick and (voice != "piper" or rate != "8k"):
            continue
        out.append((path.stem, path, texts[uid]))
    return out


def fake_providers(text: str) -> AgentProviders:
    return AgentProviders(
        FakeSTT([text]),
        FakeLLM(["Sure, I can help you with that. Let me check."]),
        FakeTTS(sample_rate=22050),
        lambda: SileroVad(16000),
    )


async def one_call(providers: AgentProviders, path: Path, label: str) -> Sample:
    pcm, rate = read_wav(path)
    call = LocalCall(providers, AgentSettings(greeting=""), rate=rate)
    result = await call.run(
        [Silence(0.4), Say(pcm, rate, label), WaitForAgentSpeech(timeout=30), HangUp()],
        max_seconds=60,
    )
    if not result.records or result.records[0].first_audio_out is None:
        raise RuntimeError(f"no reply (errors: {result.errors})")
    rec = result.records[0]
    true_end = result.utterances[0].speech_end
    assert rec.first_audio_out is not None and rec.endpoint is not None
    stages = {k: v for k, v in rec.stages().items() if k in STAGES and v is not None}
    stages["endpointing"] = rec.endpoint - true_end  # includes the VAD's own hangover
    v2v = rec.first_audio_out - true_end
    stages["overhead"] = max(0.0, v2v - sum(stages[k] for k in STAGES if k != "overhead"))
    if rec.speculative:
        stages["final_to_audio"] = rec.first_audio_out - (rec.stt_final or rec.endpoint)
    moments = ("speech_end", "endpoint", "stt_final", "llm_start", "llm_first_token",
               "tts_start", "tts_first_audio", "first_audio_out")
    timeline = {k: round(t - true_end, 4) for k in moments if (t := getattr(rec, k)) is not None}
    return Sample(label, stages, v2v, rec.speculative, rec.user_text, rec.agent_text, timeline)


async def run_all(name: str, make: object, items: list[tuple[str, Path, str]]) -> Run:
    run = Run(name)
    for label, path, text in items:
        providers = make(text)  # type: ignore[operator]
        try:
            run.samples.append(await one_call(providers, path, label))
        except Exception as exc:  # report, keep measuring the rest
            run.failures.append(f"{label}: {exc!r}")
        print(f"  {name}: {label} done", file=sys.stderr)
    return run


async def barge_in(eager: bool) -> list[tuple[float, float]]:
    """(decision -> cleared, VAD onset -> cleared) per barge-in, in seconds."""
    out = []
    question, rate = read_wav(AUDIO / "opening_hours.piper.16k.wav")
    stop, _ = read_wav(AUDIO / "interrupt_long.piper.16k.wav")
    policy = InterruptionSettings(min_speech_ms=20, min_words=0) if eager else InterruptionSettings()
    for voice in ("piper", "espeak"):
        stop, _ = read_wav(AUDIO / f"interrupt_long.{voice}.16k.wav")
        providers = AgentProviders(
            FakeSTT(["What time do you open on Saturday?", "Wait, wait, stop. That is not what I asked."]),
            FakeLLM(["We open at ten on Saturday. " * 6, "Sorry about that."]),
            FakeTTS(sample_rate=22050),
            lambda: SileroVad(16000),
        )
        settings = AgentSettings(greeting="", interruption=policy)
        call = LocalCall(providers, settings, rate=16000)
        result = await call.run(
            [Silence(0.3), Say(question, rate), WaitForAgentSpeech(after=1.0, timeout=30),
             Say(stop, rate), WaitForAgent(timeout=30), HangUp()],
            max_seconds=60,
        )
        for rec in result.records:
            if rec.interrupted_at is None or rec.sink_cleared_at is None:
                continue
            assert rec.interruption_onset is not None
            vad_onset = rec.interruption_onset + 0.02  # the first speech frame was processed
            out.append((rec.sink_cleared_at - rec.interrupted_at, rec.sink_cleared_at - vad_onset))
    return out


_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]


def _words(text: str) -> str:
    """Lower case, no punctuation, digits as words ("456" -> "four five six", "3" -> "three")."""
    import re

    def digits(m: re.Match[str]) -> str:
        d = m.group(0)
        return " ".join(_ONES[int(c)] for c in d) if len(d) >= 3 or int(d) >= 20 else _ONES[int(d)]

    text = re.sub(r"\d+", digits, text.lower().replace("p.m.", "pm").replace("a.m.", "am"))
    return " ".join(re.sub(r"[^a-z' ]+", " ", text).split())


def turn_wer(run: Run, truth: dict[str, str]) -> float | None:
    """Word error rate of the caller turns as the pipeline heard them (segments joined):
    endpointing and STT flush settings show up here, not in a whole-file decode."""
    try:
        import jiwer
    except ImportError:
        return None
    pairs = [(_words(truth[s.utterance.split(".")[0]]), _words(s.user_text)) for s in run.samples]
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])) if pairs else None


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def table(runs: list[Run]) -> str:
    lines = [
        "| providers | n | stat | endpointing | STT | LLM 1st token | LLM 1st clause | TTS 1st chunk | pipeline overhead | voice to voice |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for stat in (50, 95):
            cells = [f"{1000 * pct([s.stages.get(k, 0.0) for s in run.samples], stat):.0f}" for k in STAGES]
            v2v = f"{1000 * pct([s.v2v for s in run.samples], stat):.0f}"
            lines.append(f"| {run.name} | {len(run.samples)} | p{stat} | " + " | ".join(cells) + f" | **{v2v}** |")
    return "\n".join(lines)


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
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, load average at start {load:.1f}"


def write_results(section: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# voxgate benchmark results\n"
    start = text.find(HEADER)
    if start >= 0:
        nxt = text.find("\n## ", start + len(HEADER))
        text = text[:start] + section.rstrip() + "\n" + (text[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text)


async def main(args: argparse.Namespace) -> str:
    items = utterances(args.quick)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    runs: list[Run] = []
    t0 = time.perf_counter()
    _instrument_frame_handler()
    frame_costs: dict[str, list[float]] = {}
    if not args.fakes_only:
        from voxgate.providers.registry import load_embedded

        e = load_embedded(lambda line: print(line, file=sys.stderr))
        assert e.stt and e.llm and e.tts
        embedded = AgentProviders(e.stt, e.llm, e.tts, lambda: SileroVad(16000))
        await one_call(embedded, items[0][1], "warm-up")  # first decode/prompt is cold
        FRAME_COSTS.clear()
        runs.append(await run_all("embedded", lambda _t: embedded, items))
        frame_costs["embedded"] = list(FRAME_COSTS)
    FRAME_COSTS.clear()
    default_barge: list[tuple[float, float]] = []
    eager_barge: list[tuple[float, float]] = []
    if not args.embedded_only:
        runs.append(await run_all("zero-latency fakes", fake_providers, items))
        frame_costs["zero-latency fakes"] = list(FRAME_COSTS)
        default_barge = await barge_in(eager=False)
        eager_barge = await barge_in(eager=True)
    wall = time.perf_counter() - t0
    if args.samples is not None:
        args.samples.write_text(json.dumps(
            {r.name: [vars(s) for s in r.samples] for r in runs}, indent=1))

    spec = {r.name: sum(s.speculative for s in r.samples) for r in runs}
    truth = {t["id"]: t["text"] for t in json.loads((AUDIO / "transcripts.json").read_text())}
    wers = {r.name: turn_wer(r, truth) for r in runs if r.name == "embedded"}
    spec_v2v = {
        r.name: (pct([s.v2v for s in r.samples if s.speculative], 50),
                 pct([s.stages["final_to_audio"] for s in r.samples if s.speculative], 50))
        for r in runs
    }
    lines = [
        HEADER,
        "",
        f"Run: `.venv/bin/python bench/voice_latency.py{' --quick' if args.quick else ''}` on {started}; "
        f"{where}; {len(items)} utterances ({'Piper voice, 8 kHz' if args.quick else 'Piper and eSpeak voices, 8 and 16 kHz'}); {wall:.0f} s wall. "
        "Real time, one fresh call per utterance, no greeting. Milliseconds; voice to voice = true end "
        "of caller speech (last voiced sample fed) -> first agent audio written to the sink; "
        "endpointing includes the Silero VAD's hangover. Stages may each be p50/p95 of their own "
        "distribution, so columns do not add up across a row.",
        "",
        table(runs),
        "",
        f"Early-intent speculation committed: {spec}; speculated turns p50 voice to voice and "
        "STT final -> first audio (ms): "
        + ", ".join(f"{k} {1000 * a:.0f} / {1000 * b:.0f}" for k, (a, b) in spec_v2v.items())
        + ". Caller-turn WER as the pipeline heard it (segments joined): "
        + ", ".join(f"{k} {v:.3f}" for k, v in wers.items() if v is not None)
        + ". "
        + ("Failures: " + "; ".join(f for r in runs for f in r.failures) if any(r.failures for r in runs) else "No failures."),
        "",
        "Per-frame handler cost (resample to 16 kHz, Silero VAD, turn/barge-in/backchannel "
        "policies, STT push), microseconds: "
        + "; ".join(
            f"{name} p50 {1e6 * pct(v, 50):.0f}, p95 {1e6 * pct(v, 95):.0f}, max {1e6 * max(v):.0f} (n={len(v)})"
            for name, v in frame_costs.items() if v
        ) + ".",
        "",
        "Barge-in (fake providers, real Silero VAD on interrupt_long piper+espeak 16 kHz):",
        "",
        "| policy | n | decision -> sink cleared p95 (ms) | VAD onset -> sink cleared p50 / p95 (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, rows in (("default (300 ms + 1 word, or 1 s)", default_barge), ("eager (first speech frame)", eager_barge)):
        dec = [1000 * a for a, _ in rows]
        ons = [1000 * b for _, b in rows]
        lines.append(f"| {name} | {len(rows)} | {pct(dec, 95):.2f} | {pct(ons, 50):.0f} / {pct(ons, 95):.0f} |")
    lines += [
        "",
        "Targets: pipeline overhead p95 <= 10 ms (zero-latency fakes row); sink cleared <= 20 ms after the "
        "VAD onset of a barge-in (eager row; the default policy waits on purpose so coughs and "
        "\"mm-hm\" do not stop the agent); embedded voice to voice p50 <= 900 ms.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Piper voice at 8 kHz only")
    parser.add_argument("--fakes-only", action="store_true", help="skip the embedded models")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--embedded-only", action="store_true", help="skip the fakes and barge-in")
    parser.add_argument("--samples", type=Path, help="write every call's stages and texts (JSON)")
    args = parser.parse_args()
    section = asyncio.run(main(args))
    print(section)
    if args.write_results:
        write_results(section)
