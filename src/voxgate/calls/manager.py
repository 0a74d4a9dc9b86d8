"""The registry of live calls on this node and the task that runs each call's app.

Edges hand a fresh ``CallSession`` to :meth:`CallManager.start`; the manager routes it, runs
the app as a task, and guarantees the session ends with a reason whatever the app does
(returns, raises, is cancelled). Listeners (call records, cluster registry) observe start and
end without the edges knowing about them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from voxgate.calls.router import NoRoute, Router
from voxgate.calls.session import CallSession
from voxgate.observability.metrics import ACTIVE_CALLS, CALLS_TOTAL

log = logging.getLogger(__name__)

Listener = Callable[[CallSession], Awaitable[None]]


def _redact(app: str) -> str:
    """Routes may carry credentials in a URL (``?token=``, ``user:pass@``): never log them."""
    parts = urlsplit(app)
    if not parts.scheme or not parts.netloc:
        return app
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Draining(RuntimeError):
    """The node is shutting down and takes no new calls; edges answer 503."""


class CallManager:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.calls: dict[str, CallSession] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.on_start: list[Listener] = []
        self.on_end: list[Listener] = []
        self.ringing: dict[str, CallSession] = {}
        """Outbound calls placed by this node that have not been answered yet."""
        self.on_ring: list[Listener] = []
        self.on_ring_end: list[Listener] = []
        """Called for a ringing call that ends unanswered (an answered one goes through
        ``on_start``/``on_end`` instead)."""
        self.draining = False

    def get(self, call_id: str) -> CallSession | None:
        """A live call by id: routed calls, and outbound calls still ringing (a hang-up
        through their control CANCELs them)."""
        return self.calls.get(call_id) or self.ringing.get(call_id)

    async def ring(self, session: CallSession) -> None:
        """An edge started dialling out: make the call visible (control, cluster registry)
        before it is answered. Listener failures are logged, never stop the dial."""
        self.ringing[session.call_id] = session
        await self._notify(self.on_ring, session)

    async def ring_done(self, session: CallSession) -> None:
        """The dial is over: answered (``start`` ran) or ended unanswered."""
        if self.ringing.pop(session.call_id, None) is not None and session.call_id not in self.calls:
            await self._notify(self.on_ring_end, session)

    async def _notify(self, listeners: list[Listener], session: CallSession) -> None:
        for listener in listeners:
            try:
                await listener(session)
            except Exception:
                log.exception("call listener failed for %s", session.call_id)

    async def start(self, session: CallSession) -> asyncio.Task[None]:
        """Route and run a call; raises NoRoute or Draining before anything starts."""
        if self.draining:
            raise Draining("node is draining; not accepting new calls")
        rule, app = self.router.resolve(session)
        self.calls[session.call_id] = session
        self.ringing.pop(session.call_id, None)
        ACTIVE_CALLS.labels(edge=session.edge).inc()
        for listener in self.on_start:
            await listener(session)
        task = asyncio.create_task(self._run(session, app.run), name=f"call-{session.call_id}")
        self._tasks[session.call_id] = task
        log.info(
            "call %s from %s edge routed to %s", session.call_id, session.edge, _redact(rule.app)
        )
        return task

    async def _run(
        self, session: CallSession, run: Callable[[CallSession], Awaitable[None]]
    ) -> None:
        try:
            await run(session)
            session.end("completed")
        except asyncio.CancelledError:
            session.end("cancelled")
            raise
        except NoRoute:
            session.end("no_route")
        except Exception:
            log.exception("app failed on call %s", session.call_id)
            session.end("app_error")
        finally:
            self.calls.pop(session.call_id, None)
            self._tasks.pop(session.call_id, None)
            ACTIVE_CALLS.labels(edge=session.edge).dec()
            CALLS_TOTAL.labels(edge=session.edge, reason=session.end_reason or "unknown").inc()
            for listener in self.on_end:
                try:
                    await listener(session)
                except Exception:
                    log.exception("call end listener failed for %s", session.call_id)

    async def drain(self, grace_s: float) -> None:
        """Stop taking calls; give active ones ``grace_s`` seconds, then end them."""
        self.draining = True
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for call_id, task in list(self._tasks.items()):
            if task in pending:
                self.calls[call_id].end("shutdown")
                task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
