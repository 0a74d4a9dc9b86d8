"""sipp (SIPp 3.6) calls voxgate: media both ways, DTMF, hold, CANCEL, BYE from us, REFER,
digest. Each test runs one bounded sipp process against an edge in this event loop."""

from __future__ import annotations

import asyncio

import pytest

from tests.sip.apps import ControlApp, EchoApp, ToneApp, manager_for, wait_for
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    needs_sipp,
    run_sipp,
    running_edge,
    scenario,
    target,
)
from voxgate.calls.session import CallSession

pytestmark = [pytest.mark.interop, needs_sipp]


def _client(edge_target: str, name: str, *extra: str) -> list[str]:
    return [
        "-sf", scenario(name), edge_target, "-s", "agent", "-p", str(free_port()),
        "-mp", str(free_port()), "-m", "1", *extra,
    ]  # fmt: skip


class NetworkLog:
    """Stands in for CallObserver: records the per-interval RTCP statistics."""

    def __init__(self) -> None:
        self.reports: list[dict[str, object]] = []
        self.answered: list[str] = []
        self.codecs: list[str | None] = []

    def network(self, call_id: str, edge: str, **stats: object) -> None:
        self.reports.append({"call_id": call_id, "edge": edge, **stats})

    def call_answered(self, call_id: str, codec: str | None = None) -> None:
        self.answered.append(call_id)
        self.codecs.append(codec)


async def test_pcap_call_media_both_ways_and_dtmf() -> None:
    """sipp's own uac_pcap (PCMA speech + DTMF 1) -> echo app; RTP counted both ways."""
    app = EchoApp()
    observer = NetworkLog()
    async with running_edge(manager_for(app)) as edge:
        edge.observer = observer  # type: ignore[assignment]
        sent: list[int] = []

        async def watch() -> None:
            await app.started.wait()
            call = next(iter(edge.calls.values()))
            while call.state != "ended":
                sent.append(call.media.packets_out)
                received.append(call.media.packets_in)
                await asyncio.sleep(0.1)

        received: list[int] = []
        watcher = asyncio.create_task(watch())
        result = await run_sipp(
            "-sn", "uac_pcap", target(edge), "-s", "agent", "-p", str(free_port()),
            "-mp", str(free_port()), "-m", "1",
        )  # fmt: skip
        await wait_for(lambda: not edge.calls)
        watcher.cancel()
    assert result.returncode == 0, result.stderr
    session = app.sessions[0]
    assert session.end_reason == "caller_hangup"
    assert session.callee == "agent"
    assert app.loud_frames > 100  # ~7 s of speech at 20 ms frames
    assert app.digits == "1"
    assert max(received) >= 230  # 236 speech packets + DTMF in the pcaps
    assert max(sent) >= 300  # ~9 s of 20 ms packets back to sipp's media port
    assert observer.answered == [session.call_id]
    assert observer.codecs[0] in ("PCMU/8000", "PCMA/8000")
    assert observer.reports and observer.reports[0]["packets"] > 100  # RTCP interval at ~5 s
    assert observer.reports[0]["loss_fraction"] == 0.0


async def test_rfc4733_digits_arrive_once_each() -> None:
    app = EchoApp()
    async with running_edge(manager_for(app)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_dtmf.xml"))
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stderr
    assert app.digits == "159#"


async def test_reinvite_hold_and_unhold() -> None:
    app = EchoApp()
    async with running_edge(manager_for(app)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_hold.xml"))
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.holds == [True, False]


async def test_cancel_before_answer_gets_487() -> None:
    app = EchoApp()
    async with running_edge(manager_for(app), edge_options(answer_delay_s=5.0)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_cancel.xml"))
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.sessions == []  # never answered, so the app never ran


async def test_agent_hangup_sends_bye() -> None:
    app = ToneApp(ms=600, hangup_after=True)
    async with running_edge(manager_for(app)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_wait_bye.xml"))
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.marks == ["greeting"]
    assert app.sessions[0].end_reason == "agent_hangup"


async def test_blind_transfer_with_refer_and_notify() -> None:
    async def transfer(session: CallSession) -> None:
        await asyncio.sleep(0.3)
        await session.control.transfer("human")

    app = ControlApp(transfer)
    async with running_edge(manager_for(app)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_refer.xml"))
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.errors == []
    assert app.sessions[0].end_reason == "transferred"


async def test_digest_challenge_for_source_outside_allowed() -> None:
    app = EchoApp()
    # sipp 3.6 answers only the first challenge and only MD5 (RFC 8760 lists SHA-256 first).
    options = edge_options(allowed=[], users={"alice": "s3cret"}, digest_algorithms=("MD5",))
    async with running_edge(manager_for(app), options) as edge:
        ok = await run_sipp(*_client(target(edge), "uac_auth.xml", "-au", "alice", "-ap", "s3cret"))
        await wait_for(lambda: not edge.calls)
        wrong = await run_sipp(
            *_client(target(edge), "uac_auth.xml", "-au", "alice", "-ap", "guess"), timeout_s=8
        )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert len(app.sessions) == 1
    assert wrong.returncode != 0  # 403 instead of 200: the scenario fails as it should
