"""Outbound campaigns: the spec, contact lists, the ``Dialer`` protocol and the worker.

A campaign is a contact list plus rules (calling window in each contact's zone, max
concurrent calls, calls per second, retries with back-off on busy/no answer, a do-not-call
list). ``Campaigns.create`` stores it in the records DB and queues one job per callable
contact; every node runs a :class:`CampaignWorker` that claims jobs and dials them through
a :class:`Dialer` (the SIP edge in production, anything in tests). Limits are enforced by
the queue (shared leases and pacer in Redis), so they hold across nodes.

The worker's loop is I/O glue; the decisions (window, retry delay, pacing) are the pure
functions of ``schedule.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from voxgate.cluster.campaign_db import CampaignStore
from voxgate.cluster.jobs import Claimed, Job, JobQueue, sleep_until_due
from voxgate.cluster.schedule import RetryPolicy, normalize_number, parse_window, zone

log = logging.getLogger(__name__)

DialStatus = Literal["answered", "completed", "voicemail", "busy", "no_answer", "failed"]
MAX_CONTACTS = 100_000


# --- the spec --------------------------------------------------------------------------


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=256)
    name: str = Field("", max_length=256)
    timezone: str | None = Field(None, max_length=64, description="IANA zone; default: the campaign's")
    variables: dict[str, str] = Field(default_factory=dict, description="Passed to the app")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalize_number(value)


class CampaignRules(BaseModel):
    """Everything about a campaign but its contacts: what ``campaigns.spec`` stores."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=256)
    app: str = Field("agent", min_length=1, max_length=256, description="Route app for answered calls")
    window: str = Field("09:00-20:00", description="Local calling hours in each contact's zone")
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], description="ISO weekdays")
    timezone: str = Field("UTC", description="Zone of contacts that give none")
    max_concurrent: int = Field(5, ge=1, le=1000)
    cps: float = Field(1.0, gt=0, le=1000, description="Calls started per second, whole cluster")
    max_attempts: int = Field(3, ge=1, le=10)
    retry_backoff_s: float = Field(300.0, ge=0, le=7 * 86400)
    backoff_factor: float = Field(2.0, ge=1, le=10)
    max_backoff_s: float = Field(3600.0, ge=0, le=7 * 86400)
    dnc: list[str] = Field(default_factory=list, max_length=MAX_CONTACTS, description="Do-not-call numbers")
    trunk: str | None = Field(None, max_length=64)
    caller_id: str | None = Field(None, max_length=64)
    amd: bool = Field(True, description="Detect answering machines")
    voicemail_message: str | None = Field(None, max_length=2000, description="Left on machines")

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if not value or any(d < 1 or d > 7 for d in value):
            raise ValueError("days are ISO weekdays 1 (Monday) to 7")
        return sorted(set(value))

    @field_validator("dnc")
    @classmethod
    def _dnc(cls, value: list[str]) -> list[str]:
        return [normalize_number(v) for v in value]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_backoff_s, self.backoff_factor, self.max_backoff_s)


class CampaignSpec(CampaignRules):
    """A campaign as ``POST /v1/campaigns`` takes it (JSON), contacts included."""

    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_CONTACTS)

    @model_validator(mode="after")
    def _zones(self) -> CampaignSpec:
        for name in {c.timezone for c in self.contacts if c.timezone}:
            zone(name)
        return self

    def rules(self) -> dict[str, Any]:
        """What is stored as ``campaigns.spec``: everything but the contacts."""
        return self.model_dump(exclude={"contacts"})


_PHONE_COLUMNS = ("phone", "number", "phone_number", "to")
_TZ_COLUMNS = ("timezone", "tz", "time_zone")


def parse_contacts_csv(data: str) -> list[ContactIn]:
    """A CSV with a header: a phone column (phone/number/phone_number/to), optional name
    and timezone; every other column becomes a variable for the app."""
    reader = csv.DictReader(io.StringIO(data))
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    phone_col = next((columns[c] for c in _PHONE_COLUMNS if c in columns), None)
    if phone_col is None:
        raise ValueError(f"CSV needs a phone column (one of {', '.join(_PHONE_COLUMNS)})")
    tz_col = next((columns[c] for c in _TZ_COLUMNS if c in columns), None)
    name_col = columns.get("name")
    out: list[ContactIn] = []
    for line, row in enumerate(reader, start=2):
        if len(out) >= MAX_CONTACTS:
            raise ValueError(f"more than {MAX_CONTACTS} contacts")
        if not (row.get(phone_col) or "").strip():
            continue
        variables = {
            k.strip(): (v or "").strip() for k, v in row.items()
            if k is not None and k not in (phone_col, tz_col, name_col)
        }  # fmt: skip
        try:
            out.append(ContactIn(phone=row[phone_col], name=(row.get(name_col) or "").strip() if name_col else "",
                                 timezone=(row.get(tz_col) or "").strip() or None if tz_col else None,
                                 variables=variables))  # fmt: skip
        except ValueError as exc:
            raise ValueError(f"CSV line {line}: {exc}") from None
    return out


