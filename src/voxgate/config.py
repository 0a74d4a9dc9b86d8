"""Validated configuration: TOML file < ``VOXGATE_*`` environment < command-line flags.

A bad value fails at start-up with one line per problem naming the key, the value given and
what is allowed, so an operator never discovers a typo from a misbehaving call. Unknown keys
in the TOML file are errors too (a misspelt key silently ignored is a misconfigured server).
Nested keys come from the environment with ``__``: ``VOXGATE_SIP__PORT=5070``.
"""

from __future__ import annotations

import contextvars
import ipaddress
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from voxgate.agent.config import AgentSettings
from voxgate.cluster.config import ClusterSettings
from voxgate.errors import ConfigError
from voxgate.observability.cost import PriceTable
from voxgate.websocket.config import WebSocketSettings

_toml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "voxgate_toml_path", default=None
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_host(value: str) -> str:
    if value in ("localhost", "::", "0.0.0.0"):
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise ValueError("must be an IP address, 'localhost', '0.0.0.0' or '::'") from exc
    return value


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = None
    """How callers' apps reach this server (used in TwiML and printed URLs)."""
    drain_timeout_s: float = Field(30.0, ge=0, le=3600)
    workers: int = Field(1, ge=1, le=64)
    """Processes serving this node, one per core: 1 runs everything in this process (no
    supervisor). More needs ``cluster.redis_url``: each worker is a cluster node
    (``<node_id>-w<k>``) sharing the HTTP port, and only the cluster registry lets the API of
    whichever worker a request lands on reach calls owned by the others."""

    _host = field_validator("host")(_check_host)


class AuthSettings(_Section):
    api_tokens: list[SecretStr] = Field(default_factory=list)
    """Bearer tokens for the REST API, WebSocket endpoints and dashboard. When empty, `serve`
    generates one at start-up and prints it once: endpoints are never left open."""


Transport = Literal["udp", "tcp", "tls"]


def _default_transports() -> list[Transport]:
    return ["udp", "tcp"]


def _check_networks(value: list[str]) -> list[str]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP network (e.g. 203.0.113.0/24)") from exc
    return value


DigestAlgorithm = Literal["SHA-256", "MD5"]


def _default_digest() -> list[DigestAlgorithm]:
    return ["SHA-256", "MD5"]


class SipUser(_Section):
    """A phone or softphone of ours: may REGISTER and call in with digest credentials."""

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.+\-]+$")
    password: SecretStr


class SipTrunk(_Section):
    """A carrier (or PBX) we place calls through and may register with.

    ``username``/``password`` answer the trunk's 401/407 challenges on REGISTER and INVITE
    and also let the trunk authenticate *to us* when its calls arrive from an address outside
    ``allowed_ips``. ``allowed_ips`` are the trunk's signalling networks whose INVITEs are
    accepted without a challenge (most carriers authenticate by IP).
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(5060, ge=1, le=65535)
    transport: Transport = "udp"
    username: str | None = None
    password: SecretStr | None = None
    registration: bool = False
    """Keep a REGISTER binding with the trunk (refreshed before it expires)."""
    register_expires: int = Field(600, ge=1, le=86400)
    from_user: str | None = None
    """User part of our From on calls through the trunk (the caller id); default username."""
    from_domain: str | None = None
    """Host part of our From and of the Request-URI; default the trunk's host."""
    allowed_ips: list[str] = Field(default_factory=list)

    _ips = field_validator("allowed_ips")(_check_networks)


class SipSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    transports: list[Transport] = Field(default_factory=_default_transports)
    allowed_sources: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    """Networks whose unauthenticated INVITEs are accepted (trunk IP allow-list)."""
    public_host: str | None = None
    """Address put in Contact, Via and SDP when ``host`` is a wildcard (``0.0.0.0``)."""
    tls_port: int = Field(5061, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    realm: str = Field("voxgate", min_length=1, max_length=128)
    """Digest realm of our challenges."""
    digest_algorithms: list[DigestAlgorithm] = Field(
        default_factory=_default_digest, min_length=1
    )
    """Challenges offered, strongest first (RFC 8760). Some UAs (sipp 3.6, old phones) answer
    only the first challenge and only MD5: list just ``MD5`` for them."""
    users: list[SipUser] = Field(default_factory=list)
    trunks: list[SipTrunk] = Field(default_factory=list)
    allow_outbound: bool = True
    """Whether ``POST /v1/calls`` may dial out (always token-guarded and through a trunk)."""
    max_calls: int = Field(1000, ge=1, le=100000)
    """Concurrent SIP calls; further INVITEs get 503."""
    invite_rate_per_source: float = Field(10.0, gt=0, le=100000)
    """INVITE/REGISTER per second (burst 2x) accepted from one address outside the allowed
    sources and trunks; the excess is dropped silently (no reflection of a flood)."""
    answer_delay_s: float = Field(0.0, ge=0, le=60)
    """Ring this long (180) before answering; 0 answers at once."""
    sample_rate: Literal[8000, 16000] = 16000
    """Rate of the PCM frames calls deliver to apps (16 kHz suits the embedded STT)."""
    srtp: Literal["off", "optional", "required"] = "optional"
    register_min_expires: int = Field(60, ge=1, le=86400)
    register_max_expires: int = Field(3600, ge=1, le=86400)
    session_timers: bool = True
    """Ask for and insert RFC 4028 session timers (requests asking for them are honoured
    either way): a far end that vanished without BYE is hung up after one interval."""
    session_expires: int = Field(1800, ge=90, le=86400)
    """Session interval we ask for and insert (seconds)."""
    session_min_se: int = Field(90, ge=90, le=86400)
    """Shortest session interval accepted (422 below it); RFC 4028 allows no less than 90."""
    refer_targets: list[str] = Field(default_factory=list)
    """Users or numbers an inbound REFER (the far end asking us to transfer, i.e. to place a
    call at our cost) may name; empty (default) refuses every inbound REFER with 403."""

    _host = field_validator("host")(_check_host)
    _networks = field_validator("allowed_sources")(_check_networks)

    @field_validator("trunks")
    @classmethod
    def _unique_trunks(cls, value: list[SipTrunk]) -> list[SipTrunk]:
        names = [t.name for t in value]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"trunk names must be unique, repeated: {sorted(dup)}")
        return value


class MediaSettings(_Section):
    rtp_port_min: int = Field(20000, ge=1024, le=65535)
    rtp_port_max: int = Field(20999, ge=1024, le=65535)
    jitter_min_ms: int = Field(20, ge=0, le=1000)
    jitter_max_ms: int = Field(200, ge=20, le=2000)
    media_timeout_s: float = Field(30.0, gt=0, le=3600)
    realtime_priority: int = 0
    """0 (default): the event loop runs at normal priority. 1-99: its thread runs
    ``SCHED_RR`` at this priority (10 suggested) so a due 20 ms tick preempts ordinary
    processes instead of waiting a scheduler slice behind them; threads it starts (inference)
    stay normal. Needs CAP_SYS_NICE or RLIMIT_RTPRIO, else a warning and normal priority.
    See ``voxgate.realtime``."""

    @field_validator("realtime_priority")
    @classmethod
    def _rt_priority(cls, value: int) -> int:
        if not 0 <= value <= 99:
            raise ValueError(
                "must be 0 (off) or a SCHED_RR priority 1-99 for the media event loop "
                "(10 suggested)"
            )
        return value

    @field_validator("rtp_port_max")
    @classmethod
    def _range(cls, value: int, info: Any) -> int:
        low = info.data.get("rtp_port_min")
        if low is not None and value <= low:
            raise ValueError(f"must be greater than rtp_port_min ({low})")
        return value


class RecordsSettings(_Section):
    database_url: str = "sqlite+aiosqlite:///var/voxgate.db"
    recordings_dir: Path = Path("var/recordings")
    retention_days: int = Field(30, ge=0, le=36500)


