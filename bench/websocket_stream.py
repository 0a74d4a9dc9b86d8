"""Twilio Media Streams on loopback: per-frame cost, echo latency, CPU per stream.

Run: ``.venv/bin/python bench/websocket_stream.py [--quick] [--streams 1,50,200]``.
Prints markdown tables.

1. **Per-frame cost, in process** (no sockets): one inbound Twilio ``media`` message to an
   ``AudioFrame`` (voxgate: ``TwilioServerProtocol.receive`` with strict validation,
   ``ulaw_decode``, ``AudioFrame``) and one outbound 20 ms frame to a ``media`` message
   (``WireEncoder`` mu-law chunking + ``TwilioServerProtocol.media``), side by side with a
   plain ``json`` + ``base64`` + ``audioop`` baseline doing the same conversions without
   validation. (pipecat-ai was not installed for this comparison: it would pull numba,
   llvmlite and an older soxr into the shared venv.)
2. **Concurrent streams, over sockets**: a voxgate server (uvicorn + uvloop, echo app routed
   through ``/twilio/media``) runs in a child process; this process plays N Twilio callers,
   each sending 20 ms mu-law frames at real time for D seconds. For every frame the caller
   measures the time until its echo comes back (server receive -> CallSession -> app ->
   sink -> send, plus both clients' socket work), counts frames that never came back, and
   reads the server's CPU time from /proc. Clients and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from voxgate.audio.frame import AudioFrame  # noqa: E402
from voxgate.audio.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from voxgate.websocket._audio import WireEncoder  # noqa: E402
from voxgate.websocket.twilio_protocol import TwilioServerProtocol  # noqa: E402

TOKEN = "bench-token"
STREAM_START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC1",
        "streamSid": "MZ1",
        "callSid": "CA1",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {},
    },
    "streamSid": "MZ1",
}


def media_message(seq: int, payload: bytes, sid: str = "MZ1") -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(seq),
                "timestamp": str(seq * 20),
                "payload": base64.b64encode(payload).decode(),
            },
            "streamSid": sid,
        }
    )


# --- 1. per-frame cost --------------------------------------------------------------


def per_frame(n: int) -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(160) * 3000).astype(np.int16)
    payload = ulaw_encode(pcm)
    messages = [media_message(i + 2, payload) for i in range(n)]
    frames = [AudioFrame(pcm.copy(), 8000) for _ in range(n)]

    def vox_in() -> None:
        proto = TwilioServerProtocol()
        proto.receive(json.dumps(STREAM_START))
        t = time.perf_counter()
        for m in messages:
            ev = proto.receive(m)
            AudioFrame(ulaw_decode(ev.payload), 8000)  # type: ignore[union-attr]
        return time.perf_counter() - t  # type: ignore[return-value]

    def base_in() -> None:
        t = time.perf_counter()
        for m in messages:
            msg = json.loads(m)
            if msg["event"] == "media":
                raw = audioop.ulaw2lin(base64.b64decode(msg["media"]["payload"]), 2)
                np.frombuffer(raw, dtype=np.int16)
        return time.perf_counter() - t  # type: ignore[return-value]

    def vox_out() -> None:
        proto = TwilioServerProtocol()
        proto.receive(json.dumps(STREAM_START))
        enc = WireEncoder("mulaw", 8000, 8000)
        t = time.perf_counter()
        for f in frames:
            for chunk in enc.encode(f.samples):
                proto.media(chunk)
        return time.perf_counter() - t  # type: ignore[return-value]

    def base_out() -> None:
        t = time.perf_counter()
        for f in frames:
            ulaw = audioop.lin2ulaw(f.samples.tobytes(), 2)
            json.dumps(
                {
                    "event": "media",
                    "streamSid": "MZ1",
                    "media": {"payload": base64.b64encode(ulaw).decode()},
                }
            )
        return time.perf_counter() - t  # type: ignore[return-value]

    def best(fn: object) -> float:
        return min(fn() for _ in range(5)) / n * 1e6  # type: ignore[operator]

    return [
        ("inbound media -> AudioFrame", best(vox_in), best(base_in)),
        ("AudioFrame -> outbound media", best(vox_out), best(base_out)),
    ]


# --- 2. the server child --------------------------------------------------------------


def run_server(port: int) -> None:
    import uvicorn
    from pydantic import SecretStr

    from voxgate.api.app import create_app
    from voxgate.calls.manager import CallManager
    from voxgate.calls.router import Router
    from voxgate.config import load_settings

    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]

    from voxgate.calls.echo import EchoApp

    manager = CallManager(Router([], {"agent": lambda rule: EchoApp()}))
    app = create_app(settings, manager)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        loop="uvloop",
        ws="websockets-sansio",
        lifespan="off",
        ws_per_message_deflate=False,
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- 2. the callers -------------------------------------------------------------------


async def one_stream(port: int, index: int, seconds: float, out: dict[str, list[float]]) -> None:
    from websockets.asyncio.client import connect

    sid = f"MZ{index}"
    n = int(seconds * 50)
    payload = ulaw_encode(
        (np.random.default_rng(index).standard_normal(160) * 3000).astype(np.int16)
    )
    sent: list[float] = []
    rtts: list[float] = []
    url = f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}"
    async with connect(url, compression=None, max_queue=None) as ws:
        start = dict(STREAM_START, streamSid=sid)
        start["start"] = dict(STREAM_START["start"], streamSid=sid)  # type: ignore[arg-type]
        await ws.send(json.dumps(start))

        async def reader() -> None:
            async for raw in ws:
                if '"media"' in raw:
                    k = len(rtts)
                    if k < len(sent):
                        rtts.append(time.perf_counter() - sent[k])

        task = asyncio.create_task(reader())
        loop = asyncio.get_running_loop()
        t0 = loop.time() + (index % 50) * 0.0004  # spread streams over the 20 ms tick
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i * 0.02 - loop.time()))
            sent.append(time.perf_counter())
            await ws.send(media_message(i + 2, payload, sid))
        await asyncio.sleep(0.5)
        await ws.send(json.dumps({"event": "stop", "streamSid": sid}))
        try:
            await asyncio.wait_for(task, 5)
        except TimeoutError:
            task.cancel()
    out["rtt"].extend(rtts)
    out["lost"].append(float(n - len(rtts)))


async def run_streams(port: int, streams: int, seconds: float, server_pid: int) -> dict[str, float]:
    out: dict[str, list[float]] = {"rtt": [], "lost": []}
    cpu0, wall0 = cpu_seconds(server_pid), time.perf_counter()
    client0 = time.process_time()
    await asyncio.gather(*(one_stream(port, i, seconds, out) for i in range(streams)))
    cpu1, wall1 = cpu_seconds(server_pid), time.perf_counter()
    client1 = time.process_time()
    rtt = sorted(out["rtt"])
    frames = streams * int(seconds * 50)

    def pct(p: float) -> float:
        return rtt[min(len(rtt) - 1, int(p * len(rtt)))] * 1000 if rtt else float("nan")

    server_cpu = cpu1 - cpu0
    return {
        "streams": streams,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "lost": sum(out["lost"]),
        "frames": frames,
        "server_cpu_pct_per_stream": 100 * server_cpu / (wall1 - wall0) / streams,
        "server_us_per_frame": server_cpu / (2 * frames) * 1e6,  # per message, in or out
        "client_cpu_pct": 100 * (client1 - client0) / (wall1 - wall0),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--streams", default="1,50,200")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve)
        return
    seconds = 3.0 if args.quick else args.seconds
    counts = [int(x) for x in args.streams.split(",")]

    print(
        f"# WebSocket streams - {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}\n"
    )
    print("## Per-frame cost in process (best of 5, us per 20 ms frame)\n")
    print("| step | voxgate | json+base64+audioop | ratio |")
    print("|---|---:|---:|---:|")
    for name, vox, base in per_frame(2000 if args.quick else 20000):
        print(f"| {name} | {vox:.2f} | {base:.2f} | {base / vox:.2f}x |")

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        print(f"\n## Echo over loopback ({seconds:g} s of 50 frames/s per stream)\n")
        print(
            "| streams | echo p50 ms | p95 ms | p99 ms | frames lost | server CPU %/stream "
            "| server us/message | client CPU % |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in counts:
            r = asyncio.run(run_streams(port, n, seconds, server.pid))
            print(
                f"| {n} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | "
                f"{int(r['lost'])}/{int(r['frames'])} | {r['server_cpu_pct_per_stream']:.2f} | "
                f"{r['server_us_per_frame']:.0f} | {r['client_cpu_pct']:.0f} |",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
