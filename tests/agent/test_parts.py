"""The pipeline's small parts through their public surfaces: speaker marks, inbound framing,
transcript routing, held replies, the virtual clock, settings and the talk command."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from voxgate.agent.config import AgentSettings, TurnSettings
from voxgate.agent.inbound import InboundAudio
from voxgate.agent.records import TurnRecord
from voxgate.agent.reply import ReplyRun
from voxgate.agent.speaker import Speaker
from voxgate.agent.talk import add_talk_parser
from voxgate.agent.transcripts import TranscriptRouter
from voxgate.agent.vclock import run_virtual
from voxgate.audio.frame import AudioFrame
from voxgate.audio.wav import write_wav
from voxgate.calls.playout import PlayoutBuffer
from voxgate.providers.base import Transcript
from voxgate.providers.llm.fake import FakeLLM
from voxgate.providers.tts.fake import FakeTTS

from .fakes import EnergyVad, speech


def drain(buf: PlayoutBuffer) -> list[str]:
    marks: list[str] = []
    while True:
        pcm, reached = buf.pull()
        marks += reached
        if pcm is None:
            return marks + buf.pull()[1]


def test_speaker_heard_text_follows_marks_and_clear() -> None:
    buf = PlayoutBuffer(8000)
    spk = Speaker(buf)
    tone = np.full(2205, 1000, dtype=np.int16)  # 100 ms at 22.05 kHz
    assert spk.write(1, tone, 22050) is True
    spk.end_clause(1, 0, "Hello there.")
    assert spk.write(1, tone, 22050) is False
    spk.end_clause(1, 1, "How are you?")
    # Play the first clause only: pull ~100 ms worth and report the marks reached.
    reached: list[str] = []
    for _ in range(6):
        reached += buf.pull()[1]
    for name in reached:
        spk.on_mark(name)
    assert spk.heard_text(1) == "Hello there."
    assert spk.pending_marks(1) == 1
    spk.clear()
    assert spk.pending_marks(1) == 0 and not buf.is_playing and spk.clears == 1
    assert spk.heard_text(1) == "Hello there."  # clearing keeps what was heard
    assert spk.on_mark("r1.1") is None  # stale mark after clear


def test_speaker_resamples_to_the_sink_rate() -> None:
    buf = PlayoutBuffer(16000)
    spk = Speaker(buf)
    spk.write(1, np.full(24000, 500, dtype=np.int16), 24000)  # 1 s at 24 kHz
    spk.end_clause(1, 0, "x")
    assert abs(buf.queued_ms - 1000.0) < 2.0


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_inbound_gives_exact_16k_frames_with_vad(rate: int) -> None:
    inbound = InboundAudio(EnergyVad())
    pcm = speech(1000, rate)
    out = []
    for i in range(0, len(pcm), rate // 50):
        out += inbound.process(AudioFrame(pcm[i : i + rate // 50], rate))
    assert all(f.sample_rate == 16000 and f.num_samples == 320 for f, _ in out)
    assert len(out) >= 48  # at most ~2 frames held by the resampler
    assert sum(p for _, p in out) >= 45


def test_router_files_late_finals_under_their_turn() -> None:
    async def main() -> None:
        router = TranscriptRouter()
        router.on_transcript(Transcript("what time", False), 0.1)
        router.flushed()
        first = router.close_turn()
        router.on_transcript(Transcript("hello", False), 0.2)  # partial of the next turn
        router.on_transcript(Transcript("What time do you open?", True), 0.3)
        await asyncio.wait_for(first.settled(), 1)
        assert first.text() == "What time do you open?" and first.last_final_at == 0.3
        assert router.current.text() == "hello"

    run_virtual(main())


def test_held_reply_reaches_the_sink_only_when_committed() -> None:
    async def main() -> None:
        buf = PlayoutBuffer(16000)
        rec = TurnRecord(0)
        run = ReplyRun(
            1,
            llm=FakeLLM(["We open at ten. See you then."]),
            tts=FakeTTS(sample_rate=16000),
            speaker=Speaker(buf),
            record=rec,
            clock=asyncio.get_running_loop().time,
            held=True,
        )
        task = run.start()
        await task
        assert run.generated and run.clauses == ["We open at ten.", "See you then."]
        before = (buf.is_playing, rec.first_audio_out)
        assert before == (False, None)
        run.commit()
        assert buf.is_playing and rec.first_audio_out is not None
        assert drain(buf) == ["r1.start", "r1.0", "r1.1"]

    run_virtual(main())


def test_virtual_clock_jumps_timers() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        return loop.time()

    assert run_virtual(main()) == 3600.0


def test_settings_validate_and_convert() -> None:
    with pytest.raises(ValidationError):
        TurnSettings(min_silence_ms=900, unknown_silence_ms=800)
    with pytest.raises(ValidationError):
        AgentSettings(unknown_field=1)  # type: ignore[call-arg]
    s = AgentSettings()
    assert s.turn.to_config().min_silence_ms == 500
    assert s.interruption.to_config().min_speech_ms == 300
    assert "mm-hm" in s.interruption.to_config().backchannels
    assert s.model_dump()["greeting"].startswith("Hello")


def test_talk_command_with_fake_providers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav, out = tmp_path / "in.wav", tmp_path / "reply.wav"
    write_wav(wav, speech(1200), 16000)
    parser = argparse.ArgumentParser()
    add_talk_parser(parser.add_subparsers())
    args = parser.parse_args(["talk", "--wav", str(wav), "--out", str(out), "--fake"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "(fake transcript 1)" in printed and "voice_to_voice" not in printed
    assert "This is the fake agent answering." in printed and out.stat().st_size > 1000
