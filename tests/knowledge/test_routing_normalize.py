"""Routing by example phrasings (``EmbeddingRouter``, ``FirstRouter``) and the receptionist's
normalisation of spoken days and times."""

from __future__ import annotations

from datetime import date, time

import pytest
from examples.receptionist.normalize import (
    code_in,
    dates_in,
    ground,
    name_in,
    numbers_in,
    parse_date,
    parse_time,
    read_when,
    times_in,
)

from voxgate.knowledge.embeddings import HashEmbedder
from voxgate.knowledge.runtime import EmbeddingRouter, FirstRouter, KeywordRouter, Route

WEDNESDAY = date(2026, 11, 25)


def test_embedding_router_nearest_example_and_no_tool_label() -> None:
    router = EmbeddingRouter(
        HashEmbedder(),
        {
            "cancel_appointment": ["cancel my appointment", "drop my visit"],
            "check_order_status": ["status of my lab order"],
            None: ["what are your opening hours"],
        },
        min_score=0.3,
    )
    assert router("please drop my visit on monday") == "cancel_appointment"
    assert router("what is the status of lab order 12") == "check_order_status"
    assert router("what are your opening hours on friday") is None  # the no-tool label
    assert router("zebra") is None  # nothing near enough
    assert router("  ") is None
    scores = router.scores("cancel my appointment")
    assert scores["cancel_appointment"] == pytest.approx(1.0)


def test_first_router_takes_the_first_that_names_a_tool() -> None:
    keywords = KeywordRouter([(r"\bcancel", "cancel_appointment")])
    fallback = EmbeddingRouter(HashEmbedder(), {"book_appointment": ["book an appointment"]}, min_score=0.3)
    router = FirstRouter(keywords, fallback)
    assert router("cancel and book an appointment") == "cancel_appointment"
    assert router("book an appointment friday") == "book_appointment"
    assert router("hello") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quarter past ten in the morning", time(10, 15)),
        ("a quarter to four", time(15, 45)),
        ("quarter after 9", time(9, 15)),
        ("half past two", time(14, 30)),
        ("half past seven p.m.", time(19, 30)),
    ],
)
def test_parse_time_quarters(text: str, expected: time) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("second of December", date(2026, 12, 2)),
        ("the twenty second of december", date(2026, 12, 22)),
        ("December 8th, 2023", date(2026, 12, 8)),  # a year the model made up
        ("December 8th, 2027", date(2027, 12, 8)),  # a future year is kept
        ("4 December", date(2026, 12, 4)),
    ],
)
def test_parse_date_ordinals_and_invented_years(text: str, expected: date) -> None:
    assert parse_date(text, WEDNESDAY) == expected


def test_read_when_looks_in_both_arguments() -> None:
    assert read_when("Friday morning at nine thirty", "checkup", WEDNESDAY) == (date(2026, 11, 27), time(9, 30))
    assert read_when("tomorrow", "2:45 AM", WEDNESDAY) == (date(2026, 11, 26), time(14, 45))
    assert read_when("whenever", "3 pm", WEDNESDAY) == (None, time(15, 0))
    assert read_when("next Tuesday", "", WEDNESDAY) == (date(2026, 12, 1), None)


