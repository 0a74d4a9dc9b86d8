"""``ClusterSettings``: the ``[cluster]`` section of voxgate.toml.

Everything in the cluster package is optional: with ``redis_url`` unset the node runs alone
(SQLite records, in-memory queues), which is the embedded default. Mount this model as
``cluster: ClusterSettings`` in ``voxgate.config.Settings``.
"""

from __future__ import annotations

import socket

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def default_node_id() -> str:
    """The host name: unique per Kubernetes pod, stable across restarts of one process.

    Stability matters: a node that restarts with the same id finds (and closes) the calls it
    left open; a fresh random id would leave them to the reaper instead.
    """
    return socket.gethostname()[:64] or "voxgate"


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    redis_url: str | None = None
    """``redis://host:port/db``; unset = single node, nothing here is used."""
    node_id: str = Field(default_factory=default_node_id, min_length=1, max_length=64)
    """Unique per node; owns call records (``calls.node_id``) and registry entries."""
    heartbeat_s: float = Field(2.0, gt=0, le=60)
    """How often a node refreshes its heartbeat and looks for dead peers."""
    heartbeat_timeout_s: float = Field(6.0, gt=0, le=600)
    """A node whose heartbeat is older than this is dead: survivors mark its calls
    ``node_lost``. At least twice ``heartbeat_s`` so one slow beat is not a death."""
    key_prefix: str = Field("voxgate", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")
    """Namespace of every Redis key, so several installs can share one Redis."""
    control_timeout_s: float = Field(3.0, gt=0, le=60)
    """How long a control command waits for the owning node's answer."""
    advertise_url: str | None = None
    """This node's HTTP base URL as peers and dashboards reach it (shown in node lists)."""

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _timeout_covers_beats(self) -> ClusterSettings:
        if self.heartbeat_timeout_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"heartbeat_timeout_s ({self.heartbeat_timeout_s}) must be at least twice "
                f"heartbeat_s ({self.heartbeat_s})"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.redis_url is not None
