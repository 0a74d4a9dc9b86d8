"""RFC 3264 offer/answer for one audio stream, on top of :mod:`voxgate.sip.sdp`.

The result of a negotiation is a :class:`NegotiatedMedia`: everything the RTP layer needs
(codec and payload type, DTMF payload type, ptime, where to send, SRTP keys, direction). The
SIP dialog layer only shuttles descriptions and maps :class:`NegotiationError` to ``488 Not
Acceptable Here``.

Policy choices, and why:

* the codec is chosen by *our* preference among what the offer lists (the gateway transcodes
  to PCM16 anyway; PCMU first costs least CPU), and the answer lists that one codec plus
  telephone-event, so the far end never switches codecs mid-call without a new offer;
* payload type numbers in an answer follow the offer (RFC 3264 section 6.1); when we receive
  an answer we use *its* numbers, which is what it asked to receive;
* only the first acceptable audio stream is used; every other m-line is rejected with port 0
  in the answer, keeping the m-line count and order as section 6 requires;
* ``RTP/SAVP`` is accepted with SDES keys (RFC 4568); DTLS-SRTP profiles
  (``UDP/TLS/RTP/SAVPF``) belong to the WebRTC edge and are rejected here;
* hold: an offer that is ``sendonly``/``inactive`` or whose connection address is
  ``0.0.0.0`` (RFC 2543 style) means the remote put us on hold.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields
from typing import Literal

from voxgate.errors import VoxgateError
from voxgate.sip.sdp import (
    Connection,
    Crypto,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)

__all__ = [
    "OPUS",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "MediaCapabilities",
    "MediaSession",
    "NegotiatedMedia",
    "NegotiationError",
    "SrtpParams",
    "answer_offer",
    "changed_fields",
]

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
_MIRROR: dict[str, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_RTP_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
SRTP_KEY_LENGTH = 30
"""Master key (16) + master salt (14) bytes for the AES_CM_128 suites."""


@dataclass(frozen=True, slots=True)
class Codec:
    """A codec as SDP names it. ``fmtp`` is what *we* put in our descriptions for it."""

    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    def matches(self, rtpmap: RtpMap) -> bool:
        """Whether an offered rtpmap is this codec (name case-insensitive, RFC 4855)."""
        return (
            rtpmap.encoding.lower() == self.name.lower()
            and rtpmap.clock_rate == self.clock_rate
            and (rtpmap.channels or 1) == self.channels
        )


PCMU = Codec("PCMU", 8000)
PCMA = Codec("PCMA", 8000)
OPUS = Codec("opus", 48000, 2, "minptime=10;useinbandfec=1")
TELEPHONE_EVENT = Codec("telephone-event", 8000, fmtp="0-16")

STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    0: RtpMap(0, "PCMU", 8000),
    3: RtpMap(3, "GSM", 8000),
    8: RtpMap(8, "PCMA", 8000),
    9: RtpMap(9, "G722", 8000),
    18: RtpMap(18, "G729", 8000),
}
"""RFC 3551 static payload types an offer may list without an rtpmap."""

_DEFAULT_PT = {"pcmu": 0, "pcma": 8, "opus": 111, "telephone-event": 101}


class NegotiationError(VoxgateError):
    """No acceptable media in an offer or answer; the dialog layer answers ``status`` (488)."""

    status = 488

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = "Not Acceptable Here"


@dataclass(frozen=True, slots=True)
class MediaCapabilities:
    """What we can do, in preference order."""

    codecs: tuple[Codec, ...] = (PCMU, PCMA, OPUS)
    dtmf: bool = True
    ptime: int = 20
    srtp: Literal["off", "optional", "required"] = "optional"
    """``off``: reject RTP/SAVP; ``optional``: accept it when offered, offer plain RTP;
    ``required``: reject plain RTP and offer RTP/SAVP."""
    srtp_suites: tuple[str, ...] = SRTP_SUITES
    rtcp_mux: bool = True


@dataclass(frozen=True, slots=True)
class SrtpParams:
    """SDES-SRTP keys: ``local_key`` protects what we send, ``remote_key`` what we receive."""

    suite: str
    local_key: bytes
    remote_key: bytes


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """The outcome of offer/answer for the audio stream, from our point of view."""

    codec: Codec
    payload_type: int
    dtmf_payload_type: int | None
    ptime: int
    remote_address: str
    remote_port: int
    remote_rtcp_port: int | None
    rtcp_mux: bool
    direction: Direction
    remote_hold: bool = False
    maxptime: int | None = None
    srtp: SrtpParams | None = None

    @property
    def sending(self) -> bool:
        """Whether we should send RTP."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receiving(self) -> bool:
        """Whether we should expect RTP."""
        return self.direction in ("sendrecv", "recvonly")


