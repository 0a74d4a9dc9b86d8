"""``server.workers = 2`` end to end: ``voxgate serve`` as an operator runs it (a real
supervisor, two worker processes, the session's redis-server, a shared SQLite records file),
driven over loopback with a websockets Twilio client and plain HTTP.

One node serves the whole module (start-up is the slow part); the tests run in file order:
streams spread and echo, metrics aggregate, hang-up across workers, a killed worker is
restarted, SIGTERM drains and exits 0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import RedisServer, free_port
from tests.websocket.helpers import media_msg, start_msg
from voxgate.cli import main as cli_main
from voxgate.config import load_settings
from voxgate.errors import ConfigError
from voxgate.worker_process import worker_settings

TOKEN = "workers-test-token"
STREAMS = 20


@dataclass
class NodeProc:
    proc: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.output):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not printed; output:\n" + "".join(self.output[-40:]))

    def worker_pids(self) -> set[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(x) for x in path.read_text().split()}


@contextlib.contextmanager
def serving(cfg: Path, port: int) -> Iterator[NodeProc]:
    """``voxgate serve --config cfg`` as an operator runs it, its output collected as it
    comes; killed at the end if it still runs. Waits for the banner only if asked to
    (``NodeProc.wait_for``): some tests want the start-up to fail."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxgate.cli", "serve", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    node = NodeProc(proc, port)
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            node.output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield node
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _config(
    tmp: Path, port: int, redis_url: str, prefix: str, *,
    sip: str = "enabled = false", media: str = "", node_id: str = "wt", edge: str = "websocket",
) -> Path:  # fmt: skip
    """The 2-worker test node's config: fake providers, echo route on ``edge``; ``sip`` and
    ``media`` are the bodies of those sections (tests/test_workers_sip.py turns SIP on)."""
    cfg = tmp / "voxgate.toml"
    cfg.write_text(
        f"""
log_level = "info"
[server]
port = {port}
workers = 2
drain_timeout_s = 1
[auth]
api_tokens = ["{TOKEN}"]
[sip]
{sip}
[media]
{media}
[records]
database_url = "sqlite+aiosqlite:///{tmp}/records.db"
recordings_dir = "{tmp}/recordings"
[providers]
stt = ["fake"]
llm = ["fake"]
tts = ["fake"]
vad = "webrtc"
[cluster]
redis_url = "{redis_url}"
node_id = "{node_id}"
key_prefix = "{prefix}"
heartbeat_s = 0.3
heartbeat_timeout_s = 3
[[routes]]
edge = "{edge}"
app = "echo"
"""
    )
    return cfg


@pytest.fixture(scope="module")
def node(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProc]:
    tmp = tmp_path_factory.mktemp("workers")
    port = free_port()
    cfg = _config(tmp, port, redis_server.url, "w" + os.urandom(4).hex())
    with serving(cfg, port) as node:
        node.wait_for("voxgate is up", 60)
        yield node


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


class Caller:
    """A Twilio-side stream: echoes ``mark`` messages back as Twilio does once the audio
    before them has played (a hang-up waits for that mark), queues echoed media."""

    def __init__(self, ws: ClientConnection, k: int) -> None:
        self.ws = ws
        self.k = k
        self.media: asyncio.Queue[bytes] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, port: int, k: int) -> Caller:
        ws = await connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}")
        await ws.send(start_msg(stream_sid=f"MZ{k}", call_sid=f"CA{k}"))
        return cls(ws, k)

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg.get("event") == "media":
                    self.media.put_nowait(base64.b64decode(msg["media"]["payload"]))
                elif msg.get("event") == "mark":
                    await self.ws.send(json.dumps({**msg, "streamSid": f"MZ{self.k}"}))

    async def echoes(self) -> bool:
        payload = bytes([0x10 + self.k % 64]) * 160
        await self.ws.send(media_msg(2, 1, payload, stream_sid=f"MZ{self.k}"))
        return await asyncio.wait_for(self.media.get(), 10) == payload

    async def closed_by_server(self) -> bool:
        """True once the server closed the stream (within 10 s)."""
        await asyncio.wait_for(self.reader, 10)
        return self.ws.close_code is not None

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def _nodes(client: httpx.AsyncClient) -> dict[str, int]:
    res = await client.get("/v1/cluster/nodes", headers=_headers())
    res.raise_for_status()
    return {n["node_id"]: n["active_calls"] for n in res.json() if n["alive"]}