@pytest.mark.parametrize(
    ("tool", "args", "said", "expected"),
    [
        (  # the time put into the date, a made-up time in the time
            "book_appointment", {"date": "Tuesday, half past two", "time": "10:00 AM"},
            ["Could I get in next Tuesday, maybe around half past two?"], {"date": "2026-12-01", "time": "14:30"},
        ),
        (  # nothing said: nothing invented (the tool asks)
            "book_appointment", {"date": "2023-10-15", "time": "14:00", "name": "John Doe"},
            ["I'd like to make an appointment."], {"date": "", "time": "", "name": ""},
        ),
        (  # a move: the day said last is the new one
            "reschedule_appointment", {"date": "Tuesday", "time": "ten thirty", "name_or_code": ""},
            ["Can you move me from Tuesday to Friday, ten thirty?"], {"date": "2026-11-27", "time": "10:30"},
        ),
        (  # a spelled code the model did not copy
            "cancel_appointment", {"name_or_code": "1234567890"},
            ["Cancel it please, the code is four X nine B."], {"name_or_code": "4X9B"},
        ),
        (  # said in an earlier turn: kept
            "book_appointment", {"date": "Friday", "time": "ten"},
            ["Anything on Friday?", "Ten works, book it."], {"date": "2026-11-27", "time": "10:00"},
        ),
        ("check_order_status", {"order_number": "two three"}, ["order one two three"], {"order_number": "123"}),
        ("cancel_appointment", {"name_or_code": "Maria Garcia"}, ["Cancel for Maria Garcia"], {"name_or_code": "Maria Garcia"}),
    ],
)
def test_ground_checks_arguments_against_the_callers_words(
    tool: str, args: dict[str, object], said: list[str], expected: dict[str, object]
) -> None:
    out = ground(tool, args, said, WEDNESDAY)
    assert {k: out[k] for k in expected} == expected


def test_spoken_values_in_text() -> None:
    assert dates_in("from Tuesday to Friday", WEDNESDAY) == [date(2026, 12, 1), date(2026, 11, 27)]
    assert times_in("at nine, or a quarter past ten in the morning") == [time(9, 0), time(10, 15), time(10, 0)]
    assert numbers_in("order four five six, not 7") == ["456", "7"]
    assert code_in("My code's D 9 L 4, I think") == "D9L4"
    assert code_in("I need a cleaning") == ""


def test_name_introduced_by_the_caller() -> None:
    assert name_in("Book me in for Friday. My name is Sarah O'Neil.") == "Sarah O'Neil"
    assert name_in("Hello, this is Tom Baker, I need a filling") == "Tom Baker"
    assert name_in("this is about my crown") == ""
    out = ground("book_appointment", {"date": "Friday", "time": "3 pm", "name": ""},
                 ["Friday at 3 pm please, my name is Ana Lee."], WEDNESDAY)
    assert out["name"] == "Ana Lee"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the day after tomorrow", date(2026, 11, 27)),
        ("in three days", date(2026, 11, 28)),
        ("two days from now", date(2026, 11, 27)),
        ("a week from today", date(2026, 12, 2)),
        ("a week from tomorrow", date(2026, 12, 3)),
        ("a week from Friday", date(2026, 12, 4)),
        ("in two weeks", date(2026, 12, 9)),
        ("this afternoon", WEDNESDAY),
        ("the thirty first", date(2026, 12, 31)),  # November has no 31st
    ],
)
def test_parse_date_relative_days(text: str, expected: date) -> None:
    assert parse_date(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thursday the third", date(2026, 12, 3)),  # the weekday used to win: Thursday Nov 26
        ("Monday the thirtieth", date(2026, 11, 30)),
        ("Thursday the 3rd", date(2026, 12, 3)),
        ("Friday the third", date(2026, 12, 3)),  # no Friday the 3rd soon: the day of the month
        ("Tuesday, December 3rd", date(2026, 12, 3)),  # a month said: the date as said
        ("Tuesday", date(2026, 12, 1)),
    ],
)
def test_parse_date_weekday_with_day_of_month(text: str, expected: date) -> None:
    assert parse_date(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ten past eleven", time(11, 10)),
        ("twenty to four", time(15, 40)),
        ("five after nine in the morning", time(9, 5)),
        ("a quarter of ten", time(9, 45)),  # American: 9:45
        ("twenty five past two", time(14, 25)),
        ("at eleven oh five", time(11, 5)),
        ("at nine twenty", time(9, 20)),
        ("nine forty-five a.m.", time(9, 45)),
        ("around ten", time(10, 0)),
        ("from ten to four", None),  # a range, not 3:50
        ("order four five six", None),
    ],
)
def test_parse_time_minutes_as_words(text: str, expected: time | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("tool", "args", "said", "expected"),
    [
        (  # a self-correction: the day said after it wins over the one the model copied
            "book_appointment", {"date": "Monday", "time": "two"},
            ["Monday at two, no wait, make that Tuesday at four."], {"date": "2026-12-01", "time": "16:00"},
        ),
        (  # only the time corrected: the day stays
            "book_appointment", {"date": "Friday", "time": "ten"},
            ["Friday at ten, sorry, I mean eleven."], {"date": "2026-11-27", "time": "11:00"},
        ),
        (  # a move names only the day it moves from: no new day invented
            "reschedule_appointment", {"date": "Friday", "time": "3 pm"},
            ["I need to move my Friday appointment."], {"date": "", "time": ""},
        ),
        (
            "reschedule_appointment", {"date": "Friday", "time": "10"},
            ["Can my Friday appointment go to Monday at 10?"], {"date": "2026-11-30", "time": "10:00"},
        ),
        (  # a word copied from the request is not a name; the introduced one is
            "book_appointment", {"date": "Friday", "time": "11", "name": "Dentist"},
            ["I want to see the dentist Friday at eleven, the name's Ravi Shah."], {"name": "Ravi Shah"},
        ),
        (  # the model left the booking's name out
            "cancel_appointment", {}, ["Cancel the one under Priya Raman please."], {"name_or_code": "Priya Raman"},
        ),
        (  # a letter spelled "as in"
            "cancel_appointment", {"name_or_code": "Bravo"},
            ["Cancel it, code B as in Bravo, 7, K, 3."], {"name_or_code": "B7K3"},
        ),
    ],
)
def test_ground_corrections_moves_and_names(
    tool: str, args: dict[str, object], said: list[str], expected: dict[str, object]
) -> None:
    out = ground(tool, args, said, WEDNESDAY)
    assert {k: out[k] for k in expected} == expected


