"""SDP parse/serialize (RFC 4566) and the attributes we act on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.errors import ParseError
from voxgate.sip.sdp import Connection, Crypto, RtpMap, SdpParseError, SessionDescription

KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844527 IN IP4 192.0.2.10\r\n"
    "s=Talk\r\n"
    "i=A call\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "b=AS:128\r\n"
    "t=0 0\r\n"
    "a=tool:example\r\n"
    "m=audio 49170 RTP/SAVP 0 8 97 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:97 opus/48000/2\r\n"
    "a=fmtp:97 useinbandfec=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:30\r\n"
    "a=maxptime:150\r\n"
    "a=rtcp:53020 IN IP4 192.0.2.11\r\n"
    "a=rtcp-mux\r\n"
    f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:32 KDR=1\r\n"
    "a=sendonly\r\n"
    "a=x-unknown:kept as is\r\n"
    "m=video 0 RTP/AVP 31\r\n"
    "c=IN IP4 192.0.2.12\r\n"
)


def test_parse_offer_fields() -> None:
    sdp = SessionDescription.parse(OFFER.encode())
    assert sdp.origin.username == "alice" and sdp.origin.session_version == 2890844527
    assert sdp.session_name == "Talk" and sdp.info == "A call"
    assert sdp.connection == Connection("192.0.2.10")
    assert sdp.bandwidths == [("AS", 128)] and sdp.timing == [(0, 0)]
    assert sdp.get_attribute("tool") == "example"
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == ("audio", 49170, "RTP/SAVP", ["0", "8", "97", "101"])
    assert audio.rtpmaps[97] == RtpMap(97, "opus", 48000, 2)
    assert audio.fmtp(97) == "useinbandfec=1" and audio.fmtp(0) is None
    assert (audio.ptime, audio.maxptime) == (30, 150)
    assert audio.rtcp == (53020, Connection("192.0.2.11"))
    assert audio.rtcp_mux
    (crypto,) = audio.crypto
    assert crypto.tag == 1 and crypto.suite == "AES_CM_128_HMAC_SHA1_80"
    assert crypto.session_params == ("KDR=1",)
    assert crypto.key is not None and len(crypto.key) == 30
    assert audio.direction == "sendonly" and sdp.direction_for(audio) == "sendonly"
    assert video.port == 0 and video.connection == Connection("192.0.2.12")
    assert sdp.connection_for(video) == Connection("192.0.2.12")
    assert sdp.direction_for(video) == "sendrecv"


def test_round_trip_keeps_unknown_attributes() -> None:
    sdp = SessionDescription.parse(OFFER)
    assert sdp.serialize() == OFFER
    assert bytes(sdp) == OFFER.encode()


def test_lenient_line_ends_and_unknown_letters() -> None:
    text = "v=0\no=- 1 1 IN IP6 ::1\ns=-\ny=0110000001\nc=IN IP6 ::1\nm=audio 4000 RTP/AVP 0\n\n"
    sdp = SessionDescription.parse(text)
    assert sdp.timing == [(0, 0)] and sdp.media[0].port == 4000
    assert sdp.connection is not None and sdp.connection.addrtype == "IP6"


def test_multicast_connection() -> None:
    assert Connection.parse("IN IP4 224.2.1.1/127/3") == Connection("224.2.1.1", ttl=127, count=3)
    assert Connection.parse("IN IP6 FF15::101/3") == Connection("FF15::101", addrtype="IP6", count=3)
    assert str(Connection.parse("IN IP4 224.2.1.1/127")) == "IN IP4 224.2.1.1/127"


def test_direction_setter_and_crypto_inline() -> None:
    sdp = SessionDescription.parse(OFFER)
    audio = sdp.media[0]
    audio.direction = "inactive"
    assert audio.direction == "inactive" and audio.get_attributes("sendonly") == []
    c = Crypto.inline(2, "AES_CM_128_HMAC_SHA1_32", bytes(range(30)))
    assert Crypto.parse(str(c)) == c and c.key == bytes(range(30))


BAD = [
    "",
    "v=1\r\n",
    "o=a 1 1 IN IP4 h\r\nv=0\r\n",
    "v=0\r\ns=-\r\n",
    "v=0\r\no=a 1 1 IN IP4\r\ns=-\r\n",
    "v=0\r\no=a 1 x IN IP4 h\r\ns=-\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 70000 RTP/AVP 0\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio -1 RTP/AVP 0\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:300 X/8000\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=ptime:abc\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:x\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=crypto:1 X\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nb=AS\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nBAD LINE\r\n",
    "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=fmtp:x y\r\n",
]


@pytest.mark.parametrize("text", BAD)
def test_invalid_descriptions(text: str) -> None:
    with pytest.raises(SdpParseError) as info:
        SessionDescription.parse(text)
    assert isinstance(info.value, ParseError) and info.value.protocol == "sdp"


def test_non_utf8() -> None:
    with pytest.raises(SdpParseError):
        SessionDescription.parse(b"v=0\r\no=\xff 1 1 IN IP4 h\r\ns=-\r\n")


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_sdp_parse_error(data: bytes) -> None:
    try:
        SessionDescription.parse(data)
    except SdpParseError:
        pass


@settings(max_examples=300)
@given(st.integers(0, len(OFFER) - 1), st.text(max_size=6))
def test_mutated_offer_only_raises_sdp_parse_error(pos: int, junk: str) -> None:
    text = OFFER[:pos] + junk + OFFER[pos + len(junk) :]
    try:
        sdp = SessionDescription.parse(text)
    except SdpParseError:
        return
    assert SessionDescription.parse(sdp.serialize()).serialize() == sdp.serialize()