class OpenAISettings(_Section):
    """Any OpenAI-compatible chat completions server (OpenAI, Groq, vLLM, Ollama, llama.cpp)."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None


SttName = Literal["embedded", "fake"]
LlmName = Literal["embedded", "openai", "fake"]
TtsName = Literal["embedded", "fake"]


def _embedded_only() -> list[Any]:
    return ["embedded"]


class ProvidersSettings(_Section):
    """Which STT/LLM/TTS serve the in-process agent; a list is a fallback chain, in order."""

    stt: list[SttName] = Field(default_factory=_embedded_only, min_length=1)
    llm: list[LlmName] = Field(default_factory=_embedded_only, min_length=1)
    tts: list[TtsName] = Field(default_factory=_embedded_only, min_length=1)
    whisper_model: Literal["tiny.en", "base"] = "tiny.en"
    vad: Literal["silero", "webrtc"] = "silero"
    timeout_s: float = Field(3.0, gt=0, le=60)
    """A provider that produces nothing for this long hands over to the next in its chain."""
    openai: OpenAISettings = Field(default_factory=OpenAISettings)


class RouteSettings(_Section):
    """``[[routes]]``: first match wins; unmatched calls go to the default agent."""

    name: str = ""
    callee: str = "*"
    edge: Literal["*", "sip", "webrtc", "websocket", "local"] = "*"
    app: str = Field("agent", min_length=1)
    """``"agent"``, ``"agent:NAME"``, ``"echo"`` (caller hears themself: a line test) or a
    ``ws://``/``wss://`` URL of an external app."""
    protocol: Literal["twilio", "native"] = "twilio"
    auth_header: SecretStr | None = None

    @field_validator("app")
    @classmethod
    def _app(cls, value: str) -> str:
        if value in ("agent", "echo") or value.startswith(("agent:", "ws://", "wss://")):
            return value
        raise ValueError("must be 'agent', 'agent:NAME', 'echo' or a ws:// / wss:// URL")


class ObservabilitySettings(_Section):
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint, e.g. ``http://127.0.0.1:4318/v1/traces``; unset: no traces."""
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    recording: bool = False
    """Record every call as two WAV tracks (caller, agent) under ``records.recordings_dir``."""
    prices: PriceTable = Field(default_factory=PriceTable)
    """Provider name (or ``edge:sip``...) -> prices, for cost per call and per minute."""


class Settings(BaseSettings):
    """All of voxgate's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="VOXGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    sip: SipSettings = Field(default_factory=SipSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    records: RecordsSettings = Field(default_factory=RecordsSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    routes: list[RouteSettings] = Field(default_factory=list)
    websocket: WebSocketSettings = Field(default_factory=WebSocketSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    """Multi-node on Redis; ``cluster.node_id`` also names this node in call records."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _workers_need_cluster(self) -> Settings:
        """Refused rather than run half-working: without the registry, ``GET``/``POST
        /v1/calls/{id}`` on worker A cannot see or control a call owned by worker B."""
        if self.server.workers > 1 and not self.cluster.redis_url:
            raise ValueError(
                f"server.workers = {self.server.workers} needs cluster.redis_url: each worker "
                "is a cluster node, and the API of the worker a request lands on reaches "
                "calls owned by the other workers only through the Redis call registry "
                "(set cluster.redis_url, or server.workers = 1)"
            )
        return self

    def ensure_api_token(self) -> str | None:
        """Generate a token when none is configured; returns it so it can be shown once."""
        if self.auth.api_tokens:
            return None
        token = secrets.token_urlsafe(24)
        self.auth.api_tokens = [SecretStr(token)]
        return token


def _describe(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    if not loc:  # a check across sections (model validator): its message names the keys
        return "config: " + str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        return f"config key '{loc}': unknown key (value {value!r}); check the spelling"
    if error["type"] == "missing":
        return f"config key '{loc}': required but not set"
    return f"config key '{loc}': value {value!r} is not allowed: {error['msg']}"


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from TOML, environment and flag overrides, or raise ConfigError."""
    if config_path is not None and not config_path.is_file():
        raise ConfigError(f"config file {config_path} does not exist")
    token = _toml_path.set(config_path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(err) for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    except ValueError as exc:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"cannot read config file {config_path}: {exc}") from None
    finally:
        _toml_path.reset(token)
