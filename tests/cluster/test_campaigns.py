"""Campaign worker on one node (in-process queue, SQLite records): outcomes, retries,
do-not-call, calling windows, limits; CSV contact lists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.cluster.fakes import ScriptedDialer
from voxgate.cluster.campaign_db import CampaignStore
from voxgate.cluster.campaigns import Campaigns, CampaignSpec, CampaignWorker, parse_contacts_csv
from voxgate.cluster.jobs import LocalJobQueue
from voxgate.observability.records import CallRecords


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CampaignStore]:
    records = await CallRecords.open(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", node_id="n1")
    yield CampaignStore(records.engine)
    await records.close()


async def run_until_done(campaigns: Campaigns, worker: CampaignWorker, cid: str, steps: int = 2000) -> dict:
    """Step the worker until the campaign completes (bounded), then stop its tasks."""
    try:
        for _ in range(steps):  # bounded: a bug fails the test instead of hanging it
            await worker.step()
            detail = await campaigns.detail(cid)
            assert detail is not None
            if detail["status"] == "completed":
                return detail
            await asyncio.sleep(0.01)
        raise AssertionError(f"campaign not done: {detail['progress']}")
    finally:
        await worker.close()


async def test_outcomes_retries_and_dnc(store: CampaignStore) -> None:
    phones = [f"+1555000{i:04d}" for i in range(20)]
    script = {p: ["completed"] for p in phones[:8]}
    script.update({p: ["busy"] for p in phones[8:11]})  # busy every time: 3 attempts
    script.update({p: ["no_answer", "completed"] for p in phones[11:14]})  # answers on retry
    script.update({p: ["voicemail"] for p in phones[14:16]})
    script.update({p: ["failed"] for p in phones[16:18]})  # failed is final, no retry
    dnc = phones[18:]
    dialer = ScriptedDialer(script)
    queue = LocalJobQueue()
    campaigns = Campaigns(store, queue, "n1")
    spec = CampaignSpec(
        name="reminders", app="agent:reminder", contacts=[{"phone": p} for p in phones],
        window="00:00-24:00", max_concurrent=3, cps=200, max_attempts=3, retry_backoff_s=0.05,
        dnc=[p.replace("+1555", "+1 555 ") for p in dnc],
    )
    cid = await campaigns.create(spec)
    worker = CampaignWorker(store, queue, dialer, "n1", poll_s=0.01)
    detail = await run_until_done(campaigns, worker, cid)
    outcomes = {c["phone"]: (c["outcome"], c["attempts"]) for c in detail["contacts"]}
    for p in phones[:8]:
        assert outcomes[p] == ("completed", 1)
    for p in phones[8:11]:
        assert outcomes[p] == ("busy", 3)
    for p in phones[11:14]:
        assert outcomes[p] == ("completed", 2)
    for p in phones[14:16]:
        assert outcomes[p] == ("voicemail", 1)
    for p in phones[16:18]:
        assert outcomes[p] == ("failed", 1)
    for p in dnc:
        assert outcomes[p] == ("dnc", 0)
    assert not [c for c in dialer.calls if c[0] in dnc]
    progress = detail["progress"]
    assert progress["done"] == 20 and progress["attempts"] == 8 + 9 + 6 + 2 + 2
    assert dialer.max_active <= 3
    completed = next(c for c in detail["contacts"] if c["phone"] == phones[0])
    assert completed["result"] == {"confirmed": "yes", "app": "agent:reminder"}
    attempts = await store.attempts(cid)
    assert all(a["ended_at"] is not None and a["node_id"] == "n1" for a in attempts)


async def test_closed_window_defers_to_the_contacts_morning(store: CampaignStore) -> None:
    now = [datetime(2026, 3, 2, 3, 0, tzinfo=UTC).timestamp()]  # 22:00 in New York
    queue = LocalJobQueue(clock=lambda: now[0])
    dialer = ScriptedDialer({})
    campaigns = Campaigns(store, queue)
    spec = CampaignSpec(contacts=[{"phone": "+15550001", "timezone": "America/New_York"},
                                  {"phone": "+81300000001", "timezone": "Asia/Tokyo"}],
                        window="09:00-20:00", cps=100)
    cid = await campaigns.create(spec)
    worker = CampaignWorker(store, queue, dialer, "n1", clock=lambda: now[0])
    morning = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 EST
    for _ in range(500):  # until both jobs were looked at (bounded)
        await worker.step()
        contacts = {c["phone"]: c for c in await store.contacts(cid)}
        if contacts["+15550001"]["next_at"] == morning and dialer.calls:
            break
        await asyncio.sleep(0.01)
    assert [c[0] for c in dialer.calls] == ["+81300000001"]  # 12:00 in Tokyo: open
    ny = contacts["+15550001"]
    assert ny["state"] == "pending" and ny["attempts"] == 0
    assert ny["next_at"] == morning
    now[0] = datetime(2026, 3, 2, 14, 0, 1, tzinfo=UTC).timestamp()
    detail = await run_until_done(campaigns, worker, cid)
    assert {c["outcome"] for c in detail["contacts"]} == {"completed"}


async def test_a_restarted_single_node_resumes_from_the_database(store: CampaignStore) -> None:
    campaigns = Campaigns(store, LocalJobQueue())
    cid = await campaigns.create(CampaignSpec(contacts=[{"phone": f"+1555{i}"} for i in range(4)],
                                              window="00:00-24:00", cps=100))
    # The process dies before dialing: a new process has an empty in-memory queue.
    queue = LocalJobQueue()
    dialer = ScriptedDialer({})
    worker = CampaignWorker(store, queue, dialer, "n1")
    assert await worker.resume_local() == 4
    detail = await run_until_done(Campaigns(store, queue), worker, cid)
    assert detail["progress"]["completed"] == 4


def test_csv_contacts_with_variables() -> None:
    contacts = parse_contacts_csv(
        "Phone,Name,TZ,appointment\n+1 555 0100,Ann,America/Chicago,Tue 3pm\n\n"
        "0044 20 7946 0000,Bob,,Wed 9am\n"
    )
    assert [(c.phone, c.name, c.timezone) for c in contacts] == [
        ("+15550100", "Ann", "America/Chicago"), ("+442079460000", "Bob", None),
    ]
    assert contacts[0].variables == {"appointment": "Tue 3pm"}


@pytest.mark.parametrize(
    ("data", "message"),
    [("name\nAnn\n", "phone column"), ("phone\nnot a number\n", "line 2")],
)
def test_bad_csv_is_explained(data: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_contacts_csv(data)


def test_spec_rejects_bad_zone_and_window() -> None:
    with pytest.raises(ValidationError, match="Mars"):
        CampaignSpec(contacts=[{"phone": "+1555", "timezone": "Mars/Base"}])
    with pytest.raises(ValidationError, match="calling window"):
        CampaignSpec(contacts=[{"phone": "+1555"}], window="late")
