"""Dates, times and numbers as callers say them (and as Whisper writes them) -> values.

Why here and not in the model: a 0.5B model cannot work out which date "next Tuesday" is,
and Whisper writes "3 p.m.", "three in the afternoon", "15:00" or "4 5 6" for the same
things. So the tools take what the caller said as text and these functions turn it into a
``date`` / ``time`` / digit string, deterministically and testably; the model only has to
copy the caller's words into the right argument.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta

__all__ = ["parse_date", "parse_time", "spoken_digits", "words_to_number"]

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]
_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}


def words_to_number(text: str) -> int | None:
    """"three" -> 3, "twenty one" / "twenty-first" -> 21, "15" -> 15; None if not a number."""
    t = text.strip().lower().replace("-", " ")
    if t.isdigit():
        return int(t)
    total = 0
    seen = False
    for w in t.split():
        w = re.sub(r"(st|nd|rd|th)$", "", w) if w[:1].isdigit() else w
        if w.isdigit():
            total += int(w)
        elif w in _UNITS:
            total += _UNITS[w]
        elif w in _ORDINALS:
            total += _ORDINALS[w]
        else:
            return None
        seen = True
    return total if seen else None


def spoken_digits(text: str) -> str:
    """"four five six" / "4 5 6" / "456" -> "456"; letters kept ("AB 12" -> "AB12")."""
    out = []
    for w in re.findall(r"[A-Za-z]+|\d+", text):
        lw = w.lower()
        if lw in _UNITS and _UNITS[lw] < 10:
            out.append(str(_UNITS[lw]))
        elif lw in ("number", "is", "code", "my", "it's", "the", "and"):
            continue
        else:
            out.append(w.upper())
    return "".join(out)


def parse_date(text: str, today: date) -> date | None:
    """"2026-12-01", "today", "tomorrow", "next Tuesday", "on Tuesday", "December 1st",
    "the 3rd", "12/1" -> a date (never in the past: a bare weekday or day means the next
    one); None when nothing date-like is found."""
    t = text.strip().lower()
    m = re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", t)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if re.search(r"\btoday\b", t):
        return today
    if re.search(r"\b(tomorrow|tomorow)\b", t):
        return today + timedelta(days=1)
    for i, name in enumerate(_WEEKDAYS):
        if re.search(rf"\b{name}s?\b", t) or re.search(rf"\b{name[:3]}\b", t):
            ahead = (i - today.weekday()) % 7 or 7  # "Tuesday" on a Tuesday: next week
            return today + timedelta(days=ahead)
    m = re.search(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b", t)
    if m:
        year = int(m[3]) if m[3] else today.year
        year = year + 2000 if year < 100 else year
        return _future(year, int(m[1]), int(m[2]), today, explicit_year=bool(m[3]))
    for i, name in enumerate(_MONTHS):
        m = re.search(rf"\b{name}\s+(?:the\s+)?([a-z0-9 -]+?)(?:,?\s+(\d{{4}}))?(?:\s|$|[.,])", t + " ")
        m2 = re.search(rf"\b(?:the\s+)?([a-z0-9-]+(?: [a-z]+)?)\s+(?:of\s+)?{name}\b", t)
        for mm in (m, m2):
            if mm:
                day = words_to_number(mm[1])
                if day is not None and 1 <= day <= 31:
                    year = int(mm[2]) if mm is m and mm[2] else today.year
                    return _future(year, i + 1, day, today, explicit_year=mm is m and bool(mm[2]))
    m = re.search(r"\bthe (\d{1,2})(?:st|nd|rd|th)\b", t) or re.search(
        r"\bthe (" + "|".join(_ORDINALS) + r"|twenty[- ]\w+)\b", t
    )
    if m:
        day = words_to_number(m[1])
        if day is not None and 1 <= day <= 31:
            month, year = today.month, today.year
            if day < today.day:
                month, year = (1, year + 1) if month == 12 else (month + 1, year)
            try:
                return date(year, month, day)
            except ValueError:
                return None
    return None


def _future(year: int, month: int, day: int, today: date, *, explicit_year: bool) -> date | None:
    try:
        d = date(year, month, day)
    except ValueError:
        return None
    if d < today and not explicit_year:
        try:
            d = date(year + 1, month, day)
        except ValueError:
            return None
    return d


_TIME_WORDS = re.compile(
    r"\b(?P<h>\d{1,2}|" + "|".join(k for k in _UNITS if _UNITS[k] <= 12 and k != "zero" and k != "oh") + r")"
    r"(?:[:. ](?P<m>\d{2}))?(?:\s+(?P<mw>fifteen|thirty|forty[- ]five|o'?clock))?"
    r"\s*(?P<ap>a\.?\s?m\.?|p\.?\s?m\.?|in the morning|in the afternoon|in the evening|at night)?"
)


def parse_time(text: str) -> time | None:
    """"3 p.m.", "3pm", "3:30 PM", "15:00", "three in the afternoon", "noon", "half past two"
    -> a time. A bare hour 1-7 is taken as afternoon (a clinic's day); None if no time."""
    t = text.strip().lower()
    if re.search(r"\bnoon\b|\bmidday\b", t):
        return time(12, 0)
    m = re.search(r"\bhalf past (\w+)", t)
    if m:
        h = words_to_number(m[1])
        if h is not None and 1 <= h <= 12:
            return time(h + 12 if h <= 7 else h, 30)
    m = re.search(r"\b([01]?\d|2[0-3]):([0-5]\d)\b(?!\s*[ap]\.?\s?m)", t)
    if m:  # 24-hour clock, except that "at 3:30" in a clinic's day is the afternoon
        h, mi = int(m[1]), int(m[2])
        return time(h + 12 if 1 <= h <= 7 else h, mi)
    for m in _TIME_WORDS.finditer(t):
        h = words_to_number(m["h"])
        if h is None or not 1 <= h <= 12:
            continue
        minute = int(m["m"]) if m["m"] else 0
        mw = (m["mw"] or "").replace("-", " ")
        if mw.startswith("fifteen"):
            minute = 15
        elif mw.startswith("thirty"):
            minute = 30
        elif mw.startswith("forty"):
            minute = 45
        ap = (m["ap"] or "").replace(".", "").replace(" ", "")
        # a bare number is a time only next to "at" ("at three"), not "order four five six"
        if not (ap or m["m"] or mw) and not re.search(r"\bat\s*$", t[: m.start()]):
            continue
        if ap.startswith("pm") or ap in ("intheafternoon", "intheevening", "atnight"):
            h = h % 12 + 12
        elif ap.startswith("am") or ap == "inthemorning":
            h = h % 12
        elif h <= 7:
            h += 12
        if minute > 59:
            continue
        return time(h, minute)
    return None
