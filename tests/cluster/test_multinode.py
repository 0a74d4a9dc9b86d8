"""Three voxgate nodes as subprocesses on loopback with a real redis-server, a shared
PostgreSQL records DB and sipp peers.

- a call placed by sipp (UAC) into node A's SIP port is hung up / transferred through node
  B's HTTP API (the control bus carries the request to A, A sends the BYE / REFER);
- a campaign of 50 contacts against sipp UAS peers (answering, 486 busy, 480 after
  ringing) completes with the right outcomes and retries, within max concurrency and CPS,
  with attempts spread over the nodes;
- SIGKILL of node A in mid-call: a survivor marks the call ``node_lost`` in the shared DB
  within the heartbeat timeout; no record is lost; the conversation is still in Redis.

Tests run in file order (the kill is last). Every process is killed in the fixture's
``finally``; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import PostgresServer, RedisServer
from tests.sip.interop.peers import PCAPS, SIPP, free_port, free_sip_port, needs_sipp, rtp_range
from tests.sip.interop.peers import scenario as sip_scenario
from voxgate.cluster.store import RedisStore
from voxgate.observability.records import CallRecords

pytestmark = [pytest.mark.interop, needs_sipp]

TOKEN = "cluster-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).parent / "scenarios"
HEARTBEAT_S, HEARTBEAT_TIMEOUT_S = 0.5, 2.0


@dataclass
class Node:
    name: str
    http: str
    sip_port: int
    proc: subprocess.Popen[bytes]


@dataclass
class Cluster:
    nodes: dict[str, Node]
    redis_url: str
    prefix: str
    trunks: dict[str, int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _sipp(args: list[str], workdir: Path, limit_s: int = 120) -> subprocess.Popen[bytes]:
    assert SIPP is not None
    return subprocess.Popen(
        [SIPP, *args, "-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin", "-timeout", f"{limit_s}s"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


async def _migrate(url: str) -> None:
    records = await CallRecords.open(url)
    await records.close()


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[Cluster]:
    db_url = asyncio.run(postgres_server.new_database())
    # Migrate once before the nodes start: three nodes migrating an empty PostgreSQL
    # database at the same moment race on CREATE TABLE alembic_version (deploy/README.md).
    asyncio.run(_migrate(db_url))
    prefix = "mn" + os.urandom(3).hex()
    workdir = Path(tempfile.mkdtemp(prefix="voxgate-cluster-"))
    (workdir / "pcap").symlink_to(PCAPS)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        trunks = {"answer": free_sip_port(), "busy": free_sip_port(), "noanswer": free_sip_port()}
        procs.append(_sipp(["-sn", "uas", "-p", str(trunks["answer"]), "-mp", str(free_port())], workdir))
        procs.append(_sipp(["-sf", str(SCENARIOS / "uas_busy.xml"), "-p", str(trunks["busy"]),
                            "-mp", str(free_port())], workdir))  # fmt: skip
        procs.append(_sipp(["-sf", str(SCENARIOS / "uas_480_later.xml"), "-p", str(trunks["noanswer"]),
                            "-mp", str(free_port())], workdir))  # fmt: skip
        nodes: dict[str, Node] = {}
        for name in ("a", "b", "c"):
            http_port, sip_port = free_port(), free_sip_port()
            cfg = {"node_id": name, "http_port": http_port, "sip_port": sip_port, "rtp": rtp_range(200),
                   "redis_url": redis_server.url, "db_url": db_url, "token": TOKEN, "prefix": prefix,
                   "trunks": [{"name": k, "port": v} for k, v in trunks.items()], "hold_s": 0.4,
                   "heartbeat_s": HEARTBEAT_S, "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S,
                   "answer_timeout_s": 5.0}  # fmt: skip
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.cluster.node_main", json.dumps(cfg)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=open(workdir / f"node-{name}.log", "wb"),  # noqa: SIM115
            )  # fmt: skip
            procs.append(proc)
            nodes[name] = Node(name, f"http://127.0.0.1:{http_port}", sip_port, proc)
        for node in nodes.values():
            assert node.proc.stdout is not None
            line = node.proc.stdout.readline()  # bounded by the node's own start-up
            assert line.strip() == b"READY", (workdir / f"node-{node.name}.log").read_text()[-3000:]
        yield Cluster(nodes, redis_server.url, prefix, trunks, procs)
    finally:
        for proc in procs:
            _kill(proc)


async def _until(check: Any, limit_s: float, step_s: float = 0.05) -> Any:
    """Poll ``check`` (async, returns a truthy value when done) for at most ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step_s)