# --- dialing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    """What a dialer needs to place one attempt."""

    campaign_id: str
    contact_id: int
    attempt: int
    phone: str
    name: str = ""
    timezone: str = "UTC"
    variables: dict[str, Any] = field(default_factory=dict)
    trunk: str | None = None
    caller_id: str | None = None
    amd: bool = True
    voicemail_message: str | None = None


@dataclass(frozen=True, slots=True)
class DialOutcome:
    status: DialStatus
    call_id: str = ""
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    """What the app reported for an answered call (``completed`` when present)."""


class Dialer(Protocol):
    async def dial(self, contact: Contact, app: str) -> DialOutcome:
        """Place one call and return when it is over (or failed to connect)."""
        ...


# --- the worker ------------------------------------------------------------------------


@dataclass
class _Campaign:
    id: str
    app: str
    spec: CampaignRules
    dnc: frozenset[str]


class CampaignWorker:
    """Claims this campaign's jobs on one node and runs each as one dial attempt."""

    def __init__(
        self, store: CampaignStore, queue: JobQueue, dialer: Dialer, node_id: str, *,
        poll_s: float = 0.2, refresh_s: float = 1.0, lease_s: float = 30.0,
        clock: Callable[[], float] = time.time, local_limit: int = 100,
    ) -> None:  # fmt: skip
        self.store = store
        self.queue = queue
        self.dialer = dialer
        self.node_id = node_id
        self.poll_s = poll_s
        self.refresh_s = refresh_s
        self.lease_s = lease_s
        """Concurrency lease and job refresh: a dead node's slots free after this long."""
        self.clock = clock
        self.local_limit = local_limit
        self._campaigns: dict[str, _Campaign] = {}
        self._refreshed = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.errors = 0

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name=f"campaigns-{self.node_id}")

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def resume_local(self) -> int:
        """Single node: re-queue every unfinished contact from the DB after a restart."""
        count = 0
        for row in await self.store.running():
            for contact_id, attempt, due in await self.store.pending(row["id"]):
                await self.queue.push([Job(row["id"], contact_id, max(1, attempt))],
                                      None if due is None else due.timestamp())  # fmt: skip
                count += 1
        return count

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                log.exception("campaign worker step failed")
            await asyncio.sleep(self.poll_s)

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._refreshed < self.refresh_s:
            return
        self._refreshed = now
        fresh: dict[str, _Campaign] = {}
        for row in await self.store.running():
            known = self._campaigns.get(row["id"])
            if known is None:
                spec = CampaignRules.model_validate(row["spec"])
                known = _Campaign(row["id"], row["app"], spec, frozenset(spec.dnc))
            fresh[row["id"]] = known
        self._campaigns = fresh

    async def step(self) -> None:
        """Fill free capacity of every running campaign (public so tests can drive it)."""
        await self._refresh()
        for camp in list(self._campaigns.values()):
            while len(self._tasks) < self.local_limit:
                holder = f"{self.node_id}:{secrets.token_hex(4)}"
                if not await self.queue.acquire(camp.id, holder, camp.spec.max_concurrent, self.lease_s):
                    break
                claimed = await self.queue.claim(camp.id, self.node_id, 1)
                if not claimed:
                    await self.queue.release(camp.id, holder)
                    break
                task = asyncio.create_task(self._run(camp, claimed[0], holder))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _keepalive(self, camp: _Campaign, claimed: Claimed, holder: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            with contextlib.suppress(Exception):
                await self.queue.touch(claimed, self.node_id)
                await self.queue.renew(camp.id, holder, self.lease_s)

    async def _run(self, camp: _Campaign, claimed: Claimed, holder: str) -> None:
        keepalive = asyncio.create_task(self._keepalive(camp, claimed, holder))
        try:
            await self._attempt(camp, claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.errors += 1
            log.exception("campaign %s: attempt for contact %s failed", camp.id, claimed.job.contact_id)
        finally:
            keepalive.cancel()
            with contextlib.suppress(Exception):
                await self.queue.release(camp.id, holder)

    async def _attempt(self, camp: _Campaign, claimed: Claimed) -> None:
        job = claimed.job
        row = await self.store.contact(job.contact_id)
        if row is None or row["state"] == "done":
            await self.queue.done(claimed)  # a duplicate delivery: the contact is finished
            return
        if row["state"] == "dialing":
            # The attempt's holder died mid-call (reclaimed) or this node restarted.
            await self.store.close_lost_attempts(job.contact_id, "node_lost")
        if row["phone"] in camp.dnc:
            await self._final(camp, claimed, "dnc", DialOutcome("failed", detail="dnc"))
            return
        spec = camp.spec
        tz = zone(row["timezone"] or spec.timezone)
        window = parse_window(spec.window, frozenset(spec.days))
        now = datetime.fromtimestamp(self.clock(), UTC)
        opens = window.next_open(now, tz)
        if opens > now:
            await self.store.set_contact(job.contact_id, state="pending", next_at=opens)
            await self.queue.retry(claimed, job, opens.timestamp())
            return
        await sleep_until_due(await self.queue.pace(camp.id, spec.cps))
        attempt_id = await self.store.start_attempt(job.contact_id, camp.id, job.attempt, self.node_id)
        contact = Contact(
            camp.id, job.contact_id, job.attempt, row["phone"], row["name"], row["timezone"],
            dict(row["variables"]), spec.trunk, spec.caller_id, spec.amd, spec.voicemail_message,
        )  # fmt: skip
        try:
            outcome = await self.dialer.dial(contact, camp.app)
        except Exception as exc:
            log.exception("dialer failed for contact %s", job.contact_id)
            outcome = DialOutcome("failed", detail=f"dialer error: {type(exc).__name__}")
        await self.store.finish_attempt(attempt_id, outcome.status, call_id=outcome.call_id, detail=outcome.detail)
        delay = spec.retry_policy().delay_after(job.attempt, outcome.status)
        if delay is None:
            await self._final(camp, claimed, outcome.status, outcome)
            return
        due = self.clock() + delay
        await self.store.set_contact(
            job.contact_id, state="pending", outcome=outcome.status,
            next_at=datetime.fromtimestamp(due, UTC), call_id=outcome.call_id,
        )  # fmt: skip
        await self.queue.retry(claimed, Job(camp.id, job.contact_id, job.attempt + 1), due)

    async def _final(self, camp: _Campaign, claimed: Claimed, status: str, outcome: DialOutcome) -> None:
        await self.store.set_contact(
            claimed.job.contact_id, state="done", outcome=status, result=outcome.result,
            call_id=outcome.call_id,
        )  # fmt: skip
        await self.queue.done(claimed)
        if await self.store.maybe_complete(camp.id):
            log.info("campaign %s completed", camp.id)
            await self.queue.drop(camp.id)


class Campaigns:
    """What the API talks to: create, read, cancel (the worker runs on its own)."""

    def __init__(self, store: CampaignStore, queue: JobQueue, node_id: str = "") -> None:
        self.store = store
        self.queue = queue
        self.node_id = node_id

    async def create(self, spec: CampaignSpec, campaign_id: str | None = None) -> str:
        cid = campaign_id or "camp_" + secrets.token_hex(6)
        dnc = set(spec.dnc)
        contacts = [
            {"phone": c.phone, "name": c.name, "timezone": c.timezone or spec.timezone,
             "variables": c.variables, "outcome": "dnc" if c.phone in dnc else None}
            for c in spec.contacts
        ]  # fmt: skip
        ids = await self.store.create(cid, name=spec.name, app=spec.app, spec=spec.rules(),
                                      contacts=contacts, node_id=self.node_id)  # fmt: skip
        await self.queue.push([Job(cid, i, 1) for i in ids])
        return cid

    async def detail(self, campaign_id: str) -> dict[str, Any] | None:
        row = await self.store.campaign(campaign_id)
        if row is None:
            return None
        row["progress"] = await self.store.progress(campaign_id)
        row["contacts"] = await self.store.contacts(campaign_id)
        return row

    async def cancel(self, campaign_id: str) -> bool:
        row = await self.store.campaign(campaign_id)
        if row is None or row["status"] != "running":
            return False
        await self.store.set_status(campaign_id, "cancelled")
        await self.queue.drop(campaign_id)
        return True
