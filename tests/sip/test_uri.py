"""SIP/SIPS/tel URIs and name-addr parsing (RFC 3261 sections 19.1 and 20.10, RFC 3966)."""

from __future__ import annotations

import pytest

from voxgate.sip import (
    AbsoluteUri,
    NameAddress,
    Params,
    SipParseError,
    SipUri,
    TelUri,
    parse_name_addr,
    parse_uri,
)


def test_full_sip_uri() -> None:
    uri = parse_uri("sips:alice:secret@atlanta.com:5061;transport=tcp;lr?subject=project&priority=urgent")
    assert uri == SipUri(
        "atlanta.com", "alice", "secret", 5061,
        Params([("transport", "tcp"), ("lr", None)]),
        (("subject", "project"), ("priority", "urgent")), "sips",
    )  # fmt: skip
    assert isinstance(uri, SipUri)
    assert uri.secure and uri.transport == "tcp" and uri.loose_route
    assert str(uri) == "sips:alice:secret@atlanta.com:5061;transport=tcp;lr?subject=project&priority=urgent"


@pytest.mark.parametrize(
    "text",
    [
        "sip:atlanta.com",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:alice@192.0.2.4",
        "sip:[2001:db8::1]:5070;maddr=[2001:db8::2]",
        "sip:%40odd%20user@example.com",
        "SIP:Bob@Example.COM",
        "tel:+1-201-555-0123;phone-context=example.com",
        "mailto:alice@example.com",
        "urn:service:sos",
    ],
)
def test_round_trip(text: str) -> None:
    uri = parse_uri(text)
    assert parse_uri(str(uri)) == uri


def test_escaping_and_ipv6() -> None:
    uri = parse_uri("sip:%40odd%20user@[2001:DB8::1]:5070")
    assert isinstance(uri, SipUri)
    assert uri.user == "@odd user" and uri.host == "[2001:DB8::1]" and uri.port == 5070
    assert uri.host_address == "2001:DB8::1"
    assert str(uri) == "sip:%40odd%20user@[2001:DB8::1]:5070"
    assert str(SipUri("h", user="a b")) == "sip:a%20b@h"


def test_tel_and_other_schemes() -> None:
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert tel == TelUri("+1-201-555-0123", Params([("phone-context", "example.com")]))
    assert isinstance(tel, TelUri) and tel.global_number
    assert parse_uri("urn:service:sos") == AbsoluteUri("urn", "service:sos")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip:",
        "sip:@host",
        "sip:user@",
        "sip:user@host:port",
        "sip:user@host:70000",
        "sip:user@[::1",
        "sip:user@[not:an:address]",
        "sip:user@ho st",
        "sip:us<er@host",
        "sip:user@host;=x",
        "sip:user@host;a=",
        "sip:user@host?noequals",
        "sip:bad%zzescape@host",
        "sip:user@-host",
        "tel:",
        "tel:12ab!",
        "1sip:x",
        "noscheme",
    ],
)
def test_invalid_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_name_addr_forms() -> None:
    na = parse_name_addr('"Alice \\"A\\" Liddell" <sip:alice@atlanta.com;transport=tcp>;tag=88sja8x')
    assert na.display_name == 'Alice "A" Liddell'
    assert na.tag == "88sja8x"
    assert na.uri == SipUri("atlanta.com", "alice", params=Params([("transport", "tcp")]))
    assert parse_name_addr(str(na)) == na
    # addr-spec: parameters belong to the header, not the URI.
    spec = parse_name_addr("sip:bob@biloxi.com;tag=a6c85cf")
    assert spec.uri == SipUri("biloxi.com", "bob") and spec.tag == "a6c85cf"
    tokens = parse_name_addr("Bob   Smith<sip:bob@biloxi.com>")
    assert tokens.display_name == "Bob Smith"
    assert parse_name_addr("<sip:bob@biloxi.com>").display_name is None
    assert parse_name_addr('"" <sip:x@y>').display_name == ""
    tagged = NameAddress(SipUri("h", "u")).with_tag("t1")
    assert str(tagged) == "<sip:u@h>;tag=t1"
    assert str(tagged.with_tag("t2")) == "<sip:u@h>;tag=t2"
    contact = parse_name_addr('<sip:u@h>;+sip.instance="<urn:uuid:f81d4fae>";expires=60')
    assert contact.params.unquoted("+sip.instance") == "<urn:uuid:f81d4fae>"
    assert contact.params["expires"] == "60"


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:x@y>',
        "Bell, Alexander <sip:a@b>",
        "< sip:a@b >",
        "<sip:a@b",
        '"name" sip:a@b',
        "<sip:a@b> junk",
        "sip:a@b?x=y",
        "<sip:a@b>;=x",
        "<sip:a@b>;tag",  # flag tag is syntactically fine ...
    ][:-1],
)
def test_invalid_name_addr(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(text)