async def _wait_nodes(client: httpx.AsyncClient, want_total: int) -> dict[str, int]:
    nodes: dict[str, int] = {}
    for _ in range(100):
        nodes = await _nodes(client)
        if len(nodes) == 2 and sum(nodes.values()) == want_total:
            return nodes
        await asyncio.sleep(0.1)
    raise AssertionError(f"cluster nodes never showed {want_total} calls: {nodes}")


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_streams_spread_over_both_workers_and_the_api_reaches_every_call(
    node: NodeProc,
) -> None:
    streams = [await Caller.open(node.port, k) for k in range(STREAMS)]
    try:
        assert all(await asyncio.gather(*(c.echoes() for c in streams)))
        async with httpx.AsyncClient(base_url=node.base, timeout=10) as client:
            nodes = await _wait_nodes(client, STREAMS)
            assert set(nodes) == {"wt-w0", "wt-w1"}
            assert min(nodes.values()) > 0, nodes  # SO_REUSEPORT hashed streams to both

            # /metrics from either worker (fresh connections land on both) is the node's.
            for _ in range(6):
                async with httpx.AsyncClient(base_url=node.base, timeout=10) as fresh:
                    text = (await fresh.get("/metrics", headers=_headers())).text
                assert _metric(text, "voxgate_websocket_fast_streams") == STREAMS
                assert _metric(text, 'voxgate_active_calls{edge="websocket"}') == STREAMS

            # The records DB is shared: the list shows every worker's calls, and the call
            # registry marks the other worker's calls live too (one connection = one worker).
            res = await client.get("/v1/calls", params={"active": "true"}, headers=_headers())
            listed = res.json()
            ids = [c["id"] for c in listed["calls"]]
            assert len(ids) == STREAMS and all(c["live"] for c in listed["calls"])
            assert 0 < len(listed["live"]) < STREAMS  # details: the answering worker's only
            details = [(await client.get(f"/v1/calls/{i}", headers=_headers())).json() for i in ids]
            assert all(d["live"] for d in details)
            assert {d["node_id"] for d in details} == {"wt-w0", "wt-w1"}

            # One keep-alive connection = one worker: the other worker's calls are
            # forwarded over the control bus (the answer names the owner).
            owners = []
            for call_id in ids:
                res = await client.post(f"/v1/calls/{call_id}/hangup", headers=_headers())
                assert res.status_code == 200, res.text
                owners.append(res.json().get("node"))
            assert any(o in ("wt-w0", "wt-w1") for o in owners), owners
        # Every stream, on whichever worker, was hung up.
        assert all(await asyncio.gather(*(c.closed_by_server() for c in streams)))
    finally:
        for c in streams:
            await c.close()
    async with httpx.AsyncClient(base_url=node.base, timeout=10) as client:
        await _wait_nodes(client, 0)
        text = (await client.get("/metrics", headers=_headers())).text
        assert _metric(text, "voxgate_websocket_fast_streams") == 0
        ended = 'voxgate_calls_total{edge="websocket",reason="api_hangup"}'
        assert _metric(text, ended) == STREAMS  # counted in both workers, summed


async def test_a_killed_worker_is_reported_and_restarted(node: NodeProc) -> None:
    before = node.worker_pids()
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    node.wait_for("died (exit -9); restarting it", 10)
    node.wait_for("restarted (pid", 30)
    after = node.worker_pids()
    assert len(after) == 2 and victim not in after
    async with httpx.AsyncClient(base_url=node.base, timeout=10) as client:
        await _wait_nodes(client, 0)
    caller = await Caller.open(node.port, 99)
    try:
        assert await caller.echoes()
    finally:
        await caller.close()


async def test_sigterm_drains_every_worker_and_exits_0(node: NodeProc) -> None:
    streams = [await Caller.open(node.port, k) for k in range(6)]
    assert all(await asyncio.gather(*(c.echoes() for c in streams)))
    node.proc.send_signal(signal.SIGTERM)
    # drain_timeout_s = 1: each worker ends its calls, then exits.
    assert all(await asyncio.gather(*(c.closed_by_server() for c in streams)))
    assert await asyncio.to_thread(node.proc.wait, 30) == 0
    assert sum("draining" in line for line in node.output) == 2


def test_workers_need_the_cluster_registry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="needs cluster.redis_url"):
        load_settings(server={"workers": 2})
    assert cli_main(["serve", "--workers", "2", "--no-sip"]) == 2
    assert "server.workers = 2 needs cluster.redis_url" in capsys.readouterr().err


