"""The receptionist example: appointment book, tools, routing, and scripted calls from audio
with fake STT/LLM (the WAVs drive the timing; the words come from transcripts.json)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from examples.receptionist.app import ROUTER, Receptionist
from examples.receptionist.appointments import AppointmentBook, BookingError

from voxgate.agent.local import HangUp, LocalCall, Say, Silence, WaitForAgent
from voxgate.agent.vclock import run_virtual
from voxgate.audio.wav import read_wav
from voxgate.knowledge.embeddings import HashEmbedder
from voxgate.knowledge.tools import ToolContext
from voxgate.providers.base import ChatMessage, ToolCall, ToolSchema
from voxgate.providers.llm.fake import FakeLLM, FakeReply

from ..agent.fakes import providers

AUDIO = Path("/work/shared/audio")
WEDNESDAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 10:00 in New York: open


def transcripts() -> dict[str, str]:
    if not (AUDIO / "transcripts.json").is_file():
        pytest.skip(f"test speech not found in {AUDIO}")
    return {t["id"]: t["text"] for t in json.loads((AUDIO / "transcripts.json").read_text())}


# --- the appointment book -------------------------------------------------------------------


def test_book_conflict_closed_day_cancel_reschedule() -> None:
    book = AppointmentBook()
    tue = date(2026, 12, 1)
    a = book.book("Ann", tue, time(15), today=WEDNESDAY)
    assert len(a.code) == 4 and book.free(tue).count(time(15)) == 0
    with pytest.raises(BookingError, match="already taken"):
        book.book("Bob", tue, time(15), today=WEDNESDAY)
    with pytest.raises(BookingError, match="closed"):
        book.book("Bob", date(2026, 11, 29), time(10), today=WEDNESDAY)  # Sunday
    with pytest.raises(BookingError, match="6 PM"):
        book.book("Bob", tue, time(18), today=WEDNESDAY)
    with pytest.raises(BookingError, match="past"):
        book.book("Bob", date(2026, 11, 1), time(10), today=WEDNESDAY)
    assert book.find("ann", today=WEDNESDAY) == a and book.find(a.code.lower(), today=WEDNESDAY) == a
    b = book.reschedule(a.code, date(2026, 12, 2), time(10), today=WEDNESDAY)
    assert [x.status for x in book.all()] == ["cancelled", "booked"] and b.name == "Ann"
    assert book.cancel(b.code).status == "cancelled"
    with pytest.raises(BookingError):
        book.cancel(b.code)


async def test_tools_normalise_spoken_dates_times_and_numbers() -> None:
    app = Receptionist.create(embedder=HashEmbedder(), now=lambda: NOW)
    reg = app.knowledge.tools
    assert reg is not None
    ctx = ToolContext(caller="+15550100")

    async def call(name: str, **args: str) -> str:
        r = await reg.call(ToolCall("x", name, json.dumps(args)), ctx)
        assert r.ok and r.final and r.say
        return r.say

    said = await call("book_appointment", date="next Tuesday", time="three in the afternoon")
    assert said.startswith("You're booked for Tuesday, December 1 at 3 PM.")
    (row,) = app.book.all()
    assert (row.day, row.start, row.name, row.phone) == (date(2026, 12, 1), time(15), "+15550100", "+15550100")
    assert "3 PM" not in await call("check_availability", date="December 1st")
    said = await call("reschedule_appointment", date="Friday", time="10 a.m.")
    assert "Friday, November 27 at 10 AM" in said
    said = await call("cancel_appointment")  # "cancel that": this call's booking
    assert said == "Your appointment on Friday, November 27 at 10 AM is cancelled."
    assert [a.status for a in app.book.all()] == ["cancelled", "cancelled"]
    assert "ready for pickup" in await call("check_order_status", order_number="four five six")
    assert "Which day" in await call("book_appointment", date="whenever", time="3 pm")
    assert "closed on Sunday" in await call("book_appointment", date="Sunday", time="10 am")


@pytest.mark.parametrize(
    ("text", "tool"),
    [  # phrasings not in bench/tool_calls.py (the router was tuned on those)
        ("I want to push back my visit to Thursday", "reschedule_appointment"),
        ("Could you cancel my cleaning on Monday?", "cancel_appointment"),
        ("Has my retainer come back from the lab yet, order 42?", "check_order_status"),
        ("Which slots are open next week?", "check_availability"),
        ("I'd like to come in for a checkup on Friday", "book_appointment"),
        ("Do you take Cigna?", None),
        ("Is there free parking?", None),
        ("What time do you close today?", None),
    ],
)
def test_router_on_held_out_phrasings(text: str, tool: str | None) -> None:
    assert ROUTER(text) == tool


# --- scripted calls from audio, fake STT and LLM ----------------------------------------------


def clinic_bot(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
    """Stands in for the LLM: maps the caller's words to the tool call a good model makes."""
    last = messages[-1]
    if last.role == "tool":
        return "Anything else?"
    text = last.content.lower()
    names = {t.name for t in tools}
    if "book" in text:
        args = {"date": "next Tuesday", "time": "three in the afternoon"}
        return FakeReply(tool_calls=[ToolCall("b", "book_appointment", json.dumps(args))])
    if "cancel" in text:
        return FakeReply(tool_calls=[ToolCall("c", "cancel_appointment", "{}")])
    if "order" in text and "check_order_status" in names:
        return FakeReply(tool_calls=[ToolCall("o", "check_order_status", '{"order_number": "four five six"}')])
    facts = next((m.content for m in messages if m.role == "system" and m.content.startswith("Facts")), "")
    return "On Saturday we open at 10 am." if "Saturday from 10 am" in facts else "I'm not sure."


