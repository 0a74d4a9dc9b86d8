"""N simultaneous Twilio Media Streams to an echo route: voxgate vs pipecat, side by side.

Run: ``.venv/bin/python bench/ws_streams.py`` (one command; ``--help`` for options).

Two echo servers on loopback, each in its own child process:

- **voxgate**: the node as ``voxgate serve`` builds it (``Node.create``: records database,
  observer, router) with one route, ``app = "echo"`` (the built-in echo app,
  ``voxgate.calls.echo``), served by ``voxgate.server.http_config`` (uvicorn, uvloop,
  httptools, the media fast path for ``/twilio/media``). No models (no route needs the
  agent), no SIP edge, call recording off (its default). ``--asgi`` serves
  ``/twilio/media`` through the ASGI route instead, to compare the two paths.
- **pipecat**: ``bench/_pipecat_echo_server.py`` (FastAPI + pipecat's
  ``FastAPIWebsocketTransport`` + ``TwilioFrameSerializer``, a pipeline that turns every input
  audio frame into an output audio frame), from ``.venv-bench/pipecat``, a separate venv this
  script creates on first use (pipecat pulls numba/llvmlite and an older soxr, so it never
  goes into the main venv). ``--no-pipecat`` skips it.
- **voxgate-wN** (``--workers N``, N > 1): the same node through ``server.workers = N``
  (``voxgate.workers``: a supervisor and N worker processes on one port, each a cluster
  node, with a redis-server this script starts on loopback), measured in the same run as the
  single process. ``--balance shared`` makes the workers accept from one socket instead of
  one ``SO_REUSEPORT`` socket each. Server CPU is the sum over the supervisor and its
  workers; the per-worker split is printed in the notes (how evenly the kernel spread the
  streams).

The load generator (this process's children, the main venv) plays N Twilio callers spread
over worker processes (``--per-worker`` streams each, uvloop): each caller sends
``connected``, ``start`` and then one 160-byte mu-law ``media`` message every 20 ms with
Twilio's ``sequenceNumber``/``chunk``/``timestamp`` fields and its own sequence number
written into the first payload bytes, answers ``mark`` messages as Twilio does (echoes them)
and pings with pongs. Each caller has its own random phase within the 20 ms tick (1 ms
slots), as independent calls do. The client is a minimal RFC 6455 implementation on
``asyncio.Protocol`` (so the load generator is cheap: no per-message library overhead),
masking with the all-zero key (legal: servers cannot tell, and it saves an XOR per byte).
All of a caller's ``media`` messages are built before the clock starts (the bytes Twilio
would send), so sending one is a ``transport.write``; echoes are read without a JSON parse.
The same client drives both servers.

Per frame, latency is ``time the echoed audio covering that frame's last byte arrived`` minus
``time the frame was written to the socket``: echoed payload bytes are counted per stream, so
a server that re-chunks audio is measured fairly. A frame whose audio has not come back
``--grace`` seconds after the last send is dropped. For voxgate, whose mu-law echo is
bit-exact, the embedded sequence numbers are also checked ("seq ok").

Levels step up (``--levels``) for each server until two in a row fail (p99 > ``--p99-ms`` or any
dropped frame). Each level runs ``--seconds`` of audio after all streams are connected.
Server CPU is read from ``/proc/PID/stat`` over the audio window; client CPU is the sum of
the worker processes' CPU over the same window (so a client near 100 % of a core per worker
would be visible as the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TOKEN = "bench-token"
FRAME_S = 0.02
FRAME_BYTES = 160
PIPECAT_VENV = ROOT / ".venv-bench" / "pipecat"
PIPECAT_REQS = ["pipecat-ai[websocket]", "fastapi", "uvicorn", "uvloop", "httptools"]


# --- the voxgate echo server (child process, main venv) ------------------------------


def serve_voxgate(port: int, asgi: bool) -> None:
    """The voxgate node as ``voxgate serve`` runs it, with one route: ``app = "echo"``.

    ``Node.create`` (records database, observer, router with the built-in echo app, the
    HTTP app) and ``voxgate.server.http_config`` (uvicorn with the media fast path), minus
    the models (no route needs the agent) and the SIP edge. Records go to a throw-away
    SQLite file; call recording is off (its default), so no per-frame tap runs.
    """
    import tempfile

    import uvicorn
    import uvloop

    from voxgate.config import load_settings
    from voxgate.node import Node
    from voxgate.server import freeze_startup_heap, http_config

    tmp = Path(tempfile.mkdtemp(prefix="ws-streams-"))
    settings = load_settings(
        log_level="error",
        server={"host": "127.0.0.1", "port": port},
        auth={"api_tokens": [TOKEN]},
        sip={"enabled": False},
        records={
            "database_url": f"sqlite+aiosqlite:///{tmp}/records.db",
            "recordings_dir": tmp / "recordings",
        },
        routes=[{"name": "echo", "edge": "websocket", "app": "echo"}],
    )

    async def main() -> None:
        node = await Node.create(settings, load_agent=False)
        config = http_config(settings, node.app)
        config.backlog = 4096
        if asgi:  # the ASGI route instead of the fast path, for comparison
            config.ws = "websockets-sansio"
            config.ws_per_message_deflate = False
        config.load()
        freeze_startup_heap()  # as voxgate.server.serve does
        await uvicorn.Server(config).serve()

    uvloop.run(main())


def serve_voxgate_workers(port: int, workers: int, redis_url: str, balance: str) -> None:
    """``server.workers = N``: the supervisor and N workers as ``voxgate serve`` runs them,
    with the single-process server's route, records and no models."""
    import tempfile

    from voxgate.config import load_settings
    from voxgate.workers import supervise

    tmp = Path(tempfile.mkdtemp(prefix="ws-streams-"))
    settings = load_settings(
        log_level="error",
        server={"host": "127.0.0.1", "port": port, "workers": workers, "drain_timeout_s": 1},
        auth={"api_tokens": [TOKEN]},
        sip={"enabled": False},
        records={
            "database_url": f"sqlite+aiosqlite:///{tmp}/records.db",
            "recordings_dir": tmp / "recordings",
        },
        cluster={"redis_url": redis_url, "node_id": "bench", "key_prefix": f"b{os.getpid()}"},
        routes=[{"name": "echo", "edge": "websocket", "app": "echo"}],
    )
    raise SystemExit(supervise(settings, balance=balance, load_agent=False))  # type: ignore[arg-type]


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    """A throw-away redis-server on loopback (the cluster registry of ``voxgate-wN``)."""
    import shutil
    import tempfile

    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", tempfile.mkdtemp(prefix="ws-streams-redis-")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if not wait_port(port, proc, 10):
        proc.kill()
        return None
    return proc, f"redis://127.0.0.1:{port}/0"


