"""Trunks: the carriers we dial out through and may register with, sans-I/O.

:class:`TrunkRegistration` keeps one REGISTER binding alive (RFC 3261 section 10.2): build
the request, answer a 401/407 once per request with :func:`~voxgate.sip.auth.authorize`,
read the granted expiry from the 200 and say when to refresh. It never sleeps or sends; the
edge drives it (``next_action`` time in, requests out), so refresh and failure back-off are
tested with a fake clock.

Refresh timing: before half the granted interval for short bindings, a minute before the
end for long ones, so one lost REGISTER (and its 32 s of retransmissions on UDP) still
leaves time for another attempt before the binding lapses at the trunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.config import SipTrunk
from voxgate.sip.auth import authorize
from voxgate.sip.message import SipRequest, SipResponse
from voxgate.sip.requests import build_invite, build_register, new_call_id, new_tag
from voxgate.sip.uri import NameAddress, SipUri, Uri, parse_uri

__all__ = [
    "TrunkRegistration",
    "build_trunk_invite",
    "build_user_invite",
    "check_user_part",
    "refresh_after",
    "trunk_target",
]

RETRY_AFTER_FAILURE_S = 30.0


def refresh_after(expires: int) -> float:
    """Seconds after a successful REGISTER to send the next one."""
    return expires / 2 if expires <= 120 else float(expires - 60)


def trunk_target(trunk: SipTrunk, target: str) -> SipUri:
    """The Request-URI for dialling ``target`` through ``trunk``.

    A number or user name becomes ``sip:target@domain``; a full ``sip:`` URI is kept (the
    request still goes to the trunk's address, which routes it).
    """
    if target.startswith(("sip:", "sips:")):
        uri = parse_uri(target)
        if not isinstance(uri, SipUri):
            raise ValueError(f"not a SIP URI: {target!r}")
        return uri
    if not target or any(c in target for c in " <>\"@;?"):
        raise ValueError(f"bad dial target {target!r}")
    domain = trunk.from_domain or trunk.host
    port = None if trunk.from_domain else trunk.port
    return SipUri(domain, user=target, port=port)


def from_address(trunk: SipTrunk) -> NameAddress:
    """Our From on requests through the trunk (the caller id the carrier sees)."""
    user = trunk.from_user or trunk.username or "voxgate"
    return NameAddress(SipUri(trunk.from_domain or trunk.host, user=user))


def build_trunk_invite(
    trunk: SipTrunk, target: str, *, contact: NameAddress, sdp: bytes, transport: str,
    sent_by: tuple[str, int | None],
) -> SipRequest:  # fmt: skip
    """An initial INVITE for ``target`` through ``trunk`` carrying our SDP offer."""
    uri = trunk_target(trunk, target)
    return build_invite(
        uri, contact=contact, sdp=sdp, from_=from_address(trunk), to=NameAddress(uri),
        transport=transport, sent_by=sent_by,
        headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE")],
    )  # fmt: skip


def check_user_part(value: str, what: str = "user") -> str:
    """``value`` if it can stand as the user part of a SIP URI as is, else ValueError."""
    if not value or any(c in value for c in " <>\"@;?:/\r\n\t"):
        raise ValueError(f"bad {what} {value!r}")
    return value


def build_user_invite(
    target: Uri, *, user: str, caller: str, domain: str, contact: NameAddress, sdp: bytes,
    transport: str, sent_by: tuple[str, int | None],
) -> SipRequest:  # fmt: skip
    """An initial INVITE to one of our registered ``user``'s bindings: the Request-URI is the
    binding's Contact (section 10.3 / 16.5 target), To and From are in our own ``domain``."""
    check_user_part(caller, "caller id")
    return build_invite(
        target, contact=contact, sdp=sdp, from_=NameAddress(SipUri(domain, user=caller)),
        to=NameAddress(SipUri(domain, user=user)), transport=transport, sent_by=sent_by,
        headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE")],
    )  # fmt: skip


@dataclass(slots=True)
class _State:
    registered: bool = False
    expires_at: float = 0.0
    next_at: float = 0.0
    failures: int = 0
    last_status: int | None = None


class TrunkRegistration:
    """One trunk's REGISTER binding. Drive with :meth:`request` / :meth:`on_response`."""

    def __init__(
        self, trunk: SipTrunk, *, contact: NameAddress, transport: str,
        sent_by: tuple[str, int | None],
    ) -> None:  # fmt: skip
        self.trunk = trunk
        self.contact = contact
        self.transport = transport
        self.sent_by = sent_by
        self.call_id = new_call_id(sent_by[0])
        self.from_tag = new_tag()
        self.cseq = 0
        self.state = _State()
        self.count = 0
        """REGISTER requests answered 2xx so far (tests watch refreshes with it)."""

    @property
    def registered(self) -> bool:
        return self.state.registered

    @property
    def next_at(self) -> float:
        """When :meth:`request` should be called next (0 = now)."""
        return self.state.next_at

    def request(self, *, expires: int | None = None) -> SipRequest:
        """The next REGISTER (same Call-ID, CSeq + 1, section 10.2.4); ``expires=0`` removes."""
        trunk = self.trunk
        self.cseq += 1
        registrar = SipUri(trunk.from_domain or trunk.host, port=None if trunk.from_domain else trunk.port)
        aor = NameAddress(SipUri(registrar.host, user=trunk.username or "voxgate"))
        return build_register(
            registrar, aor=aor, contact=self.contact,
            expires=trunk.register_expires if expires is None else expires,
            transport=self.transport, sent_by=self.sent_by, call_id=self.call_id,
            cseq=self.cseq, from_tag=self.from_tag,
        )  # fmt: skip

    def challenge(self, request: SipRequest, response: SipResponse) -> SipRequest | None:
        """The authorized retry for a 401/407, or None when we cannot answer it."""
        trunk = self.trunk
        if trunk.username is None or trunk.password is None:
            return None
        retry = authorize(
            request, response, username=trunk.username,
            password=trunk.password.get_secret_value(),
        )  # fmt: skip
        if retry is not None:
            self.cseq = retry.cseq.number
        return retry

    def on_response(self, request: SipRequest, response: SipResponse, now: float) -> None:
        """Record the final outcome of a REGISTER and schedule the next one."""
        st = self.state
        st.last_status = response.status
        if response.success:
            granted = self._granted(response)
            if granted == 0:
                st.registered = False
                st.next_at = float("inf")
                return
            self.count += 1
            st.registered = True
            st.failures = 0
            st.expires_at = now + granted
            st.next_at = now + refresh_after(granted)
            return
        st.failures += 1
        if st.expires_at <= now:
            st.registered = False
        backoff = min(RETRY_AFTER_FAILURE_S * (2 ** min(st.failures - 1, 4)), 600.0)
        st.next_at = now + backoff

    def _granted(self, response: SipResponse) -> int:
        ours = str(self.contact.uri)
        for contact in response.contacts:
            if str(contact.uri) == ours:
                value = contact.params.get("expires")
                if value is not None and value.isdigit():
                    return int(value)
        header = response.headers.get("Expires")
        if header is not None and header.strip().isdigit():
            return int(header.strip())
        return self.trunk.register_expires
