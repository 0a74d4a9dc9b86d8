"""Cluster coordination cost: call set-up with 0 (no Redis), 1, 2 and 3 nodes on one machine.

Run: ``.venv/bin/python bench/cluster.py [--quick]``. Prints markdown tables.

Each node is a separate process (its own event loop on uvloop, its own Redis connection, a
``CallManager`` and, for 1-3 nodes, a ``ClusterNode`` heartbeating every second), all on one
redis-server started on loopback by this script. The calls are local ``CallSession``s whose
app returns at once, so what is measured is the per-call coordination (register the owner
in Redis at start, unregister at end), not media: on one 2-core machine, more nodes cannot
mean more raw capacity, only the overhead per call.

1. **Set-up rate**: every node runs ``--slots`` closed loops of start -> end for ``--seconds``;
   calls/s is the sum over nodes; CPU us/call is the node processes' CPU per call (so the
   0-node row is the baseline without Redis); Redis commands/call come from ``INFO
   commandstats`` deltas (heartbeats included) and round trips/call from the client side.
2. **Concurrent calls**: every node holds ``--hold`` calls at once; the registry must show
   all of them; then each node hangs up ``--hangups`` calls owned by the next node through
   the control bus (a cross-node control round trip: publish -> owner runs ``hangup`` ->
   reply), measured end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PREFIX = "bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str, Path]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not installed (apt-get install redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    port = _free_port()
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0", workdir
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("redis-server did not start")


# --- one node (child process) ----------------------------------------------------------


class _Control:
    def __init__(self) -> None:
        self.session: Any = None

    async def hangup(self, reason: str = "agent_hangup") -> None:
        self.session.end(reason)

    async def transfer(self, target: str) -> None:
        raise NotImplementedError

    async def hold(self) -> None: ...

    async def unhold(self) -> None: ...

    async def send_dtmf(self, digits: str) -> None: ...


async def _node(index: int, nodes: int, redis_url: str | None, args: dict[str, Any], barrier: Any) -> dict[str, Any]:
    from voxgate.calls.manager import CallManager
    from voxgate.calls.playout import PlayoutBuffer
    from voxgate.calls.router import Router
    from voxgate.calls.session import CallSession
    from voxgate.cluster.config import ClusterSettings
    from voxgate.cluster.node import ClusterNode

    class Quick:
        name = "quick"

        async def run(self, session: CallSession) -> None:
            if session.metadata.get("hold"):
                await session.wait_ended()

    app = Quick()
    manager = CallManager(Router([], {"agent": lambda rule: app}))
    node = None
    name = f"n{index}"
    if redis_url is not None:
        node = ClusterNode(ClusterSettings(redis_url=redis_url, node_id=name, heartbeat_s=1.0,
                                           heartbeat_timeout_s=5.0, key_prefix=PREFIX), manager)  # fmt: skip
        await node.start()

    def make(hold: bool = False) -> CallSession:
        control = _Control()
        s = CallSession(edge="local", sink=PlayoutBuffer(8000), control=control, sample_rate=8000)
        control.session = s
        if hold:
            s.metadata["hold"] = "1"
        return s

    await asyncio.to_thread(barrier.wait)
    latencies: list[float] = []
    stop_at = time.monotonic() + args["seconds"]
    cpu0, t0 = time.process_time(), time.monotonic()

    async def loop() -> None:
        while time.monotonic() < stop_at:
            s = make()
            began = time.perf_counter()
            task = await manager.start(s)
            latencies.append(time.perf_counter() - began)
            await task

    await asyncio.gather(*(loop() for _ in range(args["slots"])))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    # A fixed-size sample of the sorted latencies: enough for merged p50/p99, small to pickle.
    ranked = sorted(latencies)
    sample = [ranked[i * len(ranked) // 2000] for i in range(2000)] if len(ranked) > 2000 else ranked
    out: dict[str, Any] = {"calls": len(latencies), "cpu": cpu, "wall": wall, "lat": sample}
    await asyncio.to_thread(barrier.wait)  # phase 1 over on every node (Redis stats read here)
    await asyncio.to_thread(barrier.wait)

    held = [make(hold=True) for _ in range(args["hold"])]
    for s in held:
        await manager.start(s)
    await asyncio.to_thread(barrier.wait)
    rtts: list[float] = []
    if node is not None:
        out["registered"] = len(await node.registry.calls_of(name))
        target = f"n{(index + 1) % nodes}"
        victims = sorted(await node.registry.calls_of(target))[: args["hangups"]]
        for call_id in victims:
            began = time.perf_counter()
            result = await node.control(call_id, "hangup", {"reason": "bench"})
            rtts.append(time.perf_counter() - began)
            assert result.ok, result
    out["rtts"] = rtts
    await asyncio.to_thread(barrier.wait)
    await manager.drain(2.0)
    if node is not None:
        await node.close()
    return out


def _node_main(index: int, nodes: int, redis_url: str | None, args: dict[str, Any], barrier: Any, queue: Any) -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    queue.put((index, asyncio.run(_node(index, nodes, redis_url, args, barrier))))


# --- driver ----------------------------------------------------------------------------


def _commandstats(redis_url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
        return {k: int(v["calls"]) for k, v in stats.items()}
    finally:
        client.close()


def _run(nodes: int, redis_url: str | None, args: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    count = max(nodes, 1)
    barrier = ctx.Barrier(count + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_node_main, args=(i, count, redis_url, args, barrier, queue)) for i in range(count)]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=60)  # nodes ready
        before = _commandstats(redis_url) if redis_url else {}
        barrier.wait(timeout=args["seconds"] + 60)  # phase 1 done
        after = _commandstats(redis_url) if redis_url else {}
        barrier.wait(timeout=60)
        barrier.wait(timeout=120)  # calls held
        barrier.wait(timeout=120)  # hang-ups done
        results = [queue.get(timeout=120)[1] for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    calls = sum(r["calls"] for r in results)
    ops = sum(after.get(k, 0) - before.get(k, 0) for k in after)
    lat = sorted(x for r in results for x in r["lat"])
    rtts = sorted(x for r in results for x in r["rtts"])
    return {
        "nodes": nodes, "calls": calls, "rate": calls / max(r["wall"] for r in results),
        "p50": lat[len(lat) // 2] * 1000, "p99": lat[int(len(lat) * 0.99)] * 1000,
        "cpu_us": 1e6 * sum(r["cpu"] for r in results) / calls,
        "ops": ops / calls if redis_url else 0.0,
        "by_cmd": {k: (after.get(k, 0) - before.get(k, 0)) / calls for k in after if after.get(k, 0) > before.get(k, 0)},
        "held": args["hold"] * count, "registered": sum(r.get("registered", 0) for r in results),
        "rtt50": statistics.median(rtts) * 1000 if rtts else None,
        "rtt99": rtts[int(len(rtts) * 0.99)] * 1000 if rtts else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s per configuration")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--slots", type=int, default=20, help="concurrent start/end loops per node")
    parser.add_argument("--hold", type=int, default=300, help="calls held at once per node")
    parser.add_argument("--hangups", type=int, default=100, help="cross-node hang-ups per node")
    ns = parser.parse_args()
    args = {"seconds": 1.0 if ns.quick else ns.seconds, "slots": ns.slots, "hold": ns.hold,
            "hangups": min(ns.hangups, ns.hold)}  # fmt: skip
    proc, url, workdir = start_redis()
    rows = []
    try:
        for nodes in (0, 1, 2, 3):
            rows.append(_run(nodes, url if nodes else None, args))
            if nodes:
                import redis

                redis.Redis.from_url(url).flushall()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"Run: `.venv/bin/python bench/cluster.py{' --quick' if ns.quick else ''}` on "
          f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"Redis {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}, "
          f"load average {load:.1f}; {args['slots']} start/end loops per node for {args['seconds']:.0f} s.\n")  # fmt: skip
    print("| nodes | calls | calls set up /s (all nodes) | start p50 / p99 ms | CPU us per call | Redis commands per call |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        label = "1 (no Redis)" if r["nodes"] == 0 else str(r["nodes"])
        print(f"| {label} | {r['calls']} | {r['rate']:.0f} | {r['p50']:.2f} / {r['p99']:.2f} | "
              f"{r['cpu_us']:.0f} | {r['ops']:.1f} |")  # fmt: skip
    last = rows[-1]["by_cmd"]
    print("\nRedis commands per call (3 nodes): " + ", ".join(f"{k.removeprefix('cmdstat_')} {v:.2f}" for k, v in sorted(last.items(), key=lambda kv: -kv[1])))
    print("\n| nodes | calls held | in the registry | cross-node hang-up p50 / p99 ms |")
    print("|---:|---:|---:|---:|")
    for r in rows[1:]:
        rtt = f"{r['rtt50']:.2f} / {r['rtt99']:.2f}" + (" (local)" if r["nodes"] == 1 else "")
        print(f"| {r['nodes']} | {r['held']} | {r['registered']} | {rtt} |")


if __name__ == "__main__":
    main()
