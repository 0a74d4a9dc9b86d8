"""Routing picks the first matching rule; the manager always ends a call with a reason."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxgate.agent.config import AgentSettings
from voxgate.audio.frame import AudioFrame
from voxgate.calls.manager import CallManager, Draining
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.router import CallApp, NoRoute, Router, RouteRule
from voxgate.calls.session import CallSession, DtmfReceived, UnsupportedControl


class EchoApp:
    """Copies caller audio to the sink until the call ends."""

    name = "echo"

    async def run(self, session: CallSession) -> None:
        async for frame in session.audio():
            session.sink.write(frame)


class CrashApp:
    name = "crash"

    async def run(self, session: CallSession) -> None:
        raise RuntimeError("boom")


def session(callee: str = "100", edge: str = "local") -> CallSession:
    return CallSession(
        edge=edge,  # type: ignore[arg-type]
        sink=PlayoutBuffer(8000),
        control=UnsupportedControl(edge),
        sample_rate=8000,
        callee=callee,
    )


def factories(apps: dict[str, CallApp]) -> dict[str, object]:
    return {kind: (lambda rule, app=app: app) for kind, app in apps.items()}


def test_first_matching_rule_wins() -> None:
    router = Router(
        [
            RouteRule(app="agent:sales", callee="+1555*", name="sales"),
            RouteRule(app="ws://127.0.0.1:9/app", callee="*", edge="sip", name="ext"),
        ],
        factories({"agent": EchoApp(), "websocket": EchoApp()}),  # type: ignore[arg-type]
    )
    assert router.rule_for("sip", "+15551234").name == "sales"
    assert router.rule_for("sip", "200").name == "ext"
    assert router.rule_for("webrtc", "200").name == "default"


def test_unknown_app_kind_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="no application of kind 'bogus'"):
        Router([RouteRule(app="bogus:x")], {})


def test_no_default_raises_no_route() -> None:
    router = Router([], {}, default=None)
    with pytest.raises(NoRoute):
        router.rule_for("sip", "1")


async def test_manager_runs_app_and_ends_with_reason() -> None:
    mgr = CallManager(Router([], factories({"agent": EchoApp()})))  # type: ignore[arg-type]
    ended: list[str] = []

    async def on_end(s: CallSession) -> None:
        ended.append(s.end_reason or "")

    mgr.on_end.append(on_end)
    s = session()
    task = await mgr.start(s)
    s.feed_audio(AudioFrame(np.ones(160, dtype=np.int16), 8000))
    s.feed_event(DtmfReceived("5"))
    await asyncio.sleep(0.01)
    assert mgr.get(s.call_id) is s
    s.end("caller_hangup")
    await task
    assert ended == ["caller_hangup"]
    assert mgr.get(s.call_id) is None
    pcm, _ = s.sink.pull()  # type: ignore[attr-defined]
    assert pcm is not None and (pcm == 1).all()


async def test_crashing_app_ends_call_as_app_error() -> None:
    mgr = CallManager(Router([], factories({"agent": CrashApp()})))  # type: ignore[arg-type]
    s = session()
    await (await mgr.start(s))
    assert s.end_reason == "app_error"


async def test_drain_refuses_new_calls_and_ends_old_ones() -> None:
    mgr = CallManager(Router([], factories({"agent": EchoApp()})))  # type: ignore[arg-type]
    s = session()
    await mgr.start(s)
    await mgr.drain(grace_s=0.05)
    assert s.end_reason == "shutdown"
    with pytest.raises(Draining):
        await mgr.start(session())


async def test_slow_consumer_loses_oldest_frames_counted() -> None:
    s = session()
    s.max_queued_frames = 3
    for i in range(5):
        s.feed_audio(AudioFrame(np.full(160, i, dtype=np.int16), 8000, sequence=i))
    s.end("done")
    seqs = [f.sequence async for f in s.audio()]
    assert seqs == [2, 3, 4] and s.dropped_frames == 2


def test_route_urls_are_redacted_for_logs() -> None:
    from voxgate.calls.manager import _redact

    assert _redact("wss://user:pw@app.example:8443/ws?token=abc") == "wss://app.example:8443/ws"
    assert _redact("agent:receptionist") == "agent:receptionist"


def test_requested_app_wins_over_rules_and_is_validated() -> None:
    ws = RouteRule(app="ws://127.0.0.1:9/app", callee="*", name="ext", auth_header="Bearer x")
    router = Router(
        [RouteRule(app="agent:sales", callee="+1555*", name="sales"), ws],
        factories({"agent": EchoApp(), "websocket": EchoApp()}),  # type: ignore[arg-type]
    )
    s = session(callee="+15551234")
    s.requested_app = "agent:reminder"
    rule, _ = router.resolve(s)
    assert rule.app == "agent:reminder" and s.route == "agent:reminder"  # not the callee's rule
    s.requested_app = "ws://127.0.0.1:9/app"
    assert router.resolve(s)[0] is ws  # a configured app keeps its protocol and auth
    s.requested_app = "ws://attacker.example/app"
    with pytest.raises(NoRoute, match="not a configured route"):
        router.resolve(s)
    s.requested_app = "bogus:x"
    with pytest.raises(NoRoute, match="no application of kind 'bogus'"):
        router.resolve(s)


async def test_requested_agent_name_must_exist() -> None:
    from tests.agent.fakes import providers
    from voxgate.apps import app_factories
    from voxgate.config import Settings

    p = providers([], {})
    named = {"reminder": (p, AgentSettings())}
    router = Router([], app_factories(Settings(), p, None, None, named))  # type: ignore[arg-type]
    s = session()
    s.requested_app = "agent:reminder"
    assert router.resolve(s)[1] is not router.resolve(session())[1]  # its own agent
    s.requested_app = "agent:nope"
    with pytest.raises(NoRoute, match="unknown agent 'nope'"):
        router.resolve(s)
    mgr = CallManager(router)
    with pytest.raises(NoRoute):
        await mgr.start(s)
    assert mgr.calls == {}
