"""Campaign tables in the records database, and ``CampaignStore`` to read and write them.

The records DB (SQLite or PostgreSQL) is the durable truth for campaigns as it is for calls:
queues (Redis streams or the in-process queue) only say *when* to dial whom; what happened
to every contact and every attempt is here, so a dead node or a flushed Redis loses no
outcome and a restarted node can rebuild its queue from ``pending`` rows.

Contact states: ``pending`` (waiting for a dial, ``next_at`` says when), ``dialing`` (an
attempt is running), ``done`` (``outcome`` is final).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from voxgate.observability.schema import Base

OUTCOMES = ("answered", "completed", "voicemail", "busy", "no_answer", "failed", "dnc")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    app: Mapped[str] = mapped_column(String(256), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    node_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ContactRow(Base):
    __tablename__ = "campaign_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(256), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_call_id: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_campaign_contacts_campaign_state", "campaign_id", "state"),)


class AttemptRow(Base):
    __tablename__ = "campaign_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("campaign_contacts.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(64), default="")
    call_id: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str] = mapped_column(String(256), default="")


def _row(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, datetime):
            value = _aware(value)
        out[column.key] = value
    return out


class CampaignStore:
    """Short transactions on the campaign tables; shares the records engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)

    async def create(
        self, campaign_id: str, *, name: str, app: str, spec: dict[str, Any],
        contacts: Sequence[dict[str, Any]], node_id: str = "",
    ) -> list[int]:  # fmt: skip
        """Insert the campaign and its contacts; returns the ids of contacts to dial.

        A contact given with ``outcome`` set (``dnc``) is stored as already done.
        """
        now = utcnow()
        async with self._session.begin() as db:
            db.add(CampaignRow(id=campaign_id, name=name, app=app, status="running", spec=spec,
                               total=len(contacts), node_id=node_id, created_at=now))  # fmt: skip
            await db.flush()
            rows = []
            for seq, c in enumerate(contacts):
                outcome = c.get("outcome")
                row = ContactRow(
                    campaign_id=campaign_id, seq=seq, phone=c["phone"], name=c.get("name", ""),
                    timezone=c.get("timezone", "UTC"), variables=c.get("variables", {}),
                    state="done" if outcome else "pending", outcome=outcome, result={},
                    attempts=0, next_at=None if outcome else now, updated_at=now,
                )  # fmt: skip
                db.add(row)
                rows.append(row)
            await db.flush()
            ids = [r.id for r in rows if r.state == "pending"]
        if not ids:
            await self.maybe_complete(campaign_id)
        return ids

    async def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        async with self._session() as db:
            row = await db.get(CampaignRow, campaign_id)
            return None if row is None else _row(row)

    async def running(self) -> list[dict[str, Any]]:
        async with self._session() as db:
            rows = await db.scalars(select(CampaignRow).where(CampaignRow.status == "running"))
            return [_row(r) for r in rows.all()]

    async def list_campaigns(self, limit: int = 100) -> list[dict[str, Any]]:
        async with self._session() as db:
            rows = await db.scalars(
                select(CampaignRow).order_by(CampaignRow.created_at.desc()).limit(limit)
            )
            return [_row(r) for r in rows.all()]

    async def contact(self, contact_id: int) -> dict[str, Any] | None:
        async with self._session() as db:
            row = await db.get(ContactRow, contact_id)
            return None if row is None else _row(row)

    async def contacts(self, campaign_id: str) -> list[dict[str, Any]]:
        async with self._session() as db:
            rows = await db.scalars(
                select(ContactRow).where(ContactRow.campaign_id == campaign_id).order_by(ContactRow.seq)
            )
            return [_row(r) for r in rows.all()]

    async def attempts(self, campaign_id: str) -> list[dict[str, Any]]:
        async with self._session() as db:
            rows = await db.scalars(
                select(AttemptRow).where(AttemptRow.campaign_id == campaign_id).order_by(AttemptRow.id)
            )
            return [_row(r) for r in rows.all()]

    async def pending(self, campaign_id: str) -> list[tuple[int, int, datetime | None]]:
        """(contact id, next attempt number, due) of contacts not done: to rebuild a queue."""
        async with self._session() as db:
            rows = await db.execute(
                select(ContactRow.id, ContactRow.attempts, ContactRow.next_at, ContactRow.state)
                .where(ContactRow.campaign_id == campaign_id, ContactRow.state != "done")
            )
            return [
                (cid, attempts + (1 if state == "pending" else 0), _aware(due))
                for cid, attempts, due, state in rows.all()
            ]

    async def progress(self, campaign_id: str) -> dict[str, int]:
        """Counts by state and by outcome (``done`` contacts only for outcomes)."""
        async with self._session() as db:
            states = await db.execute(
                select(ContactRow.state, func.count()).where(ContactRow.campaign_id == campaign_id)
                .group_by(ContactRow.state)
            )  # fmt: skip
            outcomes = await db.execute(
                select(ContactRow.outcome, func.count())
                .where(ContactRow.campaign_id == campaign_id, ContactRow.state == "done")
                .group_by(ContactRow.outcome)
            )
            attempts = await db.scalar(
                select(func.count()).select_from(AttemptRow).where(AttemptRow.campaign_id == campaign_id)
            )
            out = {"pending": 0, "dialing": 0, "done": 0}
            out.update({str(s): int(n) for s, n in states.all()})
            out.update(dict.fromkeys(OUTCOMES, 0))
            out.update({str(o): int(n) for o, n in outcomes.all()})
            out["attempts"] = int(attempts or 0)
            return out

    # --- attempts --------------------------------------------------------------------

    async def start_attempt(self, contact_id: int, campaign_id: str, attempt: int, node_id: str) -> int:
        now = utcnow()
        async with self._session.begin() as db:
            row = AttemptRow(campaign_id=campaign_id, contact_id=contact_id, attempt=attempt,
                             node_id=node_id, started_at=now)  # fmt: skip
            db.add(row)
            await db.execute(
                update(ContactRow).where(ContactRow.id == contact_id)
                .values(state="dialing", attempts=attempt, updated_at=now)
            )  # fmt: skip
            await db.flush()
            return row.id

    async def finish_attempt(
        self, attempt_id: int, outcome: str, *, call_id: str = "", detail: str = ""
    ) -> None:
        async with self._session.begin() as db:
            await db.execute(
                update(AttemptRow).where(AttemptRow.id == attempt_id, AttemptRow.ended_at.is_(None))
                .values(outcome=outcome, call_id=call_id, detail=detail[:256], ended_at=utcnow())
            )  # fmt: skip

    async def close_lost_attempts(self, contact_id: int, detail: str) -> int:
        """Attempts left open by a dead node: ``failed`` with ``detail`` (e.g. node_lost)."""
        async with self._session.begin() as db:
            result = await db.execute(
                update(AttemptRow).where(AttemptRow.contact_id == contact_id, AttemptRow.ended_at.is_(None))
                .values(outcome="failed", detail=detail, ended_at=utcnow())
            )  # fmt: skip
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def set_contact(
        self, contact_id: int, *, state: str, outcome: str | None = None,
        result: dict[str, Any] | None = None, next_at: datetime | None = None, call_id: str = "",
    ) -> None:  # fmt: skip
        values: dict[str, Any] = {"state": state, "outcome": outcome, "next_at": next_at,
                                  "updated_at": utcnow()}  # fmt: skip
        if result is not None:
            values["result"] = result
        if call_id:
            values["last_call_id"] = call_id
        async with self._session.begin() as db:
            await db.execute(update(ContactRow).where(ContactRow.id == contact_id).values(**values))

    async def maybe_complete(self, campaign_id: str) -> bool:
        """Mark the campaign completed once no contact is left; True when it just was."""
        async with self._session.begin() as db:
            left = await db.scalar(
                select(func.count()).select_from(ContactRow)
                .where(ContactRow.campaign_id == campaign_id, ContactRow.state != "done")
            )  # fmt: skip
            if left:
                return False
            result = await db.execute(
                update(CampaignRow).where(CampaignRow.id == campaign_id, CampaignRow.status == "running")
                .values(status="completed", finished_at=utcnow())
            )  # fmt: skip
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_status(self, campaign_id: str, status: str) -> bool:
        async with self._session.begin() as db:
            result = await db.execute(
                update(CampaignRow).where(CampaignRow.id == campaign_id)
                .values(status=status, finished_at=utcnow() if status != "running" else None)
            )  # fmt: skip
            return bool(result.rowcount)  # type: ignore[attr-defined]
