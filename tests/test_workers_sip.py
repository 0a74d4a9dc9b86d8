"""``server.workers = 2`` with SIP: ``voxgate serve`` as an operator runs it puts the SIP
front (``voxgate.sip.front``) in the supervisor, so calls from sipp to the one public SIP
port are served by both workers (by Call-ID), each with its own RTP ports, and end cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import RedisServer, free_port
from tests.sip.interop.peers import free_sip_port, needs_sipp, run_sipp
from tests.test_workers import TOKEN, NodeProc, serving
from tests.test_workers import _config as workers_config

pytestmark = [pytest.mark.interop, needs_sipp]

CALLS = 16


def _config(tmp: Path, port: int, sip_port: int, redis_url: str, prefix: str) -> Path:
    """The workers tests' node with SIP over UDP on ``sip_port`` and an echo route for it."""
    return workers_config(
        tmp, port, redis_url, prefix, node_id="ws", edge="sip",
        sip=f'enabled = true\nport = {sip_port}\ntransports = ["udp"]\nsample_rate = 8000',
        media="rtp_port_min = 42000\nrtp_port_max = 42399",
    )  # fmt: skip


@pytest.fixture(scope="module")
def sip_node(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProc]:
    tmp = tmp_path_factory.mktemp("workers-sip")
    port = free_port()
    sip_port = free_sip_port()
    cfg = _config(tmp, port, sip_port, redis_server.url, "ws" + os.urandom(4).hex())
    with serving(cfg, port) as node:
        node.sip_port = sip_port  # type: ignore[attr-defined]
        node.wait_for("voxgate is up", 60)
        yield node


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def test_sip_calls_to_one_port_are_served_by_both_workers(sip_node: NodeProc) -> None:
    sip_port: int = sip_node.sip_port  # type: ignore[attr-defined]
    sip_node.wait_for("SIP/UDP over every worker by Call-ID", 5)
    result = await run_sipp(
        "-sn", "uac", f"127.0.0.1:{sip_port}", "-s", "agent", "-p", str(free_sip_port()),
        "-mp", str(free_sip_port()), "-m", str(CALLS), "-l", str(CALLS), "-r", "20", "-d", "400",
        timeout_s=40,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    async with httpx.AsyncClient(base_url=sip_node.base, timeout=10) as client:
        res = await client.get("/v1/calls", params={"edge": "sip"}, headers=_headers())
        res.raise_for_status()
        calls = res.json()["calls"]
        assert len(calls) == CALLS, calls
        details = [(await client.get(f"/v1/calls/{c['id']}", headers=_headers())).json() for c in calls]
    owners = [d["node_id"] for d in details]
    assert {"ws-w0", "ws-w1"} == set(owners), owners  # the front spread the dialogs
    assert all(d["end_reason"] == "caller_hangup" for d in details), [d["end_reason"] for d in details]


def _front_count(text: str, worker: str, outcome: str) -> float:
    want = f'voxgate_sip_front_datagrams_total{{outcome="{outcome}",worker="{worker}"}}'
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_the_fronts_counts_are_in_the_nodes_metrics(sip_node: NodeProc) -> None:
    """The front runs in the supervisor; its counts (per worker, garbage) reach /metrics,
    whichever worker answers."""
    sip_port: int = sip_node.sip_port  # type: ignore[attr-defined]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(3):
            s.sendto(b"\x00\x01 not sip at all", ("127.0.0.1", sip_port))
    text = ""
    for _ in range(40):  # published once a second
        async with httpx.AsyncClient(base_url=sip_node.base, timeout=10) as client:
            text = (await client.get("/metrics", headers=_headers())).text
        if _front_count(text, "-", "garbage") >= 3:
            break
        await asyncio.sleep(0.25)
    assert _front_count(text, "-", "garbage") >= 3, text[-2000:]
    # The calls of the first test went through the front to both workers.
    assert _front_count(text, "0", "dispatched") > 0 and _front_count(text, "1", "dispatched") > 0


def _worker_pids(node: NodeProc) -> list[int]:
    """Worker pids in index order, from the banner ("pids <w0> <w1>; ...")."""
    for line in node.output:
        if "processes (" in line and "pids" in line:
            return [int(p) for p in line.split("pids", 1)[1].split(";", 1)[0].split()]
    raise AssertionError("no worker pids in the banner")


async def _sip_calls(client: httpx.AsyncClient) -> list[dict[str, object]]:
    res = await client.get("/v1/calls", params={"edge": "sip", "limit": 500}, headers=_headers())
    res.raise_for_status()
    calls: list[dict[str, object]] = res.json()["calls"]
    return [(await client.get(f"/v1/calls/{c['id']}", headers=_headers())).json() for c in calls]


async def test_a_worker_killed_mid_call_loses_only_its_calls(sip_node: NodeProc) -> None:
    """SIGKILL worker 1 while calls run on both: worker 0's calls go on to a normal end,
    worker 1's are closed 'interrupted' by its restarted self, and the front routes new
    calls to both workers again."""
    sip_port: int = sip_node.sip_port  # type: ignore[attr-defined]
    w1_pid = _worker_pids(sip_node)[1]
    async with httpx.AsyncClient(base_url=sip_node.base, timeout=10) as client:
        before = {str(d["id"]) for d in await _sip_calls(client)}
        uac = [
            "-sn", "uac", f"127.0.0.1:{sip_port}", "-s", "agent", "-p", str(free_sip_port()),
            "-mp", str(free_sip_port()), "-m", "10", "-l", "10", "-r", "20",
        ]  # fmt: skip
        long_calls = asyncio.create_task(run_sipp(*uac, "-d", "6000", timeout_s=40))
        live: list[dict[str, object]] = []
        for _ in range(100):  # until all 10 are up
            live = [d for d in await _sip_calls(client) if d["id"] not in before and d["live"]]
            if len(live) == 10:
                break
            await asyncio.sleep(0.1)
        owners = {str(d["node_id"]) for d in live}
        assert owners == {"ws-w0", "ws-w1"}, live
        os.kill(w1_pid, signal.SIGKILL)
        sip_node.wait_for("restarted (pid", 30)
        await long_calls  # worker 1's calls fail at BYE (481): sipp's verdict is not asserted
        first = {str(d["id"]): d for d in await _sip_calls(client) if d["id"] not in before}
        for _ in range(50):  # the restarted worker closes its predecessor's calls
            if all(d["end_reason"] for d in first.values()):
                break
            await asyncio.sleep(0.2)
            first = {str(d["id"]): d for d in await _sip_calls(client) if d["id"] not in before}
        reasons = {(d["node_id"], d["end_reason"]) for d in first.values()}
        assert reasons == {("ws-w0", "caller_hangup"), ("ws-w1", "interrupted")}, reasons

        seen = before | set(first)
        result = await run_sipp(*uac, "-d", "300", timeout_s=40)
        assert result.returncode == 0, result.stdout + result.stderr
        again = [d for d in await _sip_calls(client) if d["id"] not in seen]
    assert len(again) == 10
    assert {d["node_id"] for d in again} == {"ws-w0", "ws-w1"}
    assert all(d["end_reason"] == "caller_hangup" for d in again), again


async def test_sigterm_drains_the_workers_and_the_front(sip_node: NodeProc) -> None:
    sip_node.proc.send_signal(signal.SIGTERM)
    assert sip_node.proc.wait(30) == 0, "".join(sip_node.output[-40:])


def test_a_taken_sip_port_fails_in_the_supervisor_before_any_worker(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The front binds the public SIP port before the workers load anything: a taken port
    is a one-line error and exit 1 at once."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    sip_port = taken.getsockname()[1]
    cfg = _config(tmp_path, free_port(), sip_port, redis_server.url, "t" + os.urandom(4).hex())
    try:
        run = subprocess.run(
            [sys.executable, "-m", "voxgate.cli", "serve", "--config", str(cfg)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        taken.close()
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"cannot listen for SIP on port {sip_port}" in run.stderr
    assert "starting 2 workers" not in run.stdout
