"""Pure scheduling rules for outbound campaigns: calling windows, retries, pacing, DNC.

No clocks are read here: every function takes ``now`` (a UTC ``datetime`` or a monotonic
float), so the rules are tested with a virtual clock and the same code decides on every
node. The Redis-backed pacer in ``jobs.py`` implements :class:`Pacer`'s rule in Lua so all
nodes share one schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CallingWindow",
    "Pacer",
    "RetryPolicy",
    "normalize_number",
    "parse_window",
    "zone",
]

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; ValueError (not a bare KeyError) for a bad one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """Local hours a contact may be called, e.g. 09:00-20:00 in the contact's own zone.

    ``end`` before ``start`` means a window across midnight. ``days`` are ISO weekdays
    (1 = Monday) evaluated on the local date the window opens.
    """

    start: time = time(9, 0)
    end: time = time(20, 0)
    days: frozenset[int] = field(default_factory=lambda: frozenset(range(1, 8)))

    def _spans(self, local_day: datetime) -> tuple[datetime, datetime]:
        tz = local_day.tzinfo
        day = local_day.date()
        opens = datetime.combine(day, self.start, tzinfo=tz)
        closes = datetime.combine(day, self.end, tzinfo=tz)
        if closes <= opens:
            closes += timedelta(days=1)
        return opens, closes

    def is_open(self, now: datetime, tz: ZoneInfo) -> bool:
        return self.next_open(now, tz) == now

    def next_open(self, now: datetime, tz: ZoneInfo) -> datetime:
        """``now`` itself if the window is open, else the next opening (UTC).

        Comparisons are done on absolute instants, so DST changes shift local hours
        correctly (an opening at 09:00 local stays 09:00 local across the change).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        local = now.astimezone(tz)
        # Yesterday's window may still be open (windows across midnight).
        for offset in range(-1, 9):
            opens, closes = self._spans(local + timedelta(days=offset))
            if opens.isoweekday() not in self.days:
                continue
            if opens <= now < closes:
                return now
            if opens > now:
                return opens.astimezone(UTC)
        raise ValueError("calling window has no open day")


def parse_window(text: str, days: frozenset[int] | None = None) -> CallingWindow:
    """``"09:00-20:00"`` -> a window; ValueError with the text on a bad value."""
    m = _WINDOW.match(text)
    if m is None:
        raise ValueError(f"calling window {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"calling window {text!r} has an impossible time")
    end = time(0, 0) if h2 == 24 else time(h2, m2)
    if time(h1, m1) == end and h2 != 24:
        raise ValueError(f"calling window {text!r} is empty")
    return CallingWindow(time(h1, m1), end, days if days is not None else frozenset(range(1, 8)))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry busy and unanswered contacts with exponential back-off, up to a limit.

    ``max_attempts`` counts every dial including the first. Other outcomes (answered,
    voicemail, failed) are final: retrying a call that connected would call a person twice.
    """

    max_attempts: int = 3
    backoff_s: float = 300.0
    factor: float = 2.0
    max_backoff_s: float = 3600.0
    retry_on: frozenset[str] = frozenset({"busy", "no_answer"})

    def delay_after(self, attempt: int, outcome: str) -> float | None:
        """Seconds until the next attempt after ``attempt`` (1-based) ended ``outcome``,
        or None when the contact is finished."""
        if outcome not in self.retry_on or attempt >= self.max_attempts:
            return None
        return min(self.max_backoff_s, self.backoff_s * self.factor ** (attempt - 1))


class Pacer:
    """Calls per second as evenly spaced start slots (no bursts), on a caller's clock.

    ``reserve(now)`` books the next free slot and returns how long to wait for it. Even
    spacing, rather than a token bucket's burst, is what carriers' CPS limits mean: a
    bucket refilled once a second lets a whole second's calls out in one millisecond.
    """

    def __init__(self, cps: float) -> None:
        if cps <= 0:
            raise ValueError("cps must be positive")
        self.interval = 1.0 / cps
        self._next = float("-inf")

    def reserve(self, now: float) -> float:
        slot = max(self._next, now)
        self._next = slot + self.interval
        return slot - now


_NUMBER_JUNK = re.compile(r"[\s().\-/]")


def normalize_number(number: str) -> str:
    """Digits with an optional leading ``+``, so DNC matching ignores formatting.

    ``"+1 (555) 010-0199"`` and ``"+15550100199"`` are the same line; a SIP URI is kept
    whole (lower-cased) since it names an address, not a number.
    """
    text = number.strip()
    if text.lower().startswith(("sip:", "sips:")):
        return text.lower()
    text = _NUMBER_JUNK.sub("", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not re.fullmatch(r"\+?[0-9*#]{1,32}", text):
        raise ValueError(f"not a phone number: {number!r}")
    return text
