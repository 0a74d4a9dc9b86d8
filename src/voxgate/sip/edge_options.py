"""The SIP edge's options: what :class:`~voxgate.sip.endpoint.SipEdge` needs from
``Settings``, resolved and validated once (tests and benchmarks build them directly)."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field

from voxgate.config import Settings, SipTrunk
from voxgate.sip.media import MediaOptions
from voxgate.sip.offer_answer import MediaCapabilities
from voxgate.sip.session_timer import SessionTimerPolicy

__all__ = ["Network", "SipEdgeOptions"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)
class SipEdgeOptions:
    """What the edge needs from ``Settings``, resolved once (tests build it directly)."""

    host: str = "127.0.0.1"
    advertised_host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: {"udp": 5060, "tcp": 5060})
    allowed: list[Network] = field(default_factory=list)
    realm: str = "voxgate"
    digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    users: dict[str, str] = field(default_factory=dict)
    trunks: list[SipTrunk] = field(default_factory=list)
    sample_rate: int = 16000
    answer_delay_s: float = 0.0
    max_calls: int = 1000
    rate_per_source: float = 10.0
    caps: MediaCapabilities = field(default_factory=MediaCapabilities)
    media: MediaOptions = field(default_factory=MediaOptions)
    rtp_ports: tuple[int, int] = (20000, 20999)
    register_expires: tuple[int, int] = (60, 3600)
    tls_context: ssl.SSLContext | None = None
    contact_user: str = "voxgate"
    session_timer: SessionTimerPolicy = field(default_factory=SessionTimerPolicy)
    refer_targets: frozenset[str] = frozenset()
    """Refer-To users an inbound REFER may make us call; empty: every REFER gets 403."""
    """RFC 4028 policy; ``Settings`` keeps Min-SE >= 90 s, tests build shorter ones here."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SipEdgeOptions:
        sip, media = settings.sip, settings.media
        wildcard = sip.host in ("0.0.0.0", "::")
        advertised = sip.public_host or ("127.0.0.1" if wildcard else sip.host)
        ports: dict[str, int] = {t: (sip.tls_port if t == "tls" else sip.port) for t in sip.transports}
        tls = None
        if "tls" in ports:
            if sip.tls_cert is None or sip.tls_key is None:
                raise ValueError("sip.transports has 'tls' but sip.tls_cert/tls_key are not set")
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(sip.tls_cert, sip.tls_key)
        allowed = [ipaddress.ip_network(n, strict=False) for n in sip.allowed_sources]
        for trunk in sip.trunks:
            allowed += [ipaddress.ip_network(n, strict=False) for n in trunk.allowed_ips]
        users = {u.username: u.password.get_secret_value() for u in sip.users}
        for trunk in sip.trunks:
            if trunk.username and trunk.password:
                users.setdefault(trunk.username, trunk.password.get_secret_value())
        return cls(
            host=sip.host, advertised_host=advertised, ports=ports, allowed=allowed,
            realm=sip.realm, digest_algorithms=tuple(sip.digest_algorithms), users=users, trunks=list(sip.trunks), sample_rate=sip.sample_rate,
            answer_delay_s=sip.answer_delay_s, max_calls=sip.max_calls,
            rate_per_source=sip.invite_rate_per_source,
            caps=MediaCapabilities(srtp=sip.srtp),
            media=MediaOptions(
                jitter_min_ms=media.jitter_min_ms, jitter_max_ms=media.jitter_max_ms,
                media_timeout_s=media.media_timeout_s,
            ),
            rtp_ports=(media.rtp_port_min, media.rtp_port_max),
            register_expires=(sip.register_min_expires, sip.register_max_expires),
            tls_context=tls,
            refer_targets=frozenset(sip.refer_targets),
            session_timer=SessionTimerPolicy(
                enabled=sip.session_timers, interval=max(sip.session_expires, sip.session_min_se),
                min_se=sip.session_min_se,
            ),
        )  # fmt: skip
