"""SIP message parsing, serialization and response building (RFC 3261 sections 7, 8.2.6, 18.3).

The torture cases are written from the descriptions in RFC 4475 (the RFC text is not on disk);
the names in the test ids are the RFC's message names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voxgate.errors import ParseError
from voxgate.sip import (
    AbsoluteUri,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    SipStreamParser,
    SipUri,
    make_response,
    parse_message,
)

FIXTURES = Path(__file__).parent / "fixtures"

VIA = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw"
BASIC = [
    VIA,
    "Max-Forwards: 70",
    "From: <sip:alice@example.com>;tag=1928301774",
    "To: <sip:bob@example.com>",
    "Call-ID: a84b4c76e66710@pc33.example.com",
]


def wire(*lines: str, body: str = "") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def request(method: str = "OPTIONS", *extra: str, uri: str = "sip:bob@example.com") -> bytes:
    return wire(f"{method} {uri} SIP/2.0", *BASIC, f"CSeq: 1 {method}", *extra)


# -- valid messages ---------------------------------------------------------------------------

SDP_BODY = (
    "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\n"
    "t=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
)

WSINV = "\r\n".join(
    [
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
        "TO :",
        " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
        "  ;",
        "  tag = 98asjd8",
        "MaX-fOrWaRdS: 0068",
        "Call-ID: wsinv.ndaksdj@192.0.2.1",
        f"Content-Length   : {len(SDP_BODY)}",
        "cseq: 0009",
        "  INVITE",
        "Via  : SIP  /   2.0",
        " /UDP",
        "    192.0.2.2;branch=390skdjuw",
        "s :",
        "NewFangledHeader:   newfangled value",
        " continued newfangled value",
        "UnknownHeaderWithUnusualValue: ;;,,;;,;",
        "Content-Type: application/sdp",
        "Route:",
        " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
        "v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
        "  branch  =   z9hG4bK9ikj8  ,",
        " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
        " z9hG4bK30239",
        'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
        "      newvalue ;",
        "  secondparam ; q = 0.33",
        "",
        SDP_BODY,
    ]
).encode()


def test_wsinv_whitespace_folding_and_compact_forms() -> None:
    msg = parse_message(WSINV)
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("chair-dnrc.example.com", "vivekg", params=msg.uri.params)  # type: ignore[union-attr]
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    vias = msg.vias
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = msg.contact
    assert contact is not None and contact.display_name == 'Quoted string ""'
    assert contact.params.get("q") == "0.33" and "secondparam" in contact.params
    assert msg.route[0].uri.loose_route  # type: ignore[union-attr]
    assert msg.body == SDP_BODY.encode()
    assert msg.content_type == "application/sdp"


def test_esc01_escaped_uri_parts() -> None:
    msg = parse_message(
        wire(
            "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
            "To: sip:%75se%72@example.com",
            "From: <sip:I%20have%20spaces@example.net>;tag=938",
            "Max-Forwards: 87",
            "i: esc01.239409asdfakjkn23onasd0-3234",
            "CSeq: 234234 INVITE",
            "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
            "C: application/sdp",
            "Contact:",
            "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
        )
    )
    assert isinstance(msg, SipRequest)
    assert isinstance(msg.uri, SipUri) and msg.uri.user == "sips:user@example.com"
    assert msg.to.uri == SipUri("example.com", "user")
    assert msg.from_.uri.user == "I have spaces"  # type: ignore[union-attr]
    assert msg.contact is not None and msg.contact.uri.user == "caller"  # type: ignore[union-attr]


def test_escnull_and_semiuri() -> None:
    msg = parse_message(
        wire("REGISTER sip:example.com SIP/2.0", *BASIC[:3], "To: sip:null-%00-null@example.com",
             "Call-ID: escnull", "CSeq: 1 REGISTER")
    )
    assert msg.to.uri.user == "null-\x00-null"  # type: ignore[union-attr]
    msg = parse_message(request(uri="sip:user;par=u%40example.net@example.com"))
    assert isinstance(msg, SipRequest) and isinstance(msg.uri, SipUri)
    assert msg.uri.user == "user;par=u@example.net"
    assert msg.uri.host == "example.com"


def test_intmeth_unusual_method_and_userinfo() -> None:
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    uri = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
    msg = parse_message(request(method, uri=uri))
    assert isinstance(msg, SipRequest) and isinstance(msg.uri, SipUri)
    assert msg.method == method
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert parse_message(msg.serialize()).uri == msg.uri  # type: ignore[union-attr]


def test_ipv6_everywhere() -> None:
    msg = parse_message(
        wire(
            "REGISTER sip:[2001:db8::10] SIP/2.0",
            "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3;received=[2001:db8::9:255];rport=5070",
            "From: <sip:user@[2001:db8::10]>;tag=1",
            "To: <sip:user@[2001:db8::10]>",
            "Call-ID: v6",
            "CSeq: 1 REGISTER",
            'Contact: "Caller" <sip:caller@[2001:db8::1]:5060>',
        )
    )
    assert isinstance(msg, SipRequest)
    assert msg.uri == SipUri("[2001:db8::10]")
    via = msg.via
    assert via.host == "[2001:db8::9:1]" and via.received == "[2001:db8::9:255]" and via.rport == 5070
    assert via.sent_by == ("[2001:db8::9:1]", 5060)
    assert msg.contact is not None and msg.contact.uri.port == 5060  # type: ignore[union-attr]


def test_transports_unknown_scheme_and_lwsdisp() -> None:
    msg = parse_message(
        request(
            "OPTIONS",
            "Via: SIP/2.0/SCTP t1.example.com;branch=z9hG4bKkdjuw1",
            "Via: SIP/2.0/TLS t2.example.com;branch=z9hG4bKkdjuw2",
            "Via: SIP/2.0/UNKNOWN t3.example.com;branch=z9hG4bKkdjuw3",
            uri="nobodyKnowsThisScheme:totallyopaquecontent",
        )
    )
    assert isinstance(msg, SipRequest)
    assert msg.uri == AbsoluteUri("nobodyknowsthisscheme", "totallyopaquecontent")
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN"]
    lines = [line for line in BASIC if not line.startswith("From")]
    msg = parse_message(
        wire("OPTIONS sip:b@example.com SIP/2.0", *lines,
             "From: caller<sip:caller@example.com>;tag=323", "CSeq: 1 OPTIONS")
    )
    assert msg.from_.display_name == "caller"


def test_responses_noreason_unreason() -> None:
    base = [VIA, "From: <sip:a@example.com>;tag=1", "To: <sip:b@example.com>;tag=2",
            "Call-ID: r", "CSeq: 1 INVITE"]  # fmt: skip
    msg = parse_message(wire("SIP/2.0 100 ", *base))
    assert isinstance(msg, SipResponse) and msg.status == 100 and msg.reason == ""
    reason = "= 2**3 * 5**1 vous ŝâɳ aussi ĉȁ"
    msg = parse_message(wire(f"SIP/2.0 200 {reason}", *base))
    assert isinstance(msg, SipResponse) and msg.reason == reason and msg.success


def test_content_length_governs_datagram_body() -> None:
    # dblreq: a datagram may carry trailing octets beyond Content-Length; they are discarded.
    msg = parse_message(request("OPTIONS", "Content-Length: 4") + b"abcdEXTRA")
    assert msg.body == b"abcd"
    msg = parse_message(request("OPTIONS") + b"no length")
    assert msg.body == b"no length"


def test_multivalue_headers_split_in_order() -> None:
    msg = parse_message(
        request(
            "OPTIONS",
            'Contact: "A, B" <sip:a,x@h1;x=1>, <sip:b@h2>;q=0.5',
            "Contact: sip:c@h3",
            "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
            "Allow: INVITE, ACK,BYE",
            "Supported: replaces, timer",
        )
    )
    assert [str(c.uri) for c in msg.contacts] == ["sip:a,x@h1;x=1", "sip:b@h2", "sip:c@h3"]
    assert msg.contacts[0].display_name == "A, B"
    assert [r.uri.host for r in msg.route] == ["p1.example.com", "p2.example.com"]  # type: ignore[union-attr]
    assert msg.headers.get_all("allow") == ["INVITE", "ACK", "BYE"]
    assert msg.headers.get_all("k") == ["replaces", "timer"]


def test_round_trip_is_stable() -> None:
    for data in (WSINV, request("OPTIONS", "Content-Length: 3") + b"abc"):
        msg = parse_message(data)
        again = parse_message(msg.serialize())
        assert again.serialize() == msg.serialize()
        assert again.headers == msg.headers and again.body == msg.body


def test_sipp_generated_invite() -> None:
    msg = parse_message((FIXTURES / "sipp_uac_invite.bin").read_bytes())
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("127.0.0.1", "service", port=5099)
    assert msg.via.branch is not None and msg.via.branch.startswith("z9hG4bK")
    assert msg.via.sent_by == ("127.0.0.1", 5098)
    assert msg.from_.display_name == "sipp" and msg.from_.tag is not None
    assert msg.to.tag is None
    assert msg.cseq.number == 1 and msg.cseq.method == "INVITE"
    assert msg.contact is not None and msg.contact.uri == SipUri("127.0.0.1", "sipp", port=5098)
    assert msg.max_forwards == 70
    assert msg.content_type == "application/sdp"
    assert msg.body.startswith(b"v=0\r\n") and len(msg.body) == 129


# -- invalid messages ------------------------------------------------------------------------

INVALID = {
    "garbage": b"hello world\r\n\r\n",
    "no-blank-line": b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n",
    "badinv01-no-colon": request("OPTIONS", "This header has no colon"),
    "clerr": request("OPTIONS", "Content-Length: 9999") + b"short",
    "ncl": request("OPTIONS", "Content-Length: -999") + b"x",
    "scalar02-max-forwards": wire("OPTIONS sip:b@example.com SIP/2.0", VIA, *BASIC[2:],
                                  "Max-Forwards: 300", "CSeq: 1 OPTIONS"),
    "scalar02-cseq": wire("OPTIONS sip:b@example.com SIP/2.0", *BASIC, "CSeq: 36893488147419103232 OPTIONS"),
    "scalar02-content-length": request("OPTIONS", "Content-Length: 18446744073709551616") + b"x",
    "negative-cseq": wire("OPTIONS sip:b@example.com SIP/2.0", *BASIC, "CSeq: -1 OPTIONS"),
    "quotbal": wire("OPTIONS sip:b@example.com SIP/2.0", VIA, "Max-Forwards: 70",
                    "From: <sip:a@example.com>;tag=1", 'To: "Mr. J. User <sip:j.user@example.com>',
                    "Call-ID: q", "CSeq: 1 OPTIONS"),
    "ltgtruri": request("OPTIONS", uri="<sip:user@example.com>"),
    "lwsruri": wire("OPTIONS sip:user@example.com; lr SIP/2.0", *BASIC, "CSeq: 1 OPTIONS"),
    "lwsstart": wire("OPTIONS  sip:user@example.com  SIP/2.0", *BASIC, "CSeq: 1 OPTIONS"),
    "trws": wire("OPTIONS sip:user@example.com SIP/2.0  ", *BASIC, "CSeq: 1 OPTIONS"),
    "escruri": request("OPTIONS", uri="sip:user@example.com?Route=%3Csip:example.com%3E"),
    "mismatch01": wire("OPTIONS sip:b@example.com SIP/2.0", *BASIC, "CSeq: 1 INVITE"),
    "bigcode": wire("SIP/2.0 4294967301 better not break the receiver", VIA,
                    "From: <sip:a@h>;tag=1", "To: <sip:b@h>", "Call-ID: b", "CSeq: 1 INVITE"),
    "multi01": request("OPTIONS", "To: <sip:other@example.com>"),
    "mcl01": request("OPTIONS", "Content-Length: 3", "l: 3") + b"abc",
    "insuf": wire("OPTIONS sip:b@example.com SIP/2.0", VIA, "CSeq: 1 OPTIONS"),
    "missing-via": wire("OPTIONS sip:b@example.com SIP/2.0", *BASIC[1:], "CSeq: 1 OPTIONS"),
    "regbadct": request("REGISTER", "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
    "badaspec": wire("OPTIONS sip:b@example.com SIP/2.0", VIA, "From: <sip:a@h>;tag=1",
                     'To: "Watson, Thomas" < sip:t.watson@example.org >', "Call-ID: c", "CSeq: 1 OPTIONS"),
    "baddn": wire("OPTIONS sip:b@example.com SIP/2.0", VIA, "To: <sip:b@h>",
                  "From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43", "Call-ID: c", "CSeq: 1 OPTIONS"),
    "bad-port": request("OPTIONS", uri="sip:b@example.com:99999"),
    "bad-via": wire("OPTIONS sip:b@example.com SIP/2.0", "Via: SIP/2.0 nohost", *BASIC[1:], "CSeq: 1 OPTIONS"),
    "not-utf8": request("OPTIONS", "Subject: \udcff".encode("utf-8", "surrogateescape").decode("latin-1")).replace(
        "\u00ff".encode(), b"\xff"
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages_raise_the_documented_error(name: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVALID[name])
    assert isinstance(info.value, ParseError) and info.value.protocol == "sip"
    assert 400 <= info.value.status < 600


@pytest.mark.parametrize("name", ["mismatch01", "scalar02-cseq", "multi01", "quotbal", "clerr"])
def test_invalid_request_with_salvageable_via_yields_a_400(name: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVALID[name])
    err = info.value
    assert err.partial is not None
    response = make_response(err.partial, err.status, err.reason, to_tag="srv")
    wire_bytes = response.serialize()
    assert wire_bytes.startswith(f"SIP/2.0 400 {err.reason}\r\n".encode())
    assert b"branch=z9hG4bKkdjuw" in wire_bytes


def test_badvers_answers_505() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(wire("OPTIONS sip:b@example.com SIP/7.0", *BASIC, "CSeq: 1 OPTIONS"))
    assert info.value.status == 505 and info.value.partial is not None
    assert info.value.partial.call_id == "a84b4c76e66710@pc33.example.com"


def test_unsalvageable_errors_carry_no_partial() -> None:
    for name in ("garbage", "missing-via", "bigcode", "lwsstart"):
        with pytest.raises(SipParseError) as info:
            parse_message(INVALID[name])
        assert info.value.partial is None, name


# -- responses -------------------------------------------------------------------------------


def test_make_response_copies_per_8_2_6() -> None:
    req = parse_message(
        request("INVITE", "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1", "Timestamp: 54")
    )
    assert isinstance(req, SipRequest)
    trying = make_response(req, 100, to_tag="ignored")
    assert trying.reason == "Trying" and trying.to_tag is None
    assert trying.headers.get("Timestamp") == "54"
    ok = make_response(req, 200, to_tag="abc", headers=[("Contact", "<sip:me@h>")])
    assert [v.branch for v in ok.vias] == ["z9hG4bKkdjuw", "z9hG4bKp1"]
    assert ok.to_tag == "abc" and ok.from_tag == "1928301774"
    assert ok.call_id == req.call_id and ok.cseq == req.cseq
    assert "Timestamp" not in ok.headers and ok.contact is not None
    again = parse_message(ok.serialize())
    assert isinstance(again, SipResponse) and again.status == 200 and again.to_tag == "abc"
    tagged = make_response(parse_message(ok.serialize().replace(b"SIP/2.0 200 OK", b"INVITE sip:x@y SIP/2.0")), 486, to_tag="zzz")  # type: ignore[arg-type]
    assert tagged.to_tag == "abc" and tagged.reason == "Busy Here"


def test_headers_multimap() -> None:
    h = Headers([("v", "a"), ("Subject", "s"), ("VIA", "b")])
    assert h.get_all("Via") == ["a", "b"] and list(h)[0] == ("Via", "a")
    h.prepend("Via", "top")
    assert h.get("v") == "top" and h.count("via") == 3
    assert h.remove_first("via") == "top"
    h.set("via", "only")
    assert h.get_all("Via") == ["only"] and list(h)[0] == ("Via", "only")
    h.remove("Via")
    assert "Via" not in h and len(h) == 1


# -- stream framing --------------------------------------------------------------------------


def test_stream_parser_frames_by_content_length() -> None:
    one = request("MESSAGE", "Content-Length: 5") + b"hello"
    two = request("OPTIONS", "Content-Length: 0")
    stream = b"\r\n\r\n" + one + two + b"\r\n\r\n" + one
    parser = SipStreamParser()
    got: list[bytes] = []
    for i in range(len(stream)):
        parser.feed(stream[i : i + 1])
        while (msg := parser.next_message()) is not None:
            got.append(msg.body)
    assert got == [b"hello", b"", b"hello"]
    assert parser.keepalives == 4


def test_stream_parser_survives_invalid_framed_message_but_not_missing_length() -> None:
    parser = SipStreamParser()
    parser.feed(INVALID["mismatch01"].replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"))
    parser.feed(request("OPTIONS", "Content-Length: 0"))
    with pytest.raises(SipParseError):
        parser.next_message()
    assert isinstance(parser.next_message(), SipRequest)
    assert parser.next_message() is None
    parser.feed(request("OPTIONS"))
    with pytest.raises(SipParseError):
        parser.next_message()
    assert parser.broken


def test_stream_parser_refuses_huge_content_length() -> None:
    parser = SipStreamParser()
    parser.feed(request("OPTIONS", "Content-Length: 9999999999"))
    with pytest.raises(SipParseError):
        parser.next_message()
    assert parser.broken
