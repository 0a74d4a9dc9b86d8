"""SIP gateway load: sipp calls voxgate with RTP both ways, echo and prompt routes.

    .venv/bin/python bench/sip_load.py                   # full run (~6-10 min on 2 cores)
    .venv/bin/python bench/sip_load.py --quick           # smaller steps, for a smoke check
    .venv/bin/python bench/sip_load.py --steps 300 500 --rates 0 --hold-s 60   # the issue's 60 s calls
    .venv/bin/python bench/sip_load.py --workers 2 --apps echo --steps 300 500  # front + 2 edge processes

For each event loop and route a voxgate SIP edge runs in a child process (so its CPU is
measured alone) behind one route: "echo" is the product's own echo app (route
``app = "echo"``, :mod:`voxgate.calls.echo`: every frame received is played back), "prompt"
plays a recorded 8 kHz prompt in a loop (driven by playback marks, one wake-up per prompt) and
takes the caller's audio by direct hand-off (decoded and delivered like for any app, then
ignored). Sessions run at ``--sample-rate``
(``sip.sample_rate``): 8000 by default, the phone's own rate, so neither route resamples;
16000 is what a 16 kHz in-process agent costs. sipp (SIPp 3.6) places the calls with
``-rtp_echo``, so every packet we send comes back and each call carries 50 packets/s in each
direction through the whole media path (receive, jitter buffer, G.711 decode, the app,
G.711 encode, pacer, send). sipp runs on the same cores: its CPU (all threads, from /proc)
is measured over the same window and reported separately.

* calls set up per second: batches at increasing rates, the highest rate with no failed call;
* concurrency: steps of N calls held open; at each step, once all N are up, a measuring
  window reads CPU per call (and per packet sent, and its kernel share), RTP packets in/out
  per call-second and the pacer's send jitter (each packet's send time against its
  absolute due time, relative to that call's median offset) p50/p95/p99.
  Reported: the largest N with no failed call (media both ways at 50 packets/s), and the
  largest with also p99 <= 2 ms. Steps continue past 2 ms (to 50 ms, ``--stop-p99-ms``)
  because on a shared machine the scheduler, not the pacer, sets the tail.

``--workers N``: the product's multi-process edge (:mod:`voxgate.sip.front`): this driver
binds the public port with ``bind_front`` and runs ``run_front`` in its own (uvloop) loop, as
the node's supervisor does; N edge processes run as worker k of N (``SipEdge(link=...)``,
descriptors inherited with ``pass_fds``), each with its slice of the RTP range. sipp calls
the public port. Reported per step: each worker's CPU, their total, the front's CPU (this
driver process: the front plus the driver's own polling, so an upper bound), and the send
jitter p99 as the highest of the workers' p99s (an upper bound of the pooled p99: no worker
has more than 1 % of its samples above it).

``--realtime P``: ``media.realtime_priority = P`` (:mod:`voxgate.realtime`): each edge's event
loop thread, and the driver's loop where the front runs, at ``SCHED_RR`` priority P, as
``voxgate serve`` does with that setting; sipp (started by the driver, reset on fork) stays
at normal priority. Reported per step: how long sipp was runnable but waiting for a core.

Every run is bounded: sipp gets ``-timeout``, steps stop at the first failing one, the child
is killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="voxgate bench call">
  <send retrans="500"><![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <pause/>
  <send retrans="500"><![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
"""


# --- the child: a voxgate edge with a prompt app, answering stats requests on stdin ---------


def serve(
    loop_kind: str, port: int, app_kind: str = "prompt", sample_rate: int = 8000, slots: int = 0,
    link: str = "", realtime: int = 0,
) -> None:  # fmt: skip
    if loop_kind == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(_serve(port, app_kind, sample_rate, slots, link, realtime))


PIN_EDGE, PIN_OTHERS = 1, 0
"""``--pin``: the edge runs on core 1 only, sipp and this driver on core 0 (as a media node is
deployed: a core per media process, the rest elsewhere; on a shared machine other processes
can still be scheduled on core 1)."""


