"""``voxgate talk --wav in.wav --out reply.wav``: one offline exchange with the agent.

The quickest way to hear (and time) the whole agent on this machine with no phone, browser
or network: the WAV plays in as the caller in real time through :class:`LocalCall`, the
embedded models answer, the agent's side of the call is written to ``--out``, and the
transcript and per-stage timings of each turn are printed. ``--fake`` swaps in the fake
providers (no models needed) to check the plumbing, on virtual time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module at start-up: keep it light
    from voxgate.agent.local import LocalCallResult
    from voxgate.agent.pipeline import AgentProviders
    from voxgate.agent.records import TurnRecord

__all__ = ["add_talk_parser", "format_result", "run_talk"]


def add_talk_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``talk`` on the CLI's subparsers (``argparse._SubParsersAction``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "talk", help="one offline exchange with the embedded agent: caller WAV in, agent WAV out"
    )
    p.add_argument("--wav", type=Path, action="append", required=True,
                   help="caller utterance (repeat for several turns, in order)")
    p.add_argument("--out", type=Path, default=Path("reply.wav"),
                   help="where to write the agent's side of the call (default: reply.wav)")
    p.add_argument("--no-greeting", action="store_true", help="skip the agent's greeting")
    p.add_argument("--fake", action="store_true",
                   help="fake providers on virtual time (no models; checks the plumbing)")
    p.set_defaults(func=run_talk)
    return p


def _embedded_providers() -> AgentProviders:
    from voxgate.agent.pipeline import AgentProviders
    from voxgate.audio.vad import SileroVad
    from voxgate.providers.registry import load_embedded

    loaded = load_embedded(lambda line: print(line, file=sys.stderr))
    assert loaded.stt is not None and loaded.llm is not None and loaded.tts is not None
    return AgentProviders(loaded.stt, loaded.llm, loaded.tts, lambda: SileroVad(16000))


def _fake_providers(turns: int) -> AgentProviders:
    import numpy as np

    from voxgate.agent.pipeline import AgentProviders
    from voxgate.audio.frame import AudioFrame
    from voxgate.providers.llm.fake import FakeLLM
    from voxgate.providers.stt.fake import FakeSTT
    from voxgate.providers.tts.fake import FakeTTS

    class _EnergyVad:
        def process(self, frame: AudioFrame) -> float:
            return 1.0 if float(np.abs(frame.samples).max(initial=0)) > 500 else 0.0

    return AgentProviders(
        FakeSTT([f"(fake transcript {i + 1})" for i in range(turns)], partial_every_ms=0),
        FakeLLM(["This is the fake agent answering."]),
        FakeTTS(sample_rate=16000),
        _EnergyVad,
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.0f}"


def format_result(result: LocalCallResult) -> str:
    lines = ["transcript:"]
    lines += [f"  {role:>9}: {text}" for role, text in result.transcript]
    header = ["turn", "endpoint", "stt", "llm_ttft", "llm_clause", "tts_first", "overhead", "v2v"]
    lines += ["", "stage timings (ms; v2v = caller end of speech (VAD) -> first agent audio):"]
    lines.append("  " + " ".join(f"{h:>10}" for h in header))
    for rec in result.records:
        st = rec.stages()
        row = [str(rec.index), *(_ms(st[k]) for k in (
            "endpointing", "stt", "llm_ttft", "llm_first_clause", "tts_first_chunk", "overhead",
            "voice_to_voice"))]
        lines.append("  " + " ".join(f"{c:>10}" for c in row) + _flags(rec))
    if result.errors:
        lines += ["", "errors:"] + [f"  {e}" for e in result.errors]
    return "\n".join(lines)


def _flags(rec: TurnRecord) -> str:
    flags = []
    if rec.speculative:
        flags.append("speculative")
    if rec.interrupted_at is not None:
        flags.append("interrupted")
    if rec.errors:
        flags.append(f"{len(rec.errors)} error(s)")
    return ("  " + ", ".join(flags)) if flags else ""


def run_talk(args: argparse.Namespace) -> int:
    from voxgate.agent.config import AgentSettings
    from voxgate.agent.local import HangUp, LocalCall, Say, Silence, Step, WaitForAgent
    from voxgate.audio.wav import read_wav

    utterances = []
    for path in args.wav:
        pcm, rate = read_wav(path)
        utterances.append(Say(pcm, rate, Path(path).stem))
    rate = utterances[0].rate
    settings = AgentSettings(prewarm_llm=not args.fake)
    if args.no_greeting:
        settings = settings.model_copy(update={"greeting": ""})
    steps: list[Step] = [] if args.no_greeting else [WaitForAgent()]
    for say in utterances:
        steps += [Silence(0.3), say, WaitForAgent(settle=0.8, timeout=60)]
    steps.append(HangUp())
    providers = _fake_providers(len(utterances)) if args.fake else _embedded_providers()
    call = LocalCall(providers, settings, rate=rate if rate in (8000, 16000) else 16000)
    result = call.run_virtual(steps) if args.fake else asyncio.run(call.run(steps))
    result.write_wav(str(args.out))
    print(format_result(result))
    print(f"\nagent audio: {args.out} ({len(result.agent_audio) / result.sample_rate:.1f} s)")
    return 0 if not result.timed_out else 1
