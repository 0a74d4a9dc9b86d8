"""Which of the receptionist's tools a caller's words ask for, decided outside the model.

A 0.5B model picks the wrong one of seven similar tools far more often than it copies
arguments wrongly, and it calls tools on questions ("how much is a cleaning?" ->
``check_availability``). So the turn is routed first, by how people phrase each request to a
dental office, and the model is then made to call the routed tool, or to answer a question
in words (``tool_choice``; ``voxgate.knowledge.runtime.Route``):

1. questions about the clinic (prices, fees, policies, hours, insurance, where) -> no tool,
   unless the caller also names a time of day (a request, then);
2. lab orders, moves, cancellations, questions about free times, bookings: phrasal patterns
   ("push it back", "call off", "take me off the schedule", "put me down for", "what do you
   have on ..."), not single nouns ("appointment" is in every request, and "your schedule"
   is not "schedule me");
3. a day and a time of day said without any of the above: a booking ("Friday at ten works");
4. otherwise the nearest example phrasing by meaning (``intents.py``), sure only when clearly
   nearer one tool than any other; unsure routes offer the model every tool.

The patterns describe English phone phrasing in general; none is copied from a benchmark
request (bench/tool_calls*.py).
"""

from __future__ import annotations

import re
from datetime import date

from examples.receptionist.intents import INTENT_EXAMPLES
from examples.receptionist.normalize import dates_in, times_in

from voxgate.knowledge.embeddings import Embedder
from voxgate.knowledge.runtime import EmbeddingRouter, Route

__all__ = ["ReceptionistRouter"]

_DAY_REF = date(2026, 1, 7)
"""Any Wednesday: only *whether* a day is mentioned matters here, not which."""

_THING = r"(?:appointment|booking|reservation|visit|cleaning|check-?up|exam|slot|spot)"

FAQ = re.compile(
    r"\bhow (?:much|long|far|early|late)\b"
    r"|\bwhat(?:'s| is| are| does| do| would)\b[^.?!]{0,30}\b(?:cost|costs|price|prices|fee|fees|charge|policy|hours|address|insurance)\b"
    r"|\bis there (?:a|any) (?:fee|charge|penalty|cost)\b"
    r"|\bdo (?:you|i|they|we)(?: guys| all| folks)? (?:charge|take|accept|offer|treat|see|do|need|have to|bill|work with|have (?:parking|wheelchair|an elevator|payment))\b"
    r"|\bwhat happens if\b"
    r"|\bwhere (?:are you|is (?:the|your) (?:clinic|office|practice)|do i park|can i park|is it)\b"
    r"|\b(?:are|is) (?:you|the clinic|the office|it) (?:open|closed)\b"
    r"|\b(?:when|what time) do you (?:open|close)\b"
    r"|\bcan i (?:pay|park)\b"
    r"|\bwho (?:is|are) (?:the|your)\b",
    re.I,
)
"""A question about the clinic, answered from its document without a tool."""

ORDER = re.compile(
    r"\b(?:order|lab)\b"
    r"|\b(?:night ?guard|retainer|crown|denture|bridge|aligner|mouth ?guard|veneer)s?\b[^.?!]{0,40}"
    r"\b(?:ready|back|done|finished|arrived|in yet|come in|status)\b",
    re.I,
)

RESCHEDULE = re.compile(
    r"\bre-?schedul\w*|\bre-?book\w*|\bpostpon\w*"
    rf"|\b(?:move|change|switch|shift|bump|push|swap)\b[^.?!]{{0,30}}?\b{_THING}\b"
    r"|\b(?:move|change|switch|shift|bump|push|swap)\b (?:it|that|this|things|me)\b[^.?!]{0,20}?\b(?:to|back|forward|over|later|earlier)\b"
    rf"|\b{_THING}\b[^.?!]{{0,15}}\b(?:go|be moved|be changed|be pushed)\b"
    r"|\b(?:need|want|like|prefer)\b[^.?!]{0,15}\b(?:a different|another|a new)\s+(?:day|time|date)\b"
    r"|\b(?:can|could|would)\s+(?:we|you|i)\s+(?:do|make it|have|go for|try)\b[^.?!]{0,50}\binstead\b",
    re.I,
)