PIN_WORKERS = False
"""``--pin-workers``: worker k runs on core k (mod the core count) only."""
SIPP_NICE = 0
"""``--sipp-nice N``: sipp runs at this niceness (it stands in for the far end, which on a
real node is not on the media cores)."""
SIPP_RT = 0
"""``--sipp-rt P``: sipp runs ``SCHED_RR`` at priority P (``chrt -r``). With ``--realtime`` at
a higher priority it models a far end that is not starved by the media loops' neighbours:
it still yields to the edges, but no longer waits behind ordinary processes."""


PROFILE_TO = os.environ.get("SIP_LOAD_PROFILE", "")
"""Set: the edge runs cProfile over each measuring window and writes it here (slows it)."""
PROMPT_WAV = ROOT.parent / "shared" / "audio" / "book_appointment.piper.8k.wav"
"""A recorded prompt at 8 kHz (phone rate): played as is by an 8 kHz session."""


def _prompt_samples(sample_rate: int) -> Any:
    """The prompt at the session's rate (an IVR keeps its prompts recorded at that rate)."""
    from voxgate.audio.resample import StreamResampler
    from voxgate.audio.wav import read_wav

    if PROMPT_WAV.exists():
        pcm, rate = read_wav(PROMPT_WAV)
    else:  # outside this workspace: a 3 s tone stands in (same cost per frame)
        rate = 8000
        t = np.arange(3 * rate) / rate
        pcm = (0.2 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    if rate != sample_rate:  # converted once at start-up, never per call
        rs = StreamResampler(rate, sample_rate)
        pcm = np.concatenate([rs.process(pcm), rs.flush()])
    return pcm


async def _serve(
    port: int, app_kind: str = "prompt", sample_rate: int = 8000, slots: int = 0, link: str = "",
    realtime: int = 0,
) -> None:  # fmt: skip
    from voxgate.audio.frame import AudioFrame
    from voxgate.calls.echo import echo_factory
    from voxgate.calls.manager import CallManager
    from voxgate.calls.router import Router, RouteRule
    from voxgate.calls.session import CallSession, MarkPlayed
    from voxgate.sip.endpoint import SipEdge, SipEdgeOptions
    from voxgate.sip.front import WorkerLink
    from voxgate.sip.media import MediaOptions

    prompt = AudioFrame(_prompt_samples(sample_rate), sample_rate)

    class PromptApp:
        """An announcement: the recorded prompt over and over until the caller hangs up.

        Driven by playback marks, as a real player is: one prompt is always queued ahead
        and the app wakes once per prompt played (~4 s), not per frame or on a timer. The
        edge still receives, decodes and delivers the caller's audio (a player would watch
        it for barge-in or hand it to a recorder); this app takes it by direct hand-off and
        ignores it, which is the cheapest a real player can be."""

        name = "prompt"

        async def run(self, session: CallSession) -> None:
            session.listen(lambda frame: None)
            sink = session.sink
            for _ in range(2):
                sink.write(prompt)  # the array is shared by every call, never copied
                sink.mark("prompt")
            async for event in session.events():
                if isinstance(event, MarkPlayed):
                    sink.write(prompt)
                    sink.mark("prompt")

    # The product's own routes: app "echo" (calls/echo.py) and the prompt player above.
    rule = RouteRule(app=app_kind, callee="agent", name=app_kind)
    factories: dict[str, Any] = {"echo": echo_factory, "prompt": lambda rule: PromptApp()}
    manager = CallManager(Router([rule], factories, default=None))
    options = SipEdgeOptions(
        ports={"udp": port}, allowed=[ipaddress.ip_network("127.0.0.0/8")],
        rtp_ports=(20000, 29999), max_calls=5000, media=MediaOptions(
            measure_lateness=True, clock_slots=slots or MediaOptions.clock_slots
        ),
        sample_rate=sample_rate,
    )  # fmt: skip
    worker_link = WorkerLink(*(int(x) for x in link.split(","))) if link else None
    edge = SipEdge(options, manager, link=worker_link)
    sessions: list[Any] = []
    make = edge.new_rtp

    def new_rtp(*args: Any, **kwargs: Any) -> Any:
        rtp = make(*args, **kwargs)
        sessions.append(rtp)
        return rtp

    def jitter_ms() -> np.ndarray:
        """Per call: |send time - n * 20 ms - that call's median offset|, all calls pooled."""
        parts = []
        for rtp in sessions:
            if len(rtp.lateness) > 10:
                dev = np.array(rtp.lateness)
                parts.append(np.abs(dev - np.median(dev)) * 1000)
        return np.concatenate(parts) if parts else np.zeros(1)

    gc_time = [0.0, 0.0, 0.0]  # seconds spent in collections of each generation
    gc_count = [0, 0, 0]
    gc_started = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_started
        if phase == "start":
            gc_started = time.perf_counter()
        else:
            gen = info["generation"]
            gc_time[gen] += time.perf_counter() - gc_started
            gc_count[gen] += 1

    gc.callbacks.append(on_gc)
    edge.new_rtp = new_rtp  # type: ignore[method-assign]
    await edge.start()
    from voxgate.realtime import apply_realtime, describe

    apply_realtime(realtime)  # as run_node does: set up first, then the loop's thread
    policy = describe()
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    base_cpu, base_wall, base_sys = time.process_time(), time.monotonic(), os.times().system
    base_wait = _runq_wait_s()
    base_switches = _wakeups()
    base_in = base_out = base_played = 0
    base_invented = 0.0
    peak = 0

    def totals() -> tuple[int, int]:
        return sum(s.packets_in for s in sessions), sum(s.packets_out for s in sessions)

    def played() -> tuple[int, float]:
        """Frames the jitter buffers played from packets, and 20 ms frames concealed (losses,
        underruns, stretches): what the app heard, beyond what the sockets counted."""
        good, invented = 0, 0.0
        for rtp in sessions:
            receiver = rtp._receiver  # noqa: SLF001
            if receiver is not None:
                jb = receiver.jitter.stats
                good += jb.played
                invented += jb.concealed_ms / 20.0
        return good, invented

    async def watch_peak() -> None:
        nonlocal peak
        while True:
            peak = max(peak, len(edge.calls))
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch_peak())
    profiler: Any = None
    while line := (await reader.readline()).decode().strip():
        if line == "reset":
            if PROFILE_TO:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            sessions[:] = [s for s in sessions if not s._closed]  # noqa: SLF001
            for rtp in sessions:
                rtp.lateness.clear()
            gc_time[:] = [0.0, 0.0, 0.0]
            gc_count[:] = [0, 0, 0]
            base_cpu, base_wall, base_sys = time.process_time(), time.monotonic(), os.times().system
            base_wait = _runq_wait_s()
            base_switches = _wakeups()
            base_in, base_out = totals()
            base_played, base_invented = played()
            peak = len(edge.calls)
            out: dict[str, Any] = {"ok": True}
        elif line == "stats":
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(PROFILE_TO)
                profiler = None
            lat = jitter_ms()
            pin, pout = totals()
            good, invented = played()
            out = {
                "calls": len(edge.calls), "peak": peak,
                "cpu_s": time.process_time() - base_cpu, "wall_s": time.monotonic() - base_wall,
                "sys_s": os.times().system - base_sys, "runq_wait_s": _runq_wait_s() - base_wait,
                "gc_s": list(gc_time), "gc_n": list(gc_count),
                "packets_in": pin - base_in, "packets_out": pout - base_out,
                "played": good - base_played, "concealed": invented - base_invented,
                "late_p50_ms": float(np.percentile(lat, 50)),
                "late_p95_ms": float(np.percentile(lat, 95)),
                "late_p99_ms": float(np.percentile(lat, 99)),
                "late_max_ms": float(lat.max()), "samples": int(lat.size), "policy": policy,
                "switches": _wakeups() - base_switches,
            }  # fmt: skip
        else:
            break
        print(json.dumps(out), flush=True)
    watcher.cancel()
    await edge.close()


