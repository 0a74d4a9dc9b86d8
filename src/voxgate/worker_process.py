"""The worker side of ``server.workers = N`` (the supervisor is ``voxgate.workers``).

A worker is started as a fresh interpreter (``python -c`` into :func:`worker_main`), reads
its :class:`WorkerSpec` pickled on stdin and runs exactly the single-process node
(``voxgate.server.run_node``) on the listening socket it inherited, so the code that serves
calls is the same whatever ``server.workers`` says. Kept apart from the supervisor so a
worker imports nothing of the supervision and the supervisor nothing of the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
from dataclasses import dataclass

from voxgate.config import Settings


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker is told, pickled to its stdin."""

    index: int
    settings: Settings
    fds: dict[str, int]
    """Inherited descriptors by name: ``http`` (listening socket), ``status`` (pipe the
    worker writes ``ready <sip uri>`` to), plus any ``voxgate.workers.Supervisor.inherit`` added."""
    load_agent: bool = True
    count: int = 1
    """Workers in the node (a SIP worker link names its index of ``count``)."""


_spec: WorkerSpec | None = None


def worker_settings(settings: Settings, index: int, *, sip_front: bool = False) -> Settings:
    """Worker ``index``'s view of the node: its own cluster node id (records and registry
    entries name the worker that owns the call) and a SIP edge in every worker behind the
    SIP front (``sip_front``), else in worker 0 only."""
    node_id = f"{settings.cluster.node_id[:60]}-w{index}"
    update: dict[str, object] = {
        "cluster": settings.cluster.model_copy(update={"node_id": node_id})
    }
    if index > 0 and not sip_front:
        update["sip"] = settings.sip.model_copy(update={"enabled": False})
    return settings.model_copy(update=update)


def inherited_socket(name: str) -> socket.socket | None:
    """In a worker: the socket the supervisor passed under ``name`` (None if none)."""
    if _spec is None or name not in _spec.fds:
        return None
    return socket.socket(fileno=_spec.fds[name])


def _die_with_parent() -> None:
    """SIGTERM this worker (a drain) when the supervisor dies, even by SIGKILL: an orphan
    would keep serving a port the operator believes is down."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def worker_main() -> int:
    """Entry of a worker process: read the spec from stdin, serve the node on the
    inherited socket, report ``ready`` on the status pipe, drain on SIGTERM."""
    global _spec
    parent = os.getppid()
    _die_with_parent()
    spec: WorkerSpec = pickle.load(sys.stdin.buffer)
    _spec = spec
    settings = spec.settings
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        return 1
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s w{spec.index} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from voxgate.server import _install_uvloop, run_node

    _install_uvloop()
    http = socket.socket(fileno=spec.fds["http"])
    status = os.fdopen(spec.fds["status"], "w")

    def ready(sip_uri: str | None) -> None:
        status.write(f"ready {sip_uri or '-'}\n")
        status.flush()
        status.close()

    def progress(line: str) -> None:
        print(f"  [w{spec.index}] {line}", flush=True)

    sip_link = None
    if "sip_public" in spec.fds:  # behind the SIP front (voxgate.sip.front)
        from voxgate.sip.front import link_from

        sip_link = link_from(spec.index, spec.count, inherited_socket)
    asyncio.run(
        run_node(
            settings, progress=progress, on_ready=ready, sockets=[http],
            load_agent=spec.load_agent, sip_link=sip_link,
        )  # fmt: skip
    )
    return 0
