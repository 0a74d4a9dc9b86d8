"""The receptionist's router (``routing.py``): which tool, if any, a caller's words ask for.

The phrasal patterns decide these (the meaning fallback runs on a bag-of-words stand-in
here, so a pattern that failed would show up as a wrong or missing route). The phrasings
are not from the benchmark sets."""

from __future__ import annotations

import pytest
from examples.receptionist.routing import ReceptionistRouter

from voxgate.knowledge.embeddings import HashEmbedder
from voxgate.knowledge.runtime import Route


@pytest.fixture(scope="module")
def router() -> ReceptionistRouter:
    return ReceptionistRouter(HashEmbedder())


@pytest.mark.parametrize(
    ("text", "tool"),
    [
        # questions about the clinic: no tool, even when they name a request's words
        ("What's your policy if I have to cancel?", None),
        ("Is there a charge for rescheduling?", None),
        ("How long does a filling take?", None),
        ("Do you guys accept MetLife?", None),
        ("Are you open on Saturdays?", None),
        # lab orders
        ("Is my denture ready yet?", "check_order_status"),
        ("I'm calling about lab order two one nine", "check_order_status"),
        # moves: verbs with the object in between, "instead"
        ("Can we push the cleaning to next week?", "reschedule_appointment"),
        ("Could we do Monday instead?", "reschedule_appointment"),
        ("I can't make it Thursday, how about Friday at nine?", "reschedule_appointment"),
        ("I'd like to change my appointment", "reschedule_appointment"),
        # cancellations without the word "cancel"
        ("Please call my visit off", "cancel_appointment"),
        ("Take me off the books for Monday", "cancel_appointment"),
        ("I no longer need the check-up", "cancel_appointment"),
        ("I won't be able to make it tomorrow", "cancel_appointment"),
        # free times
        ("What do you have open on Friday?", "check_availability"),
        ("How's Thursday looking?", "check_availability"),
        ("Are you fully booked on Monday?", "check_availability"),
        ("When could the dentist see me?", "check_availability"),
        # bookings: the verb, phrasal verbs, or a day with a time
        ("Could you schedule me for Friday?", "book_appointment"),
        ("Pencil me in for the 9th", "book_appointment"),
        ("Monday at half past two works for me", "book_appointment"),
        ("I need an appointment", "book_appointment"),
    ],
)
def test_routes(router: ReceptionistRouter, text: str, tool: str | None) -> None:
    route = router.decide(text)
    assert route == Route(tool, sure=True)
    assert router(text) == tool


def test_schedule_as_a_noun_is_not_a_booking(router: ReceptionistRouter) -> None:
    route = router.decide("How does your schedule look on Tuesday?")
    assert route is not None and route.tool == "check_availability"


def test_no_pattern_falls_back_to_meaning(router: ReceptionistRouter) -> None:
    assert router.decide("   ") is None
    assert router.decide("I'm all set, thanks") == Route("end_call", sure=True)  # an example phrasing