# --- the load generator: a minimal WebSocket client ------------------------------------

_SAFE = bytes(range(0x10, 0x50))  # 64 byte values whose mu-law decode/encode is exact


def _seq_head(seq: int) -> bytes:
    return bytes(_SAFE[(seq >> shift) & 63] for shift in (18, 12, 6, 0))


def _seq_of(head: bytes) -> int:
    s = 0
    for b in head[:4]:
        if not 0x10 <= b < 0x50:
            return -1
        s = (s << 6) | (b - 0x10)
    return s


def _frame(text: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame with the all-zero mask (payload bytes unchanged)."""
    n = len(text)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + text


class Caller(asyncio.Protocol):
    """One Twilio caller: handshake, start, media at 50/s, echo accounting.

    Every ``media`` message of the run is built (and framed) before the clock starts, so
    sending one costs a list index and a ``transport.write``; the bytes are what Twilio
    sends. Echoes are read without a JSON parse or a full base64 decode: the payload's
    length gives the audio bytes, its first 8 characters the embedded sequence number.
    """

    def __init__(self, index: int, host: str, port: int, path: str, frames: int) -> None:
        self.index = index
        self.sid = f"MZ{index:08d}"
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.open = False
        self.sent_at: list[float] = []
        self.seq = 1
        self.echo_bytes = 0
        self.echoed = 0
        self.latencies: list[float] = []
        self.seq_ok = 0
        self.seq_bad = 0
        self.marks = 0
        self.closed_by_server = False
        # Independent content per caller; the first 6 bytes carry the frame number.
        base = bytes(_SAFE[(index * 7 + i) % 64] for i in range(FRAME_BYTES))
        rest = base64.b64encode(base[6:])  # 6 bytes = 8 base64 chars: the tail is aligned
        self.media: list[bytes] = []
        for k in range(frames):
            head = base64.b64encode(_seq_head(k + 2) + base[4:6])
            self.media.append(
                _frame(
                    b'{"event":"media","sequenceNumber":"%d","media":{"track":"inbound",'
                    b'"chunk":"%d","timestamp":"%d","payload":"%s%s"},"streamSid":"%s"}'
                    % (k + 2, k + 1, k * 20, head, rest, self.sid.encode())
                )
            )
        self.seq = 1 + frames

    # connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        sock = tr.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tr.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed before upgrade"))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buf + data if self.buf else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[:end].split(b"\r\n", 1)[0]
            buf = buf[end + 4 :]
            if b" 101 " not in status + b" ":
                if not self.upgraded.done():
                    self.upgraded.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.open = True
            if not self.upgraded.done():
                self.upgraded.set_result(None)
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            hl = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                hl = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hl = 10
            end = pos + hl + n
            if end > size:
                break
            self._message(b0 & 0x0F, buf[pos + hl : end], now)
            pos = end
        self.buf = buf[pos:] if pos < size else b""

    def _message(self, opcode: int, text: bytes, now: float) -> None:
        if opcode == 0x1:
            p = text.find(b'"payload"')
            if p >= 0:  # media (voxgate's and pipecat's layouts: with or without spaces)
                start = text.index(b'"', text.index(b":", p + 9)) + 1
                stop = text.index(b'"', start)
                n = stop - start
                audio = n // 4 * 3 - (text[stop - 2 : stop].count(b"="))
                if audio == FRAME_BYTES and self.echo_bytes % FRAME_BYTES == 0:
                    head = base64.b64decode(text[start : start + 8])
                    if _seq_of(head) == self.echo_bytes // FRAME_BYTES + 2:
                        self.seq_ok += 1
                    else:
                        self.seq_bad += 1
                self.echo_bytes += audio
                sent = self.sent_at
                lat = self.latencies
                while (
                    self.echoed < len(sent) and self.echo_bytes >= (self.echoed + 1) * FRAME_BYTES
                ):
                    lat.append(now - sent[self.echoed])
                    self.echoed += 1
            elif b'"mark"' in text:
                name = json.loads(text).get("mark", {}).get("name", "")
                self.marks += 1
                self.seq += 1
                self._send(
                    json.dumps(
                        {
                            "event": "mark",
                            "sequenceNumber": str(self.seq),
                            "streamSid": self.sid,
                            "mark": {"name": name},
                        }
                    ).encode()
                )
        elif opcode == 0x9 and self.transport is not None:  # ping
            self.transport.write(_frame(text, 0xA))
        elif opcode == 0x8:
            self.closed_by_server = True
            if self.transport is not None:
                self.transport.close()

    def _send(self, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(text))

    # Twilio messages

    def send_start(self) -> None:
        self._send(b'{"event":"connected","protocol":"Call","version":"1.0.0"}')
        start = {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": "AC00000000",
                "streamSid": self.sid,
                "callSid": f"CA{self.index:08d}",
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {},
            },
            "streamSid": self.sid,
        }
        self._send(json.dumps(start).encode())

    def send_media(self) -> None:
        frame = self.media[len(self.sent_at)]
        self.sent_at.append(time.perf_counter())
        tr = self.transport
        if tr is not None and not tr.is_closing():
            tr.write(frame)

    def send_stop(self) -> None:
        self.seq += 1
        self._send(
            json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": str(self.seq),
                    "streamSid": self.sid,
                    "stop": {"accountSid": "AC00000000", "callSid": f"CA{self.index:08d}"},
                }
            ).encode()
        )


async def _worker_main(
    port: int, path: str, indices: list[int], t_start: float, seconds: float, grace: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    frames = int(round(seconds / FRAME_S))
    callers: list[Caller] = []
    failed = 0

    async def connect(i: int) -> None:
        nonlocal failed
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Caller(i, "127.0.0.1", port, path, frames), "127.0.0.1", port
                ),
                10,
            )
            await asyncio.wait_for(proto.upgraded, 10)
            proto.send_start()
            callers.append(proto)
        except Exception:
            failed += 1

    for k in range(0, len(indices), 25):  # connect in small batches
        await asyncio.gather(*(connect(i) for i in indices[k : k + 25]))
    callers.sort(key=lambda c: c.index)
    # Each stream gets its own random phase in the 20 ms tick (1 ms slots), as independent
    # calls have: never in lockstep, and not evenly spread either.
    slots: list[list[Caller]] = [[] for _ in range(20)]
    for c in callers:
        slots[random.Random(c.index).randrange(20)].append(c)
    gc.collect()
    gc.freeze()
    gc.disable()  # the load generator allocates no cycles; no collector pauses mid-run
    lag: list[float] = []
    now = time.perf_counter()
    if now < t_start:
        await asyncio.sleep(t_start - now)
    cpu0 = time.process_time()
    for k in range(frames):
        for s in range(20):
            due = t_start + k * FRAME_S + s * 0.001
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag.append(time.perf_counter() - due)
            for c in slots[s]:
                if c.open:
                    c.send_media()
    cpu1 = time.process_time()
    t_end = time.perf_counter()
    while time.perf_counter() - t_end < grace:
        if all(c.echoed >= len(c.sent_at) or not c.open for c in callers):
            break
        await asyncio.sleep(0.05)
    for c in callers:
        c.send_stop()
    await asyncio.sleep(0.2)
    for c in callers:
        if c.transport is not None:
            c.transport.close()
    lat = [x for c in callers for x in c.latencies]
    return {
        "latencies": lat,
        "sent": sum(len(c.sent_at) for c in callers) + failed * frames,
        "echoed": sum(c.echoed for c in callers),
        "seq_ok": sum(c.seq_ok for c in callers),
        "seq_bad": sum(c.seq_bad for c in callers),
        "marks": sum(c.marks for c in callers),
        "failed": failed,
        "server_closed": sum(c.closed_by_server for c in callers),
        "cpu": cpu1 - cpu0,
        "lag_p99": sorted(lag)[int(0.99 * (len(lag) - 1))] if lag else 0.0,
    }


def _worker(
    port: int,
    path: str,
    indices: list[int],
    t_start: float,
    seconds: float,
    grace: float,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        out.put(asyncio.run(_worker_main(port, path, indices, t_start, seconds, grace)))
    except Exception as exc:  # report, never hang the parent
        out.put({"error": repr(exc)})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of ``pid`` and its descendants (a supervisor and its workers)."""
    out: dict[int, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            out[p] = cpu_seconds(p)
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(c) for c in children)
    return out


def wait_idle(pids: list[int], limit: float = 10.0, timeout: float = 20.0) -> None:
    """Until the servers together use < ``limit`` % of a core (0.5 s windows), at most
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = {p: sum(tree_cpu(p).values()) for p in pids}
        time.sleep(0.5)
        used = sum(sum(tree_cpu(p).values()) - before[p] for p in pids)
        if 100 * used / 0.5 < limit:
            return


@dataclass
class Level:
    server: str
    streams: int
    p50: float = math.nan
    p99: float = math.nan
    p999: float = math.nan
    max: float = math.nan
    sent: int = 0
    dropped: int = 0
    server_cpu: float = 0.0  # % of one core
    client_cpu: float = 0.0  # % of one core, all workers
    client_lag_p99: float = 0.0  # ms: how late the client's sends were (its own saturation)
    seq_ok: int = 0
    seq_bad: int = 0
    failed: int = 0
    load: float = 0.0
    notes: list[str] = field(default_factory=list)

    def ok(self, p99_ms: float) -> bool:
        return self.dropped == 0 and self.failed == 0 and self.p99 <= p99_ms


def run_level(
    server: str, port: int, path: str, pid: int, n: int, args: argparse.Namespace
) -> Level:
    workers = max(1, math.ceil(n / args.per_worker))
    groups = [list(range(w, n, workers)) for w in range(workers)]
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    # Seconds to connect and start every stream before audio flows: generous, so that
    # a server's per-call set-up (pipecat builds a pipeline per socket) is not measured.
    connect_budget = 2.0 + n / 100
    t_start = time.perf_counter() + connect_budget
    procs = [
        ctx.Process(target=_worker, args=(port, path, g, t_start, args.seconds, args.grace, out))
        for g in groups
    ]
    for p in procs:
        p.start()
    lvl = Level(server, n)
    time.sleep(max(0.0, t_start - time.perf_counter()))
    cpu0, w0 = tree_cpu(pid), time.perf_counter()
    time.sleep(args.seconds)
    cpu1, w1 = tree_cpu(pid), time.perf_counter()
    lvl.load = os.getloadavg()[0]
    per = {p: 100 * (cpu1[p] - cpu0[p]) / (w1 - w0) for p in cpu1 if p in cpu0}
    lvl.server_cpu = sum(per.values())
    if len(per) > 1:  # supervisor first (idle), then the workers: how evenly they share
        lvl.notes.append("CPU % per process " + "/".join(f"{v:.0f}" for v in per.values()))
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + args.grace + 30
    for _ in procs:
        try:
            results.append(out.get(timeout=max(1.0, deadline - time.monotonic())))
        except Exception:
            lvl.notes.append("worker timed out")
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
    lat: list[float] = []
    echoed = 0
    for r in results:
        if "error" in r:
            lvl.notes.append(str(r["error"]))
            continue
        lat.extend(r["latencies"])
        lvl.sent += r["sent"]
        echoed += r["echoed"]
        lvl.seq_ok += r["seq_ok"]
        lvl.seq_bad += r["seq_bad"]
        lvl.failed += r["failed"]
        lvl.client_cpu += 100 * r["cpu"] / args.seconds
        lvl.client_lag_p99 = max(lvl.client_lag_p99, 1000 * r["lag_p99"])
    if len(results) < len(procs):
        lvl.sent = max(lvl.sent, n * int(round(args.seconds / FRAME_S)))
    lvl.dropped = lvl.sent - echoed
    lat.sort()
    if lat:

        def pct(p: float) -> float:
            return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))]

        lvl.p50, lvl.p99, lvl.p999, lvl.max = pct(0.5), pct(0.99), pct(0.999), 1000 * lat[-1]
    return lvl


# --- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def wait_workers(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """The supervisor binds the port before its workers serve: wait until 10 fresh
    connections in a row (hashed over the workers' sockets) get an HTTP answer."""
    deadline = time.monotonic() + timeout
    ok = 0
    while time.monotonic() < deadline and ok < 10:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
                sock.settimeout(0.5)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                ok = ok + 1 if sock.recv(64).startswith(b"HTTP/1.1 200") else 0
        except OSError:
            ok = 0
            time.sleep(0.1)
    return ok >= 10


def ensure_pipecat_venv() -> Path | None:
    """Create/reuse ``.venv-bench/pipecat`` with pipecat; None when it cannot be had."""
    python = PIPECAT_VENV / "bin" / "python"
    check = [str(python), "-c", "import pipecat, fastapi, uvicorn, uvloop, httptools"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"(creating {PIPECAT_VENV.relative_to(ROOT)} with {' '.join(PIPECAT_REQS)} ...)")
    PIPECAT_VENV.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PIPECAT_VENV)], check=False)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PIPECAT_REQS], check=False)
    if subprocess.run(check, capture_output=True).returncode == 0:
        return python
    return None


