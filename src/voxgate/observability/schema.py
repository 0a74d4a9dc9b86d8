"""Tables of the call records database (SQLite by default, PostgreSQL by URL).

One row per call, written when the call starts and updated as it progresses, plus
append-only child rows (turns, transcript entries, events, network intervals). Appending as
the call goes means a crash loses at most the row being written, and a restart can mark the
unfinished calls ``interrupted`` instead of losing them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    edge: Mapped[str] = mapped_column(String(16), index=True)
    caller: Mapped[str] = mapped_column(String(256), default="")
    callee: Mapped[str] = mapped_column(String(256), default="")
    route: Mapped[str] = mapped_column(String(256), default="", index=True)
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    conversation_id: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    codec: Mapped[str] = mapped_column(String(32), default="")
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cost_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    latency_p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_max_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    recording_caller: Mapped[str | None] = mapped_column(String(512), nullable=True)
    recording_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TurnRow(Base):
    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    voice_to_voice_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    completed: Mapped[bool] = mapped_column(Boolean, default=True)
    timeline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Stage timestamps and derived latencies, as the agent's TurnRecord gives them."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_turns_call", "call_id", "index"),)


class TranscriptRow(Base):
    __tablename__ = "transcript_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    speaker: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    is_final: Mapped[bool] = mapped_column(Boolean, default=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    offset_s: Mapped[float] = mapped_column(Float, default=0.0)
    """Seconds since the call started."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    offset_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NetworkRow(Base):
    __tablename__ = "network_stats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    offset_s: Mapped[float] = mapped_column(Float)
    packets: Mapped[int] = mapped_column(Integer, default=0)
    loss_pct: Mapped[float] = mapped_column(Float, default=0.0)
    jitter_ms: Mapped[float] = mapped_column(Float, default=0.0)
    jb_delay_ms: Mapped[float] = mapped_column(Float, default=0.0)
    underruns: Mapped[int] = mapped_column(Integer, default=0)
    concealed_ms: Mapped[float] = mapped_column(Float, default=0.0)
