"""ICE set-up: no public STUN server, and host candidates that include loopback.

Two aiortc defaults are wrong for a self-hosted node:

* ``RTCConfiguration()`` adds ``stun:stun.l.google.com:19302``: every call would send a
  packet to Google and wait on it. We always pass ``iceServers=[]`` (operators who need
  server-reflexive candidates put their own STUN server in the options).
* aioice's ``get_host_addresses`` skips ``127.0.0.1``. A browser on the same machine (the
  tests, a kiosk, a single-host demo) or a node inside a loopback-only network namespace then
  has no candidate pair at all.

How the addresses are decided (aioice 0.13): ``Connection.gather_candidates`` calls the
module function ``get_host_addresses`` (every interface address except loopback and IPv6
link-local) and passes the list to the *public* method
``Connection.get_component_candidates(component, addresses)``, which binds one UDP socket per
address. There is no constructor option for extra addresses, so we wrap that one method on
each connection our peer connections own (reached through ``RTCIceGatherer._connection``,
the attribute aiortc's own ``RTCIceTransport`` uses) before gathering starts. Unlike patching
``ifaddr`` or ``aioice.ice.get_host_addresses``, this touches no global state: other aioice
users in the process are unaffected, and the policy is per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

LOOPBACK_V4 = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class IcePolicy:
    """Which local addresses a WebRTC call gathers host candidates on."""

    addresses: tuple[str, ...] | None = None
    """Exactly these addresses; ``None`` keeps aioice's choice (all non-loopback interfaces)."""
    loopback: bool = True
    """Also gather on 127.0.0.1 (browsers only use it with loopback allowed, e.g. Chromium's
    ``--allow-loopback-in-peer-connection``; elsewhere it costs one idle socket per call)."""
    stun_server: str | None = None
    """``stun:host:port`` of the operator's own STUN server; never a public default."""

    def choose(self, discovered: Sequence[str]) -> list[str]:
        chosen = list(discovered if self.addresses is None else self.addresses)
        if self.loopback and LOOPBACK_V4 not in chosen:
            chosen.append(LOOPBACK_V4)
        return chosen

    def configuration(self) -> RTCConfiguration:
        servers = [RTCIceServer(self.stun_server)] if self.stun_server else []
        return RTCConfiguration(iceServers=servers)


GatherFn = Callable[..., Awaitable[list[Any]]]


def apply_policy(pc: RTCPeerConnection, policy: IcePolicy) -> int:
    """Make every not-yet-gathering ICE gatherer of ``pc`` bind the policy's addresses.

    Call after ``setRemoteDescription`` (which creates the transports) and before
    ``setLocalDescription`` (which gathers). Returns how many gatherers were adjusted.
    """
    gatherers = {
        id(g): g
        for g in (
            *(t.receiver.transport.transport.iceGatherer for t in pc.getTransceivers()),
            *([pc.sctp.transport.transport.iceGatherer] if pc.sctp is not None else []),
        )
    }
    adjusted = 0
    for gatherer in gatherers.values():
        if gatherer.state != "new":
            continue
        connection = gatherer._connection
        original: GatherFn = connection.get_component_candidates

        async def chosen(
            component: int,
            addresses: list[str],
            timeout: int = 5,  # noqa: ASYNC109 (aioice's own signature, passed through)
            _original: GatherFn = original,
        ) -> list[Any]:
            return await _original(
                component=component, addresses=policy.choose(addresses), timeout=timeout
            )

        # An instance attribute shadows the method for this connection only.
        setattr(connection, "get_component_candidates", chosen)  # noqa: B010
        adjusted += 1
    return adjusted