async def _live_call_on(client: httpx.AsyncClient, node: str, callee: str) -> str:
    """The id of the active call to ``callee`` owned by ``node``, read through another
    node's API (the records DB is shared)."""
    async def check() -> str | None:
        calls = (await client.get("/v1/calls", params={"active": "true"}, headers=AUTH)).json()["calls"]
        ids = [c["id"] for c in calls if c["callee"] == callee and c.get("node_id", node) == node]
        return ids[0] if ids else None

    return str(await _until(check, 15))


def _uac(cluster: Cluster, node: str, xml: str, caller: str) -> subprocess.Popen[bytes]:
    workdir = Path(tempfile.mkdtemp(prefix="sipp-uac-"))
    (workdir / "pcap").symlink_to(PCAPS)
    return _sipp(["-sf", xml, "-s", caller, "-m", "1", "-p", str(free_sip_port()), "-mp", str(free_port()),
                  f"127.0.0.1:{cluster.nodes[node].sip_port}"], workdir, limit_s=30)  # fmt: skip


async def _proc_exit(proc: subprocess.Popen[bytes], limit_s: float) -> int:
    async def check() -> bool:
        return proc.poll() is not None

    await _until(check, limit_s)
    return int(proc.returncode)


async def test_call_on_a_is_hung_up_and_transferred_through_b(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.nodes["b"].http, timeout=10) as b:
        uac = _uac(cluster, "a", sip_scenario("uac_wait_bye.xml"), "hangup-test")
        try:
            call_id = await _live_call_on(b, "a", "hangup-test")
            row = (await b.get(f"/v1/calls/{call_id}", headers=AUTH)).json()
            assert row["node_id"] == "a" and row["live_status"] is None  # live on a, not on b
            r = await b.post(f"/v1/calls/{call_id}/hangup", headers=AUTH)
            assert r.status_code == 200 and r.json()["node"] == "a", r.text
            assert await _proc_exit(uac, 15) == 0  # sipp received node a's BYE

            async def ended() -> dict[str, Any] | None:
                d = (await b.get(f"/v1/calls/{call_id}", headers=AUTH)).json()
                return d if d["end_reason"] else None

            assert (await _until(ended, 10))["end_reason"] == "api_hangup"
        finally:
            _kill(uac)

        uac = _uac(cluster, "a", sip_scenario("uac_refer.xml"), "transfer-test")
        try:
            call_id = await _live_call_on(b, "a", "transfer-test")
            # uac_refer.xml checks Refer-To: <sip:human@...>
            r = await b.post(f"/v1/calls/{call_id}/transfer", json={"target": "human"}, headers=AUTH)
            assert r.status_code == 202 and r.json()["node"] == "a", r.text
            assert await _proc_exit(uac, 15) == 0  # REFER, NOTIFY 200, then BYE from node a
            assert (await _until(ended, 10))["end_reason"] == "transferred"
        finally:
            _kill(uac)


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


