"""HTTP Digest authentication for SIP (RFC 3261 section 22, RFC 7616, RFC 8760).

Server side, :class:`DigestChallenger` issues ``WWW-Authenticate``/``Proxy-Authenticate``
challenges and verifies ``Authorization`` headers *statelessly*: a nonce is
``<time>.<salt>.<hmac>``, the HMAC (SHA-256, keyed by a server secret) binding time, salt and
realm. Verifying needs no per-client table, so it scales across nodes that share the secret,
survives restarts and cannot be exhausted by a flood of unauthenticated INVITEs. An expired
but genuine nonce is answered with ``stale=true`` (the client retries silently, without
asking its user). The price of statelessness: ``nc`` replays within a nonce's lifetime are
not detected; keep the lifetime short (default 300 s) or put a replay cache in front.

Time is always an argument. Use one clock for issuing and verifying (monotonic on a single
node; wall-clock time if several nodes share the secret).

Client side, :func:`authorize` answers a 401/407 by choosing the strongest challenge we
support (SHA-256 over MD5, RFC 8760 section 2.4) and returns the request to resend.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from voxgate.sip._syntax import WS, quote, split_commas, unquote
from voxgate.sip.errors import SipParseError
from voxgate.sip.headers import BRANCH_MAGIC_COOKIE, CSeq
from voxgate.sip.message import SipRequest, SipResponse, make_response
from voxgate.sip.uri import SipUri, Uri, parse_uri

__all__ = [
    "AuthResult",
    "DigestChallenge",
    "DigestChallenger",
    "DigestCredentials",
    "Ha1",
    "Password",
    "authorize",
    "compute_ha1",
    "compute_response",
]

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
_PREFERENCE = ("SHA-256-sess", "SHA-256", "MD5-sess", "MD5")


def _hash(algorithm: str) -> Callable[[bytes], str]:
    base = algorithm[:-5] if algorithm.endswith("-sess") else algorithm
    try:
        return _HASHES[base.upper()]
    except KeyError:
        raise SipParseError(f"unsupported digest algorithm {algorithm!r}") from None


def _h(algorithm: str, *parts: str | bytes) -> str:
    data = b":".join(p if isinstance(p, bytes) else p.encode("utf-8") for p in parts)
    return _hash(algorithm)(data)


def compute_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)`` (before any ``-sess`` step)."""
    return _h(algorithm, username, realm, password)


def compute_response(
    algorithm: str,
    ha1: str,
    *,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 section 3.4.1; ``qop`` absent = RFC 2069 form)."""
    if algorithm.endswith("-sess"):
        ha1 = _h(algorithm, ha1, nonce, cnonce)
    ha2 = (
        _h(algorithm, method, uri, _h(algorithm, body))
        if qop == "auth-int"
        else _h(algorithm, method, uri)
    )
    if qop:
        return _h(algorithm, ha1, nonce, nc, cnonce, qop, ha2)
    return _h(algorithm, ha1, nonce, ha2)


def _parse_params(value: str, expected: str = "digest") -> dict[str, str]:
    scheme, _, rest = value.strip(WS).partition(" ")
    if scheme.lower() != expected:
        raise SipParseError(f"not a {expected} header: {value!r}")
    out: dict[str, str] = {}
    for item in split_commas(rest):
        name, eq, raw = item.partition("=")
        if not eq:
            raise SipParseError(f"bad auth parameter {item!r}")
        out[name.strip(WS).lower()] = unquote(raw.strip(WS))
    return out


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A ``WWW-Authenticate``/``Proxy-Authenticate`` Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        """Parse a challenge header value; raise :class:`SipParseError` if malformed."""
        p = _parse_params(value)
        if "realm" not in p or "nonce" not in p:
            raise SipParseError(f"challenge without realm or nonce: {value!r}")
        qop = tuple(q.strip(WS) for q in p["qop"].split(",") if q.strip(WS)) if "qop" in p else ()
        return cls(p["realm"], p["nonce"], p.get("algorithm", "MD5"), qop, p.get("opaque"),
                   p.get("stale", "").lower() == "true")  # fmt: skip

    def __str__(self) -> str:
        parts = [f"realm={quote(self.realm)}", f"nonce={quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """An ``Authorization``/``Proxy-Authorization`` Digest header."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        """Parse a credentials header value; raise :class:`SipParseError` if malformed."""
        p = _parse_params(value)
        try:
            creds = cls(p["username"], p["realm"], p["nonce"], p["uri"], p["response"],
                        p.get("algorithm", "MD5"), p.get("qop"), p.get("nc"), p.get("cnonce"),
                        p.get("opaque"))  # fmt: skip
        except KeyError as exc:
            raise SipParseError(f"credentials lack {exc.args[0]}: {value!r}") from None
        if creds.qop and (creds.nc is None or creds.cnonce is None):
            raise SipParseError(f"qop without nc/cnonce: {value!r}")
        return creds

    def __str__(self) -> str:
        parts = [
            f"username={quote(self.username)}", f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}", f"uri={quote(self.uri)}",
            f"response={quote(self.response)}", f"algorithm={self.algorithm}",
        ]  # fmt: skip
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.qop:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={quote(self.cnonce or '')}"]
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Password:
    """A stored plaintext password."""

    value: str


@dataclass(frozen=True, slots=True)
class Ha1:
    """Stored ``H(username:realm:password)`` per algorithm (``{"MD5": hex, "SHA-256": hex}``),
    so the server need not keep plaintext passwords."""

    by_algorithm: Mapping[str, str]


Credential = Password | Ha1
CredentialLookup = Callable[[str, str], Credential | None]
"""``(username, realm) -> credential`` or ``None`` for an unknown user."""


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of :meth:`DigestChallenger.verify`. On failure, send a new challenge
    (with ``stale=True`` when :attr:`stale`, so the client retries without prompting)."""

    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


