"""Settings of the WebSocket edges and the external-app bridge (``[websocket]`` in TOML).

A section class of its own so this package owns its knobs; ``voxgate.config.Settings``
mounts it as ``websocket``. Code reads it through :func:`settings_of`, which falls back to
the defaults while a ``Settings`` without the section is in use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class WebSocketSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    twilio_auth_token: SecretStr | None = None
    """Twilio account auth token: when set, ``POST /twilio/voice`` and the media stream
    handshake must carry a valid ``X-Twilio-Signature``."""
    max_message_bytes: int = Field(65536, ge=1024, le=16 << 20)
    """Largest inbound WebSocket message on the edges; larger ones close the stream (1009)."""
    send_queue_max_messages: int = Field(3000, ge=10, le=1_000_000)
    """Outbound messages queued per stream (3000 = 60 s of 20 ms audio) before the peer is
    declared not reading and the stream is closed (4008)."""
    send_stall_timeout_s: float = Field(10.0, gt=0, le=600)
    """One send blocked longer than this (peer's TCP window closed) also closes with 4008."""
    rate_burst_s: float = Field(2.0, gt=0, le=60)
    """Caller audio a stream may send ahead of real time before frames are dropped."""
    rate_factor: float = Field(1.2, ge=1.0, le=10)
    """Sustained inbound audio rate allowed, as a multiple of real time."""
    max_dropped_frames: int = Field(250, ge=1, le=1_000_000)
    """Frames dropped for rate before the stream is closed as abusive (4029)."""

    bridge_buffer_s: float = Field(10.0, ge=0, le=300)
    """Caller audio kept while an external app is unreachable, replayed on reconnect."""
    bridge_reconnect_limit_s: float = Field(10.0, ge=0, le=600)
    """How long to keep reconnecting to a dropped app before apologising and hanging up."""
    bridge_backoff_initial_s: float = Field(0.1, gt=0, le=60)
    bridge_backoff_max_s: float = Field(2.0, gt=0, le=300)
    bridge_connect_timeout_s: float = Field(5.0, gt=0, le=120)
    bridge_max_message_bytes: int = Field(1 << 20, ge=1024, le=64 << 20)
    """Largest message accepted from an external app (apps may send TTS in big chunks)."""
    apology_wav: Path | None = None
    """WAV played to the caller when the app stays unreachable; a tone when unset."""


def settings_of(settings: Any) -> WebSocketSettings:
    """The ``websocket`` section of a ``Settings`` object, or the defaults."""
    section = getattr(settings, "websocket", None)
    return section if isinstance(section, WebSocketSettings) else WebSocketSettings()