# --- the parent: drives sipp and reads the child's numbers ---------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runq_wait_s() -> float:
    """Seconds this process spent runnable but waiting for a CPU (``/proc/self/schedstat``):
    how much of a late tick is the scheduler (other processes on the cores) and not the loop."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _pid_runq_wait_s(pid: int) -> float:
    """Seconds all threads of ``pid`` spent runnable but waiting for a CPU (0 once gone):
    for sipp, which is the one left waiting when the edges run realtime."""
    total = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        with (
            contextlib.suppress(OSError, IndexError, ValueError),
            open(f"/proc/{pid}/task/{tid}/schedstat") as f,
        ):
            total += int(f.read().split()[1]) / 1e9
    return total


def _wakeups() -> int:
    """Context switches of the main thread (the event loop's) so far, voluntary + involuntary
    (``/proc/self/status``): per second, how often the loop slept and was woken or preempted."""
    total = 0
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def _machine_busy_s() -> float:
    """CPU seconds all cores spent busy (``/proc/stat``: everything but idle and iowait):
    minus what the edge, sipp and this driver used, it is what other processes took."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child:
    def __init__(
        self, loop_kind: str, app_kind: str = "prompt", sample_rate: int = 8000, slots: int = 0,
        pin: bool = False, link: Any = None, port: int = 0, realtime: int = 0,
    ) -> None:  # fmt: skip
        self.slots = slots
        self.realtime = realtime
        self.pin = pin
        self.loop_kind = loop_kind
        self.app_kind = app_kind
        self.sample_rate = sample_rate
        self.label = f"{loop_kind}/{app_kind}"
        self.port = port or _free_port()
        self.link = link
        """A ``WorkerLink``: this child is that edge worker behind the driver's front."""
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Child:
        pin = ["--pin-edge"] if self.pin else []
        link = self.link
        extra = ["--link", f"{link.index},{link.count},{link.inbox_fd},{link.public_fd}"] if link else []
        if link and PIN_WORKERS:
            extra += ["--pin-core", str(link.index % (os.cpu_count() or 1))]
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.loop_kind, "--port", str(self.port),
            "--app", self.app_kind, "--sample-rate", str(self.sample_rate),
            "--clock-slots", str(self.slots), "--realtime", str(self.realtime), *pin, *extra,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            pass_fds=(link.inbox_fd, link.public_fd) if link else (),
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not line.startswith(b"READY"):
            raise RuntimeError(f"edge did not start: {line!r}")
        return self

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        result: dict[str, Any] = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))
        return result

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class Fronted:
    """The product's multi-process edge: the front in this process (as in the node's
    supervisor), ``workers`` edge children behind it. Answers ``ask`` like one :class:`Child`
    with the workers' numbers summed (p50/p95/p99: the highest worker's, an upper bound of
    the pooled percentile), plus ``per_worker``, the front's CPU and its dispatch counts."""

    def __init__(
        self, workers: int, loop_kind: str, app_kind: str, sample_rate: int, slots: int,
        realtime: int = 0,
    ) -> None:  # fmt: skip
        from voxgate.sip.front import SipFront, bind_front

        self.sockets = bind_front("127.0.0.1", 0, workers)
        self.front = SipFront(self.sockets)
        self.port = self.sockets.port
        self.label = f"{loop_kind}/{app_kind}/{workers} workers"
        self.children = [
            Child(loop_kind, app_kind, sample_rate, slots, link=link, port=self.port, realtime=realtime)
            for link in self.sockets.links
        ]  # fmt: skip
        self._front_cpu = 0.0

    async def __aenter__(self) -> Fronted:
        self.front.start()
        for child in self.children:
            await child.__aenter__()
        self.sockets.close_worker_ends()  # every worker holds its own copy now
        return self

    async def __aexit__(self, *exc: object) -> None:
        for child in self.children:
            await child.__aexit__(*exc)
        self.front.close()
        self.sockets.close()

    async def ask(self, command: str) -> dict[str, Any]:
        answers = [await child.ask(command) for child in self.children]
        if command == "reset":
            self._front_cpu = time.process_time()
            return {"ok": True}
        out: dict[str, Any] = {"per_worker": answers}
        for key in ("calls", "peak", "cpu_s", "sys_s", "packets_in", "packets_out", "played", "concealed", "samples"):
            out[key] = sum(a[key] for a in answers)
        for key in ("late_p50_ms", "late_p95_ms", "late_p99_ms", "late_max_ms"):
            out[key] = max(a[key] for a in answers)
        out["wall_s"] = max(a["wall_s"] for a in answers)
        out["gc_s"] = [sum(a["gc_s"][g] for a in answers) for g in range(3)]
        out["gc_n"] = [sum(a["gc_n"][g] for a in answers) for g in range(3)]
        out["front_cpu_s"] = time.process_time() - self._front_cpu
        out["dispatch"] = self.front.dispatcher.snapshot()
        return out