def changed_fields(old: NegotiatedMedia | None, new: NegotiatedMedia) -> frozenset[str]:
    """Names of the fields a re-offer changed (all of them for the first negotiation)."""
    names = [f.name for f in fields(NegotiatedMedia)]
    if old is None:
        return frozenset(names)
    return frozenset(n for n in names if getattr(old, n) != getattr(new, n))


def _rtpmaps(media: MediaDescription) -> list[RtpMap]:
    """The formats of an m-line resolved to rtpmaps, in offer order (static PTs filled in)."""
    maps = media.rtpmaps
    out = []
    for fmt in media.formats:
        if not fmt.isdigit():
            continue
        pt = int(fmt)
        rtpmap = maps.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
        if rtpmap is not None:
            out.append(rtpmap)
    return out


def _reject(offered: MediaDescription) -> MediaDescription:
    return MediaDescription(offered.media, 0, offered.proto, offered.formats[:1] or ["0"])


def _intersect(ours: Direction, offered_mirrored: Direction) -> Direction:
    send = ours in ("sendrecv", "sendonly") and offered_mirrored in ("sendrecv", "sendonly")
    recv = ours in ("sendrecv", "recvonly") and offered_mirrored in ("sendrecv", "recvonly")
    return (
        "sendrecv" if send and recv else "sendonly" if send else "recvonly" if recv else "inactive"
    )


@dataclass(slots=True)
class _Choice:
    codec: Codec
    rtpmap: RtpMap
    dtmf: RtpMap | None
    crypto: Crypto | None


def _choose(media: MediaDescription, caps: MediaCapabilities) -> _Choice | None:
    if media.media != "audio" or media.port == 0 or media.proto not in _RTP_PROTOS:
        return None
    secure = "SAVP" in media.proto
    if (secure and caps.srtp == "off") or (not secure and caps.srtp == "required"):
        return None
    crypto = None
    if secure:
        crypto = next(
            (
                c
                for c in media.crypto
                if c.suite in caps.srtp_suites
                and c.key is not None
                and len(c.key) == SRTP_KEY_LENGTH
            ),
            None,
        )
        if crypto is None:
            return None
    offered = _rtpmaps(media)
    dtmf = next((m for m in offered if TELEPHONE_EVENT.matches(m)), None) if caps.dtmf else None
    for codec in caps.codecs:
        for rtpmap in offered:
            if codec.matches(rtpmap):
                return _Choice(codec, rtpmap, dtmf, crypto)
    return None


def _negotiated(
    session: SessionDescription,
    media: MediaDescription,
    choice: _Choice,
    direction: Direction,
    local_key: bytes | None,
    default_ptime: int,
    mux: bool,
) -> NegotiatedMedia:
    conn = session.connection_for(media)
    if conn is None:
        raise NegotiationError("no c= line for the audio stream")
    remote_dir = session.direction_for(media)
    hold = conn.is_null or remote_dir in ("sendonly", "inactive")
    if conn.is_null and direction in ("sendrecv", "sendonly"):
        # RFC 2543 hold: there is nowhere to send to.
        direction = "recvonly" if direction == "sendrecv" else "inactive"
    rtcp = media.rtcp
    srtp = None
    if choice.crypto is not None:
        assert local_key is not None and choice.crypto.key is not None
        srtp = SrtpParams(choice.crypto.suite, local_key, choice.crypto.key)
    return NegotiatedMedia(
        codec=choice.codec,
        payload_type=choice.rtpmap.payload_type,
        dtmf_payload_type=choice.dtmf.payload_type if choice.dtmf else None,
        ptime=media.ptime or default_ptime,
        remote_address=conn.address,
        remote_port=media.port,
        remote_rtcp_port=None if mux else (rtcp[0] if rtcp else media.port + 1),
        rtcp_mux=mux,
        direction=direction,
        remote_hold=hold,
        maxptime=media.maxptime,
        srtp=srtp,
    )


