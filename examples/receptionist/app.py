"""Bright Smile Dental's phone receptionist: appointments, lab orders, FAQ, front desk.

What runs where, and why:

- The LLM picks the tool and copies the caller's words into its arguments ("next Tuesday",
  "three in the afternoon"); the tools turn them into dates and times with ``normalize``
  and do the work in ``AppointmentBook`` (SQLite). The tools also phrase the confirmation
  themselves (``ToolReply(say=..., final=True)``): a booking's day, time and confirmation
  code must be read back exactly, which a 0.5B model does not do reliably.
- FAQ (hours, address, insurance, prices) is answered by the LLM from passages of
  ``clinic.md`` retrieved per turn (RAG), not from the prompt.
- "A real person / the front desk" transfers deterministically (route rules), before the
  LLM is asked; ``transfer_call`` stays available to the LLM for other phrasings.

Use from code (the server's agent factory, tests)::

    app = Receptionist.create(db="var/appointments.db", kb_db="var/knowledge.db")
    providers = app.providers(embedded_providers)   # same providers + knowledge
    pipeline = AgentPipeline(session, providers, app.settings)

From the command line (embedded models, scripted caller text, virtual audio)::

    python -m examples.receptionist.app --say "I'd like a cleaning next Tuesday at 3 pm" \\
        --say "Actually, cancel that."
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from examples.receptionist.appointments import (
    AppointmentBook,
    BookingError,
    say_code,
    say_date,
    say_time,
)
from examples.receptionist.normalize import ground, parse_date, read_when, spoken_digits
from examples.receptionist.routing import ReceptionistRouter

from voxgate.agent.config import AgentSettings
from voxgate.agent.pipeline import AgentProviders
from voxgate.knowledge.embeddings import Embedder
from voxgate.knowledge.rag import KnowledgeBase
from voxgate.knowledge.rules import AfterHours, OpeningHours, RouteRules
from voxgate.knowledge.runtime import CALLER_TURNS, KeywordRouter, Knowledge
from voxgate.knowledge.tools import Tool, ToolContext, ToolRegistry, ToolReply

__all__ = ["CLINIC_DOC", "GOODBYES", "PROMPT", "ROUTER", "RULES", "Receptionist", "build_router", "build_tools"]

CLINIC_DOC = Path(__file__).with_name("clinic.md")
TIMEZONE = "America/New_York"

PROMPT = (
    "You are the phone receptionist of Bright Smile Dental. Reply in one or two short spoken "
    "sentences. Call a tool when the caller wants to book, check free times, reschedule or "
    "cancel an appointment, check a lab order, be transferred, or end the call. Copy the "
    "caller's own words for days and times into the arguments; never turn them into dates. "
    "Put the day in date, the time of day in time, and a name, confirmation code or order "
    "number exactly as the caller said it. "
    "Answer questions about the clinic from the facts given, without a tool."
)

RULES = RouteRules(
    hours=OpeningHours(timezone=TIMEZONE, weekly={"mon-fri": "09:00-17:00", "sat": "10:00-14:00"}),
    after_hours=AfterHours(
        mode="answer",
        greeting="Thank you for calling Bright Smile Dental. We're closed right now, but I can "
        "book an appointment or answer your questions.",
    ),
    transfer_targets={"front desk": "sip:frontdesk@bright-smile.example"},
    human_target="front desk",
    escalation_phrases=[
        "real person", "human", "agent", "representative", "operator", "front desk",
        "receptionist", "talk to someone", "speak to someone", "speak with someone",
        "talk with someone", "speak to a person", "a person", "somebody at the desk",
        "talk to somebody", "speak to somebody", "speak with somebody", "talk with somebody",
        "talk to anyone", "speak to anyone", "anybody in the office", "someone in the office",
        "a staff member", "someone who works there", "put me through", "connect me",
        "transfer me", "office manager",
    ],
    escalation_say="Of course. Let me transfer you to our front desk.",
)

GOODBYES = [
    *AgentSettings().goodbye_phrases, "have a good one", "have a good day", "have a nice day",
    "have a great day", "take care", "see you then", "talk to you later", "that's everything",
    "that's it for me", "nothing else", "i'm all set", "that will be all",
]
"""Said only when the caller is done: the pipeline says the farewell and hangs up, before the
LLM (``AgentSettings.goodbye_phrases``; the defaults plus common closings)."""

ROUTER = KeywordRouter(
    [
        (r"\breschedul\w*|\b(move|change|push back|postpone)\b.{0,30}\b(appointment|booking|cleaning|visit|it)\b",
         "reschedule_appointment"),
        (r"\bcancel\w*\b", "cancel_appointment"),
        (r"\b(order|night guard|retainer)\b", "check_order_status"),
        (r"\b(what|which|any) (times|slots)\b|\bavailab\w*|\bopenings?\b|\bfree (times?|slots?|on)\b",
         "check_availability"),
        (r"\b(book|schedule|appointment|see the dentist|come in)\b|\bget an? (cleaning|check-?up)", "book_appointment"),
    ]
)
"""The first keyword router (the original benchmark's phrasings; kept for the tests that use
it): the app routes with ``build_router``."""


def build_router(embedder: Embedder) -> ReceptionistRouter:
    """Which tool the caller's words ask for, decided outside the model (``routing.py``):
    phrasal patterns for questions, orders, moves, cancellations, free times and bookings,
    then the nearest of the example phrasings in ``intents.py`` by meaning. A sure route
    offers the model only that tool, or none for a question."""
    return ReceptionistRouter(embedder)


LAB_ORDERS = {
    "456": "Your night guard, order 4 5 6, is ready for pickup at the front desk.",
    "123": "Order 1 2 3, your crown, is still at the lab and should be ready on Friday.",
}


def build_tools(book: AppointmentBook, today: Callable[[], date]) -> ToolRegistry:
    """The receptionist's tools over ``book``; ``today`` is the clinic's local date."""

    def when(day_text: str, time_text: str | None = None) -> tuple[date, Any]:
        if time_text is None:
            day = parse_date(day_text, today())
            if day is None:
                raise BookingError("Which day would you like?")
            return day, None
        day, t = read_when(day_text, time_text, today())
        if day is None:
            raise BookingError("Which day would you like?")
        if t is None:
            raise BookingError(f"What time on {say_date(day)} would you like?")
        return day, t

    def grounded(ctx: ToolContext, tool: str, **args: str) -> dict[str, str]:
        """``args`` checked against the caller's words this call (``ground``); unchanged when
        the tool is called without them (tests, other front ends)."""
        said = ctx.state.get(CALLER_TURNS)
        if not said:
            return args
        return {k: str(v) for k, v in ground(tool, dict(args), said, today()).items()}

    def find(ctx: ToolContext, key: str) -> str:
        """The booking meant: by code or name if given and known, else the one made in this
        call ("cancel that"), else the caller's next one by phone number. A small model
        invents codes ("1234567890") for "cancel my appointment", so an unknown key falls
        through instead of failing."""
        key = key.strip()
        if key:
            digits = spoken_digits(key)
            found = (book.find(digits, today=today()) if len(digits) == 4 else None) or book.find(
                key, today=today()
            )
            if found is not None:
                return found.code
        code = ctx.state.get("code")
        if isinstance(code, str):
            return code
        if ctx.caller:
            mine = book.find(ctx.caller, today=today())
            if mine is not None:
                return mine.code
        raise BookingError("I couldn't find that appointment. What name or confirmation code is it under?")

    async def check_availability(ctx: ToolContext, date: str) -> ToolReply:
        """Tell the caller which times are free on a day, when they ask what is free or available.

        Args:
            date: The day, in the caller's words.
        """
        date = grounded(ctx, "check_availability", date=date)["date"]
        try:
            day, _ = when(date)
        except BookingError as exc:
            return ToolReply({"error": str(exc)}, say=str(exc), final=True)
        free = book.free(day)
        if not free:
            msg = f"Sorry, we have nothing free on {say_date(day)}."
        else:
            msg = f"On {say_date(day)} we have " + ", ".join(say_time(t) for t in free[:4]) + " free."
        return ToolReply({"date": day.isoformat(), "free": [t.strftime("%H:%M") for t in free]}, say=msg, final=True)

    async def book_appointment(ctx: ToolContext, date: str, time: str, name: str = "", reason: str = "checkup") -> ToolReply:
        """Book a new appointment on the day and at the time the caller wants.

        Args:
            date: The day, in the caller's words.
            time: The time, in the caller's words.
            name: The patient's name, if the caller gave it.
            reason: What the visit is for, e.g. "cleaning".
        """
        g = grounded(ctx, "book_appointment", date=date, time=time, name=name)
        date, time, name = g["date"], g["time"], g["name"]
        try:
            day, t = when(date, time)
            appt = book.book(name or ctx.caller or "caller", day, t, reason or "checkup", ctx.caller, today=today())
        except BookingError as exc:
            return ToolReply({"error": str(exc)}, say=str(exc), final=True)
        ctx.state["code"] = appt.code
        return ToolReply(
            {"booked": True, "date": appt.day.isoformat(), "time": appt.start.strftime("%H:%M"), "code": appt.code},
            say=f"You're booked for {appt.spoken()}. Your confirmation code is {say_code(appt.code)}.",
            final=True,
        )

    async def reschedule_appointment(ctx: ToolContext, date: str, time: str, name_or_code: str = "") -> ToolReply:
        """Move an existing appointment to a new day and time (move, change, reschedule).

        Args:
            date: The new day in the caller's words.
            time: The new time in the caller's words.
            name_or_code: The name or confirmation code of the booking, if given.
        """
        g = grounded(ctx, "reschedule_appointment", date=date, time=time, name_or_code=name_or_code)
        date, time, name_or_code = g["date"], g["time"], g["name_or_code"]
        try:
            code = find(ctx, name_or_code)
            day, t = when(date, time)
            appt = book.reschedule(code, day, t, today=today())
        except BookingError as exc:
            return ToolReply({"error": str(exc)}, say=str(exc), final=True)
        ctx.state["code"] = appt.code
        return ToolReply(
            {"rescheduled": True, "date": appt.day.isoformat(), "time": appt.start.strftime("%H:%M"), "code": appt.code},
            say=f"Done. Your appointment is now {appt.spoken()}. Your new confirmation code is {say_code(appt.code)}.",
            final=True,
        )

    async def cancel_appointment(ctx: ToolContext, name_or_code: str = "") -> ToolReply:
        """Cancel an appointment.

        Args:
            name_or_code: The name or confirmation code of the booking, if given.
        """
        name_or_code = grounded(ctx, "cancel_appointment", name_or_code=name_or_code)["name_or_code"]
        try:
            appt = book.cancel(find(ctx, name_or_code))
        except BookingError as exc:
            return ToolReply({"error": str(exc)}, say=str(exc), final=True)
        ctx.state.pop("code", None)
        return ToolReply(
            {"cancelled": True, "code": appt.code},
            say=f"Your appointment on {appt.spoken()} is cancelled.",
            final=True,
        )

    async def check_order_status(ctx: ToolContext, order_number: str) -> ToolReply:
        """Status of a lab order by its order number (night guard, crown, retainer).

        Args:
            order_number: The order number as the caller said it.
        """
        order_number = grounded(ctx, "check_order_status", order_number=order_number)["order_number"]
        number = spoken_digits(order_number)
        say = LAB_ORDERS.get(number, f"I can't find order {' '.join(number) or 'with that number'}. Could you repeat the number?")
        return ToolReply({"order": number, "status": say}, say=say, final=True)

    return ToolRegistry(
        Tool.from_function(f, filler="One moment while I check that.")
        for f in (check_availability, book_appointment, reschedule_appointment, cancel_appointment, check_order_status)
    )


@dataclass(slots=True)
class Receptionist:
    """The app: appointment book + knowledge (tools, KB, rules) + agent settings."""

    book: AppointmentBook
    knowledge: Knowledge
    settings: AgentSettings

    @classmethod
    def create(
        cls,
        *,
        db: str | Path = ":memory:",
        kb_db: str | Path = ":memory:",
        embedder: Embedder | None = None,
        now: Callable[[], datetime] | None = None,
        rules: RouteRules = RULES,
        route: bool = True,
    ) -> Receptionist:
        """``embedder`` None: the packaged MiniLM model. ``now``: the wall clock (tests pin it)."""
        clock = now or (lambda: datetime.now(UTC))
        zone = ZoneInfo(rules.hours.timezone if rules.hours else TIMEZONE)
        book = AppointmentBook(db)
        if embedder is None:
            from voxgate.knowledge.embeddings import MiniLMEmbedder

            embedder = MiniLMEmbedder()
        kb = KnowledgeBase(kb_db, embedder, name="bright-smile")
        kb.add_path(CLINIC_DOC)
        knowledge = Knowledge(
            tools=build_tools(book, lambda: clock().astimezone(zone).date()),
            kb=kb,
            rules=rules,
            now=clock,
            call_control=("transfer_call", "end_call"),
            router=build_router(embedder) if route else None,
        )
        settings = AgentSettings(
            name="receptionist",
            system_prompt=PROMPT,
            greeting="Hello, thank you for calling Bright Smile Dental. How can I help you?",
            goodbye_phrases=GOODBYES,
        )
        return cls(book, knowledge, settings)

    def providers(self, base: AgentProviders) -> AgentProviders:
        """``base`` (STT/LLM/TTS/VAD) with this app's knowledge attached."""
        return dataclasses.replace(base, knowledge=self.knowledge)


