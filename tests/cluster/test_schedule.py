"""Calling windows (per contact time zone, DST, across midnight), retries, pacing, numbers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from voxgate.cluster.schedule import (
    CallingWindow,
    Pacer,
    RetryPolicy,
    normalize_number,
    parse_window,
    zone,
)

NY = zone("America/New_York")
TOKYO = zone("Asia/Tokyo")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_window_is_evaluated_in_the_contacts_zone() -> None:
    w = parse_window("09:00-20:00")
    now = utc(2026, 3, 2, 15, 0)  # 10:00 in New York, 00:00 in Tokyo
    assert w.is_open(now, NY)
    assert not w.is_open(now, TOKYO)
    opens = w.next_open(now, TOKYO)
    assert opens.astimezone(TOKYO).time() == time(9, 0)
    assert opens - now == timedelta(hours=9)


def test_window_opens_tomorrow_after_closing() -> None:
    w = parse_window("09:00-20:00")
    now = utc(2026, 3, 3, 2, 0)  # 21:00 local on the 2nd
    opens = w.next_open(now, NY)
    assert opens.astimezone(NY) == datetime(2026, 3, 3, 9, 0, tzinfo=NY)


def test_window_keeps_local_hours_across_dst() -> None:
    w = parse_window("09:00-20:00")
    before = w.next_open(utc(2026, 3, 7, 23, 0), NY)  # Sat 18:00 EST: open now
    assert before == utc(2026, 3, 7, 23, 0)
    after = w.next_open(utc(2026, 3, 8, 2, 0), NY)  # Sat 21:00 EST -> Sun 09:00 EDT
    assert after == utc(2026, 3, 8, 13, 0)


def test_window_across_midnight() -> None:
    w = parse_window("22:00-02:00")
    assert w.is_open(utc(2026, 3, 2, 4, 30), NY)  # 23:30 local
    assert w.is_open(utc(2026, 3, 2, 6, 30), NY)  # 01:30 local, window of the day before
    assert not w.is_open(utc(2026, 3, 2, 8, 0), NY)


def test_weekdays_only() -> None:
    w = CallingWindow(time(9), time(17), frozenset({1, 2, 3, 4, 5}))
    saturday = utc(2026, 3, 7, 15, 0)
    assert w.next_open(saturday, NY) == utc(2026, 3, 9, 13, 0)  # Monday 09:00 EDT


@pytest.mark.parametrize("bad", ["9-17", "25:00-26:00", "10:00-10:00", "09:61-10:00"])
def test_bad_windows_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="calling window"):
        parse_window(bad)


def test_unknown_zone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        zone("Mars/Olympus")


def test_retry_backoff_grows_and_stops() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_s=60, factor=2)
    assert policy.delay_after(1, "busy") == 60
    assert policy.delay_after(2, "no_answer") == 120
    assert policy.delay_after(3, "busy") is None
    for final in ("answered", "voicemail", "failed", "completed"):
        assert policy.delay_after(1, final) is None
    assert RetryPolicy(max_attempts=9, backoff_s=600, max_backoff_s=900).delay_after(5, "busy") == 900


def test_pacer_spaces_calls_evenly_on_a_virtual_clock() -> None:
    pacer = Pacer(cps=4)
    now = 100.0
    waits = [pacer.reserve(now) for _ in range(8)]
    assert waits == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    starts = [now + w for w in waits]
    for i, s in enumerate(starts):  # never more than cps starts in any 1-second window
        assert sum(1 for t in starts if s <= t < s + 1.0) <= 4, i
    assert pacer.reserve(110.0) == 0.0  # idle time is not saved up as a burst


def test_pacer_rejects_zero() -> None:
    with pytest.raises(ValueError):
        Pacer(0)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [("+1 (555) 010-0199", "+15550100199"), ("0044 20 7946 0000", "+442079460000"),
     ("555.0100", "5550100"), ("sip:Bob@Example.com", "sip:bob@example.com")],
)
def test_numbers_normalize_for_dnc_matching(raw: str, norm: str) -> None:
    assert normalize_number(raw) == norm


def test_garbage_is_not_a_number() -> None:
    with pytest.raises(ValueError):
        normalize_number("call me maybe")


def test_a_whole_day_window() -> None:
    w = parse_window("00:00-24:00")
    assert w.is_open(utc(2026, 3, 2, 23, 59), NY) and w.is_open(utc(2026, 3, 2, 5, 0), NY)
