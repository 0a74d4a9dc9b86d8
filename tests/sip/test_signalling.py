"""Pure SIP call rules: BYE reasons, Refer-To users, Allow lists, sipfrag, rate limits."""

from __future__ import annotations

from voxgate.sip.message import make_response
from voxgate.sip.ratelimit import SourceRateLimiter
from voxgate.sip.requests import build_invite
from voxgate.sip.signalling import (
    SUPPORTED,
    allows,
    bye_reason,
    end_reason_for_status,
    refer_user,
    sipfrag_status,
)


def test_bye_reason_names_the_failure() -> None:
    assert bye_reason("incompatible_media") == 'SIP;cause=488;text="incompatible_media"'
    assert bye_reason("session_expired") == 'SIP;cause=408;text="session_expired"'
    assert bye_reason("agent_hangup") == 'Q.850;cause=16;text="agent_hangup"'
    assert bye_reason('x"y') == 'Q.850;cause=16;text="xy"'  # no quote breaks the header
    assert end_reason_for_status(422) == "session_interval_too_small"


def test_refer_user() -> None:
    assert refer_user("<sip:1000@10.0.0.1;transport=udp>") == "1000"
    assert refer_user("sip:alice@example.com") == "alice"
    assert refer_user("<sip:example.com>") is None  # no user: nothing to match a target
    assert refer_user("<tel:+15551234>") is None
    assert refer_user("<<garbage") is None
    assert refer_user(None) is None


def test_allows_and_supported() -> None:
    invite = build_invite(
        "sip:a@127.0.0.1", contact="<sip:b@127.0.0.1>", from_="<sip:b@127.0.0.1>",
        to="<sip:a@127.0.0.1>", transport="udp", sent_by=("127.0.0.1", 5060),
        headers=[("Allow", "INVITE, ACK"), ("Allow", "bye,update")],
    )  # fmt: skip
    assert allows(invite, "UPDATE") and allows(invite, "BYE") and not allows(invite, "REFER")
    assert not allows(make_response(invite, 200, to_tag="t"), "UPDATE")
    assert "100rel" not in SUPPORTED.split(", ")


def test_sipfrag_status() -> None:
    assert sipfrag_status(b"SIP/2.0 200 OK\r\n") == 200
    assert sipfrag_status(b"SIP/2.0 100 Trying") == 100
    assert sipfrag_status(b"hello") is None


def test_rate_limiter_bursts_then_refills() -> None:
    limiter = SourceRateLimiter(2.0)
    assert [limiter.allow("a", 0.0) for _ in range(5)] == [True, True, True, True, False]
    assert limiter.allow("b", 0.0)  # another source has its own bucket
    assert not limiter.allow("a", 0.4)  # 0.8 token refilled: not yet one
    assert limiter.allow("a", 0.6)
