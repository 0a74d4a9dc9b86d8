"""Dates, times and numbers as callers say them (and as Whisper writes them) -> values.

Why here and not in the model: a 0.5B model cannot work out which date "next Tuesday" is,
and Whisper writes "3 p.m.", "three in the afternoon", "15:00" or "4 5 6" for the same
things. So the tools take what the caller said as text and these functions turn it into a
``date`` / ``time`` / digit string, deterministically and testably; the model only has to
copy the caller's words into the right argument.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, time, timedelta

from examples.receptionist.spoken import (
    after_correction,
    code_letters,
    join_spelled,
    name_in,
    said_as_name,
)

__all__ = [
    "code_in", "dates_in", "ground", "name_in", "numbers_in", "parse_date", "parse_time", "read_when", "spoken_digits",
    "times_in", "words_to_number",
]

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
    """"2026-12-01", "today", "tomorrow", "the day after tomorrow", "in three days", "a week
    from Friday", "next Tuesday", "on Tuesday", "December 1st", "the 3rd", "12/1" -> a date
    (never in the past: a bare weekday or day means the next one); None when nothing
    date-like is found. A weekday said with a day of the month ("Thursday the third") is
    the next date that is both; the day of the month wins when none is."""
    t = text.strip().lower()
    m = re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", t)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    relative = _relative_day(t, today)
    if relative is not None:
        return relative
    if re.search(r"\b(today|tonight|this (morning|afternoon|evening))\b", t):
        return today
    if re.search(r"\b(tomorrow|tomorow)\b", t):
        return today + timedelta(days=1)
    weekday = _weekday_in(t)
    day_of_month = _day_of_month(t, today)
    if day_of_month is not None:
        exact, month_said = day_of_month
        if weekday is None or exact.weekday() == weekday or month_said:
            return exact
        return _same_weekday(exact, weekday) or exact
    if weekday is not None:
        return _next_weekday(today, weekday)
    return None


def _weekday_in(t: str) -> int | None:
    """Monday=0 ... Sunday=6 for the first weekday named in lower-case ``t``."""
    for i, name in enumerate(_WEEKDAYS):
        if re.search(rf"\b{name}s?\b", t) or re.search(rf"\b{name[:3]}\b", t):
            return i
    return None


def _next_weekday(after: date, weekday: int) -> date:
    """The first ``weekday`` after ``after`` ("Tuesday" on a Tuesday: next week)."""
    return after + timedelta(days=(weekday - after.weekday()) % 7 or 7)


_COUNT = r"(a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d{1,2})"


def _count(word: str) -> int:
    return 1 if word in ("a", "an") else words_to_number(word) or 0


def _relative_day(t: str, today: date) -> date | None:
    """Days counted from today or from a named day: "the day after tomorrow", "in three
    days", "two days from now", "a week from today", "a week from Friday", "in two weeks"."""
    if re.search(r"\bday after tomorrow\b", t):
        return today + timedelta(days=2)
    m = re.search(rf"\b(?:in\s+{_COUNT}\s+(days?|weeks?)|{_COUNT}\s+(days?|weeks?)\s+from\s+(now|today|tomorrow|\w+day))\b", t)
    if m is None:
        return None
    n = _count(m[1] or m[3])
    unit = m[2] or m[4]
    days = n * (7 if unit.startswith("week") else 1)
    base = m[5] or "today"
    if base in ("now", "today"):
        start = today
    elif base == "tomorrow":
        start = today + timedelta(days=1)
    else:
        weekday = _weekday_in(base)
        if weekday is None:
            return None
        start = _next_weekday(today, weekday)
    return start + timedelta(days=days) if days else None


def _day_of_month(t: str, today: date) -> tuple[date, bool] | None:
    """(the date, whether a month was said) for "12/1", "December 1st", "1st of December",
    "the 3rd", "the third"."""
    m = re.search(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b", t)
    if m:
        year = int(m[3]) if m[3] else today.year
        year = year + 2000 if year < 100 else year
        found = _future(year, int(m[1]), int(m[2]), today, explicit_year=bool(m[3]))
        return (found, True) if found else None
    for i, name in enumerate(_MONTHS):
        m = re.search(rf"\b{name}\s+(?:the\s+)?([a-z0-9 -]+?)(?:,?\s+(\d{{4}}))?(?:\s|$|[.,])", t + " ")
        m2 = re.search(rf"\b(?:the\s+)?([a-z0-9-]+(?: (?!of\b)[a-z]+)?)\s+(?:of\s+)?{name}\b", t)
        for mm in (m, m2):
            if mm:
                day = words_to_number(mm[1])
                if day is not None and 1 <= day <= 31:
                    year = int(mm[2]) if mm is m and mm[2] else today.year
                    found = _future(year, i + 1, day, today, explicit_year=mm is m and bool(mm[2]))
                    return (found, True) if found else None
    m = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)\b", t) or re.search(
        r"\bthe (" + "|".join(_ORDINALS) + r"|twenty[- ]\w+|thirty[- ]first)\b", t
    )
    if m:
        day = words_to_number(m[1])
        if day is not None and 1 <= day <= 31:
            month, year = today.month, today.year
            if day < today.day:
                month, year = (1, year + 1) if month == 12 else (month + 1, year)
            for _ in range(2):  # "the 31st" in a 30-day month: the next month that has one
                try:
                    return date(year, month, day), False
                except ValueError:
                    month, year = (1, year + 1) if month == 12 else (month + 1, year)
    return None