_SIPPS: set[asyncio.subprocess.Process] = set()
"""Every sipp started, killed at exit whatever happened (no orphan keeps calling)."""


def _kill_sipps() -> None:
    for proc in _SIPPS:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)  # by pid: the loop may be closed already


async def _sipp(
    workdir: Path, port: int, *, calls: int, rate: float, limit: int, hold_ms: int, timeout_s: int
) -> asyncio.subprocess.Process:
    sipp = shutil.which("sipp")
    assert sipp is not None
    nice = ["nice", "-n", str(SIPP_NICE)] if SIPP_NICE else []
    if SIPP_RT:
        nice = ["chrt", "-r", str(SIPP_RT), *nice]
    proc = await asyncio.create_subprocess_exec(
        *nice, sipp, "-sf", str(workdir / "bench.xml"), f"127.0.0.1:{port}", "-s", "agent",
        "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(_free_port()), "-mp", str(_free_port()),
        "-rtp_echo", "-m", str(calls), "-r", str(rate), "-l", str(limit), "-d", str(hold_ms),
        "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error", "-max_socket", "5000",
        "-trace_stat", "-stf", str(workdir / f"stat-{port}-{calls}-{rate}.csv"), "-fd", "1",
        cwd=workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    _SIPPS.add(proc)
    return proc


def _sipp_counts(workdir: Path, port: int, calls: int, rate: float) -> tuple[int, int]:
    path = workdir / f"stat-{port}-{calls}-{rate}.csv"
    if not path.exists():
        return 0, calls
    rows = [r.split(";") for r in path.read_text().splitlines() if r.strip()]
    head, last = rows[0], rows[-1]
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])