def audio_call(ids: list[str]) -> tuple[Receptionist, LocalCall, list[str]]:
    words = transcripts()
    app = Receptionist.create(embedder=HashEmbedder(), now=lambda: NOW)
    app.knowledge.min_score = 0.2  # bag-of-words scores run lower than MiniLM's
    p = app.providers(providers([words[i] for i in ids], FakeLLM(clinic_bot)))
    # The fake STT gives one script line per STT flush: a comma pause in the WAV must not
    # flush (the real STT would simply transcribe both halves).
    turn = app.settings.turn.model_copy(update={"pause_ms": 450})
    call = LocalCall(p, app.settings.model_copy(update={"early_intent": False, "turn": turn}), rate=8000)
    steps: list[object] = [WaitForAgent()]
    for i in ids:
        pcm, rate = read_wav(AUDIO / f"{i}.piper.8k.wav")
        steps += [Say(pcm, rate, i), Silence(0.2), WaitForAgent(timeout=30)]
    result = call.run_virtual([*steps, HangUp()])  # type: ignore[list-item]
    assert result.errors == [], result.errors
    return app, call, result.agent_said()


def test_audio_call_books_then_cancels() -> None:
    app, call, said = audio_call(["book_appointment", "cancel"])
    assert said[1].startswith("You're booked for Tuesday, December 1 at 3 PM.")
    assert said[2] == "Your appointment on Tuesday, December 1 at 3 PM is cancelled."
    (row,) = app.book.all()
    assert (row.day, row.start, row.status) == (date(2026, 12, 1), time(15), "cancelled")
    assert call.control.actions == []


def test_audio_call_opening_hours_from_the_document() -> None:
    app, call, said = audio_call(["opening_hours"])
    assert said[-1] == "On Saturday we open at 10 am."
    assert call.pipeline is not None
    (rec,) = call.pipeline.records
    assert rec.retrieved and rec.retrieved[0]["heading"].endswith("Opening hours")


def test_audio_call_transfer_to_a_human() -> None:
    app, call, said = audio_call(["transfer_human"])
    assert said[-1] == "Of course. Let me transfer you to our front desk."
    assert call.control.actions == ["transfer:sip:frontdesk@bright-smile.example"]


def test_audio_call_order_status() -> None:
    app, call, said = audio_call(["order_status"])
    assert said[-1] == "Your night guard, order 4 5 6, is ready for pickup at the front desk."


def test_providers_keep_the_base_models() -> None:
    app = Receptionist.create(embedder=HashEmbedder(), now=lambda: NOW)
    base = providers(["x"], FakeLLM())
    p = app.providers(base)
    assert p.llm is base.llm and p.knowledge is app.knowledge
    assert dataclasses.replace(p, knowledge=None).knowledge is None
    assert run_virtual(_noop()) is None


async def _noop() -> None:
    return None
