"""Business rules per route, applied deterministically around the LLM.

Why outside the model: a 0.5B model answered "Can I talk to a real person?" with "Yes, I can
talk to a real person." (no transfer), and a business cannot let a model decide whether the
office is open or whether a card number lands in a database. So these rules run in code:

- opening hours (timezone-aware) with an after-hours behaviour: answer with a different
  greeting/prompt, or say a message and hang up;
- allowed transfer targets (the ``transfer_call`` tool offers only these);
- escalation phrases ("talk to a real person", "human", "representative"...) that transfer
  to a human *before* the LLM is asked anything;
- PII redaction (card numbers that pass the Luhn check, US SSNs and configurable national-id
  patterns, phone numbers, e-mail addresses) for everything persisted: stored transcripts,
  turn records, tool-call records, and logs (``RedactingFilter``).

``RouteRules`` is a pydantic model so it sits in the TOML config next to the route.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "AfterHours",
    "OpeningHours",
    "RedactingFilter",
    "Redaction",
    "Redactor",
    "RouteRules",
    "luhn_ok",
    "redact",
]

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


# --- opening hours --------------------------------------------------------------------------


def _days(spec: str) -> list[int]:
    """"mon-fri" -> [0..4], "sat" -> [5], "mon,wed" -> [0, 2]."""
    out: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        a, _, b = part.partition("-")
        i = _DAYS.index(a[:3])
        j = _DAYS.index(b[:3]) if b else i
        out.extend(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
    return out


def _span(spec: str) -> tuple[time, time]:
    a, _, b = spec.replace(" ", "").partition("-")
    return time.fromisoformat(a), time.fromisoformat(b)


class OpeningHours(BaseModel):
    """Weekly hours in one timezone, e.g. ``{"mon-fri": "09:00-17:00", "sat": "10:00-14:00"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    weekly: dict[str, str | list[str]] = Field(default_factory=dict)
    """Day spec -> "HH:MM-HH:MM" (or a list of spans); days not listed are closed."""
    closed_dates: list[date] = Field(default_factory=list)
    """Public holidays and the like."""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:  # an unknown zone fails at config load, not mid-call
            ZoneInfo(v)
        except Exception as exc:  # ZoneInfoNotFoundError is a KeyError: pydantic wants ValueError
            raise ValueError(f"unknown timezone {v!r}") from exc
        return v

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, v: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for day, spans in v.items():
            _days(day)
            for s in [spans] if isinstance(spans, str) else spans:
                _span(s)
        return v

    @cached_property
    def _table(self) -> dict[int, list[tuple[time, time]]]:
        table: dict[int, list[tuple[time, time]]] = {i: [] for i in range(7)}
        for day, spans in self.weekly.items():
            for d in _days(day):
                table[d].extend(_span(s) for s in ([spans] if isinstance(spans, str) else spans))
        return table

    def local(self, at: datetime) -> datetime:
        """``at`` in the business's zone (naive datetimes are taken as UTC)."""
        if at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo("UTC"))
        return at.astimezone(ZoneInfo(self.timezone))

    def is_open(self, at: datetime) -> bool:
        t = self.local(at)
        if t.date() in self.closed_dates:
            return False
        return any(a <= t.time() < b for a, b in self._table[t.weekday()])

    def next_open(self, at: datetime) -> datetime | None:
        """The next opening moment after ``at`` (in the business's zone), within 2 weeks."""
        t = self.local(at)
        for k in range(15):
            day = (t + timedelta(days=k)).date()
            if day in self.closed_dates:
                continue
            for a, _b in sorted(self._table[day.weekday()]):
                start = datetime.combine(day, a, tzinfo=t.tzinfo)
                if start > t:
                    return start
        return None

    def describe(self) -> str:
        """"Monday to Friday 9:00 to 17:00; Saturday 10:00 to 14:00" (for prompts and messages)."""
        parts = []
        for day, spans in self.weekly.items():
            ds = _days(day)
            name = _DAY_NAMES[ds[0]] if len(ds) == 1 else f"{_DAY_NAMES[ds[0]]} to {_DAY_NAMES[ds[-1]]}"
            times = ", ".join(
                f"{a.strftime('%H:%M')} to {b.strftime('%H:%M')}"
                for a, b in (_span(s) for s in ([spans] if isinstance(spans, str) else spans))
            )
            parts.append(f"{name} {times}")
        return "; ".join(parts)


