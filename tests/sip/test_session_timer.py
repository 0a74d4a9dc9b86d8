"""RFC 4028 session timers without sockets or clocks: negotiation from headers, deadlines."""

from __future__ import annotations

import pytest

from voxgate.sip.message import SipRequest, SipResponse, make_response, parse_message
from voxgate.sip.session_timer import (
    Agreement,
    RefreshDue,
    SessionExpired,
    SessionExpires,
    SessionTimer,
    SessionTimerPolicy,
    TooSmall,
    min_se_of,
    negotiate_uac,
    negotiate_uas,
    retry_with_interval,
)


def _invite(*headers: str) -> SipRequest:
    text = "\r\n".join([
        "INVITE sip:agent@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
        "From: <sip:a@127.0.0.1>;tag=1", "To: <sip:agent@127.0.0.1>", "Call-ID: c1",
        "CSeq: 5 INVITE", "Contact: <sip:a@127.0.0.1:5070>", "Max-Forwards: 70", *headers,
        "Content-Length: 0", "", "",
    ])  # fmt: skip
    message = parse_message(text.encode())
    assert isinstance(message, SipRequest)
    return message


def _ok(request: SipRequest, *headers: tuple[str, str]) -> SipResponse:
    return make_response(request, 200, to_tag="t", headers=list(headers))


POLICY = SessionTimerPolicy(interval=1800, min_se=90)


def test_parse_and_print_session_expires() -> None:
    assert SessionExpires.parse("1800;refresher=UAS") == SessionExpires(1800, "uas")
    assert SessionExpires.parse(" 600 ; foo=1") == SessionExpires(600, None)
    assert str(SessionExpires(90, "uac")) == "90;refresher=uac"
    for bad in ("", "abc", "-5", "1e3;refresher=uac", "9999999999"):
        with pytest.raises(ValueError):
            SessionExpires.parse(bad)


def test_uas_honours_requested_interval_and_refresher() -> None:
    invite = _invite("Supported: timer", "Session-Expires: 600;refresher=uas")
    agreed = negotiate_uas(invite, POLICY)
    assert agreed == Agreement(600, "uas", we_refresh=True)
    assert agreed.response_headers() == [("Session-Expires", "600;refresher=uas")]


def test_uas_lets_a_timer_capable_uac_refresh_and_requires_timer() -> None:
    agreed = negotiate_uas(_invite("Supported: 100rel, timer", "Session-Expires: 300"), POLICY)
    assert agreed == Agreement(300, "uac", we_refresh=False)
    assert ("Require", "timer") in agreed.response_headers()


def test_uas_refreshes_itself_when_the_uac_cannot() -> None:
    # A proxy inserted Session-Expires, the UAC does not support timers (section 9).
    assert negotiate_uas(_invite("Session-Expires: 300;refresher=uac"), POLICY) == Agreement(300, "uas", True)


def test_uas_inserts_a_timer_when_none_was_asked_for() -> None:
    assert negotiate_uas(_invite(), POLICY) == Agreement(1800, "uas", True)
    assert negotiate_uas(_invite("Supported: timer"), POLICY) == Agreement(1800, "uac", False)
    # The request's Min-SE raises what we insert.
    assert negotiate_uas(_invite("Min-SE: 2000"), POLICY) == Agreement(2000, "uas", True)
    assert negotiate_uas(_invite(), SessionTimerPolicy(enabled=False)) is None


def test_uas_answers_422_below_min_se() -> None:
    assert negotiate_uas(_invite("Supported: timer", "Session-Expires: 89"), POLICY) == TooSmall(90)
    assert TooSmall(90).headers() == [("Min-SE", "90")]
    with pytest.raises(ValueError):
        negotiate_uas(_invite("Session-Expires: soon"), POLICY)


def test_uac_reads_the_2xx() -> None:
    invite = _invite()
    assert negotiate_uac(_ok(invite, ("Session-Expires", "120;refresher=uac"))) == Agreement(120, "uac", True)
    assert negotiate_uac(_ok(invite, ("Session-Expires", "120;refresher=uas"))) == Agreement(120, "uas", False)
    assert negotiate_uac(_ok(invite)) is None


def test_request_headers_and_422_retry() -> None:
    assert POLICY.request_headers() == [
        ("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90"),
    ]  # fmt: skip
    assert SessionTimerPolicy(enabled=False).request_headers() == [("Supported", "timer")]
    invite = _invite("Session-Expires: 100", "Min-SE: 90")
    too_small = make_response(invite, 422, to_tag="t", headers=[("Min-SE", "300")])
    assert min_se_of(too_small) == 300
    retry = retry_with_interval(invite, 300, "z9hG4bKretry")
    assert retry.headers.get("Session-Expires") == "300" and retry.headers.get("Min-SE") == "300"
    assert retry.cseq.number == 6 and retry.via.branch == "z9hG4bKretry"
    assert invite.headers.get("Session-Expires") == "100"  # the original is untouched


def test_refresher_refreshes_at_half_then_expires_without_success() -> None:
    timer = SessionTimer()
    timer.start(Agreement(90, "uas", we_refresh=True), now=1000.0)
    assert timer.next_timer() == 1045.0
    assert timer.handle_timer(1044.9) == []
    assert timer.handle_timer(1045.0) == [RefreshDue(90)]
    # No successful refresh: give up where the far end would send BYE (90 - min(32, 30)).
    assert timer.next_timer() == 1060.0
    assert timer.handle_timer(1060.0) == [SessionExpired(90)]
    assert timer.next_timer() is None and timer.handle_timer(2000.0) == []


def test_successful_refresh_moves_the_deadlines() -> None:
    timer = SessionTimer()
    timer.start(Agreement(1800, "uac", we_refresh=False), now=0.0)
    assert timer.next_timer() == 1800 - 32  # BYE 32 s before the end when not refresher
    timer.start(Agreement(1800, "uac", we_refresh=False), now=900.0)  # the far end refreshed
    assert timer.refreshes == 1
    assert timer.handle_timer(1767.9) == []
    assert timer.handle_timer(2668.0) == [SessionExpired(1800)]


def test_stop_clears_everything() -> None:
    timer = SessionTimer()
    timer.start(Agreement(90, "uas", we_refresh=True), now=0.0)
    timer.stop()
    assert timer.next_timer() is None and timer.handle_timer(1e9) == []
