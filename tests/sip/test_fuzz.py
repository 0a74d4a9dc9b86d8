"""Property tests: parsers raise only their documented error, and valid values round-trip."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.errors import ParseError
from voxgate.sip import (
    Headers,
    NameAddress,
    Params,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    make_response,
    parse_message,
    parse_name_addr,
    parse_uri,
)

SEED = (
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    b"From: \"A\" <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
    b"Content-Length: 2\r\n\r\nhi"
)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_sip_parse_error(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError:
        pass


@settings(max_examples=300)
@given(st.integers(0, len(SEED) - 1), st.binary(min_size=1, max_size=8))
def test_mutated_message_only_raises_sip_parse_error(pos: int, junk: bytes) -> None:
    data = SEED[:pos] + junk + SEED[pos + len(junk) :]
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert isinstance(exc, ParseError) and exc.protocol == "sip"
        return
    # Whatever parsed must serialize and parse again to the same thing.
    again = parse_message(msg.serialize())
    assert again.serialize() == msg.serialize()


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_arbitrary_text_into_uri_and_name_addr(text: str) -> None:
    for parse in (parse_uri, parse_name_addr):
        try:
            parse(text)
        except SipParseError:
            pass


TOKEN = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=12)
HOST = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9]{0,6}){0,2}\Z") | st.just("[2001:db8::5]")
PCHARS = st.text(string.ascii_letters + string.digits + "-_.!~*'()", min_size=1, max_size=8)
USER = st.text(string.printable.strip() + "é ", min_size=1, max_size=12)
URI = st.builds(
    SipUri,
    host=HOST,
    user=st.none() | USER,
    port=st.none() | st.integers(1, 65535),
    params=st.lists(st.tuples(PCHARS, st.none() | PCHARS), max_size=3).map(Params),
)
DISPLAY = st.none() | st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=15)


@settings(max_examples=200)
@given(URI)
def test_generated_uris_round_trip(uri: SipUri) -> None:
    assert parse_uri(str(uri)) == uri


@settings(max_examples=200)
@given(
    method=TOKEN,
    uri=URI,
    display=DISPLAY,
    tag=TOKEN,
    call_id=TOKEN,
    cseq=st.integers(0, 2**31 - 1),
    branch=TOKEN,
    body=st.binary(max_size=40),
)
def test_generated_messages_round_trip(
    method: str, uri: SipUri, display: str | None, tag: str, call_id: str, cseq: int, branch: str, body: bytes
) -> None:
    frm = NameAddress(uri, display).with_tag(tag)
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP h.example.com:5060;branch=z9hG4bK{branch}"),
            ("From", str(frm)),
            ("To", str(NameAddress(uri))),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Max-Forwards", "70"),
        ]
    )
    req = SipRequest(method, uri, headers, body)
    parsed = parse_message(req.serialize())
    assert isinstance(parsed, SipRequest)
    assert (parsed.method, parsed.uri, parsed.body) == (method, uri, body)
    assert parsed.from_ == frm and parsed.cseq.number == cseq and parsed.call_id == call_id
    response = make_response(parsed, 200, to_tag="x")
    back = parse_message(response.serialize())
    assert isinstance(back, SipResponse) and back.to_tag == "x" and back.from_ == frm
