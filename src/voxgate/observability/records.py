"""``CallRecords``: writes each call's record as the call happens and reads it back.

Every method is one short transaction, committed before it returns, so the record on disk
is always the call "up to now". After a crash, :meth:`recover_interrupted` closes the calls
this node left open with end reason ``interrupted``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from voxgate.observability.db import make_engine, migrate
from voxgate.observability.schema import CallRow, EventRow, NetworkRow, TranscriptRow, TurnRow


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes even for timezone=True columns; they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CallFilter:
    edge: str | None = None
    route: str | None = None
    end_reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_latency_ms: float | None = None
    active: bool | None = None
    limit: int = 100
    offset: int = 0


class CallRecords:
    def __init__(self, engine: AsyncEngine, node_id: str = "") -> None:
        self.engine = engine
        self.node_id = node_id
        self._session = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str, node_id: str = "") -> CallRecords:
        engine = make_engine(url)
        await migrate(engine)
        return cls(engine, node_id)

    async def close(self) -> None:
        await self.engine.dispose()

    # --- writing -----------------------------------------------------------------------

    async def start_call(
        self,
        call_id: str,
        *,
        edge: str,
        caller: str = "",
        callee: str = "",
        route: str = "",
        direction: str = "inbound",
        codec: str = "",
        conversation_id: str = "",
        started_at: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        async with self._session.begin() as db:
            db.add(
                CallRow(
                    id=call_id,
                    node_id=self.node_id,
                    edge=edge,
                    caller=caller,
                    callee=callee,
                    route=route,
                    direction=direction,
                    codec=codec,
                    conversation_id=conversation_id,
                    started_at=started_at or utcnow(),
                    cost_usd=0.0,
                    cost_detail={},
                    turn_count=0,
                    extra=extra or {},
                )
            )

    async def update_call(self, call_id: str, **fields: Any) -> None:
        """Set columns of a call (answered_at, codec, route, recording paths, extra...)."""
        async with self._session.begin() as db:
            await db.execute(update(CallRow).where(CallRow.id == call_id).values(**fields))

    async def end_call(
        self,
        call_id: str,
        reason: str,
        *,
        ended_at: datetime | None = None,
        cost_usd: float | None = None,
        cost_detail: dict[str, Any] | None = None,
    ) -> None:
        """Close a call once: a second end (e.g. edge and manager both) keeps the first."""
        async with self._session.begin() as db:
            row = await db.get(CallRow, call_id)
            if row is None or row.ended_at is not None:
                return
            end = ended_at or utcnow()
            row.ended_at = end
            row.end_reason = reason
            row.duration_s = (end - _aware(row.started_at)).total_seconds()
            if cost_usd is not None:
                row.cost_usd = cost_usd
            if cost_detail is not None:
                row.cost_detail = cost_detail
            latencies = (
                await db.scalars(
                    select(TurnRow.voice_to_voice_ms).where(
                        TurnRow.call_id == call_id, TurnRow.voice_to_voice_ms.is_not(None)
                    )
                )
            ).all()
            values = [v for v in latencies if v is not None]
            if values:
                row.latency_p50_ms = statistics.median(values)
                row.latency_max_ms = max(values)

    async def add_turn(
        self,
        call_id: str,
        index: int,
        timeline: dict[str, Any],
        *,
        voice_to_voice_ms: float | None = None,
        interrupted: bool = False,
        completed: bool = True,
    ) -> None:
        async with self._session.begin() as db:
            db.add(
                TurnRow(
                    call_id=call_id,
                    index=index,
                    timeline=timeline,
                    voice_to_voice_ms=voice_to_voice_ms,
                    interrupted=interrupted,
                    completed=completed,
                    created_at=utcnow(),
                )
            )
            await db.execute(
                update(CallRow)
                .where(CallRow.id == call_id)
                .values(turn_count=CallRow.turn_count + 1)
            )

    async def add_transcript(
        self,
        call_id: str,
        speaker: str,
        text: str,
        *,
        is_final: bool = True,
        confidence: float | None = None,
        offset_s: float = 0.0,
    ) -> None:
        async with self._session.begin() as db:
            db.add(
                TranscriptRow(
                    call_id=call_id,
                    speaker=speaker,
                    text=text,
                    is_final=is_final,
                    confidence=confidence,
                    offset_s=offset_s,
                    created_at=utcnow(),
                )
            )

    async def add_event(
        self, call_id: str, kind: str, data: dict[str, Any] | None = None, offset_s: float = 0.0
    ) -> None:
        async with self._session.begin() as db:
            db.add(
                EventRow(
                    call_id=call_id, kind=kind, data=data or {}, offset_s=offset_s, created_at=utcnow()
                )
            )

    async def add_network_stats(
        self,
        call_id: str,
        *,
        offset_s: float,
        packets: int,
        loss_pct: float,
        jitter_ms: float,
        jb_delay_ms: float,
        underruns: int,
        concealed_ms: float,
    ) -> None:
        async with self._session.begin() as db:
            db.add(
                NetworkRow(
                    call_id=call_id,
                    offset_s=offset_s,
                    packets=packets,
                    loss_pct=loss_pct,
                    jitter_ms=jitter_ms,
                    jb_delay_ms=jb_delay_ms,
                    underruns=underruns,
                    concealed_ms=concealed_ms,
                )
            )

    async def recover_interrupted(self) -> list[str]:
        """Close this node's calls that have no end: the process died while they ran."""
        async with self._session.begin() as db:
            rows = (
                await db.scalars(
                    select(CallRow).where(CallRow.ended_at.is_(None), CallRow.node_id == self.node_id)
                )
            ).all()
            now = utcnow()
            for row in rows:
                row.ended_at = now
                row.end_reason = "interrupted"
                row.duration_s = (now - _aware(row.started_at)).total_seconds()
            return [row.id for row in rows]

    async def delete_older_than(self, days: int) -> int:
        """Retention: drop calls (and their child rows) that ended more than ``days`` ago."""
        cutoff = utcnow() - timedelta(days=days)
        async with self._session.begin() as db:
            rows = (await db.scalars(select(CallRow).where(CallRow.ended_at < cutoff))).all()
            for row in rows:
                for table in (TurnRow, TranscriptRow, EventRow, NetworkRow):
                    await db.execute(table.__table__.delete().where(table.call_id == row.id))  # type: ignore[attr-defined]
                await db.delete(row)
            return len(rows)

    # --- reading -----------------------------------------------------------------------

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        async with self._session() as db:
            row = await db.get(CallRow, call_id)
            if row is None:
                return None
            out = _row_dict(row)
            children: tuple[tuple[str, Any, Any], ...] = (
                ("turns", TurnRow, TurnRow.index),
                ("transcript", TranscriptRow, TranscriptRow.id),
                ("events", EventRow, EventRow.id),
                ("network", NetworkRow, NetworkRow.offset_s),
            )
            for key, table, order in children:
                rows = await db.scalars(select(table).where(table.call_id == call_id).order_by(order))
                out[key] = [_row_dict(r) for r in rows.all()]
            return out

    async def list_calls(self, flt: CallFilter = CallFilter()) -> list[dict[str, Any]]:
        stmt = select(CallRow)
        if flt.edge:
            stmt = stmt.where(CallRow.edge == flt.edge)
        if flt.route:
            stmt = stmt.where(CallRow.route == flt.route)
        if flt.end_reason:
            stmt = stmt.where(CallRow.end_reason == flt.end_reason)
        if flt.since:
            stmt = stmt.where(CallRow.started_at >= flt.since)
        if flt.until:
            stmt = stmt.where(CallRow.started_at < flt.until)
        if flt.min_latency_ms is not None:
            stmt = stmt.where(CallRow.latency_max_ms >= flt.min_latency_ms)
        if flt.active is True:
            stmt = stmt.where(CallRow.ended_at.is_(None))
        elif flt.active is False:
            stmt = stmt.where(CallRow.ended_at.is_not(None))
        stmt = stmt.order_by(CallRow.started_at.desc()).limit(flt.limit).offset(flt.offset)
        async with self._session() as db:
            return [_row_dict(r) for r in (await db.scalars(stmt)).all()]

    async def count_calls(self) -> int:
        async with self._session() as db:
            return int((await db.scalar(select(func.count()).select_from(CallRow))) or 0)


def _row_dict(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, datetime):
            value = _aware(value).isoformat()
        out[column.key] = value
    return out


__all__: Sequence[str] = ("CallFilter", "CallRecords")