def _same_weekday(first: date, weekday: int) -> date | None:
    """The first date from ``first`` on with the same day of the month that falls on
    ``weekday`` within three months (Thursday the 3rd -> the next month whose 3rd is a
    Thursday); None beyond: the caller got one of the two wrong, and the day of the month
    is the more precise."""
    year, month = first.year, first.month
    for _ in range(3):
        try:
            d = date(year, month, first.day)
        except ValueError:
            d = None
        if d is not None and d.weekday() == weekday:
            return d
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    return None


def _future(year: int, month: int, day: int, today: date, *, explicit_year: bool) -> date | None:
    try:
        d = date(year, month, day)
    except ValueError:
        return None
    if d < today and explicit_year and year < today.year:  # a year the model made up from its training data
        return _future(today.year, month, day, today, explicit_year=False)
    if d < today and not explicit_year:
        try:
            d = date(year + 1, month, day)
        except ValueError:
            return None
    return d


_TIME_WORDS = re.compile(
    r"\b(?P<h>\d{1,2}|" + "|".join(k for k in _UNITS if _UNITS[k] <= 12 and k != "zero" and k != "oh") + r")"
    r"(?:[:. ](?P<m>\d{2}))?(?:\s+(?P<mw>oh[- ](?:one|two|three|four|five|six|seven|eight|nine)|ten|fifteen"
    r"|(?:twenty|thirty|forty|fifty)(?:[- ]five)?|o'?clock))?"
    r"\s*(?P<ap>a\.?\s?m\.?|p\.?\s?m\.?|in the morning|in the afternoon|in the evening|at night)?"
)


_PAST_TO = re.compile(
    r"(?<!\bfrom )(?<!\bbetween )\b(?P<n>half|(?:a )?quarter|five|ten|twenty|twenty[- ]five|5|10|20|25)(?: minutes?)?"
    r" (?P<rel>past|after|to|till|til|of|before) (?P<h>\w+)"
)
"""Minutes before or after an hour: "half past two", "ten past eleven", "twenty to four",
"a quarter of ten" (American: 9:45). Not "from ten to four" (a range)."""


def parse_time(text: str) -> time | None:
    """"3 p.m.", "3pm", "3:30 PM", "15:00", "three in the afternoon", "noon", "half past two",
    "quarter past ten", "a quarter to four", "ten past eleven", "eleven oh five", "nine
    twenty" -> a time. A bare hour 1-7 is taken as afternoon (a clinic's day); None if no time."""
    t = text.strip().lower()
    if re.search(r"\bnoon\b|\bmidday\b", t):
        return time(12, 0)
    m = _PAST_TO.search(t)
    if m:
        h = words_to_number(m["h"])
        minute = 30 if m["n"] == "half" else 15 if m["n"].endswith("quarter") else words_to_number(m["n"])
        if h is not None and 1 <= h <= 12 and minute is not None and 0 < minute < 60:
            if m["rel"] in ("to", "till", "til", "of", "before"):
                h, minute = (h - 2) % 12 + 1, 60 - minute
            if re.search(r"\b(p\.?\s?m\b|afternoon|evening)", t[m.end() :]):
                return time(h % 12 + 12, minute)
            if re.search(r"\b(a\.?\s?m\b|morning)", t[m.end() :]):
                return time(h % 12, minute)
            return time(h + 12 if h <= 7 else h, minute)
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
        if mw and "clock" not in mw:  # "fifteen", "forty five", "oh five"
            minute = words_to_number(mw) or 0
        ap = (m["ap"] or "").replace(".", "").replace(" ", "")
        # a bare number is a time only after "at" / "around" ("at three", "around ten"), not
        # "order four five six"
        if not (ap or m["m"] or mw) and not re.search(r"\b(?:at|around|about|say|by)\s*$", t[: m.start()]):
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