def test_each_worker_is_its_own_cluster_node_and_only_w0_runs_sip() -> None:
    settings = load_settings(
        server={"workers": 3}, cluster={"redis_url": "redis://127.0.0.1:1/0", "node_id": "n"}
    )
    settings.ensure_api_token()
    views = [worker_settings(settings, k) for k in range(3)]
    assert [v.cluster.node_id for v in views] == ["n-w0", "n-w1", "n-w2"]
    assert [v.sip.enabled for v in views] == [True, False, False]
    assert {v.auth.api_tokens[0].get_secret_value() for v in views} == {
        settings.auth.api_tokens[0].get_secret_value()
    }


def test_a_worker_that_fails_before_serving_stops_the_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Not transient (here: worker 0's SIP port is taken), so no restart loop: exit 1.
    SIP over TCP only: that edge runs in worker 0 (with UDP the supervisor's SIP front
    binds the port itself, see tests/test_workers_sip.py)."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    sip_port = taken.getsockname()[1]
    cfg = _config(
        tmp_path, free_port(), redis_server.url, "f" + os.urandom(4).hex(),
        sip=f'port = {sip_port}\ntransports = ["tcp"]',
    )  # fmt: skip
    try:
        run = subprocess.run(
            [sys.executable, "-m", "voxgate.cli", "serve", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        taken.close()
    assert run.returncode == 1, run.stdout + run.stderr
    assert "SIP edge failed to start" in run.stderr
    assert "worker 0 exited with 1 before serving; stopping the node" in run.stderr
    assert "voxgate is up" not in run.stdout


def test_a_taken_http_port_fails_before_any_worker_starts(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = _config(tmp_path, port, redis_server.url, "p" + os.urandom(4).hex())
        run = subprocess.run(
            [sys.executable, "-m", "voxgate.cli", "serve", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 1
    assert f"voxgate: cannot listen on port {port}" in run.stderr
    assert "starting 2 workers" not in run.stdout


_ALONGSIDE = """
import asyncio, sys
from pathlib import Path
from voxgate.config import load_settings
from voxgate.workers import Supervisor

trace = Path(sys.argv[2])
sup = Supervisor(load_settings(Path(sys.argv[1])), load_agent=False)

async def front() -> None:
    trace.write_text(f"started, workers {len(sup.pids)}\\n")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        with trace.open("a") as f:
            f.write(f"cancelled, workers {len(sup.pids)}\\n")
        raise

def close() -> None:
    with trace.open("a") as f:
        f.write("closed\\n")

sup.alongside(front, close=close)
raise SystemExit(asyncio.run(sup.run()))
"""


def test_a_supervisor_service_runs_from_before_the_workers_until_they_drained(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """``Supervisor.alongside``: where a SIP front will run (it must outlive the drain)."""
    cfg = _config(tmp_path, free_port(), redis_server.url, "s" + os.urandom(4).hex())
    trace = tmp_path / "trace.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", _ALONGSIDE, str(cfg), str(trace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "voxgate is up" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert trace.read_text() == "started, workers 0\ncancelled, workers 0\nclosed\n"


async def test_stopping_with_no_worker_alive_is_clean() -> None:
    """Every worker already gone (e.g. all failed their start): nothing to signal or wait
    for, no ValueError from waiting on nothing."""
    from voxgate.workers import Supervisor

    settings = load_settings(None).model_copy(deep=True)
    assert await Supervisor(settings)._stop_all() is True


def test_a_worker_in_a_crash_loop_stops_the_node(redis_server: RedisServer, tmp_path: Path) -> None:
    """A worker dying more than RESTART_LIMIT times within RESTART_WINDOW_S is not
    transient: the supervisor stops restarting it, stops the node and exits 1."""
    from voxgate.workers import RESTART_LIMIT

    port = free_port()
    cfg = _config(tmp_path, port, redis_server.url, "c" + os.urandom(4).hex())
    with serving(cfg, port) as node:
        node.wait_for("voxgate is up", 60)
        seen = node.worker_pids()
        victim = min(seen)  # always the same worker: each kill hits its restarted self
        for death in range(RESTART_LIMIT + 1):
            os.kill(victim, signal.SIGKILL)
            if death == RESTART_LIMIT:
                break
            deadline = time.monotonic() + 30
            while not (fresh := node.worker_pids() - seen) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fresh, "".join(node.output[-20:])
            (victim,) = fresh
            seen |= fresh
            node.wait_for(f"restarted (pid {victim})", 30)
        assert node.proc.wait(30) == 1, "".join(node.output[-30:])
        node.wait_for(f"died {RESTART_LIMIT + 1} times in 60 s; stopping the node", 5)