async def _speak(tts: Any, text: str) -> tuple[Any, int]:
    import numpy as np

    chunks = [c async for c in tts.synthesize(text)]
    return np.concatenate([c.pcm for c in chunks]), chunks[0].sample_rate


def _main() -> int:  # pragma: no cover - a demo entry point
    """Caller turns are synthesized with the Piper voice and go through Whisper, the LLM with
    tools and RAG, and Piper again, in real time, exactly as on a phone call."""
    import asyncio

    from voxgate.agent.local import LocalCall, Say, Silence, WaitForAgent
    from voxgate.agent.talk import _embedded_providers

    parser = argparse.ArgumentParser(description="scripted call to the receptionist (embedded models)")
    parser.add_argument("--say", action="append", required=True, help="caller turn (repeat)")
    parser.add_argument("--db", default=":memory:", help="appointments SQLite file")
    args = parser.parse_args()

    app = Receptionist.create(db=args.db)
    base = _embedded_providers()
    call = LocalCall(app.providers(base), app.settings, rate=16000)

    async def run() -> Any:
        steps: list[Any] = [WaitForAgent()]
        for text in args.say:
            pcm, rate = await _speak(base.tts, text)
            steps += [Say(pcm, rate, text), Silence(0.1), WaitForAgent(timeout=60)]
        return await call.run(steps)

    result = asyncio.run(run())
    for role, text in result.transcript:
        print(f"{role:>9}: {text}")
    for rec in result.records:
        for tc in rec.tool_calls:
            print(f"     tool: {tc['name']}({tc['arguments']}) -> {tc['status']} ({tc['seconds']:.2f} s)")
        for p in rec.retrieved:
            print(f"      rag: {p['score']:.2f} {p['heading']}")
    for a in app.book.all():
        print(f"       db: {a}")
    print(f"  actions: {call.control.actions}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
