"""The observer turns call facts into a stored record, Prometheus series and a cost."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from voxgate.agent.records import TurnRecord
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession, UnsupportedControl
from voxgate.observability.cost import PriceTable, ProviderPrice
from voxgate.observability.metrics import REGISTRY
from voxgate.observability.observer import CallObserver
from voxgate.observability.records import CallRecords


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_full_call_is_recorded_and_measured(tmp_path: Path) -> None:
    records = await CallRecords.open(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    clock = Clock()
    prices = PriceTable(providers={"edge:websocket": ProviderPrice(telephony_per_minute=0.01)})
    obs = CallObserver(records, prices=prices, clock=clock)
    obs.start()
    session = CallSession(
        edge="websocket", sink=PlayoutBuffer(8000), control=UnsupportedControl("websocket"),
        sample_rate=8000, caller="+15550001", callee="support", route="agent",
    )
    await obs.call_started(session)
    obs.call_answered(session.call_id)
    obs.transcript(session.call_id, "caller", "what time do you open", confidence=0.87)
    turn = TurnRecord(
        index=0, user_text="what time do you open", agent_text="We open at nine.",
        speech_start=1001.0, speech_end=1002.0, endpoint=1002.4, stt_final=1002.5,
        llm_start=1002.5, llm_first_token=1002.7, tts_start=1002.8, tts_first_audio=1002.9,
        first_audio_out=1002.92, reply_done=1004.0,
    )
    obs.turn_finished(session.call_id, turn)
    obs.transcript(session.call_id, "agent", "We open at nine.")
    obs.event(session.call_id, "dtmf", {"digit": "1"})
    obs.network(
        session.call_id, "websocket", packets=250, loss_fraction=0.1, jitter_s=0.01,
        jb_delay_ms=40, underruns=2, concealed_ms=100,
    )
    clock.t += 60
    session.end("caller_hangup")
    await obs.call_ended(session)
    call = await records.get_call(session.call_id)
    await obs.close()
    await records.close()

    assert call is not None
    assert call["end_reason"] == "caller_hangup" and call["answered_at"] is not None
    assert call["turn_count"] == 1 and call["latency_p50_ms"] == 920.0
    assert call["turns"][0]["timeline"]["stages_ms"]["endpointing"] == 400.0
    assert [t["speaker"] for t in call["transcript"]] == ["caller", "agent"]
    assert call["events"][0]["kind"] == "dtmf"
    assert call["network"][0]["loss_pct"] == 10.0
    assert abs(call["cost_usd"] - 0.01) < 1e-6
    text = generate_latest(REGISTRY).decode()
    assert 'voxgate_stage_seconds_count{stage="endpointing"}' in text
    assert 'voxgate_turns_total{outcome="completed"}' in text
    assert "voxgate_asr_confidence_count" in text
