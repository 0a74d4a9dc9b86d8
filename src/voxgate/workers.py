"""``server.workers = N``: one voxgate node served by N processes on the same ports.

Why processes: the media path is CPU-bound Python (frame parsing, codecs, echo/agent work
per 20 ms frame), so one event loop saturates one core while the others idle (measured in
``bench/ws_streams.py``: 500 Twilio streams at ~100 % of one core on a 2-core machine).
The design already treats nodes as stateless media workers coordinated through Redis, so a
worker here *is* a cluster node (``<node_id>-w<k>``): the call registry tells every worker's
API where a call lives and the control bus delivers hang-up/transfer/... to its owner.

The supervisor (this module, the process ``voxgate serve`` started):

1. makes the API token once (``Settings.ensure_api_token``) and runs the records database
   migrations once (N workers migrating one SQLite file at once would race);
2. binds the HTTP port before any worker exists: one ``SO_REUSEPORT`` socket per worker
   (``balance="reuseport"``, the default: the kernel hashes each new connection to one
   worker, which spread long-lived media streams evenly in the measurements) or one socket
   all workers accept from (``balance="shared"``). The supervisor keeps its copies, so a
   restarted worker serves the same socket and nothing queued on it is lost;
3. points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory so ``/metrics`` (whichever
   worker answers) shows the node: see ``voxgate.observability.metrics.exposition``;
4. starts N workers (``python -c`` into ``voxgate.worker_process.worker_main``, never ``fork``: prometheus
   picks its value storage at import, and a forked copy of a started event loop is unsafe),
   each given its settings pickled on stdin (``SecretStr`` values intact, no re-reading of
   files or environment) and its inherited file descriptors by name;
5. prints the banner once every worker is serving; SIGTERM/SIGINT sends SIGTERM to every
   worker, each drains as a single node does (``Node.stop``), and the supervisor exits 0
   when all of them did.

A worker that dies while the node runs is logged and restarted (same index, node id and
socket; its calls are gone, ``CallRecords.recover_interrupted`` and the registry clean-up
of the restarted worker close them). The other workers' calls are untouched, which is why
restarting beats taking the node down. A worker that fails before its first ``ready`` (bad
port, model missing) or more than ``RESTART_LIMIT`` deaths within ``RESTART_WINDOW_S`` are
not transient: every worker is stopped and the supervisor exits 1.

SIP: for now only worker 0 runs the SIP edge. Sockets a SIP front opens before the workers
start go through :meth:`Supervisor.inherit` and come back in the worker from
``voxgate.worker_process.inherited_socket``; the front itself can run in the supervisor's
event loop through :meth:`Supervisor.alongside` (started before the workers, stopped after
they drained). With ``media.realtime_priority`` set, that loop's thread runs ``SCHED_RR`` like
the workers' loops (``voxgate.realtime``): a late front delays every worker's signalling; the
workers it starts afterwards begin at normal priority (reset on fork) and raise their own
loop once their models loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from voxgate.config import Settings
from voxgate.worker_process import WorkerSpec, inherited_socket, worker_settings

if TYPE_CHECKING:
    from voxgate.sip.front import SipFront

__all__ = [
    "Supervisor",
    "WorkerSpec",
    "bind_http",
    "inherited_socket",
    "supervise",
    "worker_settings",
]

log = logging.getLogger("voxgate.workers")

Balance = Literal["reuseport", "shared"]

RESTART_LIMIT = 5
"""Deaths within ``RESTART_WINDOW_S`` after which the node stops instead of restarting."""
RESTART_WINDOW_S = 60.0
READY_TIMEOUT_S = 600.0
"""A worker must be serving this long after its start (models load in each worker)."""
STOP_MARGIN_S = 15.0
"""Beyond ``server.drain_timeout_s``: a worker still alive then is killed."""
BACKLOG = 2048  # uvicorn's default


def bind_http(settings: Settings, count: int, balance: Balance) -> list[socket.socket]:
    """The node's HTTP listening sockets: ``count`` ``SO_REUSEPORT`` sockets on one port
    (``reuseport``) or a single one (``shared``). Port 0 picks a port for all of them."""
    host, port = settings.server.host, settings.server.port
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = info[0]

    def one(port: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if balance == "reuseport":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((address[0], port, *address[2:]))
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        return sock

    first = one(port)
    out = [first]
    if balance == "reuseport":
        actual = int(first.getsockname()[1])
        try:
            out += [one(actual) for _ in range(count - 1)]
        except OSError:
            for sock in out:
                sock.close()
            raise
    return out


async def _migrate_once(settings: Settings) -> list[str]:
    """Schema migrations before any worker opens the database; also closes the calls a
    previous single-process run (plain ``node_id``) left open, which no worker would."""
    from voxgate.observability.records import CallRecords

    records = await CallRecords.open(
        settings.records.database_url, node_id=settings.cluster.node_id
    )
    try:
        return await records.recover_interrupted()
    finally:
        await records.close()


@dataclass
class _Worker:
    index: int
    sock: socket.socket
    proc: asyncio.subprocess.Process | None = None
    ready_line: str | None = None
    deaths: list[float] = field(default_factory=list)
    started_once: bool = False


class Supervisor:
    """Starts, watches and stops the workers of one node (see the module docstring)."""

    def __init__(
        self, settings: Settings, *, balance: Balance = "reuseport", load_agent: bool = True
    ) -> None:
        self.settings = settings
        self.balance = balance
        self.load_agent = load_agent
        self.count = settings.server.workers
        self._inherited: dict[str, socket.socket] = {}
        self._workers: list[_Worker] = []
        self._stopping = False
        self._failed: asyncio.Event | None = None
        self._metrics_dir: str | None = None
        self.sip_front: SipFront | None = None
        """The SIP front when SIP/UDP is spread over the workers (its ``dispatcher`` counts)."""
        self._alongside: list[tuple[Callable[[], Awaitable[None]], Callable[[], None] | None]] = []

    def alongside(
        self, run: Callable[[], Awaitable[None]], *, close: Callable[[], None] | None = None
    ) -> None:
        """Run ``run()`` in the supervisor's event loop while the node runs: started before
        the workers, cancelled only after every worker drained, then ``close()``. For what
        the workers depend on until their last call ends (a SIP front receiving for them).
        It must not end on its own: if it does (or raises), the node stops with exit 1."""
        self._alongside.append((run, close))

    def inherit(self, name: str, sock: socket.socket) -> None:
        """Give every worker ``sock`` (opened before the workers start), found there by
        ``voxgate.worker_process.inherited_socket`` under ``name``: the hook for fronts
        (SIP) that must hand one port's traffic to several workers."""
        if name in ("http", "status"):
            raise ValueError(f"{name!r} is reserved")
        self._inherited[name] = sock

    def stopping(self) -> bool:
        """Set once the node stops: a worker exiting then is not restarted."""
        return self._stopping

    @property
    def pids(self) -> list[int]:
        return [
            w.proc.pid for w in self._workers if w.proc is not None and w.proc.returncode is None
        ]

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 after a clean drain of every worker, else 1."""
        settings = self.settings
        try:  # first: a taken port fails in a second, not after N workers loaded models
            socks = bind_http(settings, self.count, self.balance)
        except OSError as exc:
            raise SystemExit(
                f"voxgate: cannot listen on port {settings.server.port}: {exc}"
            ) from None
        # Before anything here imports prometheus_client (which picks its value storage at
        # import): the supervisor's own counters (the SIP front's) then land in the shared
        # directory too and show in every worker's /metrics.
        self._metrics_dir = tempfile.mkdtemp(prefix="voxgate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._metrics_dir
        try:
            self._open_sip_front()
        except OSError as exc:
            for sock in socks:
                sock.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            raise SystemExit(
                f"voxgate: cannot listen for SIP on port {settings.sip.port}: {exc}"
            ) from None
        generated = settings.ensure_api_token()
        print(f"voxgate: starting {self.count} workers (each loads its own models)", flush=True)
        interrupted = await _migrate_once(settings)
        if interrupted:
            print(
                f"  marked {len(interrupted)} call(s) interrupted by the last shutdown", flush=True
            )
        self._failed = asyncio.Event()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if self.sip_front is not None:  # this loop serves every call's signalling
            from voxgate.realtime import apply_realtime

            apply_realtime(settings.media.realtime_priority, what="supervisor (SIP front)")
        services = [self._start_service(run) for run, _ in self._alongside]
        self._workers = [_Worker(k, socks[k % len(socks)]) for k in range(self.count)]
        keepers = [
            asyncio.create_task(self._keep(w), name=f"worker-{w.index}") for w in self._workers
        ]
        try:
            started = await self._wait_started(stop)
            if started:
                self._banner(generated)
                waits = [
                    asyncio.create_task(stop.wait()),
                    asyncio.create_task(self._failed.wait()),
                ]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for t in waits:
                    t.cancel()
            log.info("stopping %d workers", self.count)
            clean = await self._stop_all()
            return 0 if started and clean and not self._failed.is_set() else 1
        finally:
            self._stopping = True
            # A keeper that spawned a worker while _stop_all signalled has SIGTERMed it and
            # waits for its drain: give it the same grace before cancelling.
            grace = settings.server.drain_timeout_s + STOP_MARGIN_S
            await asyncio.wait(keepers, timeout=grace)
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            for service in services:  # after the workers: they drained through it
                service.cancel()
            await asyncio.gather(*services, return_exceptions=True)
            for _, close in self._alongside:
                if close is not None:
                    close()
            for sock in {id(s): s for s in socks}.values():
                sock.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def _open_sip_front(self) -> None:
        """SIP over UDP on every worker: the front (``voxgate.sip.front``) binds the public
        SIP port here, before any worker exists, and hands each datagram to the worker
        that holds its dialog (Call-ID hash); workers send on their copy of the public
        socket. Without UDP (TCP/TLS only) the SIP edge stays in worker 0 alone."""
        sip = self.settings.sip
        if self.count < 2 or not sip.enabled or "udp" not in sip.transports:
            return
        from voxgate.sip.front import SipFront, open_front, run_front

        sockets = open_front(self.settings, self.count)
        for name, sock in sockets.inherit_map().items():
            self.inherit(name, sock)
        front = SipFront(sockets)
        self.sip_front = front

        async def serve_front() -> None:
            await run_front(sockets, front)

        self.alongside(serve_front, close=sockets.close)
        self.alongside(lambda: publish_front_counts(front))

    def _start_service(self, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        async def guarded() -> None:
            assert self._failed is not None
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervisor service %s failed; stopping the node", run)
            else:
                log.error("supervisor service %s ended; stopping the node", run)
            if not self._stopping:
                self._failed.set()

        return asyncio.create_task(guarded(), name=f"service-{run}")

    async def _wait_started(self, stop: asyncio.Event) -> bool:
        """True when every worker said ready; False on a stop signal or a failed start."""
        assert self._failed is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(w.started_once for w in self._workers):
            if stop.is_set() or self._failed.is_set():
                return False
            if time.monotonic() > deadline:
                log.error("workers not serving after %.0f s", READY_TIMEOUT_S)
                return False
            await asyncio.sleep(0.05)
        return True

    def _banner(self, generated: str | None) -> None:
        from voxgate.server import banner

        first = self._workers[0].ready_line or "-"
        sip_uri = None if first == "-" else first
        print(banner(self.settings, generated, sip_uri), flush=True)
        print(
            f"  workers       {self.count} processes ({self.balance}), pids "
            f"{' '.join(map(str, self.pids))}; cluster nodes "
            f"{self.settings.cluster.node_id[:60]}-w0..w{self.count - 1}"
            + self._sip_note(sip_uri),
            flush=True,
        )

    def _sip_note(self, sip_uri: str | None) -> str:
        if sip_uri is None:
            return ""
        if self.sip_front is None:
            return "; SIP in w0 only"
        return "; SIP/UDP over every worker by Call-ID (TCP/TLS, registrar, trunk REGISTER in w0)"

    async def _keep(self, w: _Worker) -> None:
        """Run worker ``w``; restart it when it dies, unless the node is stopping or the
        death is not transient (before its first ready, or a crash loop)."""
        assert self._failed is not None
        while not self.stopping():
            try:
                code = await self._run_once(w)
            except OSError as exc:  # EMFILE, ENOMEM, ...: no worker at all, not a death
                log.error("worker %d could not be started (%s); stopping the node", w.index, exc)
                self._failed.set()
                return
            if self.stopping():
                return
            if not w.started_once:
                log.error(
                    "worker %d exited with %s before serving; stopping the node", w.index, code
                )
                self._failed.set()
                return
            now = time.monotonic()
            w.deaths = [t for t in w.deaths if now - t < RESTART_WINDOW_S] + [now]
            if len(w.deaths) > RESTART_LIMIT:
                log.error("worker %d died %d times in %.0f s; stopping the node",
                          w.index, len(w.deaths), RESTART_WINDOW_S)  # fmt: skip
                self._failed.set()
                return
            log.error("worker %d died (exit %s); restarting it (its calls are lost)", w.index, code)

    async def _run_once(self, w: _Worker) -> int:
        """Start worker ``w``, note its ready line, return its exit code."""
        assert self._metrics_dir is not None
        read_fd, write_fd = os.pipe()
        fds = {"http": w.sock.fileno(), "status": write_fd}
        fds.update({name: s.fileno() for name, s in self._inherited.items()})
        settings = worker_settings(self.settings, w.index, sip_front=self.sip_front is not None)
        spec = WorkerSpec(w.index, settings, fds, self.load_agent, self.count)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir}
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from voxgate.worker_process import worker_main; raise SystemExit(worker_main())",
                stdin=asyncio.subprocess.PIPE, pass_fds=tuple(fds.values()), env=env,
            )  # fmt: skip
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        w.proc = proc
        if self.stopping():  # spawned while _stop_all was signalling: it must drain too
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(spec))
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()
        proc.stdin.close()
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        try:
            line = (await reader.readline()).decode().strip()
            if line.startswith("ready "):
                w.ready_line = line.removeprefix("ready ")
                if w.started_once:
                    log.warning("worker %d restarted (pid %d)", w.index, proc.pid)
                w.started_once = True
            return await proc.wait()
        finally:
            transport.close()
            from prometheus_client import multiprocess

            # Its live gauges must stop counting; its counters stay (they happened).
            multiprocess.mark_process_dead(proc.pid, self._metrics_dir)  # type: ignore[no-untyped-call]

    async def _stop_all(self) -> bool:
        """SIGTERM every worker (each drains its calls), kill what outlives the grace."""
        self._stopping = True
        procs = [w.proc for w in self._workers if w.proc is not None and w.proc.returncode is None]
        if not procs:  # all gone already (e.g. every worker failed its start)
            return True
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        grace = self.settings.server.drain_timeout_s + STOP_MARGIN_S
        done, pending = await asyncio.wait(
            [asyncio.create_task(p.wait()) for p in procs], timeout=grace
        )
        for proc in procs:
            if proc.returncode is None:
                log.error(
                    "worker pid %d still running %.0f s after SIGTERM; killing it", proc.pid, grace
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if pending:
            await asyncio.wait(pending, timeout=5)
        codes = [p.returncode for p in procs]
        if any(c != 0 for c in codes):
            log.error("workers exited with %s", codes)
        return bool(done) and not pending and all(c == 0 for c in codes)


FRONT_COUNTS_EVERY_S = 1.0


async def publish_front_counts(front: SipFront) -> None:
    """Copy the SIP front's counts (plain ints on its hot path) into prometheus counters
    once a second: the front runs in the supervisor, and its garbage, keep-alive and
    dropped-at-a-full-link counts belong in the node's /metrics like every parser's."""
    from voxgate.observability.metrics import SIP_FRONT_DATAGRAMS

    seen: dict[tuple[str, str], int] = {}

    def publish() -> None:
        snap = front.dispatcher
        now: dict[tuple[str, str], int] = {("-", "garbage"): snap.garbage, ("-", "keepalive"): snap.keepalives}
        for k, (sent, dropped) in enumerate(zip(snap.dispatched, snap.dropped, strict=True)):
            now[(str(k), "dispatched")] = sent
            now[(str(k), "dropped")] = dropped
        for key, value in now.items():
            if value > seen.get(key, 0):
                SIP_FRONT_DATAGRAMS.labels(*key).inc(value - seen.get(key, 0))
                seen[key] = value

    try:
        while True:
            publish()
            await asyncio.sleep(FRONT_COUNTS_EVERY_S)
    finally:
        publish()


def supervise(
    settings: Settings, *, balance: Balance = "reuseport", load_agent: bool = True
) -> int:
    """Run the node as a supervisor plus ``settings.server.workers`` workers
    (``load_agent=False``: no models, for benchmarks of routes that need none)."""
    return asyncio.run(Supervisor(settings, balance=balance, load_agent=load_agent).run())
