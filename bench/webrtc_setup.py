"""WebRTC edge: call set-up latency from headless Chromium, and concurrent calls per core.

Run: ``.venv/bin/python bench/webrtc_setup.py [--calls 20] [--levels 5,10,20,40]``.
Needs Debian ``chromium`` at /usr/bin/chromium. Prints markdown tables.

1. **Set-up**: ``--calls`` sequential calls from one Chromium tab (the talk page, fake
   microphone). The page's clock starts before ``createOffer`` and stops at the first received
   audio above -34 dBFS (WebAudio analyser on the remote track), so "first audio" includes
   gathering, signaling, ICE, DTLS, the app's first frame, Opus, network and Chromium's jitter
   buffer. The app greets with a tone the instant the call starts.
2. **Load**: N concurrent calls from one Chromium page, each sending the fake microphone and
   receiving an echo of it (so both directions carry speech). Over a window we measure this
   process's CPU (the server: aiortc, the edge, the echo app; Chromium runs in other
   processes), Chromium's ``concealedSamples / totalSamplesReceived`` per call (what the
   listener would hear as glitches), the server's late playout frames and inbound frames.
   "Clean" = worst call concealment < 1 % and inbound frames >= 97 % (late playout frames,
   more than one frame period behind, are reported for information).
   The event loop is one thread, so one server process = one core: calls per core is
   extrapolated linearly from the CPU share of the largest clean level.
3. **Profile**: cProfile over a window at the middle level, time grouped by package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import datetime
import os
import platform
import pstats
import resource
import socket
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import uvicorn  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from voxgate.api.app import create_app  # noqa: E402
from voxgate.audio.frame import AudioFrame  # noqa: E402
from voxgate.calls.manager import CallManager  # noqa: E402
from voxgate.calls.router import Router  # noqa: E402
from voxgate.calls.session import CallSession  # noqa: E402
from voxgate.config import load_settings  # noqa: E402
from voxgate.webrtc._ice import IcePolicy  # noqa: E402
from voxgate.webrtc._peer import WebRtcOptions  # noqa: E402
from voxgate.webrtc.edge import WebRtcEdge, edge_of  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TOKEN = "bench-token"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


class GreetEcho:
    """Greets with a tone at once (first audio), then echoes the caller."""

    name = "greet-echo"

    async def run(self, session: CallSession) -> None:
        rate = session.sink.sample_rate
        t = np.arange(rate // 2) / rate
        session.sink.write(AudioFrame((9000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate))
        async for frame in session.audio():
            session.sink.write(frame)


def mic_wav(directory: Path) -> Path:
    src = Path("/work/shared/audio/book_appointment.piper.16k.wav")
    out = directory / "mic.wav"
    with wave.open(str(src)) as w, wave.open(str(out), "wb") as o:
        o.setnchannels(1)
        o.setsampwidth(2)
        o.setframerate(w.getframerate())
        o.writeframes(w.readframes(w.getnframes()))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def server() -> AsyncIterator[tuple[str, WebRtcEdge]]:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    app = create_app(settings, CallManager(Router([], {"agent": lambda rule: GreetEcho()})))
    app.state.webrtc_options = WebRtcOptions(
        ice=IcePolicy(addresses=("127.0.0.1",)), max_calls=1000
    )
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(srv.serve())
    while not srv.started:  # noqa: ASYNC110 (uvicorn exposes only a flag)
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", edge_of(app)
    finally:
        srv.should_exit = True
        await task


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def setup_latency(browser: Any, base: str, edge: WebRtcEdge, calls: int) -> list[str]:
    page = await browser.new_page()
    rows: dict[str, list[float]] = {
        "offer ready (gathered)": [],
        "answer received": [],
        "connected": [],
        "first agent audio": [],
    }
    for _ in range(calls):
        await page.goto(f"{base}/?token={TOKEN}&raw=1")
        await page.click("#call")
        await page.wait_for_function("() => window.voxgate.firstAudioMs !== null", timeout=20000)
        st = await page.evaluate("() => JSON.parse(JSON.stringify(window.voxgate))")
        for key, field in zip(
            rows, ("offerMs", "answerMs", "connectedMs", "firstAudioMs"), strict=True
        ):
            rows[key].append(float(st[field]))
        await page.click("#hangup")
        while edge.calls:  # noqa: ASYNC110 (wait for the server-side teardown)
            await asyncio.sleep(0.02)
    await page.close()
    out = [
        f"Set-up, {calls} sequential calls, clock from before createOffer (ms):",
        "",
        "| milestone | p50 | p95 | min | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, vals in rows.items():
        out.append(
            f"| {key} | {statistics.median(vals):.0f} | {pct(vals, 0.95):.0f} | {min(vals):.0f} | {max(vals):.0f} |"
        )
    return out


OPEN_CALLS_JS = """
async ({n, token}) => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
  const gathered = (pc) => new Promise((res) => {
    if (pc.iceGatheringState === 'complete') return res();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && res());
  });
  window.bench = [];
  for (let i = 0; i < n; i++) {
    const pc = new RTCPeerConnection({iceServers: []});
    const el = new Audio(); el.autoplay = true;
    pc.ontrack = (e) => { el.srcObject = new MediaStream([e.track]); };
    pc.addTransceiver(stream.getAudioTracks()[0].clone(), {direction: 'sendrecv'});
    pc.createDataChannel('events');
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const r = await fetch('/webrtc/offer', {method: 'POST', headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + token}, body: JSON.stringify({sdp: pc.localDescription.sdp, type: 'offer'})});
    const a = await r.json();
    await pc.setRemoteDescription({type: 'answer', sdp: a.sdp});
    window.bench.push({pc, el, callId: a.call_id});
  }
  await Promise.all(window.bench.map(({pc}) => new Promise((res) => {
    if (pc.connectionState === 'connected') return res();
    pc.addEventListener('connectionstatechange', () => pc.connectionState === 'connected' && res());
  })));
}
"""

STATS_JS = """
async () => {
  const out = [];
  for (const {pc} of window.bench) {
    const st = await pc.getStats();
    let row = {received: 0, concealed: 0};
    st.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'audio') row = {received: r.totalSamplesReceived || 0, concealed: r.concealedSamples || 0}; });
    out.push(row);
  }
  return out;
}
"""

CLOSE_JS = "() => { for (const {pc} of window.bench) pc.close(); window.bench = []; }"


def thread_cpu() -> dict[int, float]:
    """CPU seconds per OS thread of this process (the loop thread's tid is the pid)."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    out: dict[int, float] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def browser_cpu() -> float:
    """CPU seconds of the Chromium processes this bench started (descendants of this pid)."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            parent[int(entry.name)] = int(fields[1])
            if "chrom" in comm:
                used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    me, total = os.getpid(), 0.0
    for pid, cpu in used.items():
        p, hops = pid, 0
        while p > 1 and hops < 64:
            p = parent.get(p, 0)
            if p == me:
                total += cpu
                break
            hops += 1
    return total


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def load_level(
    browser: Any,
    base: str,
    edge: WebRtcEdge,
    n: int,
    window_s: float,
    profile: cProfile.Profile | None = None,
) -> dict[str, Any]:
    page = await browser.new_page()
    await page.goto(f"{base}/")
    await page.evaluate(OPEN_CALLS_JS, {"n": n, "token": TOKEN})
    await asyncio.sleep(2.0)  # settle: greetings out, jitter buffers filled
    calls = list(edge.calls.values())
    before = await page.evaluate(STATS_JS)
    sent0 = [c.track.frames_sent for c in calls]
    late0 = [c.track.late_frames for c in calls]
    in0 = [c.inbound_frames for c in calls]
    threads0 = thread_cpu()
    browser0 = browser_cpu()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    if profile is not None:
        profile.enable()
    await asyncio.sleep(window_s)
    if profile is not None:
        profile.disable()
    cpu1, t1 = cpu_seconds(), time.monotonic()
    threads1 = thread_cpu()
    browser1 = browser_cpu()

    loop_cpu = threads1.get(os.getpid(), 0.0) - threads0.get(os.getpid(), 0.0)
    after = await page.evaluate(STATS_JS)
    wall = t1 - t0
    concealment = [
        (a["concealed"] - b["concealed"]) / max(1, a["received"] - b["received"])
        for a, b in zip(after, before, strict=True)
    ]
    late = [
        (c.track.late_frames - l0) / max(1, c.track.frames_sent - s0)
        for c, l0, s0 in zip(calls, late0, sent0, strict=True)
    ]
    inbound = [(c.inbound_frames - i0) / (wall * 50) for c, i0 in zip(calls, in0, strict=True)]
    await page.evaluate(CLOSE_JS)
    await page.close()
    while edge.calls:  # noqa: ASYNC110 (wait for the server-side teardown)
        await asyncio.sleep(0.05)
    return {
        "n": n,
        "cpu": (cpu1 - cpu0) / wall,
        "loop_cpu": loop_cpu / wall,
        "browser_cpu": (browser1 - browser0) / wall,
        "load": os.getloadavg()[0],
        "conceal_worst": max(concealment),
        "conceal_mean": statistics.fmean(concealment),
        "late_worst": max(late),
        "inbound_worst": min(inbound),
    }


def clean(r: dict[str, Any]) -> bool:
    """What a listener hears: Chromium concealing < 1 % of samples, the server getting >= 97 %
    of the caller's frames. Late playout frames are shown but not judged: a frame one period
    late is absorbed by the browser's jitter buffer, and concealment counts those that are not."""
    return r["conceal_worst"] < 0.01 and r["inbound_worst"] >= 0.97


def profile_summary(profile: cProfile.Profile, top: int = 12) -> list[str]:
    stats = pstats.Stats(profile)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    groups: dict[str, float] = {}
    rows: list[tuple[float, str]] = []
    for (filename, line, func), (_, _, tottime, _, _) in raw.items():
        path = str(filename)
        if "/aiortc/" in path:
            group = "aiortc (python)"
        elif "/aioice/" in path:
            group = "aioice"
        elif "/voxgate/" in path:
            group = "voxgate"
        elif "/asyncio/" in path or "uvloop" in path:
            group = "asyncio loop"
        elif path == "~":
            group = "C calls: " + (
                func.split(" of ")[-1].split("'")[1].split(".")[0]
                if " of '" in func
                else "builtins"
            )
        else:
            group = "other python"
        groups[group] = groups.get(group, 0.0) + tottime
        label = func if path == "~" else f"{Path(path).parent.name}/{Path(path).name}:{line} {func}"
        rows.append((tottime, label))
    out = ["| where (self time) | share |", "|---|---:|"]
    for group, t in sorted(groups.items(), key=lambda kv: -kv[1])[:10]:
        out.append(f"| {group} | {100 * t / total:.1f} % |")
    out += ["", "| top functions (self time) | share |", "|---|---:|"]
    for t, label in sorted(rows, reverse=True)[:top]:
        out.append(f"| `{label[:90]}` | {100 * t / total:.1f} % |")
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--levels", default="5,10,20,40")
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="A/B at each level: Opus encoded on the loop (default) vs in aiortc's executor",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval (s) for the server: aiortc encodes/decodes in threads",
    )
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    levels = [int(x) for x in args.levels.split(",") if x]
    from playwright.async_api import async_playwright

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = mic_wav(Path(tmp))
        async with server() as (base, edge), async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[*FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
            )
            try:
                lines += await setup_latency(browser, base, edge, args.calls)
                results = []
                modes = (True, False) if args.compare else (True,)
                for n in levels:
                    level = []
                    for in_loop in modes:
                        edge.options = dataclasses.replace(edge.options, encode_in_loop=in_loop)
                        r = await load_level(browser, base, edge, n, args.window)
                        r["mode"] = "loop" if in_loop else "aiortc"
                        level.append(r)
                    results += level
                    if not any(clean(r) for r in level):
                        break
                edge.options = dataclasses.replace(edge.options, encode_in_loop=True)
                # Per-thread CPU clock, not wall time: on a shared machine, preemption would
                # otherwise be charged to whatever function happened to be running.
                profile = cProfile.Profile(time.thread_time)
                mid = levels[min(1, len(levels) - 1)]
                prof = await load_level(browser, base, edge, mid, args.window / 2, profile)
            finally:
                await browser.close()
    lines += [
        "",
        f"Load: N concurrent calls (fake mic -> server -> echo -> Chromium), {args.window:.0f} s window:",
        "",
        "| calls | Opus encode | server CPU (% of one core) | of which event-loop thread | CPU per call | Chromium CPU | load avg | worst concealment | mean concealment | worst late playout | worst inbound frames | clean |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']:.0f} | {r['mode']} | {100 * r['cpu']:.0f} % | {100 * r['loop_cpu']:.0f} % | {100 * r['cpu'] / r['n']:.2f} % | {100 * r['browser_cpu']:.0f} % | {r['load']:.1f} | {100 * r['conceal_worst']:.2f} % | "
            f"{100 * r['conceal_mean']:.2f} % | {100 * r['late_worst']:.2f} % | {100 * r['inbound_worst']:.0f} % | {'yes' if clean(r) else 'no'} |"
        )
    good = [r for r in results if clean(r) and r["mode"] == "loop"]
    if good:
        best = max(good, key=lambda r: r["n"])
        per_core = best["n"] / best["cpu"] if best["cpu"] > 0 else float("inf")
        lines += [
            "",
            f"Largest clean level measured: {best['n']:.0f} calls at {100 * best['cpu']:.0f} % of one core; "
            f"linear estimate at 100 % of a core: ~{per_core:.0f} calls per core (keep ~30 % headroom: ~{0.7 * per_core:.0f}).",
        ]
    lines += [
        "",
        f"Profile (cProfile, {prof['n']:.0f} calls, {args.window / 2:.0f} s; cProfile inflates Python-heavy parts):",
        "",
    ]
    lines += profile_summary(profile)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"Run: `.venv/bin/python bench/webrtc_setup.py {' '.join(sys.argv[1:])}` on {stamp}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms, Chromium {CHROMIUM}"
    )
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    try:  # the server runs on uvloop in production (voxgate.server); measure the same loop
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
