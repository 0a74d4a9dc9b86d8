"""RFC 3264 offer/answer for the audio stream."""

from __future__ import annotations

import pytest

from voxgate.sip.offer_answer import (
    OPUS,
    PCMA,
    PCMU,
    MediaCapabilities,
    MediaSession,
    NegotiationError,
    answer_offer,
    changed_fields,
)
from voxgate.sip.sdp import Origin, SessionDescription

KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
ORIGIN = Origin("voxgate", "42", 0, "127.0.0.1")
OUR_KEY = bytes(range(30))


def offer(*media: str, conn: str = "IN IP4 192.0.2.10", session_attrs: str = "") -> SessionDescription:
    head = f"v=0\r\no=peer 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc={conn}\r\nt=0 0\r\n{session_attrs}"
    return SessionDescription.parse(head + "".join(media))


AUDIO = "m=audio 40000 RTP/AVP 8 0 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"


def answer(o: SessionDescription, caps: MediaCapabilities | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return answer_offer(
        o, caps or MediaCapabilities(), origin=ORIGIN, local_address="127.0.0.1",
        local_port=20000, srtp_key=OUR_KEY, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_answer_picks_our_preference_with_offer_payload_types() -> None:
    sdp, media = answer(offer(AUDIO))
    assert media.codec == PCMU and media.payload_type == 0
    assert media.dtmf_payload_type == 101
    assert (media.remote_address, media.remote_port, media.remote_rtcp_port) == ("192.0.2.10", 40000, 40001)
    assert media.ptime == 20 and media.direction == "sendrecv" and not media.remote_hold
    assert media.srtp is None and not media.rtcp_mux
    (m,) = sdp.media
    assert m.port == 20000 and m.proto == "RTP/AVP" and m.formats == ["0", "101"]
    assert m.rtpmaps[0].encoding == "PCMU" and m.rtpmaps[101].encoding == "telephone-event"
    assert m.direction == "sendrecv" and sdp.connection is not None
    assert SessionDescription.parse(sdp.serialize()).serialize() == sdp.serialize()


def test_preference_order_and_dynamic_opus() -> None:
    _, media = answer(offer(AUDIO), MediaCapabilities(codecs=(OPUS, PCMA)))
    assert media.codec == OPUS and media.payload_type == 96
    _, media = answer(offer(AUDIO), MediaCapabilities(codecs=(PCMA,), dtmf=False))
    assert media.codec == PCMA and media.payload_type == 8 and media.dtmf_payload_type is None


@pytest.mark.parametrize(
    ("offered", "ours", "hold"),
    [("sendonly", "recvonly", True), ("inactive", "inactive", True), ("recvonly", "sendonly", False), ("sendrecv", "sendrecv", False)],
)
def test_direction_is_mirrored(offered: str, ours: str, hold: bool) -> None:
    sdp, media = answer(offer(AUDIO + f"a={offered}\r\n"))
    assert media.direction == ours and sdp.media[0].direction == ours
    assert media.remote_hold is hold


def test_session_level_direction_and_local_hold() -> None:
    _, media = answer(offer(AUDIO, session_attrs="a=sendonly\r\n"))
    assert media.direction == "recvonly" and media.remote_hold
    _, media = answer(offer(AUDIO), local_direction="sendonly")
    assert media.direction == "sendonly" and media.sending and not media.receiving


def test_legacy_hold_with_null_address() -> None:
    _, media = answer(offer(AUDIO, conn="IN IP4 0.0.0.0"))
    assert media.remote_hold and media.direction == "recvonly"


def test_rejected_and_extra_streams_get_port_zero() -> None:
    o = offer("m=audio 0 RTP/AVP 0\r\n", "m=video 5000 RTP/AVP 31\r\n", AUDIO, "m=audio 6000 RTP/AVP 0\r\n")
    sdp, media = answer(o)
    assert [m.port for m in sdp.media] == [0, 0, 20000, 0]
    assert [m.media for m in sdp.media] == ["audio", "video", "audio", "audio"]
    assert media.remote_port == 40000


@pytest.mark.parametrize(
    "media",
    [
        "m=audio 4000 RTP/AVP 18\r\n",  # G.729 only
        "m=audio 0 RTP/AVP 0\r\n",  # only a disabled stream
        "m=video 4000 RTP/AVP 31\r\n",
        "m=audio 4000 UDP/TLS/RTP/SAVPF 0\r\n",  # DTLS-SRTP: not ours
        "m=audio 4000 RTP/SAVP 0\r\n",  # SAVP without crypto
        "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:" + KEY + "\r\n",
    ],
)
def test_no_common_ground_is_a_488(media: str) -> None:
    with pytest.raises(NegotiationError) as info:
        answer(offer(media))
    assert info.value.status == 488


def test_srtp_sdes_answer() -> None:
    o = offer(
        "m=audio 40000 RTP/SAVP 0\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20\r\n"
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\na=rtcp-mux\r\na=ptime:30\r\n"
    )
    sdp, media = answer(o)
    assert media.srtp is not None and media.srtp.suite == "AES_CM_128_HMAC_SHA1_80"
    assert media.srtp.local_key == OUR_KEY and len(media.srtp.remote_key) == 30
    assert media.rtcp_mux and media.remote_rtcp_port is None and media.ptime == 30
    (crypto,) = sdp.media[0].crypto
    assert crypto.tag == 1 and crypto.key == OUR_KEY
    with pytest.raises(NegotiationError):
        answer(o, MediaCapabilities(srtp="off"))
    with pytest.raises(NegotiationError):
        answer(offer(AUDIO), MediaCapabilities(srtp="required"))


def test_offer_answer_between_two_sessions_and_reoffers() -> None:
    alice = MediaSession(MediaCapabilities(), "10.0.0.1", 30000, session_id="1")
    bob = MediaSession(MediaCapabilities(codecs=(PCMA, PCMU)), "10.0.0.2", 32000, session_id="2")
    o1 = alice.create_offer()
    assert o1.origin.session_version == 0
    assert o1.media[0].formats == ["0", "8", "111", "101"]
    a1, bob_media = bob.receive_offer(SessionDescription.parse(o1.serialize()))
    alice_media = alice.receive_answer(SessionDescription.parse(a1.serialize()))
    assert bob_media.codec == PCMA and alice_media.codec == PCMA and alice_media.payload_type == 8
    assert alice_media.rtcp_mux and bob_media.rtcp_mux
    assert (alice_media.remote_address, alice_media.remote_port) == ("10.0.0.2", 32000)
    assert alice_media.dtmf_payload_type == bob_media.dtmf_payload_type == 101

    # Same offer again (session refresh): nothing changes, version stays.
    o2 = alice.create_offer()
    assert o2.origin.session_version == 0
    _, again = bob.receive_offer(o2)
    assert changed_fields(bob_media, again) == frozenset()

    # Hold: sendonly offer -> recvonly answer; version bumps.
    o3 = alice.create_offer("sendonly")
    assert o3.origin.session_version == 1
    a3, held = bob.receive_offer(o3)
    assert held.remote_hold and held.direction == "recvonly"
    assert changed_fields(again, held) == {"direction", "remote_hold"}
    alice_held = alice.receive_answer(a3)
    assert alice_held.direction == "sendonly"

    # Unhold with a new address/port and a codec change.
    alice.local_address, alice.local_port = "10.0.0.9", 31000
    alice.caps = MediaCapabilities(codecs=(PCMU,))
    _, moved = bob.receive_offer(alice.create_offer())
    assert changed_fields(held, moved) == {"direction", "remote_hold", "remote_address", "remote_port", "codec", "payload_type"}
    assert moved.codec == PCMU and moved.remote_address == "10.0.0.9"


def test_answer_checks() -> None:
    alice = MediaSession(MediaCapabilities(srtp="required"), "10.0.0.1", 30000, srtp_key=OUR_KEY)
    with pytest.raises(NegotiationError):
        alice.receive_answer(offer(AUDIO))  # no outstanding offer
    o = alice.create_offer()
    assert o.media[0].proto == "RTP/SAVP" and len(o.media[0].crypto) == 2
    bob = MediaSession(MediaCapabilities(), "10.0.0.2", 32000)
    a, bob_media = bob.receive_offer(o)
    media = alice.receive_answer(a)
    assert media.srtp is not None and bob_media.srtp is not None
    assert media.srtp.remote_key == bob_media.srtp.local_key
    assert media.srtp.local_key == bob_media.srtp.remote_key == OUR_KEY
    alice.create_offer()
    rejected = SessionDescription.parse(a.serialize().replace("m=audio 32000", "m=audio 0"))
    with pytest.raises(NegotiationError):
        alice.receive_answer(rejected)