async def cps_phase(child: Child | Fronted, workdir: Path, rates: list[int]) -> dict[str, Any]:
    """Batches of 3 s worth of calls (1 s long each) at increasing requested rates; the
    achieved set-up rate is calls / (elapsed - 1 s of call length): when voxgate (or sipp)
    cannot keep up, sipp falls behind its requested rate instead of failing calls."""
    best: dict[str, Any] = {"cps": 0.0, "failed": 0}
    for rate in rates:
        calls = rate * 3
        proc = await _sipp(workdir, child.port, calls=calls, rate=rate, limit=calls, hold_ms=1000, timeout_s=40)
        started, driver_cpu = time.monotonic(), time.process_time()
        rc = await asyncio.wait_for(proc.wait(), 60)
        elapsed = time.monotonic() - started
        ok, failed = _sipp_counts(workdir, child.port, calls, rate)
        achieved = ok / max(elapsed - 1.0, 1e-3)
        front = ""
        if isinstance(child, Fronted):
            front = f", front (+driver) CPU {100 * (time.process_time() - driver_cpu) / elapsed:.1f} %"
        print(
            f"  [{child.label}] cps {rate} requested: {ok} ok, {failed} failed, rc={rc}, "
            f"{elapsed:.1f} s, achieved {achieved:.0f}/s{front}", flush=True,
        )  # fmt: skip
        if rc != 0 or failed:
            break
        best = {"cps": max(best["cps"], achieved), "failed": failed}
        if achieved < 0.8 * rate:
            break  # saturated
        await asyncio.sleep(1.0)
    return best