def read_when(date_text: str, time_text: str | None, today: date) -> tuple[date | None, time | None]:
    """The day and time a tool's ``date`` / ``time`` arguments mean. A small model sometimes
    puts both into one of them ("date": "Friday morning at nine thirty", "time": "checkup"),
    so what is missing from one is looked for in the other. As in ``parse_time``, 1-7 o'clock
    is the afternoon, even when written "AM"."""
    time_text = time_text or ""
    day = parse_date(date_text, today) or (parse_date(time_text, today) if time_text else None)
    t = parse_time(time_text) or parse_time(f"at {time_text}") if time_text else None
    if t is None:
        t = parse_time(date_text)
    if t is not None and 1 <= t.hour <= 7:  # "2:45 AM" for "2:45": no clinic opens at night
        t = t.replace(hour=t.hour + 12)
    return day, t


def _spans(text: str, width: int = 5) -> list[str]:
    words = re.findall(r"[\w'/:.-]+", text.lower())
    return [" ".join(words[i : i + n]) for i in range(len(words)) for n in range(1, width + 1) if i + n <= len(words)]


_ORDINAL_DAY = r"(?:\d{1,2}(?:st|nd|rd|th)|" + "|".join(_ORDINALS) + r"|twenty[- ]\w+|thirty[- ]first)"
_COMPOUND_DAY = re.compile(
    r"\b(?:" + "|".join(_WEEKDAYS) + rf")s?,?\s+(?:the\s+)?{_ORDINAL_DAY}\b"
    r"|\bday after tomorrow\b"
    rf"|\bin\s+{_COUNT}\s+(?:days?|weeks?)\b|\b{_COUNT}\s+(?:days?|weeks?)\s+from\s+(?:now|today|tomorrow|\w+day)\b",
    re.I,
)
"""Day phrases whose parts name other days: "Thursday the third" is not also "Thursday", nor
"the day after tomorrow" also "tomorrow"."""


def dates_in(text: str, today: date) -> list[date]:
    """Every day mentioned in ``text``, in the order said ("from Tuesday to Friday" -> both); a
    compound phrase ("Thursday the third", "a week from Friday") counts as its day only."""
    found: list[tuple[int, date]] = []
    for m in _COMPOUND_DAY.finditer(text):
        d = parse_date(m[0], today)
        if d is not None:
            found.append((m.start(), d))
    masked = _COMPOUND_DAY.sub(lambda m: " " * len(m[0]), text)  # keep positions
    words = list(re.finditer(r"[\w'/:.-]+", masked.lower()))
    for i in range(len(words)):
        for n in range(1, 5):
            if i + n <= len(words):
                d = parse_date(" ".join(w[0] for w in words[i : i + n]), today)
                if d is not None:
                    found.append((words[i].start(), d))
    ordered: dict[date, None] = {}
    for _, d in sorted(found, key=lambda x: x[0]):
        ordered.setdefault(d)
    return list(ordered)


def times_in(text: str) -> list[time]:
    """Every time of day mentioned in ``text``, in order (clinic hours: 1-7 is afternoon)."""
    found: dict[time, None] = {}
    for span in _spans(text, 5):
        t = parse_time(span)
        if t is not None:
            found.setdefault(t.replace(hour=t.hour + 12) if 1 <= t.hour <= 7 else t)
    return list(found)


def numbers_in(text: str) -> list[str]:
    """Digit strings as spoken ("order one two three" -> "123", "4 5 6" -> "456")."""
    runs: list[str] = []
    run = ""
    for w in re.findall(r"[A-Za-z]+|\d+", text):
        lw = w.lower()
        digit = w if w.isdigit() else (str(_UNITS[lw]) if lw in _UNITS and _UNITS[lw] < 10 else None)
        if digit is not None:
            run += digit
        elif run:
            runs.append(run)
            run = ""
    return [*runs, run] if run else runs


def code_in(text: str) -> str:
    """A 4-character confirmation code spelled out ("D 9 L 4", "seven R two P") or ""; letters
    count only as written in capitals (Whisper writes spelled letters that way)."""
    tokens: list[str | None] = []
    for w in re.findall(r"[A-Za-z]+|\d+", text):
        lw = w.lower()
        if w.isdigit() and len(w) == 1:
            tokens.append(w)
        elif lw in _UNITS and _UNITS[lw] < 10:
            tokens.append(str(_UNITS[lw]))
        elif len(w) == 1 and w.isupper():
            tokens.append(w)
        else:
            tokens.append(None)
    for i in range(len(tokens) - 3):
        window = tokens[i : i + 4]
        if all(window):
            code = "".join(t for t in window if t)
            if any(c.isdigit() for c in code) and any(c.isalpha() for c in code):
                return code
    return ""