class AfterHours(BaseModel):
    """What a route does when a call arrives outside its opening hours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["answer", "message_hangup"] = "answer"
    """``answer``: converse normally with ``greeting``/``prompt_note``; ``message_hangup``:
    say ``message`` and hang up."""
    greeting: str = "Hello, you've reached us outside our opening hours. How can I help?"
    message: str = "We're closed right now. Please call again during our opening hours. Goodbye!"
    prompt_note: str = "The office is closed right now; offer to book an appointment or take a message."


# --- PII redaction --------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (cuts false positives: an order
    or confirmation number of the same length passes only one time in ten)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(?\d{1,4}\)?[ .-]?){2,4}\d{2,4}"  # international
    r"|(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # US (555) 123-4567, 555-123-4567
    r"|\d{10,11}"  # bare 10/11 digits (already not a card)
    r")(?!\w)"
)
NATIONAL_ID_PATTERNS: dict[str, str] = {
    "uk_nino": r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
}
"""Extra national-id formats redacted as ``[ID]`` (US SSNs have their own rule)."""


class Redaction(BaseModel):
    """Which kinds of PII a route redacts from what it stores and logs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    cards: bool = True
    ssn: bool = True
    phones: bool = True
    emails: bool = True
    national_ids: dict[str, str] = Field(default_factory=lambda: dict(NATIONAL_ID_PATTERNS))

    def redactor(self) -> Redactor:
        return Redactor(self)


class Redactor:
    """``redactor(text) -> text`` with PII replaced by ``[CARD]``, ``[SSN]``, ``[ID]``,
    ``[PHONE]``, ``[EMAIL]``. Order matters: cards first (a 16-digit number must not end up
    as a "phone"), then ids, e-mails, phones."""

    def __init__(self, config: Redaction | None = None) -> None:
        self.config = c = config or Redaction()
        self._ids = [re.compile(p, re.I) for p in c.national_ids.values()]

    def __call__(self, text: str) -> str:
        c = self.config
        if not c.enabled or not text:
            return text
        if c.cards:
            text = _CARD.sub(self._card, text)
        if c.ssn:
            text = _SSN.sub("[SSN]", text)
        for p in self._ids:
            text = p.sub("[ID]", text)
        if c.emails:
            text = _EMAIL.sub("[EMAIL]", text)
        if c.phones:
            text = _PHONE.sub("[PHONE]", text)
        return text

    @staticmethod
    def _card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else m.group(0)


_DEFAULT = Redactor()


def redact(text: str) -> str:
    """Redact PII with the default settings (everything on)."""
    return _DEFAULT(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's rendered message (attach to handlers:
    ``handler.addFilter(RedactingFilter())``) so transcripts in logs carry no PII."""

    def __init__(self, redactor: Callable[[str], str] = redact) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self._redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


# --- escalation + the route's rules -----------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

DEFAULT_ESCALATION = [
    "real person",
    "human",
    "agent",
    "representative",
    "operator",
    "talk to someone",
    "speak to someone",
    "live person",
]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def contains_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The first phrase whose words occur consecutively in ``text`` (word boundaries: "agent"
    does not match "agency")."""
    ws = _words(text)
    for phrase in phrases:
        target = _words(phrase)
        n = len(target)
        if n and any(ws[i : i + n] == target for i in range(len(ws) - n + 1)):
            return phrase
    return None


class RouteRules(BaseModel):
    """The business rules of one route (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: OpeningHours | None = None
    """None: always open."""
    after_hours: AfterHours = Field(default_factory=AfterHours)
    transfer_targets: dict[str, str] = Field(default_factory=dict)
    """Spoken name -> address, e.g. ``{"front desk": "sip:frontdesk@clinic.example"}``."""
    human_target: str | None = None
    """The target escalation phrases transfer to (a key of ``transfer_targets``); None: the
    first target, or no escalation when there are none."""
    escalation_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_ESCALATION))
    escalation_say: str = "Of course. Let me transfer you to a member of our team."
    redaction: Redaction = Field(default_factory=Redaction)

    @field_validator("human_target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        return v.strip().lower() if v else v

    def is_open(self, at: datetime) -> bool:
        return self.hours is None or self.hours.is_open(at)

    def escalation_target(self) -> str | None:
        targets = {k.lower(): k for k in self.transfer_targets}
        if self.human_target is not None:
            return targets.get(self.human_target)
        return next(iter(self.transfer_targets), None)

    def wants_human(self, text: str) -> str | None:
        """The matched escalation phrase if the caller asked for a person and a human target
        exists (deterministic; checked before the LLM)."""
        if self.escalation_target() is None:
            return None
        return contains_phrase(text, self.escalation_phrases)

    def redactor(self) -> Redactor:
        return self.redaction.redactor()
