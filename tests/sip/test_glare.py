"""Glare rules for re-offers (RFC 3261 14.1/14.2, RFC 3311 5.2) on a virtual clock.

The guard is pure: times and the random draw are arguments, so every case runs without
sockets or sleeps and the back-off bounds are checked exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from voxgate.sip.glare import OfferGuard, Refusal, retry_delay


def _draws(*values: int) -> Callable[[int], int]:
    """A ``randbelow`` that returns ``values`` in turn and checks each is below the bound."""
    it = iter(values)

    def randbelow(bound: int) -> int:
        value = next(it)
        assert 0 <= value < bound, (value, bound)
        return value

    return randbelow


# -- (a) their re-INVITE while ours is pending: 491 --------------------------------------------


def test_their_reinvite_while_ours_is_in_flight_gets_491() -> None:
    guard = OfferGuard(owns_call_id=False)
    guard.sending(now=10.0)
    assert guard.receive("INVITE", 2, has_offer=True) == Refusal(491)
    assert guard.receive("INVITE", 3, has_offer=False) == Refusal(491)  # it would need our offer
    assert guard.receive("UPDATE", 4, has_offer=True) == Refusal(491)  # RFC 3311 5.2
    assert Refusal(491).headers() == []


def test_update_without_offer_is_not_glare() -> None:
    """A session-refresh UPDATE opens no offer/answer exchange (RFC 3311 5.2)."""
    guard = OfferGuard(owns_call_id=True)
    guard.sending(now=0.0)
    assert guard.receive("UPDATE", 2, has_offer=False) is None


def test_their_reinvite_while_our_offer_waits_for_the_ack_gets_491() -> None:
    """Our offer in a 2xx (their INVITE had none) is open until the ACK brings the answer."""
    guard = OfferGuard(owns_call_id=False)
    assert guard.receive("INVITE", 3, has_offer=True, awaiting_answer=True) == Refusal(491)
    assert guard.receive("UPDATE", 4, has_offer=True, awaiting_answer=True) == Refusal(491)
    assert guard.receive("INVITE", 5, has_offer=True, awaiting_answer=False) is None


def test_ours_waits_while_our_offer_in_a_2xx_waits_for_the_ack() -> None:
    guard = OfferGuard(owns_call_id=True)
    assert guard.next_offer_at(5.0, awaiting_answer=True) is None
    with pytest.raises(RuntimeError):
        guard.sending(now=5.0, awaiting_answer=True)
    assert guard.next_offer_at(5.1, awaiting_answer=False) == 5.1


def test_their_reinvite_is_accepted_once_ours_has_its_answer() -> None:
    guard = OfferGuard(owns_call_id=False)
    guard.sending(now=0.0)
    assert guard.response(200, now=0.1) is None
    assert guard.receive("INVITE", 2, has_offer=True) is None


# -- (b) our re-INVITE gets 491: back off by Call-ID ownership, then offer again -----------------


def test_retry_delay_owner_waits_2_1_to_4_s_in_10_ms_steps() -> None:
    assert retry_delay(True, _draws(0)) == 2.1
    assert retry_delay(True, _draws(190)) == 4.0
    assert retry_delay(True, _draws(55)) == 2.65


def test_retry_delay_non_owner_waits_0_to_2_s_in_10_ms_steps() -> None:
    assert retry_delay(False, _draws(0)) == 0.0
    assert retry_delay(False, _draws(200)) == 2.0
    assert retry_delay(False, _draws(7)) == 0.07


@pytest.mark.parametrize(("owner", "low", "high"), [(True, 2.1, 4.0), (False, 0.0, 2.0)])
def test_retry_delay_with_the_real_random_source_stays_in_range(owner: bool, low: float, high: float) -> None:
    delays = {retry_delay(owner, secrets.randbelow) for _ in range(2000)}
    assert all(low <= d <= high for d in delays)
    assert all(abs(d * 100 - round(d * 100)) < 1e-6 for d in delays)  # 10 ms units
    assert len(delays) > 50  # random, not a constant


@pytest.mark.parametrize(("owner", "draw", "delay"), [(True, 40, 2.5), (False, 150, 1.5)])
def test_491_schedules_the_retry_on_the_virtual_clock(owner: bool, draw: int, delay: float) -> None:
    guard = OfferGuard(owns_call_id=owner, randbelow=_draws(draw))
    assert guard.next_offer_at(100.0) == 100.0
    guard.sending(now=100.0)
    retry_at = guard.response(491, now=100.2)
    assert retry_at == pytest.approx(100.2 + delay)
    # Before the deadline our re-INVITE may not go; the deadline is the timer to arm.
    assert guard.next_offer_at(100.3) == retry_at
    with pytest.raises(RuntimeError):
        guard.sending(now=100.3)
    # During the back-off the far end's re-INVITE (the glare winner) goes through.
    assert guard.receive("INVITE", 7, has_offer=True) is None
    guard.answered(7)
    # At the deadline the same offer may go again, and a 200 clears the back-off.
    assert retry_at is not None
    assert guard.next_offer_at(retry_at) == retry_at
    guard.sending(now=retry_at)
    assert guard.response(200, now=retry_at + 0.05) is None
    assert guard.next_offer_at(retry_at + 0.1) == retry_at + 0.1


def test_other_failures_schedule_no_retry() -> None:
    guard = OfferGuard(owns_call_id=True)
    for status in (488, 500, 408, 481):
        guard.sending(now=1.0)
        assert guard.response(status, now=1.1) is None
        assert guard.next_offer_at(1.2) == 1.2


def test_a_transport_failure_frees_the_guard() -> None:
    guard = OfferGuard(owns_call_id=True)
    guard.sending(now=1.0)
    guard.sent_failed()
    assert guard.receive("INVITE", 2, has_offer=True) is None


def test_two_sends_at_once_are_a_caller_bug() -> None:
    guard = OfferGuard(owns_call_id=True)
    guard.sending(now=1.0)
    with pytest.raises(RuntimeError):
        guard.sending(now=1.0)


# -- (c) their second re-INVITE before we answered the first: 500 + Retry-After -----------------


def test_second_reinvite_before_the_first_is_answered_gets_500_with_retry_after() -> None:
    guard = OfferGuard(owns_call_id=False, randbelow=_draws(7, 10, 0))
    assert guard.receive("INVITE", 5, has_offer=True) is None  # open until answered(5)
    refusal = guard.receive("INVITE", 6, has_offer=True)
    assert refusal == Refusal(500, retry_after=7)
    assert refusal.headers() == [("Retry-After", "7")]
    assert guard.receive("INVITE", 7, has_offer=False) == Refusal(500, retry_after=10)
    assert guard.receive("UPDATE", 8, has_offer=True) == Refusal(500, retry_after=0)  # RFC 3311
    assert guard.receive("UPDATE", 9, has_offer=False) is None
    # Nor may ours start while theirs is open (section 14.1: one INVITE at a time).
    assert guard.next_offer_at(3.0) is None
    with pytest.raises(RuntimeError):
        guard.sending(now=3.0)
    guard.answered(5)
    assert guard.next_offer_at(3.0) == 3.0
    assert guard.receive("INVITE", 10, has_offer=True) is None


def test_retry_after_is_drawn_from_0_to_10_s() -> None:
    values = set()
    for _ in range(500):
        guard = OfferGuard(owns_call_id=True)
        assert guard.receive("INVITE", 1, has_offer=True) is None
        refusal = guard.receive("INVITE", 2, has_offer=True)
        assert refusal is not None and refusal.status == 500 and refusal.retry_after is not None
        values.add(refusal.retry_after)
    assert values <= set(range(11)) and len(values) > 5


def test_answering_another_cseq_leaves_the_open_invite_open() -> None:
    guard = OfferGuard(owns_call_id=False, randbelow=_draws(3))
    assert guard.receive("INVITE", 5, has_offer=True) is None
    guard.answered(4)
    assert guard.receive("INVITE", 6, has_offer=True) == Refusal(500, retry_after=3)
