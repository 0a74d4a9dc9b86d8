"""The clinic's appointment book in SQLite: the business logic the tools call.

Plain synchronous code over ``sqlite3`` with no agent types in it, so it is tested on its
own and the tools stay thin. Slots are hourly within opening hours (last start an hour
before closing); a booking gets a short confirmation code the caller can read back
(letters and digits that survive speech recognition: no 0/O, 1/I).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

__all__ = ["Appointment", "AppointmentBook", "BookingError", "HOURS"]

HOURS: dict[int, tuple[int, int]] = {0: (9, 17), 1: (9, 17), 2: (9, 17), 3: (9, 17), 4: (9, 17), 5: (10, 14)}
"""Weekday -> (opening hour, closing hour); Sunday closed (matches clinic.md)."""

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS appointments (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    day TEXT NOT NULL,
    start TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT 'checkup',
    status TEXT NOT NULL DEFAULT 'booked',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS appointments_day ON appointments (day, status);
"""


class BookingError(Exception):
    """A request the book refuses; the message is fit to say to the caller."""


@dataclass(frozen=True, slots=True)
class Appointment:
    code: str
    name: str
    phone: str
    day: date
    start: time
    reason: str
    status: str

    def spoken(self) -> str:
        return f"{say_date(self.day)} at {say_time(self.start)}"


def say_date(d: date) -> str:
    return d.strftime("%A, %B ") + str(d.day)


def say_time(t: time) -> str:
    h = t.hour % 12 or 12
    return f"{h}:{t.minute:02d} {'PM' if t.hour >= 12 else 'AM'}" if t.minute else f"{h} {'PM' if t.hour >= 12 else 'AM'}"


def say_code(code: str) -> str:
    return " ".join(code)


class AppointmentBook:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def slots(self, day: date) -> list[time]:
        hours = HOURS.get(day.weekday())
        return [] if hours is None else [time(h) for h in range(hours[0], hours[1])]

    def free(self, day: date) -> list[time]:
        taken = {
            r[0]
            for r in self._db.execute(
                "SELECT start FROM appointments WHERE day = ? AND status = 'booked'", (day.isoformat(),)
            )
        }
        return [t for t in self.slots(day) if t.strftime("%H:%M") not in taken]

    def book(self, name: str, day: date, start: time, reason: str = "checkup", phone: str = "", *, today: date) -> Appointment:
        if day < today:
            raise BookingError(f"{say_date(day)} is in the past. Which day would you like?")
        if not self.slots(day):
            raise BookingError(f"We're closed on {say_date(day)}. We're open Monday to Saturday.")
        if start not in self.slots(day):
            raise BookingError(f"We don't have appointments at {say_time(start)} on {say_date(day)}. {self._offer(day)}")
        with self._lock, self._db:
            if start not in self.free(day):
                raise BookingError(f"{say_time(start)} on {say_date(day)} is already taken. {self._offer(day)}")
            code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4))
            self._db.execute(
                "INSERT INTO appointments (code, name, phone, day, start, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (code, name, phone, day.isoformat(), start.strftime("%H:%M"), reason, datetime.now().isoformat()),
            )
        return Appointment(code, name, phone, day, start, reason, "booked")

    def _offer(self, day: date) -> str:
        free = self.free(day)
        if not free:
            return "That day is fully booked."
        return "Free times that day are " + ", ".join(say_time(t) for t in free[:4]) + "."

    def find(self, key: str, *, today: date) -> Appointment | None:
        """The booked appointment with this confirmation code, or the caller's next one by
        name or phone number (case-insensitive)."""
        key = key.strip()
        rows = self._db.execute(
            "SELECT code, name, phone, day, start, reason, status FROM appointments "
            "WHERE status = 'booked' AND (upper(code) = upper(?) OR lower(name) = lower(?) OR phone = ?) "
            "AND day >= ? ORDER BY day, start",
            (key.replace(" ", ""), key, key, today.isoformat()),
        ).fetchall()
        return _row(rows[0]) if rows else None

    def cancel(self, code: str) -> Appointment:
        with self._lock, self._db:
            n = self._db.execute(
                "UPDATE appointments SET status = 'cancelled' WHERE code = ? AND status = 'booked'", (code,)
            ).rowcount
        if not n:
            raise BookingError("I couldn't find that appointment.")
        found = self.get(code)
        assert found is not None
        return found

    def reschedule(self, code: str, day: date, start: time, *, today: date) -> Appointment:
        old = self.get(code)
        if old is None or old.status != "booked":
            raise BookingError("I couldn't find that appointment.")
        new = self.book(old.name, day, start, old.reason, old.phone, today=today)
        self.cancel(code)
        return new

    def get(self, code: str) -> Appointment | None:
        row = self._db.execute(
            "SELECT code, name, phone, day, start, reason, status FROM appointments WHERE code = ?", (code,)
        ).fetchone()
        return _row(row) if row else None

    def all(self) -> list[Appointment]:
        rows = self._db.execute(
            "SELECT code, name, phone, day, start, reason, status FROM appointments ORDER BY id"
        ).fetchall()
        return [_row(r) for r in rows]

    def close(self) -> None:
        self._db.close()


def _row(r: tuple[str, str, str, str, str, str, str]) -> Appointment:
    return Appointment(r[0], r[1], r[2], date.fromisoformat(r[3]), time.fromisoformat(r[4]), r[5], r[6])