async def test_campaign_of_50_contacts_across_nodes(cluster: Cluster) -> None:
    kinds = ["answer"] * 32 + ["busy"] * 9 + ["noanswer"] * 9
    contacts = [{"phone": f"+1555300{i:04d}", "variables": {"trunk": kind}} for i, kind in enumerate(kinds)]
    spec = {"name": "fifty", "contacts": contacts, "window": "00:00-24:00", "max_concurrent": 6,
            "cps": 10, "max_attempts": 3, "retry_backoff_s": 0.3, "backoff_factor": 1.0, "amd": False}  # fmt: skip
    async with httpx.AsyncClient(base_url=cluster.nodes["c"].http, timeout=10) as c:
        r = await c.post("/v1/campaigns", json=spec, headers=AUTH)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]

        async def done() -> dict[str, Any] | None:
            d = (await c.get(f"/v1/campaigns/{cid}", headers=AUTH)).json()
            return d if d["status"] == "completed" else None

        try:
            detail = await _until(done, 60, step_s=0.25)
        except AssertionError:
            d = (await c.get(f"/v1/campaigns/{cid}", headers=AUTH)).json()
            stuck = [x for x in d["contacts"] if x["state"] != "done"][:5]
            raise AssertionError(f"campaign not done: {d['progress']} {stuck}") from None
    by_kind: dict[str, set[tuple[str | None, int]]] = {}
    for contact in detail["contacts"]:
        by_kind.setdefault(contact["variables"]["trunk"], set()).add((contact["outcome"], contact["attempts"]))
    assert by_kind == {"answer": {("completed", 1)}, "busy": {("busy", 3)}, "noanswer": {("no_answer", 3)}}
    assert all(c["result"] == {"confirmed": True} for c in detail["contacts"] if c["outcome"] == "completed")
    progress = detail["progress"]
    assert progress["attempts"] == 32 + 27 + 27 and progress["done"] == 50
    # Limits, measured from our own attempt timestamps (written by the nodes, shared DB).
    from voxgate.cluster.campaign_db import CampaignStore
    from voxgate.observability.db import make_engine

    engine = make_engine(await _db_url(cluster))
    try:
        attempts = await CampaignStore(engine).attempts(cid)
    finally:
        await engine.dispose()
    spans = [(a["started_at"].timestamp(), a["ended_at"].timestamp()) for a in attempts]
    starts = sorted(s for s, _ in spans)
    assert _max_overlap(spans) <= 6
    busiest = max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts)
    assert busiest <= 10 + 1  # one extra for commit-time jitter around a slot boundary
    assert (len(starts) - 1) / (starts[-1] - starts[0]) <= 10.5
    nodes_used = {a["node_id"] for a in attempts}
    assert len(nodes_used) >= 2, nodes_used
    print(f"\ncampaign: {len(attempts)} attempts in {starts[-1] - starts[0]:.1f} s, max concurrent "
          f"{_max_overlap(spans)}, busiest second {busiest} starts, nodes {sorted(nodes_used)}")


async def _db_url(cluster: Cluster) -> str:
    # The nodes' config is on their command line; read it back from node a's process args.
    args = json.loads(cluster.nodes["a"].proc.args[-1])  # type: ignore[index]
    return str(args["db_url"])


async def test_killing_node_a_mid_call_marks_node_lost(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.nodes["b"].http, timeout=10) as b:
        uac = _uac(cluster, "a", sip_scenario("uac_wait_bye.xml"), "kill-test")
        try:
            call_id = await _live_call_on(b, "a", "kill-test")
            before = (await b.get("/v1/calls", params={"limit": 500}, headers=AUTH)).json()["calls"]
            cluster.nodes["a"].proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()

            async def lost() -> dict[str, Any] | None:
                d = (await b.get(f"/v1/calls/{call_id}", headers=AUTH)).json()
                return d if d["end_reason"] else None

            row = await _until(lost, HEARTBEAT_TIMEOUT_S * 4)
            took = time.monotonic() - killed_at
            assert row["end_reason"] == "node_lost"
            assert [e["kind"] for e in row["events"]] == ["node_lost"]
            reaper = row["events"][0]["data"]["reaper"]
            assert reaper in {"b", "c"}
            print(f"\nnode_lost marked by {reaper} {took:.2f} s after SIGKILL "
                  f"(heartbeat {HEARTBEAT_S} s, timeout {HEARTBEAT_TIMEOUT_S} s)")
            after = (await b.get("/v1/calls", params={"limit": 500}, headers=AUTH)).json()["calls"]
            assert {c["id"] for c in before} <= {c["id"] for c in after}  # no record lost
            nodes = (await b.get("/v1/cluster/nodes", headers=AUTH)).json()
            assert {n["node_id"] for n in nodes} == {"b", "c"}
            r = await b.post(f"/v1/calls/{call_id}/hangup", headers=AUTH)
            assert r.status_code == 404  # the registry forgot the call with its node
        finally:
            _kill(uac)
    store = RedisStore(cluster.redis_url, prefix=cluster.prefix)
    try:
        conv = await store.load(call_id)
        assert conv is not None and conv.messages[0].message.content == "hello from sipp"
    finally:
        await store.close()