def test_dates_in_counts_a_compound_day_once() -> None:
    assert dates_in("come in the day after tomorrow, at eleven", WEDNESDAY) == [date(2026, 11, 27)]
    assert dates_in("move my Friday slot to Thursday the third", WEDNESDAY) == [date(2026, 11, 27), date(2026, 12, 3)]
    assert dates_in("a week from Friday or tomorrow", WEDNESDAY) == [date(2026, 12, 4), date(2026, 11, 26)]
    assert parse_date("Thursday, 3rd", WEDNESDAY) == date(2026, 12, 3)  # the model's way of writing it


def test_embedding_router_is_sure_only_when_clearly_nearest() -> None:
    router = EmbeddingRouter(
        HashEmbedder(),
        {
            "cancel_appointment": ["cancel my appointment"],
            "reschedule_appointment": ["move my appointment"],
            None: ["what are your opening hours"],
        },
        min_score=0.3,
        sure_score=0.6,
        sure_margin=0.1,
    )
    assert router.decide("cancel my appointment") == Route("cancel_appointment", sure=True)
    close = router.decide("my appointment")  # as near one tool as the other: a hint only
    assert close is not None and not close.sure
    assert router.decide("opening hours") == Route(None, sure=True)  # the no-tool label: sure when nearest
    assert router.decide("zebra") is None


def test_ground_a_day_copied_from_inside_a_compound_day() -> None:
    # "tomorrow" is a word the caller said, but only inside "the day after tomorrow"
    out = ground("book_appointment", {"date": "tomorrow", "time": "11:30"},
                 ["I want to come in the day after tomorrow at eleven thirty."], WEDNESDAY)
    assert (out["date"], out["time"]) == ("2026-11-27", "11:30")
    out = ground("check_availability", {"date": "today"}, ["Anything a week from today?"], WEDNESDAY)
    assert out["date"] == "2026-12-02"
