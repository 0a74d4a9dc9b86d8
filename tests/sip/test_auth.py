"""Digest authentication: RFC test vectors, the stateless challenger, and the client side."""

from __future__ import annotations

import pytest

from voxgate.sip import SipRequest, SipResponse, parse_message
from voxgate.sip.auth import (
    DigestChallenge,
    DigestChallenger,
    DigestCredentials,
    Ha1,
    Password,
    authorize,
    compute_ha1,
    compute_response,
)
from voxgate.sip.errors import SipParseError


def test_rfc2617_section_3_5_md5_vector() -> None:
    ha1 = compute_ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    response = compute_response(
        "MD5", ha1, nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", method="GET",
        uri="/dir/index.html", qop="auth", nc="00000001", cnonce="0a4f113b",
    )  # fmt: skip
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_vectors(algorithm: str, expected: str) -> None:
    ha1 = compute_ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    response = compute_response(
        algorithm, ha1, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", method="GET",
        uri="/dir/index.html", qop="auth", nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )  # fmt: skip
    assert response == expected


def test_challenge_and_credentials_parse_round_trip() -> None:
    text = 'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5'
    ch = DigestChallenge.parse(text)
    assert ch.realm == "atlanta.com" and ch.qop == ("auth", "auth-int") and not ch.stale
    assert DigestChallenge.parse(str(ch)) == ch
    creds = DigestCredentials.parse(
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b", uri="sip:bob@biloxi.com", '
        'qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae4", opaque="5ccc069c"'
    )
    assert creds.username == "bob" and creds.nc == "00000001" and creds.opaque == "5ccc069c"
    assert DigestCredentials.parse(str(creds)) == creds
    for bad in ("Basic abc", "Digest realm", 'Digest nonce="x"', 'Digest username="a", qop=auth'):
        with pytest.raises(SipParseError):
            DigestCredentials.parse(bad) if "username" in bad else DigestChallenge.parse(bad)


def register() -> SipRequest:
    msg = parse_message(
        b"REGISTER sip:voxgate.test SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKreg1\r\n"
        b"From: <sip:alice@voxgate.test>;tag=a1\r\nTo: <sip:alice@voxgate.test>\r\n"
        b"Call-ID: reg-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.5>\r\n\r\n"
    )
    assert isinstance(msg, SipRequest)
    return msg


USERS = {"alice": Password("wonderland")}


def lookup(user: str, realm: str) -> Password | Ha1 | None:
    return USERS.get(user)


def server(**kw: object) -> DigestChallenger:
    return DigestChallenger("voxgate.test", b"k" * 32, lookup, **kw)  # type: ignore[arg-type]


def round_trip(challenger: DigestChallenger, password: str, now: float, verify_at: float) -> tuple[SipRequest, object]:
    req = register()
    challenge = challenger.challenge_response(req, now, to_tag="srv")
    wire = parse_message(challenge.serialize())
    assert isinstance(wire, SipResponse) and wire.status == 401
    retry = authorize(req, wire, username="alice", password=password, cnonce="c0ffee", branch="z9hG4bKreg2")
    assert retry is not None
    retry = parse_message(retry.serialize())  # type: ignore[assignment]
    assert isinstance(retry, SipRequest)
    return retry, challenger.verify(retry, verify_at)


def test_challenge_verify_sha256_preferred() -> None:
    challenger = server()
    retry, result = round_trip(challenger, "wonderland", 100.0, 101.0)
    assert result.ok and result.username == "alice"  # type: ignore[attr-defined]
    assert retry.cseq.number == 2 and retry.via.branch == "z9hG4bKreg2"
    assert "algorithm=SHA-256" in (retry.headers.get("Authorization") or "")


def test_md5_only_server_and_stored_ha1() -> None:
    ha1 = compute_ha1("MD5", "alice", "voxgate.test", "wonderland")
    USERS["bob"] = Ha1({"MD5": ha1})
    try:
        challenger = server(algorithms=("MD5",))
        req = register()
        resp = challenger.challenge_response(req, 0.0)
        retry = authorize(req, resp, username="alice", password="wonderland", cnonce="x")
        assert retry is not None and challenger.verify(retry, 1.0).ok
    finally:
        del USERS["bob"]


def test_wrong_password_stale_and_forged_nonces() -> None:
    challenger = server()
    _, result = round_trip(challenger, "wrong", 0.0, 1.0)
    assert not result.ok and not result.stale  # type: ignore[attr-defined]
    _, result = round_trip(challenger, "wonderland", 0.0, 301.0)
    assert not result.ok and result.stale  # type: ignore[attr-defined]
    other = DigestChallenger("voxgate.test", b"z" * 32, lookup)
    retry, _ = round_trip(other, "wonderland", 0.0, 1.0)
    assert challenger.verify(retry, 1.0).reason == "nonce not ours"
    assert not challenger.verify(register(), 0.0).ok
    # A captured Authorization replayed against another Request-URI is refused.
    retry, _ = round_trip(challenger, "wonderland", 0.0, 1.0)
    retry.uri = parse_message(b"OPTIONS sip:elsewhere.test SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n").uri  # type: ignore[union-attr]
    assert not challenger.verify(retry, 1.0).ok


def test_stateless_nonce_is_deterministic_with_salt() -> None:
    a = server().new_nonce(5.0, salt="00")
    assert a == server().new_nonce(5.0, salt="00")
    assert a != server().new_nonce(5.001, salt="00")


def test_proxy_challenge_uses_proxy_headers() -> None:
    challenger = server()
    req = register()
    resp = challenger.challenge_response(req, 0.0, proxy=True)
    assert resp.status == 407 and len(resp.headers.get_all("Proxy-Authenticate")) == 2
    retry = authorize(req, resp, username="alice", password="wonderland")
    assert retry is not None and "Proxy-Authorization" in retry.headers
    assert challenger.verify(retry, 1.0, proxy=True).ok
    assert authorize(req, SipResponse(401, "Unauthorized"), username="a", password="b") is None