def pipecat_version(python: Path) -> str:
    r = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('pipecat-ai'))"],
        capture_output=True,
        text=True,
    )
    return r.stdout.strip() or "?"


def fmt(x: float, digits: int = 1) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-voxgate", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--levels", default="10,25,50,100,200,300,400,500,600,800,1000", help="streams per step"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="audio per level")
    parser.add_argument("--grace", type=float, default=1.0, help="wait for late echoes")
    parser.add_argument("--p99-ms", type=float, default=10.0)
    parser.add_argument("--per-worker", type=int, default=150, help="streams per client process")
    parser.add_argument(
        "--asgi", action="store_true", help="voxgate: the ASGI route instead of the fast path"
    )
    parser.add_argument("--no-pipecat", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="N > 1 adds server voxgate-wN: the node with server.workers = N (Redis started here)",
    )
    parser.add_argument("--balance", choices=["reuseport", "shared"], default="reuseport")
    parser.add_argument("--servers", default="voxgate,pipecat")
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_voxgate:
        if args.workers > 1:
            serve_voxgate_workers(args.serve_voxgate, args.workers, args.redis_url, args.balance)
        else:
            serve_voxgate(args.serve_voxgate, args.asgi)
        return

    levels = [int(x) for x in args.levels.split(",")]
    wanted = [s for s in args.servers.split(",") if s and not (s == "pipecat" and args.no_pipecat)]
    multi = f"voxgate-w{args.workers}"
    if args.workers > 1 and multi not in wanted:
        wanted.insert(wanted.index("voxgate") + 1 if "voxgate" in wanted else 0, multi)
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
    versions: dict[str, str] = {}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if "voxgate" in wanted:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve-voxgate", str(port)]
                + (["--asgi"] if args.asgi else [])
            )
            procs.append(proc)
            if wait_port(port, proc, 30):
                servers["voxgate"] = (proc, port, f"/twilio/media?token={TOKEN}")
                versions["voxgate"] = "node app, route app=echo, uvicorn+uvloop+httptools, " + (
                    "ASGI route (websockets-sansio)" if args.asgi else "media fast path"
                )
            else:
                print("voxgate server did not start")
        if multi in wanted and args.workers > 1:
            redis = start_redis()
            if redis is None:
                print(f"{multi}: no redis-server (Debian package redis-server); skipped")
            else:
                procs.append(redis[0])
                port = free_port()
                proc = subprocess.Popen(
                    [sys.executable, __file__, "--serve-voxgate", str(port),
                     "--workers", str(args.workers), "--redis-url", redis[1],
                     "--balance", args.balance],
                    stdout=subprocess.DEVNULL,  # the banner; errors still reach stderr
                )  # fmt: skip
                procs.append(proc)
                if wait_workers(port, proc, 90):
                    servers[multi] = (proc, port, f"/twilio/media?token={TOKEN}")
                    versions[multi] = (
                        f"server.workers = {args.workers} ({args.balance}), Redis registry, "
                        "media fast path"
                    )
                else:
                    print(f"{multi} server did not start")
        if "pipecat" in wanted:
            python = ensure_pipecat_venv()
            if python is None:
                print("pipecat: could not install into .venv-bench/pipecat; skipped")
            else:
                port = free_port()
                proc = subprocess.Popen(
                    [str(python), str(ROOT / "bench" / "_pipecat_echo_server.py"), str(port)]
                )
                procs.append(proc)
                if wait_port(port, proc, 60):
                    servers["pipecat"] = (proc, port, "/ws")
                    versions["pipecat"] = f"pipecat-ai {pipecat_version(python)}"
                else:
                    print("pipecat server did not start")

        print(
            f"# ws_streams - {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
            f"load {os.getloadavg()[0]:.2f} at start; "
            + "; ".join(f"{k}: {v}" for k, v in versions.items())
            + f"\n\nEach level: {args.seconds:g} s of 50 frames/s each way per stream, "
            f"pass = p99 <= {args.p99_ms:g} ms and no dropped frame.\n",
            flush=True,
        )
        print(
            "| server | streams | p50 ms | p99 ms | p99.9 ms | max ms | dropped/sent | "
            "server CPU % | server CPU %/stream | client CPU % | client lag p99 ms | "
            "seq ok | load | pass |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|", flush=True)
        for name, (proc, port, path) in servers.items():  # warm-up: imports, first pipeline
            run_level(
                name, port, path, proc.pid, 2, argparse.Namespace(**{**vars(args), "seconds": 2.0})
            )
        best: dict[str, Level | None] = dict.fromkeys(servers)
        alive = dict(servers)
        misses: dict[str, int] = {}
        all_levels: list[Level] = []
        for n in levels:
            if not alive:
                break
            for name in list(alive):
                proc, port, path = alive[name]
                if proc.poll() is not None:
                    print(f"{name} server exited ({proc.returncode})")
                    del alive[name]
                    continue
                # Let the previous level's sockets close and every server go idle: a server
                # that failed a level (pipecat) can stay busy with its backlog for seconds,
                # which would land on the next server's level on a 2-core machine.
                time.sleep(1.0)
                wait_idle([p.pid for p, _, _ in servers.values() if p.poll() is None])
                lvl = run_level(name, port, path, proc.pid, n, args)
                all_levels.append(lvl)
                passed = lvl.ok(args.p99_ms)
                seq = (
                    f"{100 * lvl.seq_ok / max(1, lvl.seq_ok + lvl.seq_bad):.0f}%"
                    if lvl.seq_ok + lvl.seq_bad
                    else "-"
                )
                print(
                    f"| {name} | {n} | {fmt(lvl.p50, 2)} | {fmt(lvl.p99, 2)} | "
                    f"{fmt(lvl.p999)} | {fmt(lvl.max)} | {lvl.dropped}/{lvl.sent} | "
                    f"{lvl.server_cpu:.0f} | {lvl.server_cpu / n:.3f} | {lvl.client_cpu:.0f} | "
                    f"{lvl.client_lag_p99:.1f} | {seq} | {lvl.load:.2f} | "
                    f"{'yes' if passed else 'no'} |"
                    + (f" {'; '.join(lvl.notes)}" if lvl.notes else ""),
                    flush=True,
                )
                if passed:
                    best[name] = lvl
                    misses[name] = 0
                else:  # one more level after a miss: a shared machine has noisy seconds
                    misses[name] = misses.get(name, 0) + 1
                    if misses[name] >= 2:
                        del alive[name]
        print(f"\n## Largest N with p99 <= {args.p99_ms:g} ms and zero drops\n")
        print("| server | largest N | p99 ms there | server CPU %/stream there |")
        print("|---|---:|---:|---:|")
        for name, top in best.items():
            if top is None:
                print(f"| {name} | < {levels[0]} | - | - |")
            else:
                print(
                    f"| {name} | {top.streams} | {top.p99:.2f} | "
                    f"{top.server_cpu / top.streams:.3f} |"
                )
        v, p = best.get("voxgate"), best.get("pipecat")
        if "voxgate" in best and "pipecat" in best:
            vn = v.streams if v else 0
            pn = p.streams if p else 0
            ratio = f"{vn / pn:.2f}x" if pn else "inf (pipecat passed no level)"
            print(f"\nvoxgate / pipecat: {ratio}")
    finally:
        procs.reverse()  # servers before the Redis they drain into
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
