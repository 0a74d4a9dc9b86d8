"""TurnRecord: stage latencies add up to voice-to-voice latency."""

from __future__ import annotations

import pytest

from voxgate.agent.records import TurnRecord


def test_stages_split_voice_to_voice() -> None:
    r = TurnRecord(
        0,
        speech_end=10.0,
        endpoint=10.5,
        stt_final=10.8,
        llm_start=10.801,
        llm_first_token=11.0,
        tts_start=11.1,
        tts_first_audio=11.2,
        first_audio_out=11.203,
    )
    assert r.endpointing == pytest.approx(0.5)
    assert r.stt == pytest.approx(0.3)
    assert r.llm_ttft == pytest.approx(0.199)
    assert r.llm_first_clause == pytest.approx(0.1)
    assert r.tts_first_chunk == pytest.approx(0.1)
    assert r.overhead == pytest.approx(0.004)
    assert r.voice_to_voice == pytest.approx(1.203)
    total = sum(v for k, v in r.stages().items() if k != "voice_to_voice" and v is not None)
    assert total == pytest.approx(r.voice_to_voice)


def test_stt_final_before_endpoint_costs_nothing_and_speculation_overlaps() -> None:
    r = TurnRecord(
        1,
        speech_end=0.0,
        stt_final=0.4,
        llm_start=0.45,
        endpoint=0.5,
        llm_first_token=0.6,
        tts_start=0.6,
        tts_first_audio=0.7,
        first_audio_out=0.7,
    )
    assert r.stt == 0.0
    assert r.llm_ttft == pytest.approx(0.1)
    assert r.overhead == pytest.approx(0.0)


def test_missing_stamps_give_none_and_dict_round_trip() -> None:
    r = TurnRecord(2, user_text="hi", speech_end=1.0)
    assert r.voice_to_voice is None and r.overhead is None
    assert TurnRecord.from_dict(r.to_dict()) == r
