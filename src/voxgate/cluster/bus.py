"""The control bus: a hang-up (transfer, hold, DTMF) sent to any node reaches the owning node.

Only the owning node holds a call's media and signalling, so only it can act on the call.
A request is published on the owner's channel ``P:ctl:<node>`` with a request id and the
requester's reply channel; the owner runs the action through ``session.control`` and
publishes the answer on ``P:ctlreply:<requester>``; the requester waits with a timeout.

Why pub/sub and not a stream: a control command is only meaningful now. A hang-up replayed
from a durable queue ten seconds later (after a restart) is a wrong action, not a
recovered one. Pub/sub also tells us at once when nobody listens (``PUBLISH`` returns 0
receivers): the owner is gone, and the caller gets a clear 503 instead of a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from voxgate.calls.session import CallSession
from voxgate.cluster.registry import CallRegistry

log = logging.getLogger(__name__)

Action = Literal["hangup", "transfer", "hold", "unhold", "dtmf"]
ACTIONS: frozenset[str] = frozenset({"hangup", "transfer", "hold", "unhold", "dtmf"})
_background: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What the API answers: ``status`` is the HTTP status to return."""

    ok: bool
    status: int
    detail: str
    node: str = ""


async def execute_control(
    session: CallSession | None, action: str, args: dict[str, Any], node: str = ""
) -> ControlResult:
    """Run one action on a local session; the single code path for local and bus requests."""
    if session is None or session.ended:
        return ControlResult(False, 404, "no such live call", node)
    control = session.control
    try:
        if action == "hangup":
            await control.hangup(str(args.get("reason") or "api_hangup"))
        elif action == "transfer":
            # A SIP transfer completes only when the far end's NOTIFY says so (up to 32 s):
            # start it, report quick failures, and answer "accepted" otherwise (HTTP 202).
            task = asyncio.create_task(control.transfer(str(args["target"])))
            _background.add(task)
            task.add_done_callback(_background.discard)
            task.add_done_callback(_log_late_failure)
            done, _ = await asyncio.wait({task}, timeout=0.5)
            if done:
                task.result()
        elif action == "hold":
            await control.hold()
        elif action == "unhold":
            await control.unhold()
        elif action == "dtmf":
            await control.send_dtmf(str(args["digits"]))
        else:
            return ControlResult(False, 400, f"unknown action {action!r}", node)
    except NotImplementedError as exc:
        return ControlResult(False, 501, str(exc), node)
    except (KeyError, ValueError) as exc:
        return ControlResult(False, 400, f"bad arguments: {exc}", node)
    except Exception as exc:
        log.exception("control %s failed on call %s", action, session.call_id)
        return ControlResult(False, 500, f"{action} failed: {type(exc).__name__}", node)
    return ControlResult(True, 200, "ok", node)


def _log_late_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("transfer failed after it was accepted: %s", task.exception())


class ControlBus:
    """One per node: serves requests for its own calls and sends requests to other nodes."""

    def __init__(
        self,
        redis: Redis,
        registry: CallRegistry,
        node_id: str,
        local: Callable[[str], CallSession | None],
        timeout_s: float = 3.0,
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.node_id = node_id
        self._local = local
        self.timeout_s = timeout_s
        self._pending: dict[str, asyncio.Future[ControlResult]] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        keys = self.registry.keys
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(keys.control(self.node_id), keys.control_reply(self.node_id))
        self._task = asyncio.create_task(self._listen(), name=f"control-bus-{self.node_id}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for task in list(self._handlers):
            task.cancel()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(ControlResult(False, 503, "node shutting down", self.node_id))

    async def _listen(self) -> None:
        assert self._pubsub is not None
        reply_channel = self.registry.keys.control_reply(self.node_id).encode()
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                data = json.loads(message["data"])
            except (ValueError, TypeError):
                log.warning("control bus: undecodable message dropped")
                continue
            if message["channel"] == reply_channel:
                fut = self._pending.pop(str(data.get("id")), None)
                if fut is not None and not fut.done():
                    fut.set_result(
                        ControlResult(bool(data["ok"]), int(data["status"]), str(data["detail"]),
                                      str(data.get("node", "")))
                    )  # fmt: skip
            else:
                # Run the action in its own task: a slow transfer must not delay the next
                # request (or the replies this node is waiting for) on the same connection.
                task = asyncio.create_task(self._serve(data))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    async def _serve(self, data: dict[str, Any]) -> None:
        call_id = str(data.get("call_id", ""))
        result = await execute_control(
            self._local(call_id), str(data.get("action")), dict(data.get("args") or {}),
            self.node_id,
        )  # fmt: skip
        reply = {"id": data.get("id"), "ok": result.ok, "status": result.status,
                 "detail": result.detail, "node": self.node_id}  # fmt: skip
        await self.redis.publish(self.registry.keys.control_reply(str(data["reply_to"])), json.dumps(reply))

    async def request(
        self, owner: str, call_id: str, action: str, args: dict[str, Any]
    ) -> ControlResult:
        """Ask ``owner`` to run ``action`` on ``call_id``; never raises for remote failures."""
        req_id = secrets.token_hex(8)
        fut: asyncio.Future[ControlResult] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        payload = {"id": req_id, "call_id": call_id, "action": action, "args": args,
                   "reply_to": self.node_id}  # fmt: skip
        try:
            receivers = await self.redis.publish(self.registry.keys.control(owner), json.dumps(payload))
            if receivers == 0:
                return ControlResult(False, 503, f"owning node {owner} is not reachable", owner)
            return await asyncio.wait_for(fut, self.timeout_s)
        except TimeoutError:
            return ControlResult(False, 504, f"owning node {owner} did not answer in time", owner)
        finally:
            self._pending.pop(req_id, None)

    async def control(self, call_id: str, action: str, args: dict[str, Any]) -> ControlResult:
        """Local call: run it here. Otherwise look up the owner and send it the request."""
        session = self._local(call_id)
        if session is not None:
            return await execute_control(session, action, args, self.node_id)
        owner = await self.registry.owner(call_id)
        if owner is None or owner.node_id == self.node_id:
            return ControlResult(False, 404, "no such live call", self.node_id)
        return await self.request(owner.node_id, call_id, action, args)
