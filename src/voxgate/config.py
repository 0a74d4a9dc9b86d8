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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from voxgate.errors import ConfigError

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

    _host = field_validator("host")(_check_host)


class AuthSettings(_Section):
    api_tokens: list[SecretStr] = Field(default_factory=list)
    """Bearer tokens for the REST API, WebSocket endpoints and dashboard. When empty, `serve`
    generates one at start-up and prints it once: endpoints are never left open."""


Transport = Literal["udp", "tcp", "tls"]


def _default_transports() -> list[Transport]:
    return ["udp", "tcp"]


class SipSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    transports: list[Transport] = Field(default_factory=_default_transports)
    allowed_sources: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    """Networks whose unauthenticated INVITEs are accepted (trunk IP allow-list)."""

    _host = field_validator("host")(_check_host)

    @field_validator("allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP network (e.g. 203.0.113.0/24)") from exc
        return value


class MediaSettings(_Section):
    rtp_port_min: int = Field(20000, ge=1024, le=65535)
    rtp_port_max: int = Field(20999, ge=1024, le=65535)
    jitter_min_ms: int = Field(20, ge=0, le=1000)
    jitter_max_ms: int = Field(200, ge=20, le=2000)
    media_timeout_s: float = Field(30.0, gt=0, le=3600)

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

    def ensure_api_token(self) -> str | None:
        """Generate a token when none is configured; returns it so it can be shown once."""
        if self.auth.api_tokens:
            return None
        token = secrets.token_urlsafe(24)
        self.auth.api_tokens = [SecretStr(token)]
        return token


def _describe(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"])
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