async def concurrency_phase(
    child: Child | Fronted, workdir: Path, steps: list[int], window_s: float, hold_s: float = 0.0,
    stop_p99_ms: float = 50.0,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in steps:
        rate = min(100, max(20, n // 5))
        ramp = n / rate
        hold = max(hold_s, ramp + window_s + 4)
        hold_ms = int(hold * 1000)
        proc = await _sipp(workdir, child.port, calls=n, rate=rate, limit=n, hold_ms=hold_ms, timeout_s=int(ramp + hold + 40))
        deadline = time.monotonic() + ramp + 20
        while (await child.ask("stats"))["calls"] < n and time.monotonic() < deadline:
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # jitter buffers settle
        await child.ask("reset")
        sipp0, t0 = _proc_cpu_s(proc.pid), time.monotonic()
        sipp_wait0 = _pid_runq_wait_s(proc.pid)
        busy0, driver0 = _machine_busy_s(), time.process_time()
        await asyncio.sleep(window_s)
        stats = await child.ask("stats")
        elapsed = time.monotonic() - t0
        sipp_pct = 100 * (_proc_cpu_s(proc.pid) - sipp0) / elapsed
        sipp_wait_pct = 100 * (_pid_runq_wait_s(proc.pid) - sipp_wait0) / elapsed
        busy_pct = 100 * (_machine_busy_s() - busy0) / elapsed
        ours_pct = 100 * stats["cpu_s"] / stats["wall_s"] + sipp_pct + 100 * (time.process_time() - driver0) / elapsed
        rc = await asyncio.wait_for(proc.wait(), ramp + hold + 60)
        ok, failed = _sipp_counts(workdir, child.port, n, rate)
        per_call_s = stats["wall_s"] * max(1, stats["calls"])
        row = {
            "n": n, "up": stats["calls"], "ok": ok, "failed": failed, "rc": rc,
            "cpu_pct_per_call": 100 * stats["cpu_s"] / per_call_s,
            "cpu_total_pct": 100 * stats["cpu_s"] / stats["wall_s"],
            "us_per_call_tick": 1e6 * stats["cpu_s"] / max(1, stats["packets_out"]),
            "sys_share": stats["sys_s"] / max(1e-9, stats["cpu_s"]),
            "concealed_pct": 100 * stats["concealed"] / max(1.0, stats["played"] + stats["concealed"]),
            "sipp_cpu_pct": sipp_pct, "sipp_pct_per_call": sipp_pct / max(1, stats["calls"]),
            "sipp_runq_pct": sipp_wait_pct,
            "load": os.getloadavg()[0], "busy_pct": busy_pct, "others_pct": max(0.0, busy_pct - ours_pct),
            "pps_in": stats["packets_in"] / per_call_s, "pps_out": stats["packets_out"] / per_call_s,
            **{k: stats[k] for k in ("late_p50_ms", "late_p95_ms", "late_p99_ms", "late_max_ms")},
        }  # fmt: skip
        workers_note = ""
        if "per_worker" in stats:
            row["worker_cpu_pct"] = [100 * w["cpu_s"] / w["wall_s"] for w in stats["per_worker"]]
            row["worker_calls"] = [w["calls"] for w in stats["per_worker"]]
            row["worker_p99_ms"] = [w["late_p99_ms"] for w in stats["per_worker"]]
            row["worker_runq_pct"] = [100 * w["runq_wait_s"] / w["wall_s"] for w in stats["per_worker"]]
            row["worker_policy"] = sorted({w["policy"] for w in stats["per_worker"]})
            row["worker_switches_per_s"] = [w["switches"] / w["wall_s"] for w in stats["per_worker"]]
            row["front_cpu_pct"] = 100 * stats["front_cpu_s"] / stats["wall_s"]
            row["dispatch"] = stats["dispatch"]
            workers_note = (
                f"; workers: calls {row['worker_calls']}, CPU "
                f"{[round(c) for c in row['worker_cpu_pct']]} %, p99 "
                f"{[round(p, 2) for p in row['worker_p99_ms']]} ms, waiting for a CPU "
                f"{[round(w, 1) for w in row['worker_runq_pct']]} % of the time; front (+driver) CPU "
                f"{row['front_cpu_pct']:.2f} %, dropped at the links {stats['dispatch']['dropped']}; "
                f"worker loops {row['worker_policy']}, context switches "
                f"{[round(x) for x in row['worker_switches_per_s']]} /s"
            )
        out.append(row)
        print(
            f"  [{child.label}] {n} calls: up {row['up']}, failed {failed}, edge CPU {row['cpu_total_pct']:.0f}% "
            f"({row['cpu_pct_per_call']:.3f} %/call, {row['us_per_call_tick']:.1f} us/packet out, "
            f"{100 * row['sys_share']:.0f} % in the kernel), sipp CPU {sipp_pct:.0f}%, "
            f"gc {stats['gc_n']} collections {[round(1000 * t) for t in stats['gc_s']]} ms, "
            f"p50/p95/p99 {row['late_p50_ms']:.2f}/{row['late_p95_ms']:.2f}/{row['late_p99_ms']:.2f} ms, "
            f"pps in/out {row['pps_in']:.1f}/{row['pps_out']:.1f}, "
            f"concealed {row['concealed_pct']:.2f} % of frames played, "
            f"load {row['load']:.1f}, machine busy {busy_pct:.0f} % of {100 * (os.cpu_count() or 1)} % "
            f"(other processes {row['others_pct']:.0f} %), sipp waiting for a CPU {sipp_wait_pct:.1f} % "
            f"of the time{workers_note}",
            flush=True,
        )
        if rc != 0 or failed or row["up"] < n or row["late_p99_ms"] > stop_p99_ms:
            break
        await _drained(child)
    return out


async def _drained(child: Child | Fronted, limit_s: float = 40.0) -> None:
    """Wait until the edge has no call left (failed calls linger until media timeout)."""
    deadline = time.monotonic() + limit_s
    while (await child.ask("stats"))["calls"] and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)


def _best(rows: list[dict[str, Any]], p99_ms: float = 1e9) -> dict[str, Any] | None:
    good = [
        r for r in rows
        if r["rc"] == 0 and not r["failed"] and r["up"] >= r["n"] and r["late_p99_ms"] <= p99_ms
    ]  # fmt: skip
    return good[-1] if good else None


async def main(args: argparse.Namespace) -> None:
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed (apt-get install sip-tester)")
    steps = args.steps or ([25, 50, 100] if args.quick else [50, 100, 150, 200, 300, 400, 500, 700, 1000])
    rates = args.rates or ([20, 50] if args.quick else [25, 50, 100, 150, 200, 300])
    window = 4.0 if args.quick else 8.0
    results: dict[str, dict[str, Any]] = {}
    load_at_start = os.getloadavg()[0]
    if args.workers and args.realtime:  # the front runs in this loop, as in the supervisor's
        from voxgate.realtime import apply_realtime, describe

        apply_realtime(args.realtime, what="driver (SIP front)")
        print(f"front/driver loop: {describe()}; edges: media.realtime_priority = {args.realtime}")
    for loop_kind in args.loops:
        cps: dict[str, Any] | None = None
        for app_kind in args.apps:
            workdir = Path(tempfile.mkdtemp(prefix="sipload-"))
            (workdir / "bench.xml").write_text(SCENARIO)
            label = f"{loop_kind}/{app_kind}"
            print(f"{label}:", flush=True)
            edge: Child | Fronted = (
                Fronted(args.workers, loop_kind, app_kind, args.sample_rate, args.clock_slots, args.realtime)
                if args.workers
                else Child(
                    loop_kind, app_kind, args.sample_rate, args.clock_slots, args.pin,
                    realtime=args.realtime,
                )  # fmt: skip
            )
            async with edge as child:
                if cps is None and not rates[0]:
                    cps = {"cps": 0.0, "failed": 0}  # --rates 0: skip the set-up rate phase
                if cps is None:  # set-up rate does not depend on the route's media
                    cps = await cps_phase(child, workdir, rates)
                    await _drained(child)
                rows = await concurrency_phase(
                    child, workdir, steps, window, args.hold_s, args.stop_p99_ms
                )
            results[label] = {
                "cps": cps, "rows": rows, "best": _best(rows), "tight": _best(rows, 2.0),
            }  # fmt: skip
    load_at_end = os.getloadavg()[0]
    print()
    print(f"SIP load, {time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}: {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"load average at start {load_at_start:.1f}, at end {load_at_end:.1f}")
    print()
    head = ("loop/route", "CPS (0 fail)", "max calls (0 fail)", "... with p99 <= 2 ms", "edge CPU/call",
            "edge CPU total", "sipp CPU total (/call)", "RTP in/out per call", "send jitter p50", "p95", "p99")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, res in results.items():
        best = res["best"]
        if best is None:
            print(f"| {label} | {res['cps']['cps']:.0f}/s | none passed |" + " |" * (len(head) - 3))
            continue
        tight = res["tight"]["n"] if res["tight"] else "none"
        print(
            f"| {label} | {res['cps']['cps']:.0f}/s | {best['n']} | {tight} | {best['cpu_pct_per_call']:.2f} % "
            f"| {best['cpu_total_pct']:.0f} % | {best['sipp_cpu_pct']:.0f} % ({best['sipp_pct_per_call']:.3f} %) "
            f"| {best['pps_in']:.1f}/{best['pps_out']:.1f} pkt/s "
            f"| {best['late_p50_ms']:.3f} ms | {best['late_p95_ms']:.3f} ms | {best['late_p99_ms']:.3f} ms |"
        )
    print()
    print("All steps (n calls: failed, edge CPU total (per call), sipp CPU, p99 send jitter, load):")
    for label, res in results.items():
        cells = [
            f"{r['n']}: {r['failed']} failed, {r['cpu_total_pct']:.0f} % ({r['cpu_pct_per_call']:.2f} %), "
            f"sipp {r['sipp_cpu_pct']:.0f} %, {r['late_p99_ms']:.2f} ms, load {r['load']:.1f}"
            for r in res["rows"]
        ]
        print(f"  {label}: " + "; ".join(cells))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", choices=["uvloop", "asyncio"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small steps (smoke check)")
    parser.add_argument("--loops", nargs="+", default=["uvloop"], choices=["uvloop", "asyncio"])
    parser.add_argument("--apps", nargs="+", default=["echo", "prompt"], choices=["echo", "prompt"])
    parser.add_argument("--app", default="prompt", choices=["echo", "prompt"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--hold-s", type=float, default=0.0,
        help="call length (default: just past the measuring window; the issue's runs use 60)",
    )  # fmt: skip
    parser.add_argument(
        "--stop-p99-ms", type=float, default=50.0,
        help="stop stepping up once p99 send jitter exceeds this (a loaded machine: raise it "
        "to find the largest N without failed calls)",
    )  # fmt: skip
    parser.add_argument(
        "--sample-rate", type=int, default=8000, choices=[8000, 16000],
        help="the session's PCM rate (sip.sample_rate): 8000 = the phone's own rate, no "
        "resampling; 16000 = what an in-process 16 kHz agent gets",
    )  # fmt: skip
    parser.add_argument(
        "--clock-slots", type=int, default=0,
        help="phase-staggered media clock ticks per 20 ms (default: MediaOptions' default)",
    )  # fmt: skip
    parser.add_argument(
        "--pin", action="store_true",
        help=f"pin the edge to core {PIN_EDGE} alone, sipp and the driver to core {PIN_OTHERS}",
    )  # fmt: skip
    parser.add_argument("--pin-edge", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers", type=int, default=0,
        help="N edge processes behind the product's SIP front (voxgate.sip.front), the front "
        "in this driver; 0 (default): one edge process on its own port, no front",
    )  # fmt: skip
    parser.add_argument("--link", default="", help=argparse.SUPPRESS)
    parser.add_argument("--pin-core", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--pin-workers", action="store_true", help="--workers: worker k on core k only")
    parser.add_argument("--sipp-nice", type=int, default=0, help="run sipp at this niceness")
    parser.add_argument(
        "--sipp-rt", type=int, default=0, metavar="P",
        help="run sipp SCHED_RR at priority P (below --realtime: a far end off the media cores)",
    )  # fmt: skip
    parser.add_argument(
        "--realtime", type=int, default=0, metavar="P",
        help="media.realtime_priority: the edges' loops (and the front's, in this driver) at "
        "SCHED_RR priority P (voxgate.realtime); 0 (default): normal priority",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, nargs="+", help="concurrency steps (calls)")
    parser.add_argument("--rates", type=int, nargs="+", help="set-up rates to try (0: skip)")
    ns = parser.parse_args()
    PIN_WORKERS, SIPP_NICE, SIPP_RT = ns.pin_workers, ns.sipp_nice, ns.sipp_rt
    if ns.pin_core >= 0:
        os.sched_setaffinity(0, {ns.pin_core})
    if ns.pin_edge:
        os.sched_setaffinity(0, {PIN_EDGE})
    elif ns.pin and not ns.serve:
        os.sched_setaffinity(0, {PIN_OTHERS})  # this driver and every sipp it starts
    if ns.serve:
        serve(ns.serve, ns.port, ns.app, ns.sample_rate, ns.clock_slots, ns.link, ns.realtime)
    else:
        if ns.workers:
            import uvloop  # the front runs in this driver's loop, as in the supervisor's

            uvloop.install()
        try:
            asyncio.run(main(ns))
        finally:
            _kill_sipps()
