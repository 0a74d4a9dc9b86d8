"""REST: calls (records + live), recordings and overview statistics.

Everything here needs a token (header, ``?token=`` or the dashboard's cookie). Reads come
from ``app.state.records`` (a ``CallRecords`` or None when the node runs without a records
database) and ``app.state.manager`` (live calls on this node), so the same endpoints serve
the dashboard and scripts. Recordings are looked up by call id only: a request never names
a file, and a stored path that resolves outside the recordings directory is refused.

Statistics are computed with plain SQL aggregates plus percentiles in Python, so the one
code path runs on SQLite and PostgreSQL alike (SQLite has no ``percentile_cont``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from sqlalchemy import case, func, select

from voxgate.api.auth import require_token
from voxgate.api.call_control import find_session
from voxgate.calls.manager import CallManager
from voxgate.calls.session import CallSession
from voxgate.observability.recording import TRACKS, RecordingSink, Track, resolve
from voxgate.observability.records import CallFilter, CallRecords
from voxgate.observability.schema import CallRow, TurnRow


class InvalidRequest(BaseModel):
    """What the app's validation handler answers (counted as an HTTP parser rejection)."""

    error: str
    details: list[dict[str, Any]]


router = APIRouter(
    dependencies=[Depends(require_token)],
    tags=["calls"],
    responses={
        401: {"description": "Missing or invalid token"},
        422: {"model": InvalidRequest, "description": "Invalid parameters"},
    },
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such call"}}

NORMAL_END_REASONS = frozenset(
    {"completed", "caller_hangup", "agent_hangup", "hangup", "remote_hangup", "transferred"}
)
"""End reasons that are a conversation ending as intended; every other reason is a failure."""

log = logging.getLogger(__name__)

CallId = Annotated[str, Path(min_length=1, max_length=64, description="Call id")]


# --- response models -------------------------------------------------------------------


class LiveCall(BaseModel):
    id: str
    edge: str
    caller: str
    callee: str
    route: str
    dropped_frames: int = Field(description="Inbound frames dropped for a slow consumer")
    recording: bool
    state: str | None = Field(
        None, description="Edge call state, e.g. SIP dialing/ringing/answered/ended"
    )


class CallSummary(BaseModel):
    id: str
    edge: str
    caller: str = ""
    callee: str = ""
    route: str = ""
    direction: str = "inbound"
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    codec: str = ""
    duration_s: float | None = None
    cost_usd: float = 0.0
    turn_count: int = 0
    latency_p50_ms: float | None = Field(None, description="Median voice-to-voice latency")
    latency_max_ms: float | None = Field(None, description="Worst voice-to-voice latency")
    has_recording: bool = False
    live: bool = Field(
        False,
        description="Running now: on this node or, in a cluster, on the node the call registry "
        "names (with server.workers > 1, another worker of this node)",
    )


class CallList(BaseModel):
    calls: list[CallSummary]
    live: list[LiveCall] = Field(
        description="Calls running on this node (filtered by edge/route); in a cluster the "
        "other nodes' (or workers') live calls are the ``calls`` marked ``live``"
    )
    limit: int
    offset: int


class TurnOut(BaseModel):
    index: int
    voice_to_voice_ms: float | None
    interrupted: bool
    completed: bool
    timeline: dict[str, Any] = Field(
        description="TurnRecord stage timestamps (s) and stages_ms (derived latencies)"
    )
    created_at: datetime


class TranscriptOut(BaseModel):
    speaker: str
    text: str
    is_final: bool
    confidence: float | None
    offset_s: float


class EventOut(BaseModel):
    kind: str
    data: dict[str, Any]
    offset_s: float


class NetworkOut(BaseModel):
    offset_s: float
    packets: int
    loss_pct: float
    jitter_ms: float
    jb_delay_ms: float
    underruns: int
    concealed_ms: float


class RecordingLinks(BaseModel):
    caller: str | None = Field(None, description="URL of the caller track (WAV) if stored")
    agent: str | None = Field(None, description="URL of the agent track (WAV) if stored")


class CallDetail(CallSummary):
    node_id: str = ""
    conversation_id: str = ""
    cost_detail: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    turns: list[TurnOut] = Field(default_factory=list)
    transcript: list[TranscriptOut] = Field(default_factory=list)
    events: list[EventOut] = Field(default_factory=list)
    network: list[NetworkOut] = Field(default_factory=list)
    recordings: RecordingLinks = Field(default_factory=RecordingLinks)
    live_status: LiveCall | None = None


class LatencyBucket(BaseModel):
    start: datetime
    turns: int
    p50_ms: float | None
    p95_ms: float | None


class ReasonCount(BaseModel):
    reason: str
    count: int
    failure: bool


class Overview(BaseModel):
    since: datetime
    until: datetime
    bucket_s: int
    calls: int = Field(description="Calls started in the window")
    active_calls: int = Field(description="Calls running on this node now")
    failed_calls: int
    turns: int
    turns_completed: int
    turn_completion_rate: float | None = Field(description="Completed / all turns (0-1)")
    p50_ms: float | None
    p95_ms: float | None
    cost_usd: float
    call_minutes: float
    cost_per_minute: float | None
    latency: list[LatencyBucket]
    end_reasons: list[ReasonCount]


# --- helpers ---------------------------------------------------------------------------


def _records(request: Request) -> CallRecords | None:
    return getattr(request.app.state, "records", None)


def _manager(request: Request) -> CallManager:
    manager: CallManager = request.app.state.manager
    return manager


def _recordings_dir(request: Request) -> FsPath:
    directory: FsPath = request.app.state.settings.records.recordings_dir
    return directory


def _utc(value: datetime | None, name: str) -> datetime | None:
    """Naive times are UTC; aware ones are converted (SQLite compares the stored text).

    A time at the edge of the calendar with an offset (``0001-01-01T00:00+08:00``) has no
    UTC equivalent: that is the client's bad parameter (422, counted), not a server error."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise RequestValidationError(
            [{"loc": ("query", name), "msg": "date out of range in UTC", "type": "value_error"}]
        ) from None


def _live(session: CallSession) -> LiveCall:
    return LiveCall(
        id=session.call_id,
        edge=session.edge,
        caller=session.caller,
        callee=session.callee,
        route=session.route,
        dropped_frames=session.dropped_frames,
        recording=isinstance(session.sink, RecordingSink),
        state=session.metadata.get("sip_state"),
    )


async def _live_elsewhere(request: Request, call_ids: list[str]) -> set[str]:
    """Which of ``call_ids`` run on another cluster node, by the call registry.

    With ``server.workers > 1`` the worker answering a request sees only its own calls in
    its manager, while the records database (shared) lists every worker's; without this a
    call on the other worker would show as not live. Only calls the records show open are
    asked, one registry read each; without a cluster nothing is asked."""
    cluster = getattr(request.app.state, "cluster", None)
    if cluster is None or not call_ids:
        return set()
    try:
        owners = await asyncio.gather(*(cluster.registry.owner(c) for c in call_ids))
    except (RedisError, OSError) as exc:  # the records still answer; only "live" is unknown
        log.warning("call registry unreachable, live flags are this node's only: %s", exc)
        return set()
    return {o.call_id for o in owners if o is not None}


def _summary(row: dict[str, Any], live: set[str]) -> dict[str, Any]:
    out = dict(row)
    out["has_recording"] = bool(row.get("recording_caller") or row.get("recording_agent"))
    out["live"] = row["id"] in live
    return out


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 1)


def _auto_bucket(span: timedelta) -> int:
    """A round bucket size giving at most ~48 points over the window."""
    for size in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400):
        if span.total_seconds() / size <= 48:
            return size
    return 7 * 86400


# --- endpoints -------------------------------------------------------------------------


@router.get("/v1/calls", response_model=CallList)
async def list_calls(
    request: Request,
    edge: Annotated[str | None, Query(max_length=16)] = None,
    route: Annotated[str | None, Query(max_length=256)] = None,
    end_reason: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_latency_ms: Annotated[float | None, Query(ge=0, le=1e7)] = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Recorded calls, newest first, and the calls live on this node."""
    sessions = list(_manager(request).calls.values())
    live_ids = {s.call_id for s in sessions}
    records = _records(request)
    rows: list[dict[str, Any]] = []
    if records is not None:
        flt = CallFilter(
            edge=edge or None,
            route=route or None,
            end_reason=end_reason or None,
            since=_utc(since, "since"),
            until=_utc(until, "until"),
            min_latency_ms=min_latency_ms,
            active=active,
            limit=limit,
            offset=offset,
        )
        found = await records.list_calls(flt)
        open_elsewhere = [
            r["id"] for r in found if r.get("ended_at") is None and r["id"] not in live_ids
        ]
        live_ids |= await _live_elsewhere(request, open_elsewhere)
        rows = [_summary(r, live_ids) for r in found]
    live = [
        _live(s)
        for s in sessions
        if (not edge or s.edge == edge) and (not route or s.route == route) and active is not False
    ]
    return {"calls": rows, "live": live, "limit": limit, "offset": offset}


@router.get("/v1/calls/{call_id}", response_model=CallDetail, responses=_NOT_FOUND)
async def get_call(request: Request, call_id: CallId) -> dict[str, Any]:
    """One call: its record (turns, transcript, events, network) and live status if running."""
    session = find_session(request, call_id)  # includes outbound SIP calls still ringing
    records = _records(request)
    row = await records.get_call(call_id) if records is not None else None
    if row is None and session is None:
        raise HTTPException(404, "no such call")
    if row is None:
        assert session is not None
        row = {"id": session.call_id, "edge": session.edge, "caller": session.caller,
               "callee": session.callee, "route": session.route}
    live = {session.call_id} if session is not None else set()
    if session is None and row.get("ended_at") is None:
        live = await _live_elsewhere(request, [call_id])
    out = _summary(row, live)
    directory = _recordings_dir(request)
    out["recordings"] = {
        track: (
            str(request.url_for("get_recording", call_id=call_id, track=track).path)
            if resolve(directory, row.get(f"recording_{track}")) is not None
            else None
        )
        for track in TRACKS
    }
    out["live_status"] = _live(session) if session is not None else None
    return out


@router.get(
    "/v1/calls/{call_id}/recording/{track}",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "PCM16 mono WAV"},
               404: {"description": "No recording for this call and track"}},
)
async def get_recording(request: Request, call_id: CallId, track: Track) -> FileResponse:
    """One track of a call's recording (supports HTTP Range for seeking in a player)."""
    records = _records(request)
    row = await records.get_call(call_id) if records is not None else None
    path = resolve(_recordings_dir(request), row.get(f"recording_{track}")) if row else None
    if path is None:
        raise HTTPException(404, "no recording")
    return FileResponse(
        path,
        media_type="audio/wav",
        filename=f"{call_id}-{track}.wav",
        content_disposition_type="inline",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/v1/stats/overview", response_model=Overview)
@router.get("/v1/metrics/summary", response_model=Overview, include_in_schema=False)
async def overview(
    request: Request,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket_s: Annotated[int | None, Query(ge=60, le=7 * 86400)] = None,
    edge: Annotated[str | None, Query(max_length=16)] = None,
    route: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    """Latency percentiles over time, end reasons, turn completion and cost per minute.

    Window defaults to the last 24 hours. Turns are bucketed by when they were recorded;
    calls count in the window they started in. An empty window (``since >= until``) is
    answered with empty statistics rather than an error: it is a valid, if dull, question.
    """
    end = _utc(until, "until") or datetime.now(UTC)
    start = _utc(since, "since") or end - timedelta(days=1)
    bucket = bucket_s or _auto_bucket(end - start)
    active_calls = len(_manager(request).calls)
    records = _records(request)
    turns: list[tuple[datetime, float | None, bool]] = []
    reasons: list[tuple[str | None, int]] = []
    cost = minutes = 0.0
    calls = 0
    if records is not None and start < end:
        turns, reasons, calls, cost, minutes = await _aggregate(
            records, start, end, edge or None, route or None
        )
    points: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    base = int(start.timestamp())
    for created, v2v, _done in turns:
        when = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
        idx = (int(when.timestamp()) - base) // bucket
        counts[idx] = counts.get(idx, 0) + 1
        if v2v is not None:
            points.setdefault(idx, []).append(v2v)
    latency = [
        {"start": datetime.fromtimestamp(base + i * bucket, UTC), "turns": counts[i],
         "p50_ms": _percentile(points.get(i, []), 50),
         "p95_ms": _percentile(points.get(i, []), 95)}
        for i in sorted(counts)
    ]
    all_v2v = [v for _, v, _ in turns if v is not None]
    completed = sum(1 for *_, done in turns if done)
    end_reasons = [
        {"reason": r or "active", "count": n, "failure": r is not None and r not in NORMAL_END_REASONS}
        for r, n in sorted(reasons, key=lambda x: -x[1])
    ]
    return {
        "since": start,
        "until": end,
        "bucket_s": bucket,
        "calls": calls,
        "active_calls": active_calls,
        "failed_calls": sum(r["count"] for r in end_reasons if r["failure"]),
        "turns": len(turns),
        "turns_completed": completed,
        "turn_completion_rate": round(completed / len(turns), 4) if turns else None,
        "p50_ms": _percentile(all_v2v, 50),
        "p95_ms": _percentile(all_v2v, 95),
        "cost_usd": round(cost, 6),
        "call_minutes": round(minutes, 3),
        "cost_per_minute": round(cost / minutes, 6) if minutes > 0 else None,
        "latency": latency,
        "end_reasons": end_reasons,
    }


async def _aggregate(
    records: CallRecords, start: datetime, end: datetime, edge: str | None, route: str | None
) -> tuple[list[tuple[datetime, float | None, bool]], list[tuple[str | None, int]], int, float, float]:
    """Turn rows (time, latency, completed), end-reason counts, calls, cost and minutes."""
    call_filters = [CallRow.started_at >= start, CallRow.started_at < end]
    if edge:
        call_filters.append(CallRow.edge == edge)
    if route:
        call_filters.append(CallRow.route == route)
    turn_stmt = (
        select(TurnRow.created_at, TurnRow.voice_to_voice_ms, TurnRow.completed)
        .join(CallRow, CallRow.id == TurnRow.call_id)
        .where(TurnRow.created_at >= start, TurnRow.created_at < end)
        .order_by(TurnRow.created_at)
    )
    if edge:
        turn_stmt = turn_stmt.where(CallRow.edge == edge)
    if route:
        turn_stmt = turn_stmt.where(CallRow.route == route)
    reason_stmt = (
        select(CallRow.end_reason, func.count()).where(*call_filters).group_by(CallRow.end_reason)
    )
    ended = CallRow.ended_at.is_not(None)
    totals_stmt = select(
        func.count(),
        func.coalesce(func.sum(case((ended, CallRow.cost_usd), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((ended, CallRow.duration_s), else_=0.0)), 0.0),
    ).where(*call_filters)
    async with records.engine.connect() as conn:
        turns = [(r[0], r[1], bool(r[2])) for r in (await conn.execute(turn_stmt)).all()]
        reasons = [(r[0], int(r[1])) for r in (await conn.execute(reason_stmt)).all()]
        total = (await conn.execute(totals_stmt)).one()
    return turns, reasons, int(total[0]), float(total[1]), float(total[2]) / 60.0


@router.get("/v1/calls/{call_id}/recording", response_model=RecordingLinks, responses=_NOT_FOUND)
async def recording_links(request: Request, call_id: CallId) -> dict[str, str | None]:
    """Where the call's recording tracks can be fetched (null when not recorded)."""
    detail = await get_call(request, call_id)
    links: dict[str, str | None] = detail["recordings"]
    return links


__all__ = ["NORMAL_END_REASONS", "router"]