CANCEL = re.compile(
    r"\bcancel\w*"
    r"|\bcall(?:ing)? (?:it |that |this |the \w+ |my \w+ )?off\b"
    r"|\bscrap\b|\btake (?:me|it|my name|us|that) off\b|\bremove (?:me|my)\b|\bdelete\b"
    rf"|\bdrop (?:my|the|that) {_THING}\b"
    r"|\bno longer need\b|\bneed(?:ing)?\b[^.?!]{0,30}\b(?:anymore|any more|after all)\b"
    rf"|\bgive (?:my|the|that) (?:{_THING}|time) (?:to|away)\b",
    re.I,
)

CANT_COME = re.compile(
    r"\b(?:can't|cannot|can no longer|won't be able to|will not be able to|not (?:be )?able to|won't)\s+"
    r"(?:make it|make|come|do|be there)\b",
    re.I,
)
""""I can't make it": a move when a new day or time follows, else a cancellation."""
_NEXT_CLAUSE = re.compile(r"[,;.?!]|\b(?:but|could|can|how about|what about|maybe|instead)\b", re.I)

AVAILABILITY = re.compile(
    r"\b(?:what|which|when|any)\b[^.?!]{0,40}\b(?:free|open|available|availability|openings?|gaps?|slots?|times|options|room)\b"
    r"|\b(?:do|does|would|will) you (?:have|got)\b[^.?!]{0,30}\b(?:free|open|available|anything|something|openings?|slots?|room|space|time)\b"
    r"|\bis (?:there )?anything\b[^.?!]{0,25}\b(?:free|open|available)\b"
    r"|\b(?:booked up|fully booked|all booked)\b"
    r"|\bwhat does\b[^.?!]{0,30}\blook like\b|\bhow(?:'s| is| does| are)\b[^.?!]{0,30}\blook(?:s|ing)?\b"
    r"|\bwhen (?:can|could|would|will) (?:you|dr\.? \w+|doctor \w+|the dentist|someone|somebody) (?:see|fit|take)\b"
    r"|\bis (?:dr\.? \w+|doctor \w+|the dentist|anyone|someone|somebody) (?:free|available|in)\b",
    re.I,
)

BOOK = re.compile(
    r"(?<!your )(?<!the )(?<!my )(?<!our )(?<!a )\b(?:book|schedule)\b(?! (?:is|looks?|looking))"
    r"|\b(?:put|pencil|sign|squeeze|fit|get|slot|bring|book|set) (?:me|us|him|her|them|my \w+)(?: \w+)? (?:in|down|up)\b"
    r"|\bi(?:'ll| will) take (?:the|that|it|one)\b"
    r"|\b(?:make|set up|need|want|like|get) (?:an?|another|a new) (?:appointment|visit|check-?up|cleaning|exam|filling)\b",
    re.I,
)


def _mentions_day(text: str) -> bool:
    return bool(dates_in(text, _DAY_REF))


def _mentions_time(text: str) -> bool:
    return bool(times_in(text))


class ReceptionistRouter:
    """``voxgate.knowledge.runtime.Router`` for the receptionist (see the module docstring)."""

    def __init__(self, embedder: Embedder, *, min_score: float = 0.5) -> None:
        self.meaning = EmbeddingRouter(embedder, INTENT_EXAMPLES, min_score=min_score)

    def decide(self, text: str) -> Route | None:
        if not text.strip():
            return None
        timed = _mentions_time(text)
        if FAQ.search(text) and not timed:
            return Route(None)
        if ORDER.search(text):
            return Route("check_order_status")
        if RESCHEDULE.search(text):
            return Route("reschedule_appointment")
        if CANCEL.search(text):
            return Route("cancel_appointment")
        cant = CANT_COME.search(text)
        if cant:  # "can't make it Thursday, could we do Monday at nine?" is a move
            offer = _NEXT_CLAUSE.split(text[cant.end() :], maxsplit=1)[1:]
            moved = bool(offer) and (_mentions_time(offer[0]) or _mentions_day(offer[0]))
            return Route("reschedule_appointment" if moved else "cancel_appointment")
        if AVAILABILITY.search(text):
            return Route("check_availability")
        if BOOK.search(text) or (timed and _mentions_day(text)):
            return Route("book_appointment")
        return self.meaning.decide(text)

    def __call__(self, text: str) -> str | None:
        route = self.decide(text)
        return route.tool if route is not None else None
