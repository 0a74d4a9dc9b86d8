"""Opening hours, escalation phrases and PII redaction."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from voxgate.knowledge.rules import (
    OpeningHours,
    RedactingFilter,
    Redaction,
    RouteRules,
    luhn_ok,
    redact,
)

HOURS = OpeningHours(
    timezone="America/New_York",
    weekly={"mon-fri": "09:00-17:00", "sat": "10:00-14:00"},
    closed_dates=[date(2026, 12, 25)],
)


def test_opening_hours_are_timezone_aware() -> None:
    # Saturday 2026-11-28: 16:00 UTC is 11:00 in New York (open), 20:00 UTC is 15:00 (closed).
    assert HOURS.is_open(datetime(2026, 11, 28, 16, 0, tzinfo=UTC))
    assert not HOURS.is_open(datetime(2026, 11, 28, 20, 0, tzinfo=UTC))
    # The same instant expressed in another zone gives the same answer.
    paris = timezone(timedelta(hours=1))
    assert HOURS.is_open(datetime(2026, 11, 28, 17, 0, tzinfo=paris))
    # Sunday closed; closing time itself is closed; holiday closed.
    assert not HOURS.is_open(datetime(2026, 11, 29, 16, 0, tzinfo=UTC))
    assert not HOURS.is_open(datetime(2026, 11, 30, 22, 0, tzinfo=UTC))  # 17:00 local
    assert HOURS.is_open(datetime(2026, 11, 30, 21, 59, tzinfo=UTC))
    assert not HOURS.is_open(datetime(2026, 12, 25, 16, 0, tzinfo=UTC))


def test_next_open_and_describe() -> None:
    nxt = HOURS.next_open(datetime(2026, 11, 28, 20, 0, tzinfo=UTC))  # Saturday afternoon
    assert nxt is not None and (nxt.weekday(), nxt.hour) == (0, 9)  # Monday 9:00 local
    assert HOURS.describe() == "Monday to Friday 09:00 to 17:00; Saturday 10:00 to 14:00"


def test_bad_hours_config_fails_at_load() -> None:
    with pytest.raises(ValidationError):
        OpeningHours(timezone="Mars/Olympus", weekly={})
    with pytest.raises(ValidationError):
        OpeningHours(weekly={"funday": "09:00-17:00"})


def test_escalation_phrases_need_a_human_target() -> None:
    rules = RouteRules(transfer_targets={"front desk": "sip:fd@x"})
    assert rules.wants_human("Please transfer me to a human agent.") == "human"
    assert rules.wants_human("Can I talk to a real person?") == "real person"
    assert rules.wants_human("I want a representative") == "representative"
    assert rules.wants_human("My travel agency booked it") is None  # word boundaries
    assert rules.wants_human("Book me a cleaning on Tuesday") is None
    assert RouteRules().wants_human("a human please") is None  # nowhere to transfer to
    assert rules.escalation_target() == "front desk"
    rules = RouteRules(transfer_targets={"a": "1", "Front Desk": "2"}, human_target="front desk")
    assert rules.escalation_target() == "Front Desk"


def test_after_hours_and_always_open() -> None:
    rules = RouteRules(hours=HOURS)
    assert not rules.is_open(datetime(2026, 11, 29, 16, 0, tzinfo=UTC))
    assert RouteRules().is_open(datetime(2026, 11, 29, 3, 0, tzinfo=UTC))


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("5555555555554444")
    assert luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112")
    assert not luhn_ok("41111x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111 1111 1111 1111, expiry soon", "my card is [CARD], expiry soon"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("amex 378282246310005", "amex [CARD]"),
        ("ssn 123-45-6789 ok", "ssn [SSN] ok"),
        ("ssn 123 45 6789", "ssn [SSN]"),
        ("call (555) 123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
        ("my number is +44 20 7946 0958", "my number is [PHONE]"),
        ("or 5551234567", "or [PHONE]"),
        ("mail ann.lee+x@example.co.uk now", "mail [EMAIL] now"),
        ("NI number AB 12 34 56 C", "NI number [ID]"),
    ],
)
def test_redaction(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "book next Tuesday at 3 p.m.",
        "appointment on 2026-12-01 at 15:00",
        "order number 456, confirmation code K7Q2",
        "it costs 1,100 dollars",
        "card ending 4111 1111 1111 1112",  # fails Luhn: not a card (and not a phone)
        "ssn-like 000-12-3456",  # invalid area number
    ],
)
def test_redaction_leaves_ordinary_text(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_configurable() -> None:
    r = Redaction(phones=False, national_ids={}).redactor()
    assert r("call 555-123-4567, card 4111111111111111") == "call 555-123-4567, card [CARD]"
    assert r("AB 12 34 56 C") == "AB 12 34 56 C"
    assert Redaction(enabled=False).redactor()("4111111111111111") == "4111111111111111"


def test_logging_filter_redacts(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("caller said %s", "my card is 4111 1111 1111 1111")
    assert caplog.records[-1].getMessage() == "caller said my card is [CARD]"
