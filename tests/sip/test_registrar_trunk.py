"""Registrar bindings and trunk registration on a fake clock (no sockets)."""

from __future__ import annotations

from pydantic import SecretStr

from voxgate.config import SipTrunk
from voxgate.sip import DigestChallenger, Password, build_register, make_response
from voxgate.sip.call import end_reason_for_status, parse_dtmf_info
from voxgate.sip.registrar import Registrar
from voxgate.sip.trunk import TrunkRegistration, refresh_after, trunk_target
from voxgate.sip.uri import NameAddress, SipUri, parse_name_addr


def _register(contact: str, *, expires: int = 600, cseq: int = 1, call_id: str = "c1", user: str = "alice"):  # type: ignore[no-untyped-def]
    return build_register(
        "sip:voxgate.test", aor=f"<sip:{user}@voxgate.test>", contact=contact, expires=expires,
        transport="udp", sent_by=("192.0.2.1", 5060), call_id=call_id, cseq=cseq,
    )  # fmt: skip


def test_binding_lifecycle() -> None:
    reg = Registrar(min_expires=60, max_expires=3600)
    ok = reg.register(_register("<sip:alice@192.0.2.1:5062>"), "alice", 100.0)
    assert ok.status == 200
    assert "expires=600" in (ok.headers.get("Contact") or "")
    assert [str(b.contact.uri) for b in reg.lookup("alice", 200.0)] == ["sip:alice@192.0.2.1:5062"]
    assert reg.lookup("alice", 701.0) == []  # expired


def test_too_brief_too_long_and_foreign_aor() -> None:
    reg = Registrar(min_expires=60, max_expires=3600)
    brief = reg.register(_register("<sip:a@192.0.2.1>", expires=10), "alice", 0.0)
    assert (brief.status, brief.headers.get("Min-Expires")) == (423, "60")
    long = reg.register(_register("<sip:a@192.0.2.1>", expires=99999), "alice", 0.0)
    assert "expires=3600" in (long.headers.get("Contact") or "")
    assert reg.register(_register("<sip:a@192.0.2.1>", user="bob"), "alice", 0.0).status == 403


def test_out_of_order_register_cannot_resurrect_binding() -> None:
    reg = Registrar()
    reg.register(_register("<sip:a@192.0.2.1>", cseq=5), "alice", 0.0)
    reg.register(_register("<sip:a@192.0.2.1>", cseq=6, expires=0), "alice", 1.0)
    reg.register(_register("<sip:a@192.0.2.1>", cseq=5), "alice", 2.0)  # late retransmission
    assert reg.lookup("alice", 3.0) == []


def test_wildcard_removes_all() -> None:
    reg = Registrar()
    reg.register(_register("<sip:a@192.0.2.1>"), "alice", 0.0)
    reg.register(_register("<sip:a@192.0.2.9>", call_id="other"), "alice", 0.0)
    wildcard = _register("<sip:x@192.0.2.1>", expires=0, cseq=2)
    wildcard.headers.set("Contact", "*")
    assert reg.register(wildcard, "alice", 1.0).status == 200
    assert reg.lookup("alice", 1.0) == []


def _trunk(**kw: object) -> SipTrunk:
    base: dict[str, object] = {"name": "carrier", "host": "192.0.2.50", "username": "acct", "password": SecretStr("pw"), "registration": True, "register_expires": 300}
    base.update(kw)
    return SipTrunk(**base)  # type: ignore[arg-type]


def test_trunk_registration_answers_challenge_and_refreshes() -> None:
    trunk = _trunk()
    reg = TrunkRegistration(
        trunk, contact=parse_name_addr("<sip:voxgate@198.51.100.1:5060>"), transport="udp",
        sent_by=("198.51.100.1", 5060),
    )  # fmt: skip
    server = DigestChallenger("carrier", b"k" * 32, lambda u, r: Password("pw") if u == "acct" else None)
    first = reg.request()
    assert first.cseq.number == 1 and first.headers.get("Expires") == "300"
    retry = reg.challenge(first, server.challenge_response(first, 10.0))
    assert retry is not None and retry.cseq.number == 2 and retry.call_id == first.call_id
    assert server.verify(retry, 10.0).ok
    granted = make_response(retry, 200, to_tag="t", headers=[("Contact", "<sip:voxgate@198.51.100.1:5060>;expires=120")])
    reg.on_response(retry, granted, 10.0)
    assert reg.registered and reg.next_at == 10.0 + refresh_after(120) == 70.0
    again = reg.request()
    assert again.cseq.number == 3 and again.call_id == first.call_id  # same Call-ID, CSeq up
    reg.on_response(again, make_response(again, 503), 70.0)
    assert reg.registered  # still inside the granted interval
    assert reg.next_at == 100.0  # retried after 30 s
    assert refresh_after(3600) == 3540.0


def test_trunk_target_and_helpers() -> None:
    trunk = _trunk(port=5070)
    assert str(trunk_target(trunk, "+15551234")) == "sip:+15551234@192.0.2.50:5070"
    assert str(trunk_target(trunk, "sip:bob@example.com")) == "sip:bob@example.com"
    assert isinstance(trunk_target(_trunk(from_domain="sip.carrier.test"), "100"), SipUri)
    assert end_reason_for_status(486) == "busy" and end_reason_for_status(503) == "unavailable"
    assert end_reason_for_status(408) == "no_answer" and end_reason_for_status(499) == "failed_499"
    assert parse_dtmf_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n") == ("5", 160)
    assert parse_dtmf_info("application/dtmf-relay", b"Signal=11\r\n") == ("#", 250)
    assert parse_dtmf_info("application/dtmf", b"*") == ("*", 250)
    assert parse_dtmf_info("application/dtmf-relay", b"Signal=X") is None
    assert parse_dtmf_info("text/plain", b"1") is None
    assert NameAddress(SipUri("h")).tag is None


def test_lenient_digest_uri_accepts_only_same_host() -> None:
    """sipp 3.6 answers with uri=sip:host:port for a request to sip:user@host:port."""
    from voxgate.sip import authorize, build_invite

    invite = build_invite(
        "sip:agent@192.0.2.7:5060", contact="<sip:a@192.0.2.1>", from_="<sip:a@192.0.2.1>",
        to="<sip:agent@192.0.2.7>", transport="udp", sent_by=("192.0.2.1", 5060),
    )  # fmt: skip
    for lenient, uri, ok in [(True, "sip:192.0.2.7:5060", True), (False, "sip:192.0.2.7:5060", False),
                             (True, "sip:192.0.2.8:5060", False)]:  # fmt: skip
        server = DigestChallenger("r", b"s" * 32, lambda u, r: Password("pw"), algorithms=("MD5",), lenient_uri=lenient)
        signed = authorize(invite, server.challenge_response(invite, 1.0), username="u", password="pw")
        assert signed is not None
        value = signed.headers.get("Authorization") or ""
        # Re-sign for the stated uri, the way sipp does.
        from voxgate.sip.auth import DigestChallenge, build_credentials

        challenge = DigestChallenge.parse(server.challenges(1.0)[0])
        creds = build_credentials(challenge, method="INVITE", uri=uri, username="u", password="pw", cnonce="c")
        signed.headers.set("Authorization", str(creds))
        assert value
        assert server.verify(signed, 1.0).ok is ok