_OLD_DAY = re.compile(
    r"\bfrom\s+(?:\w+\s+){0,3}?(?=\w+\s+to\b)\w+"  # "from Tuesday to Friday": Tuesday
    r"|\b(?:my|the|our|that)\s+((?:\w+\s+){0,2}?\w+?)(?:'s)?\s+(?:appointment|booking|visit|cleaning|check-?up|slot)\b"
    r"|\b\w+day's\s+(?:appointment|booking|visit|cleaning|check-?up|slot)\b",
    re.I,
)
"""Where a move names the day it moves *from*: "from Tuesday to ...", "my Friday
appointment", "Friday's cleaning"."""


_NAMED = {"book_appointment": "name", "cancel_appointment": "name_or_code", "reschedule_appointment": "name_or_code"}
"""The argument that names the booking or patient, filled from the caller's words when the
model left it out (it is optional in the tools' schemas)."""


def ground(tool: str, args: dict[str, object], said: Sequence[str], today: date) -> dict[str, object]:
    """``args`` as a tool should act on them, checked against what the caller ``said`` in the
    call (their turns in order, this turn last). A 0.5B model fills slots with values nobody
    said ("2023-10-15", "10:00 AM", "John Doe", code "1234567890") or puts them in the wrong
    slot: a value the caller never said is replaced by the one they said this turn (the last
    day mentioned for a move: "from Tuesday to Friday"; never the day it moves from), else
    dropped so that the tool asks. When the caller corrected themselves ("Thursday, no wait,
    Friday") a day or time said after the correction wins. A name must have been said as a
    name (capitalised, as Whisper writes names); one the caller introduced ("the name's
    ...", "under ...") fills an empty name. Dates and times come back as ISO text."""
    now = said[-1] if said else ""
    everything = " \n ".join(said)
    final = after_correction(now)
    out = dict(args)
    if "date" in args:
        day, t = read_when(str(args.get("date") or ""), str(args.get("time") or "") or None, today)
        days_now = dates_in(now, today)
        if tool == "reschedule_appointment":  # the new day: the last one said, not the old one
            said_days, days_now = days_now, dates_in(_OLD_DAY.sub(" ", now), today)
            if days_now:
                day = days_now[-1]
            elif day in said_days:  # only the day it moves from was said: ask for the new one
                day = None
        if day not in days_now and day not in dates_in(everything, today) and not (day and _grounded_words(str(args.get("date") or ""), _COMPOUND_DAY.sub(" ", everything))):
            day = days_now[-1] if days_now else None
        corrected = dates_in(final, today) if final is not now else []
        if corrected and day not in corrected:
            day = corrected[-1]
        out["date"] = day.isoformat() if day else ""
        if "time" in args:
            times_now = times_in(now)
            if t not in times_now and t not in times_in(everything) and not (t and _grounded_words(str(args.get("time") or ""), everything)):
                t = times_now[0] if times_now else None
            corrected_t = []
            if final is not now:  # "at ten, sorry, I mean eleven": a bare hour corrects a time
                corrected_t = times_in(final) or (times_in(f"at {final.strip()}") if times_now else [])
            if corrected_t and t not in corrected_t:
                t = corrected_t[0]
            out["time"] = t.strftime("%H:%M") if t else ""
    for key in ("name_or_code", "name"):
        if key not in args and _NAMED.get(tool) != key:
            continue
        value = join_spelled(str(args.get(key) or ""))
        out[key] = value
        if key == "name_or_code" and (code := code_in(code_letters(now))) and code not in spoken_digits(value):
            out[key] = code
        elif value and (
            not _grounded_words(value, join_spelled(everything))
            or (key == "name" and not said_as_name(value, everything))
        ):
            out[key] = ""
        if not out[key]:
            out[key] = name_in(now)
    if "order_number" in args:
        numbers = numbers_in(now)
        if numbers and spoken_digits(str(args["order_number"] or "")) not in numbers_in(everything):
            out["order_number"] = max(numbers, key=len)
    return out


def _grounded_words(value: str, said: str) -> bool:
    """Every word of ``value`` occurs in ``said`` (case-insensitive; a code may be written
    "K7Q2" for "K 7 Q 2")."""
    heard = re.findall(r"[a-z0-9]+", said.lower())
    if spoken_digits(value) and spoken_digits(value) in "".join(spoken_digits(w) for w in heard):
        return True
    words = re.findall(r"[a-z0-9]+", value.lower())
    return bool(words) and all(w in heard for w in words)