@dataclass(slots=True)
class DigestChallenger:
    """Server side: challenge requests and verify their credentials statelessly."""

    realm: str
    secret: bytes
    lookup: CredentialLookup
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    nonce_lifetime: float = 300.0
    qop: str = "auth"
    lenient_uri: bool = False
    """Also accept a digest ``uri`` naming only the Request-URI's host and port (sipp 3.6
    sends ``sip:host:port`` for ``sip:user@host:port``). The response hash still covers the
    uri it states, so this widens replay only to other users at the same host and port."""
    _opaque: str = field(init=False, default="")

    def __post_init__(self) -> None:
        for algorithm in self.algorithms:
            _hash(algorithm)
        self._opaque = hmac.new(
            self.secret, b"opaque:" + self.realm.encode(), "sha256"
        ).hexdigest()[:32]

    def _mac(self, stamp: str, salt: str) -> str:
        msg = f"{stamp}:{salt}:{self.realm}".encode()
        return hmac.new(self.secret, msg, "sha256").hexdigest()[:32]

    def new_nonce(self, now: float, salt: str | None = None) -> str:
        """A fresh nonce bound to ``now`` (``salt`` random unless given, for tests)."""
        stamp = f"{int(now * 1000):x}"
        salt = salt if salt is not None else secrets.token_hex(8)
        return f"{stamp}.{salt}.{self._mac(stamp, salt)}"

    def challenges(self, now: float, *, stale: bool = False, salt: str | None = None) -> list[str]:
        """One challenge header value per algorithm, strongest first (RFC 8760 section 2.4)."""
        nonce = self.new_nonce(now, salt)
        qop = (self.qop,) if self.qop else ()
        return [
            str(DigestChallenge(self.realm, nonce, a, qop, self._opaque, stale))
            for a in self.algorithms
        ]

    def challenge_response(
        self, request: SipRequest, now: float, *, proxy: bool = False, stale: bool = False,
        to_tag: str | None = None,
    ) -> SipResponse:  # fmt: skip
        """A 401 (or 407 for a proxy) carrying fresh challenges."""
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        return make_response(
            request, 407 if proxy else 401, to_tag=to_tag,
            headers=[(name, value) for value in self.challenges(now, stale=stale)],
        )  # fmt: skip

    def _nonce_state(self, nonce: str, now: float) -> str:
        parts = nonce.split(".")
        if len(parts) != 3:
            return "bad"
        stamp, salt, mac = parts
        if not hmac.compare_digest(mac.encode(), self._mac(stamp, salt).encode()):
            return "bad"
        try:
            issued = int(stamp, 16) / 1000
        except ValueError:
            return "bad"
        age = now - issued
        if age < -1.0:
            return "bad"
        return "stale" if age > self.nonce_lifetime else "ok"

    def verify(self, request: SipRequest, now: float, *, proxy: bool = False) -> AuthResult:
        """Check the request's credentials for our realm."""
        header = "Proxy-Authorization" if proxy else "Authorization"
        values = request.headers.get_all(header)
        if not values:
            return AuthResult(False, reason="no credentials")
        creds: DigestCredentials | None = None
        for value in values:
            try:
                candidate = DigestCredentials.parse(value)
            except SipParseError:
                continue
            if candidate.realm == self.realm:
                creds = candidate
                break
        if creds is None:
            return AuthResult(False, reason="no credentials for this realm")
        if creds.algorithm not in self.algorithms:
            return AuthResult(False, creds.username, reason="algorithm not offered")
        if self.qop and creds.qop != self.qop:
            return AuthResult(False, creds.username, reason="qop mismatch")
        try:
            stated = parse_uri(creds.uri)
            if stated != request.uri and not (
                self.lenient_uri and _same_host(stated, request.uri)
            ):
                return AuthResult(
                    False, creds.username, reason="digest uri does not match the Request-URI"
                )
        except SipParseError:
            return AuthResult(False, creds.username, reason="bad digest uri")
        state = self._nonce_state(creds.nonce, now)
        if state == "bad":
            return AuthResult(False, creds.username, reason="nonce not ours")
        stored = self.lookup(creds.username, self.realm)
        if stored is None:
            return AuthResult(False, creds.username, reason="unknown user")
        if isinstance(stored, Password):
            ha1 = compute_ha1(creds.algorithm, creds.username, self.realm, stored.value)
        else:
            base = creds.algorithm.removesuffix("-sess")
            found = stored.by_algorithm.get(base)
            if found is None:
                return AuthResult(False, creds.username, reason="no stored HA1 for the algorithm")
            ha1 = found
        expected = compute_response(
            creds.algorithm, ha1, nonce=creds.nonce, method=request.method, uri=creds.uri,
            qop=creds.qop, nc=creds.nc or "", cnonce=creds.cnonce or "", body=request.body,
        )  # fmt: skip
        if not hmac.compare_digest(expected.encode(), creds.response.lower().encode()):
            return AuthResult(False, creds.username, reason="wrong response")
        if state == "stale":
            # Right password, old nonce: ask again with stale=true, no user prompt needed.
            return AuthResult(False, creds.username, stale=True, reason="stale nonce")
        return AuthResult(True, creds.username)