def _audio_lines(
    codec: Codec, pt: int, dtmf_pt: int | None, ptime: int
) -> tuple[list[str], list[tuple[str, str | None]]]:
    formats = [str(pt)]
    attrs: list[tuple[str, str | None]] = [
        (
            "rtpmap",
            str(
                RtpMap(
                    pt,
                    codec.name,
                    codec.clock_rate,
                    codec.channels if codec.channels != 1 else None,
                )
            ),
        )
    ]
    if codec.fmtp:
        attrs.append(("fmtp", f"{pt} {codec.fmtp}"))
    if dtmf_pt is not None:
        formats.append(str(dtmf_pt))
        attrs.append(("rtpmap", f"{dtmf_pt} {TELEPHONE_EVENT.name}/{TELEPHONE_EVENT.clock_rate}"))
        attrs.append(("fmtp", f"{dtmf_pt} {TELEPHONE_EVENT.fmtp}"))
    attrs.append(("ptime", str(ptime)))
    return formats, attrs


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def answer_offer(
    offer: SessionDescription,
    caps: MediaCapabilities,
    *,
    origin: Origin,
    local_address: str,
    local_port: int,
    local_direction: Direction = "sendrecv",
    srtp_key: bytes | None = None,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer``: return our description and the negotiated audio stream.

    ``srtp_key`` (30 bytes) is our SRTP master key+salt if the offer is RTP/SAVP; drawn from
    :mod:`secrets` when not given. Raises :class:`NegotiationError` if no stream is usable.
    """
    answer = SessionDescription(
        origin, "-", connection=Connection(local_address, addrtype=_addrtype(local_address))
    )
    result: NegotiatedMedia | None = None
    for offered in offer.media:
        choice = _choose(offered, caps) if result is None else None
        if choice is None:
            answer.media.append(_reject(offered))
            continue
        mirrored = _MIRROR[offer.direction_for(offered)]
        direction = _intersect(local_direction, mirrored)
        mux = caps.rtcp_mux and offered.rtcp_mux
        key = None
        if choice.crypto is not None:
            key = srtp_key or secrets.token_bytes(SRTP_KEY_LENGTH)
        result = _negotiated(offer, offered, choice, direction, key, caps.ptime, mux)
        formats, attrs = _audio_lines(
            choice.codec, choice.rtpmap.payload_type,
            choice.dtmf.payload_type if choice.dtmf else None, caps.ptime,
        )  # fmt: skip
        if choice.crypto is not None and key is not None:
            attrs.append(
                ("crypto", str(Crypto.inline(choice.crypto.tag, choice.crypto.suite, key)))
            )
        if mux:
            attrs.append(("rtcp-mux", None))
        attrs.append((direction, None))
        answer.media.append(
            MediaDescription("audio", local_port, offered.proto, formats, attributes=attrs)
        )
    if result is None:
        raise NegotiationError("no acceptable audio stream in the offer")
    return answer, result


@dataclass(slots=True)
class MediaSession:
    """Our side of the offer/answer exchanges of one call (RFC 3264 sections 5-8).

    Keeps the ``o=`` line stable across the call and bumps its version only when our
    description actually changes (section 8), remembers what we offered so an answer can be
    checked against it, and keeps the last :class:`NegotiatedMedia` so a re-offer's effect can
    be reported with :func:`changed_fields`.
    """

    caps: MediaCapabilities
    local_address: str
    local_port: int
    session_id: str = field(default_factory=lambda: str(secrets.randbelow(2**62)))
    username: str = "voxgate"
    srtp_key: bytes = field(default_factory=lambda: secrets.token_bytes(SRTP_KEY_LENGTH))
    negotiated: NegotiatedMedia | None = None
    _version: int = 0
    _last_body: str | None = None
    _offer: SessionDescription | None = None

    def _origin(self, description: SessionDescription) -> Origin:
        body = description.serialize()
        if self._last_body is not None and body != self._last_body:
            self._version += 1
        self._last_body = body
        return Origin(self.username, self.session_id, self._version, self.local_address,
                      addrtype=_addrtype(self.local_address))  # fmt: skip

    def _stamp(self, description: SessionDescription) -> SessionDescription:
        description.origin = Origin(self.username, self.session_id, 0, self.local_address)
        description.origin = self._origin(description)
        return description

    def create_offer(self, direction: Direction = "sendrecv") -> SessionDescription:
        """Our offer: every codec we support, telephone-event, our direction (hold = sendonly)."""
        caps = self.caps
        formats: list[str] = []
        attrs: list[tuple[str, str | None]] = []
        used: set[int] = set()
        next_dynamic = 96
        for codec in (*caps.codecs, *((TELEPHONE_EVENT,) if caps.dtmf else ())):
            pt = _DEFAULT_PT.get(codec.name.lower())
            if pt is None or pt in used:
                while next_dynamic in used or next_dynamic in _DEFAULT_PT.values():
                    next_dynamic += 1
                pt = next_dynamic
            used.add(pt)
            formats.append(str(pt))
            channels = codec.channels if codec.channels != 1 else None
            attrs.append(("rtpmap", str(RtpMap(pt, codec.name, codec.clock_rate, channels))))
            if codec.fmtp:
                attrs.append(("fmtp", f"{pt} {codec.fmtp}"))
        attrs.append(("ptime", str(caps.ptime)))
        proto = "RTP/SAVP" if caps.srtp == "required" else "RTP/AVP"
        if proto == "RTP/SAVP":
            for tag, suite in enumerate(caps.srtp_suites, 1):
                attrs.append(("crypto", str(Crypto.inline(tag, suite, self.srtp_key))))
        if caps.rtcp_mux:
            attrs.append(("rtcp-mux", None))
        attrs.append((direction, None))
        offer = SessionDescription(
            Origin(self.username, self.session_id, 0, self.local_address),
            connection=Connection(self.local_address, addrtype=_addrtype(self.local_address)),
            media=[MediaDescription("audio", self.local_port, proto, formats, attributes=attrs)],
        )
        self._offer = self._stamp(offer)
        return offer

    def receive_answer(self, answer: SessionDescription) -> NegotiatedMedia:
        """Apply the answer to our last offer; raises :class:`NegotiationError` if unusable."""
        offer, self._offer = self._offer, None
        if offer is None:
            raise NegotiationError("answer without an outstanding offer")
        if len(answer.media) != len(offer.media):
            raise NegotiationError("answer has a different number of m-lines than the offer")
        media = answer.media[0]
        if media.port == 0:
            raise NegotiationError("the audio stream was rejected")
        ours = offer.media[0]
        if media.proto != ours.proto:
            raise NegotiationError(f"answer changed the transport to {media.proto}")
        answered = _rtpmaps(media)
        pairs = ((c, m) for m in answered for c in self.caps.codecs if c.matches(m))
        found = next(pairs, None)
        if found is None:
            raise NegotiationError("answer lists no codec we offered")
        codec, chosen = found
        dtmf = next((m for m in answered if TELEPHONE_EVENT.matches(m)), None)
        crypto = None
        if "SAVP" in media.proto:
            tags = {c.tag: c.suite for c in ours.crypto}
            crypto = next((c for c in media.crypto if tags.get(c.tag) == c.suite and c.key), None)
            if crypto is None or crypto.key is None or len(crypto.key) != SRTP_KEY_LENGTH:
                raise NegotiationError("answer has no usable crypto attribute")
        mirrored = _MIRROR[answer.direction_for(media)]
        direction = _intersect(ours.direction or "sendrecv", mirrored)  # type: ignore[arg-type]
        choice = _Choice(codec, chosen, dtmf if self.caps.dtmf else None, crypto)
        mux = self.caps.rtcp_mux and media.rtcp_mux
        self.negotiated = _negotiated(
            answer, media, choice, direction, self.srtp_key, self.caps.ptime, mux
        )
        return self.negotiated

    def receive_offer(
        self, offer: SessionDescription, direction: Direction = "sendrecv"
    ) -> tuple[SessionDescription, NegotiatedMedia]:
        """Answer an initial offer or a re-offer (hold/unhold, new address, codec change)."""
        answer, negotiated = answer_offer(
            offer, self.caps,
            origin=Origin(self.username, self.session_id, 0, self.local_address),
            local_address=self.local_address, local_port=self.local_port,
            local_direction=direction, srtp_key=self.srtp_key,
        )  # fmt: skip
        self._stamp(answer)
        self.negotiated = negotiated
        return answer, negotiated