def _same_host(stated: Uri, request_uri: Uri) -> bool:
    return (
        isinstance(stated, SipUri) and isinstance(request_uri, SipUri) and stated.user is None
        and (stated.scheme, stated.host.lower(), stated.port)
        == (request_uri.scheme, request_uri.host.lower(), request_uri.port)
    )  # fmt: skip


def choose_challenge(response: SipResponse) -> tuple[str, DigestChallenge] | None:
    """The strongest supported challenge in a 401/407 and the header to answer it with."""
    best: tuple[int, str, DigestChallenge] | None = None
    for header, answer in (
        ("WWW-Authenticate", "Authorization"),
        ("Proxy-Authenticate", "Proxy-Authorization"),
    ):
        for value in response.headers.get_all(header):
            try:
                challenge = DigestChallenge.parse(value)
            except SipParseError:
                continue
            if challenge.algorithm not in _PREFERENCE or (
                challenge.qop and "auth" not in challenge.qop
            ):
                continue
            rank = _PREFERENCE.index(challenge.algorithm)
            if best is None or rank < best[0]:
                best = (rank, answer, challenge)
    return None if best is None else (best[1], best[2])


def build_credentials(
    challenge: DigestChallenge, *, method: str, uri: str, username: str, password: str,
    cnonce: str, nc: int = 1,
) -> DigestCredentials:  # fmt: skip
    """Credentials answering ``challenge`` (qop=auth when offered, else the RFC 2069 form)."""
    qop = "auth" if "auth" in challenge.qop else None
    nc_text = f"{nc:08x}"
    ha1 = compute_ha1(challenge.algorithm, username, challenge.realm, password)
    response = compute_response(
        challenge.algorithm, ha1, nonce=challenge.nonce, method=method, uri=uri, qop=qop,
        nc=nc_text, cnonce=cnonce,
    )  # fmt: skip
    return DigestCredentials(
        username, challenge.realm, challenge.nonce, uri, response, challenge.algorithm, qop,
        nc_text if qop else None, cnonce if qop else None, challenge.opaque,
    )  # fmt: skip


def authorize(
    request: SipRequest, response: SipResponse, *, username: str, password: str,
    cnonce: str | None = None, branch: str | None = None,
) -> SipRequest | None:  # fmt: skip
    """The request to resend after a 401/407 (RFC 3261 section 22.2), or ``None`` if no
    challenge is usable. The copy has the credentials, CSeq + 1 and a new Via branch."""
    chosen = choose_challenge(response)
    if chosen is None:
        return None
    header, challenge = chosen
    creds = build_credentials(
        challenge, method=request.method, uri=str(request.uri), username=username,
        password=password, cnonce=cnonce or secrets.token_hex(8),
    )  # fmt: skip
    out = request.copy()
    out.headers.add(header, str(creds))
    cseq = request.cseq
    out.headers.set("CSeq", str(CSeq(cseq.number + 1, cseq.method)))
    via = request.via.with_param("branch", branch or BRANCH_MAGIC_COOKIE + secrets.token_hex(8))
    out.headers.remove_first("Via")
    out.headers.prepend("Via", str(via))
    return out
